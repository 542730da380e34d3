import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTerminal, type Run, type StampedEvent } from '../../src/engine/types.js';
import { readCalls } from '../../src/lab/index.js';
import { startTestLab } from '../helpers/lab.js';
import { testRuntime, watch } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

/**
 * An operator's bad day, in about a minute: a bot and three worker processes on a Redis of the test's own,
 * three dozen runs competing for four hosts, one approval left open (its host's runs wait behind
 * it), a worker killed with SIGKILL every few seconds, and one Redis restart. Every run must end,
 * no step whose end was recorded may run again, runs on free hosts must keep finishing while the
 * others wait, and no process but the ones killed may exit.
 */
const CLI = resolve('dist/cli.js');
const HOSTS = ['lab-001', 'lab-002', 'lab-003', 'lab-004'];
/** Runs asked for, one every SUBMIT_MS, while workers are killed every KILL_MS (± half). */
const RUNS = 36;
const SUBMIT_MS = 350;
const KILL_MS = 2_000;
const LEASE_MS = 2_000;

let lab: Awaited<ReturnType<typeof startTestLab>>;
let redisDir: string;
let redis: ChildProcess | undefined;
let port: number;
const workers: ChildProcess[] = [];
/** Worker processes that exited of themselves (not killed by the test): each is a failure. */
const unexpectedExits: string[] = [];
const killedByUs = new Set<ChildProcess>();

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => done(p));
    });
    srv.on('error', fail);
  });
}

/** A redis-server of the test's own (never the shared one on 6379), every write on disk before it answers. */
async function startRedis(): Promise<void> {
  redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  await until('the test Redis to answer', () => new Promise<boolean>((done) => {
    const s = createServer();
    s.once('error', () => done(true));
    s.listen(port, '127.0.0.1', () => s.close(() => done(false)));
  }), 10_000);
}

async function stopRedis(): Promise<void> {
  const r = redis;
  if (!r || r.exitCode !== null) return;
  await new Promise<void>((done) => {
    r.once('exit', () => done());
    r.kill('SIGTERM');
  });
}

function spawnWorker(prefix: string): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix, RUNBOOK_LEASE_MS: String(LEASE_MS), WORKER_CONCURRENCY: '4', LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  child.on('exit', (code, signal) => {
    if (!killedByUs.has(child)) unexpectedExits.push(`worker ${child.pid} exited (code ${code}, signal ${signal}): ${stderr}`);
  });
  workers.push(child);
  return child;
}

/** `runbook start` (console, progress hub and a worker of its own) on a free port; it is never killed by the test. */
function spawnBot(prefix: string, httpPort: number): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'start'], {
    env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix, RUNBOOK_LEASE_MS: String(LEASE_MS), WORKER_CONCURRENCY: '2', LOG_LEVEL: 'error', HOST: '127.0.0.1', PORT: String(httpPort) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
  child.on('exit', (code, signal) => {
    if (!killedByUs.has(child)) unexpectedExits.push(`bot ${child.pid} exited (code ${code}, signal ${signal}): ${stderr}`);
  });
  workers.push(child);
  return child;
}

