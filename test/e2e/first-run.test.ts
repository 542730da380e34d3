import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startOwnRedis } from '../../src/setup/services.js';
import { labDown } from '../../src/lab/index.js';
import { uniquePrefix } from '../helpers/runtime.js';

const CLI = resolve('dist/cli.js');
const cwd = mkdtempSync(join(tmpdir(), 'runbook-first-run-'));
// The lab's unprivileged user must be able to reach .lab inside it, as in a checkout.
chmodSync(cwd, 0o755);
const prefix = uniquePrefix();
let bot: ChildProcess | undefined;

afterAll(async () => {
  if (bot && bot.exitCode === null) {
    bot.kill('SIGTERM');
    await new Promise((r) => bot!.once('exit', r));
  }
  await labDown(join(cwd, '.lab'));
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  rmSync(cwd, { recursive: true, force: true });
});

describe('first run', () => {
  it('runbook start with no configuration starts the lab, a worker and the console, where /ovs flush node-3 succeeds', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', RUNBOOK_PREFIX: prefix, LOG_LEVEL: 'warn' };
    delete env.RUNBOOK_CONFIG;
    bot = spawn(process.execPath, [CLI, 'start'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    bot.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = await new Promise<string>((done, fail) => {
      let out = '';
      bot!.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /runbook is up: open (http:\/\/127\.0\.0\.1:\d+\/) and, as alice, type \/ovs flush node-3/.exec(out);
        if (m) done(m[1]!);
      });
      bot!.once('exit', (code) => fail(new Error(`runbook start exited ${code}: ${stderr}`)));
    });
    expect(stderr).toMatch(/no runbook\.yaml: started the lab \(15 simulated hosts/);
    const health = await fetch(`${url}healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, redis: true, workers: 1 });

    const started = (await (await fetch(`${url}console/api/command`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ person: 'alice', text: '/ovs flush node-3' }) })).json()) as { runId: string };
    expect(started.runId).toMatch(/^r-/);
    let final: string | undefined;
    for (let i = 0; i < 300 && !final; i++) {
      const history = (await (await fetch(`${url}console/api/history`)).json()) as { runId: string; message: { key: string; summary: string } }[];
      final = history.find((m) => m.runId === started.runId && m.message.key === 'final')?.message.summary;
      if (!final) await new Promise((r) => setTimeout(r, 200));
    }
    expect(final).toMatch(new RegExp(`^✅ Run ${started.runId} succeeded`));

    const metrics = await (await fetch(`${url}metrics`)).text();
    expect(metrics).toMatch(/^runbook_runs_total\{procedure="ovs flush",status="succeeded"\} 1$/m);
    expect(metrics).toMatch(/^runbook_step_duration_seconds_count\{kind="ssh",status="succeeded"\} \d+$/m);
    expect(metrics).toMatch(/^runbook_queue_jobs\{state="waiting"\} 0$/m);
    expect(metrics).toMatch(/^runbook_ssh_pool\{what="connections"\} 1$/m);
    expect(metrics).toMatch(/^runbook_gates_waiting\{kind="approval"\} 0$/m);
  });

  it('starts a redis-server of its own, with its data on disk, when none is running', async () => {
    const dir = join(cwd, 'redis');
    const own = await startOwnRedis(dir);
    try {
      const r = new Redis(own.url);
      expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await r.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(await r.config('GET', 'dir')).toEqual(['dir', dir]);
      await r.quit();
    } finally {
      own.child.kill();
    }
  });
});
