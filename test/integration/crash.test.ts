import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, readCalls, readHostState, setFault, setHostSetting, type Vdisk } from '../../src/lab/index.js';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { until } from '../helpers/until.js';
import { finished, testRuntime, waitForEvent, watch } from '../helpers/runtime.js';

const CLI = resolve('dist/cli.js');

let lab: Awaited<ReturnType<typeof startTestLab>>;
const children: ChildProcess[] = [];
const runtimes: ReturnType<typeof testRuntime>[] = [];

/** A runtime of its own per test, so the in-process worker of one test never takes another's jobs. */
function newRuntime() {
  const rt = testRuntime(lab.lab.configPath, { timeScale: 1 });
  runtimes.push(rt);
  return rt;
}

/** A worker in its own process, as `runbook worker` runs in production. */
function spawnWorker(rt: ReturnType<typeof testRuntime>, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, [CLI, 'worker'], {
    env: { ...process.env, RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: rt.prefix, RUNBOOK_LEASE_MS: '2000', LOG_LEVEL: 'warn', WORKER_CONCURRENCY: '4', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

/** Snapshots the volumedriver made for a volume: create_snapshot calls of flush_snapshot that succeeded. */
function created(dir: string, host: string, volumeId: string): number {
  return readCalls(dir, host).filter((c) => c.argv.slice(0, 4).join(' ') === `storagerouterclient create_snapshot ${volumeId} flush_snapshot` && c.exit === 0).length;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    child.once('exit', () => done());
    child.kill('SIGKILL');
  });
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm test builds it first (npm run build)`);
  lab = await startTestLab({ only: ['node-3', 'node-5'] });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const rt of runtimes) await rt.cleanup();
  await lab?.down();
});

describe('a worker killed mid-step', () => {
  it('the run completes on another worker without repeating a completed step', async () => {
    const rt = newRuntime();
    const dir = lab.lab.dir;
    const vdisks = readHostState<Vdisk[]>(dir, 'node-3', 'vdisks')!;
    // Every in_backend check takes a while, so the kill lands while checks are running.
    setFault(dir, 'node-3', { match: 'storagerouterclient info_snapshot', action: 'slow', delayMs: 1_500 });
    const req = await rt.intake.request({ text: 'ovs flush node-3', person: 'alice', origin: { adapter: 'test' } });
    const a = spawnWorker(rt);
    // Kill once every snapshot exists and the in_backend checks are running.
    let snapshots = 0;
    await watch(rt, req.id, (e) => (snapshots += e.type === 'step.finished' && e.path.endsWith('.snapshot') ? 1 : 0) === vdisks.length);
    await waitForEvent(rt, req.id, (e) => e.type === 'step.started' && e.path.endsWith('.in-backend'));
    await kill9(a);
    const killedAt = Date.now();
    const before = await rt.store.load(req.id);
    const doneBefore = Object.values(before.steps).filter((s) => s.status === 'succeeded').map((s) => s.path);
    expect(doneBefore.length).toBeGreaterThan(0);
    expect(Object.values(before.steps).some((s) => s.status === 'running')).toBe(true);

    rt.startWorker(4);
    const run = await finished(rt, req.id);
    clearFaults(dir, 'node-3');
    expect(run.status).toBe('succeeded');
    for (const path of doneBefore) expect(run.steps[path]!.attempts).toBe(1);
    for (const v of vdisks) {
      expect(created(dir, 'node-3', v.volume_id)).toBe(1);
      expect(readCalls(dir, 'node-3').filter((c) => c.argv.join(' ') === `storagerouterclient delete_snapshot ${v.volume_id} flush_snapshot` && c.exit === 0)).toHaveLength(1);
    }
    const events = await watch(rt, req.id);
    const interrupted = events.filter((e) => e.type === 'step.interrupted');
    expect(interrupted.length).toBeGreaterThan(0);
    expect(interrupted.every((e) => e.type === 'step.interrupted' && e.idempotent && e.path.endsWith('.in-backend'))).toBe(true);
    const resumed = events.find((e) => e.type === 'run.started' && e.resumed && Date.parse(e.at) >= killedAt);
    expect(resumed).toBeDefined();
  });

  it("a worker killed while a vDisk's snapshot is being made: the resumed run makes no second one, nobody is asked", async () => {
    const rt = newRuntime();
    const dir = lab.lab.dir;
    const vdisks = readHostState<Vdisk[]>(dir, 'node-5', 'vdisks')!;
    const first = vdisks[0]!;
    setHostSetting(dir, 'node-5', 'pendingChecks', 0);
    // The first vDisk's create_snapshot call never returns (a volumedriver that does not answer): the
    // kill lands while that step runs, and that attempt never makes its snapshot.
    setFault(dir, 'node-5', { match: `storagerouterclient create_snapshot ${first.volume_id}`, action: 'hang', times: 1 });
    const req = await rt.intake.request({ text: 'ovs flush node-5', person: 'alice', origin: { adapter: 'test' } });
    const a = spawnWorker(rt);
    await waitForEvent(rt, req.id, (e) => e.type === 'step.started' && e.path === `flush[${first.name}].snapshot`);
    // Killed only once the hanging call is there: killed earlier, the resumed attempt would be the
    // one that hangs. This lab's call: other labs' hosts have the same volume ids.
    const call = `${dir}/tools/labtool.cjs\0storagerouterclient\0create_snapshot\0${first.volume_id}\0`;
    await until('the hung create_snapshot on node-5', () => readdirSync('/proc').some((p) => /^\d+$/.test(p) && cmdline(Number(p)).includes(call)));
    await kill9(a);
    rt.startWorker(2);
    const run = await finished(rt, req.id);
    clearFaults(dir, 'node-5');
    // The killed worker's call still hangs on the host; it goes now, as a stuck process would be ended.
    for (const p of readdirSync('/proc')) if (/^\d+$/.test(p) && cmdline(Number(p)).includes(call)) process.kill(Number(p), 'SIGKILL');
    expect(run.status).toBe('succeeded');
    // Idempotent: taken again without asking anyone, and it made the one snapshot.
    expect(Object.values(run.gates)).toEqual([]);
    expect(run.steps[`flush[${first.name}].snapshot`]).toMatchObject({ status: 'succeeded', attempts: 2 });
    for (const v of vdisks) expect(created(dir, 'node-5', v.volume_id)).toBe(1);
    expect(readHostState<Vdisk[]>(dir, 'node-5', 'vdisks')!.flatMap((v) => v.snapshots.map((x) => x.name))).not.toContain('flush_snapshot');
  });

  it('an interrupted step that is not idempotent waits for a person to retry, skip or abort', async () => {
    const rt = newRuntime();
    const dir = lab.lab.dir;
    setFault(dir, 'node-5', { match: 'ovs collect logs', action: 'hang', times: 1 });
    const req = await rt.intake.request({ text: 'ovs collect-logs node-5', person: 'alice', origin: { adapter: 'test' } });
    const a = spawnWorker(rt);
    await waitForEvent(rt, req.id, (e) => e.type === 'step.started' && e.path === 'collect');
    const hung = `${dir}/bin/ovs\0collect\0logs`;
    await until('the hung ovs collect logs on node-5', () => readdirSync('/proc').some((p) => /^\d+$/.test(p) && cmdline(Number(p)).includes(hung)));
    await kill9(a);
    rt.startWorker(2);

    const opened = await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    if (opened.type !== 'gate.opened') throw new Error('unreachable');
    expect(opened.gate).toMatchObject({ kind: 'interrupted', stepPath: 'collect' });
    expect(opened.gate.steps[0]!.command).toBe('ovs collect logs');
    await expect(rt.decisions.decide(req.id, 'alice', 'retry')).rejects.toThrow(/cannot retry its own/);
    await rt.decisions.decide(req.id, 'carol', 'retry');
    const run = await finished(rt, req.id);
    for (const p of readdirSync('/proc')) if (/^\d+$/.test(p) && cmdline(Number(p)).includes(hung)) process.kill(Number(p), 'SIGKILL');
    expect(run.status).toBe('succeeded');
    expect(run.steps.collect).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(Object.values(run.gates)[0]).toMatchObject({ status: 'decided', decision: 'retry', decidedBy: 'carol' });
  });
});

describe('a worker process', () => {
  it('serves its own /metrics and /healthz on WORKER_METRICS_PORT, counting the runs and steps it did', async () => {
    const rt = newRuntime();
    const child = spawnWorker(rt, { WORKER_METRICS_PORT: '0' });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const url = await until(
      'the worker to say where its metrics are',
      () => {
        if (child.exitCode !== null) throw new Error(`the worker exited before saying where its metrics are: ${stdout}`);
        return /worker metrics: (http:\/\/\S+)\/metrics/.exec(stdout)?.[1];
      },
      30_000,
    );
    const req = await rt.intake.request({ text: 'ovs flush node-5', person: 'alice', origin: { adapter: 'test' } });
    const run = await finished(rt, req.id);
    expect(run.status).toBe('succeeded');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`runbook_runs_total\\{procedure="${run.procedure}",status="succeeded"\\} 1\\b`));
    const steps = Object.values(run.steps).filter((x) => x.status === 'succeeded' && x.kind !== 'forEach' && x.kind !== 'group').length;
    const counted = [...metrics.matchAll(/runbook_step_duration_seconds_count\{[^}]*status="succeeded"[^}]*\} (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(counted).toBe(steps);
    // The process's own metrics keep the names Node.js dashboards know; the bot's keep runbook_.
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(metrics).toMatch(/^nodejs_heap_size_used_bytes \d+/m);
    expect(metrics).not.toMatch(/runbook_process_/);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, redis: true });
    // A worker serves no chat routes.
    expect((await fetch(`${url}/slack/events`, { method: 'POST' })).status).toBe(404);
    await kill9(child);
  }, 120_000);

  it('refuses a WORKER_METRICS_PORT that is not a port, saying which variable and why', async () => {
    const rt = newRuntime();
    const r = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: rt.prefix, WORKER_METRICS_PORT: 'ninety' }, 'worker');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/WORKER_METRICS_PORT/);
  }, 60_000);
});
