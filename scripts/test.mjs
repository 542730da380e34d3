// `npm test`: makes sure Redis, MariaDB and sshd are there, builds (the crash tests run real
// `runbook worker` processes from dist/), then runs every test with vitest.
import { spawnSync } from 'node:child_process';
import { ensureChromium, ensureMariaDb, ensureRedis, ensureSshd } from './ensure-services.mjs';

try {
  await ensureRedis();
  await ensureMariaDb();
  ensureSshd();
  ensureChromium();
} catch (e) {
  process.stderr.write(`[test] ${e.message}\n`);
  process.exit(1);
}
const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;
const built = run('npx', ['tsc', '-p', 'tsconfig.build.json']);
if (built !== 0) process.exit(built);
process.exit(run('npx', ['vitest', 'run', ...process.argv.slice(2)]));