function kill9(child: ChildProcess): Promise<void> {
  killedByUs.add(child);
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGKILL');
  });
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm test builds it first (npm run build)`);
  redisDir = mkdtempSync(join(tmpdir(), 'runbook-chaos-redis-'));
  port = await freePort();
  await startRedis();
  lab = await startTestLab({ only: [], extraHosts: HOSTS.length });
});

afterAll(async () => {
  for (const w of workers) await kill9(w);
  await stopRedis();
  rmSync(redisDir, { recursive: true, force: true });
  await lab?.down();
});

describe('a deployment on a bad day', () => {
  it('ends every run, never runs a recorded step again, keeps free hosts moving, and neither the bot nor a worker exits of itself', async () => {
    const rt = testRuntime(lab.lab.configPath, { env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}` } });
    try {
      const httpPort = await freePort();
      const bot = spawnBot(rt.prefix, httpPort);
      for (let i = 0; i < 3; i++) spawnWorker(rt.prefix);
      // Every command is unique to its run, so the hosts' call logs say how often each ran.
      const command = (i: number) => `lab-sleep 0.7${String(i).padStart(4, '0')}`;
      const tryHard = async <T>(what: () => Promise<T>): Promise<T> => {
        for (;;) {
          try {
            return await what();
          } catch {
            await sleep(200);
          }
        }
      };
      // The first run on lab-004 asks for an approval nobody gives: the runs after it on lab-004 wait.
      const blocker = await rt.intake.request({ text: `ops exec lab-004 -- ${command(0)}`, person: 'alice', origin: { adapter: 'test' } });
      const ids: string[] = [blocker.id];
      const onBlocked = new Set<string>([blocker.id]);

      let stop = false;
      // A person approves every other approval (as bob) and retries every interrupted step (as carol),
      // on every run stored: a request that failed while Redis restarted may have stored its run.
      const answer = async () => {
        for (const r of await rt.store.list(1_000)) {
          if (isTerminal(r.status) || r.id === blocker.id) continue;
          for (const g of Object.values(r.gates)) {
            if (g.status === 'open') await rt.decisions.decide(r.id, g.kind === 'approval' ? 'bob' : 'carol', g.kind === 'approval' ? 'approve' : 'retry', { gateId: g.id }).catch(() => undefined);
          }
        }
      };
      let approving = true;
      const approver = (async () => {
        while (approving) {
          await answer().catch(() => undefined);
          await sleep(100);
        }
      })();
      const killer = (async () => {
        while (!stop) {
          await sleep(KILL_MS / 2 + Math.random() * KILL_MS);
          if (stop) break;
          // Preferably one in the middle of a run: the pid in one of the runs' leases.
          const alive = workers.filter((w) => w !== bot && w.exitCode === null && w.signalCode === null);
          const busy = await leaseHolders(rt).catch(() => new Set<number>());
          const pool = alive.filter((w) => busy.has(w.pid!));
          const from = pool.length ? pool : alive;
          const victim = from[Math.floor(Math.random() * from.length)];
          if (victim) await kill9(victim);
          spawnWorker(rt.prefix);
        }
      })();

      for (let i = 1; i < RUNS; i++) {
        if (i === Math.floor(RUNS / 2)) {
          // One Redis restart, mid-way: everything it had acknowledged is on disk.
          await stopRedis();
          await sleep(300);
          await startRedis();
        }
        const hosts = i % 9 === 0 ? 'lab-004' : i % 5 === 0 ? 'lab-[001-002]' : HOSTS[i % 3]!;
        const text = i % 4 === 0 ? `ops exec ${hosts} -- uptime` : `ops exec ${hosts} -- ${command(i)}`;
        const run = await tryHard(() => rt.intake.request({ text, person: 'alice', origin: { adapter: 'test' } }));
        ids.push(run.id);
        if (hosts === 'lab-004') onBlocked.add(run.id);
        await sleep(SUBMIT_MS);
      }

      // Runs on the free hosts all end while the approval on lab-004 is still open.
      await until('every run on a free host to end', async () => (await tryHard(() => rt.store.many(ids.filter((id) => !onBlocked.has(id))))).every((r) => isTerminal(r.status)), 90_000);
      const blocked = await rt.store.many([...onBlocked]);
      expect(blocked.filter((r) => isTerminal(r.status))).toEqual([]);
      expect(Object.values(blocked.find((r) => r.id === blocker.id)!.gates).map((g) => g.status)).toEqual(['open']);

      stop = true;
      await killer;
      await rt.decisions.cancel(blocker.id, 'alice');
      await until('every run to end', async () => (await rt.store.list(1_000)).every((r) => isTerminal(r.status)), 60_000);
      approving = false;
      await approver;

      const runs = await rt.store.many(ids);
      expect(runs.map((r) => `${r.id}:${r.status}`)).toEqual(runs.map((r) => `${r.id}:${r.id === blocker.id ? 'cancelled' : 'succeeded'}`));
      // Nothing stranded: the active set empties and no host stays held.
      await until('the active set to empty', async () => (await rt.store.active()).length === 0, 30_000);
      for (const [host, held] of await rt.store.lockHolders(HOSTS)) expect(held, host).toEqual({ readers: [] });
      let resumed = 0;
      for (const r of runs) {
        const events = await watch(rt, r.id);
        checkRun(r, events);
        resumed += events.filter((e) => e.type === 'run.started' && e.resumed).length;
      }
      // The kills did land in the middle of runs: other workers took those runs over.
      expect(resumed).toBeGreaterThan(0);
      expect(unexpectedExits).toEqual([]);
      // The bot rode out the Redis restart: it answers, and sees Redis and its workers.
      expect(await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()).toMatchObject({ ok: true, redis: true });
    } finally {
      await rt.cleanup().catch(() => undefined);
    }
  }, 240_000);
});

/** Pids of the workers holding a run's lease now (a lease token is `<host>:<pid>:<uuid>`). */
async function leaseHolders(rt: ReturnType<typeof testRuntime>): Promise<Set<number>> {
  const pids = new Set<number>();
  let cursor = '0';
  do {
    const [next, keys] = await rt.redis.scan(cursor, 'MATCH', `${rt.prefix}:run:*:lease`, 'COUNT', 1000);
    cursor = next;
    for (const token of keys.length ? await rt.redis.mget(keys) : []) if (token) pids.add(Number(token.split(':')[1]));
  } while (cursor !== '0');
  return pids;
}

/** No step whose end was recorded started again, each command ran no more often than its attempts, and the run ended once. */
function checkRun(run: Run, events: StampedEvent[]): void {
  const ended = new Set<string>();
  for (const e of events) {
    if (e.type === 'step.finished' && e.status === 'succeeded') ended.add(e.path);
    if (e.type === 'step.started') expect(ended.has(e.path), `${run.id}: ${e.path} started again after it succeeded`).toBe(false);
  }
  expect(events.filter((e) => e.type === 'run.finished'), run.id).toHaveLength(1);
  for (const st of Object.values(run.steps)) {
    if (st.kind !== 'ssh' || !st.host || !st.command?.startsWith('lab-sleep')) continue;
    const calls = readCalls(lab.lab.dir, st.host).filter((c) => c.argv.join(' ') === st.command).length;
    expect(calls, `${run.id} ${st.path}: ran ${calls} times in ${st.attempts} attempts`).toBeLessThanOrEqual(st.attempts);
    if (st.status === 'succeeded') expect(calls, `${run.id} ${st.path}`).toBeGreaterThanOrEqual(1);
  }
}
