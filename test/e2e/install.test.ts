import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RunStore } from '../../src/engine/store.js';
import { runProgram as run } from '../helpers/cli.js';
import { uniquePrefix } from '../helpers/runtime.js';

const CLI = resolve('dist/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'runbook-install-'));
// Apart from `dir` (mode 700): the lab's unprivileged user must reach it.
const labDir = mkdtempSync(join(tmpdir(), 'runbook-install-lab-'));
const prefix = uniquePrefix();
let installed: string | undefined;

afterAll(async () => {
  if (installed) await run(installed, ['lab', 'down', '--dir', labDir]);
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await new RunStore(redis, prefix).purge();
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
  rmSync(labDir, { recursive: true, force: true });
});

describe('the runbook command, installed', () => {
  it('runs through a symlink, as node_modules/.bin/runbook, npm link and npx reach it', async () => {
    mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
    const link = join(dir, 'node_modules', '.bin', 'runbook');
    symlinkSync(CLI, link);
    const help = await run(process.execPath, [link, 'help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^runbook: run incident runbooks/);
    const wrong = await run(process.execPath, [link, 'frobnicate']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it('npm i -g of the packed tarball gives a working runbook help, pack new, lab up and run', async () => {
    // npm test has just built dist/: packing skips prepack's second build.
    const packed = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], {}, resolve('.'));
    expect(packed.code, packed.stderr).toBe(0);
    const tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
    const npmPrefix = join(dir, 'prefix');
    // From npm's cache when it holds the dependencies (npm ci filled it), else from the registry.
    const install = await run('npm', ['install', '--global', '--prefix', npmPrefix, '--prefer-offline', '--no-audit', '--no-fund', tarball]);
    expect(install.code, install.stderr).toBe(0);
    const runbook = join(npmPrefix, 'bin', 'runbook');
    installed = runbook;

    const help = await run(runbook, ['help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^ {2}ovs +flush, shutdown/m);

    const packs = join(dir, 'packs', 'acme');
    expect((await run(runbook, ['pack', 'new', packs, 'acme'])).code).toBe(0);
    const check = await run(runbook, ['pack', 'check', packs]);
    expect(check.stdout, check.stderr).toContain('✓ acme restart: 2 steps, 2 examples');

    const up = await run(runbook, ['lab', 'up', '--dir', labDir, '--port', '0', '--pack', packs]);
    expect(up.code, up.stderr).toBe(0);
    const config = /export RUNBOOK_CONFIG=(\S+)/.exec(up.stdout)![1]!;
    const env = { RUNBOOK_CONFIG: config, RUNBOOK_PREFIX: prefix };
    for (const command of ['ovs flush node-3', 'acme restart outpost']) {
      const r = await run(runbook, ['run', command, '--as', 'alice', '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ procedure: command.split(' ').slice(0, 2).join(' '), status: 'succeeded' });
    }
  }, 300_000);
});
