// `npm test`: builds (the crash and CLI tests run dist/cli.js as real processes), makes sure
// Redis, MariaDB, sshd, the OpenStack clients and swift-ring-builder (the lab's controller runs the
// real ones) and Chromium are there (src/setup/services.ts), then runs vitest.
import { spawnSync } from 'node:child_process';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit' }).status ?? 1;
const built = run('npx', ['tsc', '-p', 'tsconfig.build.json']);
if (built !== 0) process.exit(built);
const setup = await import('../dist/setup/services.js');
try {
  await setup.ensureRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await setup.ensureMariaDb(process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306');
  setup.ensureSshd();
  setup.ensureOpenStackClients();
  setup.ensureChromium();
} catch (e) {
  process.stderr.write(`[test] ${e.message}\n`);
  process.exit(1);
}
process.exit(run('npx', ['vitest', 'run', ...process.argv.slice(2)]));
