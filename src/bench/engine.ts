/**
 * The engine's own costs (issue 14), measured, never asserted:
 * - no-op steps per second through one pass (report steps: the engine's work, no command),
 * - Redis round trips per step (socket writes on the engine's connection),
 * - the cost of one checkpoint in a run of 10, 100 and 1,000 steps,
 * - the resident memory of a worker process with 1,000 runs waiting at gates,
 * - the time from an approval to its command starting on the host, p50.
 * `node dist/bench/engine.js --standalone` runs only this section (it starts a one-host lab).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { z } from 'zod';
import type { Redis } from 'ioredis';
import { loadRunbookConfig } from '../config/runbook-config.js';
import { Transitions } from '../engine/transitions.js';
import { labDown, labUp } from '../lab/index.js';
import { Catalog } from '../procedures/catalog.js';
import { procedure, sh, parse } from '../procedures/dsl.js';
import { defaultCatalog } from '../procedures/index.js';
import { Runtime } from '../runtime.js';
import { median, runStandalone } from './util.js';

const ms = (x: number) => Math.round(x * 1000) / 1000;
const NOOP_STEPS = 2_000;
const CHECKPOINT_SIZES = [10, 100, 1_000];
const CHECKPOINTS = 300;
const WAITING_RUNS = 1_000;
const APPROVALS = 21;

/** N report steps in a forEach: what the engine does for a step, without a command. */
const noop = procedure({
  pack: 'bench', name: 'noop', summary: 'N steps that run nothing', usage: 'bench noop --count N --concurrency C', examples: ['bench noop --count 100 --concurrency 1'], source: 'benchmark',
  args: z.object({ count: z.number().int().min(1), concurrency: z.number().int().min(1).default(1) }), positional: [], locks: () => [],
  steps: [{ kind: 'forEach', id: 'each', title: 'No-op steps', risk: 'read', items: (ctx) => Array.from({ length: ctx.args.count }, (_, i) => i), key: (i: number) => String(i), concurrency: (ctx) => ctx.args.concurrency, steps: [{ kind: 'report', id: 'noop', title: 'Nothing', risk: 'read', text: () => '' }] }],
});

/** A run that waits for a person at once, holding nothing: here for intake, and as a pack for a worker process. */
const WAITS = `procedure({
  pack: 'bench', name: 'waits', summary: 'wait at a gate', usage: 'bench waits', examples: ['bench waits'], source: 'benchmark',
  args: z.object({}), positional: [], locks: () => [],
  steps: [{ kind: 'manual', id: 'confirm', title: 'Confirm', risk: 'write', instructions: 'Press Done' }],
})`;
const WAITS_PACK = `import { procedure, z } from 'runbook-bot/dsl';\nexport default [${WAITS}];\n`;
const waits = new Function('procedure', 'z', `return ${WAITS};`)(procedure, z) as ReturnType<typeof procedure>;

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

/** The V8 flag `npm start` and the Docker image's entrypoint give the bot and its workers (package.json, Dockerfile). */
const SHIPPED_NODE_FLAG = '--max-semi-space-size=4';

/** Resident memory of a process, MB (Linux /proc). */
function rssOf(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** A `runbook worker` process's RSS idle, and once WAITING_RUNS runs wait at their gates (then cancelled). */
async function waitingWorkerRss(rt: Runtime, configPath: string, packDir: string, person: string, nodeFlags: string[]): Promise<{ idleMb: number; waitingMb: number; parkedInMs: number }> {
  const worker = spawn(process.execPath, [...nodeFlags, CLI, 'worker'], {
    env: { ...process.env, RUNBOOK_CONFIG: configPath, RUNBOOK_PREFIX: rt.prefix, RUNBOOK_PACKS: packDir, WORKER_CONCURRENCY: '8', LOG_LEVEL: 'error' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitForWorker(rt);
    const idleMb = rssOf(worker.pid!);
    const t0 = performance.now();
    const waiting: string[] = [];
    for (let i = 0; i < WAITING_RUNS; i++) waiting.push((await rt.intake.request({ text: 'bench waits', person, origin: { adapter: 'bench' } })).id);
    while (![...(await rt.store.heads(waiting)).values()].every((r) => r.status === 'waiting')) {
      if (performance.now() - t0 > 300_000) throw new Error('the runs did not all reach their gates in 5 minutes');
      await new Promise((r) => setTimeout(r, 250));
    }
    const parkedInMs = Math.round(performance.now() - t0);
    const waitingMb = rssOf(worker.pid!);
    for (const id of waiting) await rt.decisions.cancel(id, person);
    while (![...(await rt.store.heads(waiting)).values()].every((r) => r.status === 'cancelled')) await new Promise((r) => setTimeout(r, 250));
    return { idleMb, waitingMb, parkedInMs };
  } finally {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  }
}

/** Until a worker process beats in Redis. */
async function waitForWorker(rt: Runtime): Promise<void> {
  const end = Date.now() + 30_000;
  // A worker that just stopped may still beat for a while: wait for a process that is alive.
  while (!(await rt.liveWorkers()).some((w) => { try { return process.kill(w.pid, 0); } catch { return false; } })) {
    if (Date.now() > end) throw new Error('the bench worker did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An approval in front of a command that prints when it started, in ns since the epoch (the lab host shares this clock). */
const approved = procedure({
  pack: 'bench', name: 'approved', summary: 'a command behind an approval', usage: 'bench approved <host>', examples: ['bench approved lab-001'], source: 'benchmark',
  args: z.object({ host: z.string() }), positional: ['host'], hosts: { host: {} }, locks: () => [],
  steps: [{ kind: 'ssh', id: 'stamp', title: 'Say when it started', risk: 'destructive', host: (ctx) => ctx.args.host, command: sh`date +%s%N`, capture: parse.text() }],
});

/** Counts round trips on a connection: ioredis writes one command, or one whole pipeline or transaction, per socket write. */
function countWrites(redis: Redis): { count(): number } {
  let n = 0;
  const stream = (redis as unknown as { stream: { write: (...a: unknown[]) => boolean } }).stream;
  const write = stream.write.bind(stream);
  stream.write = (...a: unknown[]) => {
    n++;
    return write(...a);
  };
  return { count: () => n };
}

export async function benchEngine(): Promise<{ results: Record<string, unknown>; lines: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-bench-engine-'));
  const lab = await labUp({ dir, only: [], extraHosts: 1, port: 0, dbPrefix: `benche_${process.pid}_` });
  const cfg = loadRunbookConfig(lab.configPath);
  const rt = new Runtime({ config: cfg, configPath: lab.configPath, prefix: `benche${process.pid}`, log: pino({ level: 'silent' }), catalog: new Catalog([...defaultCatalog().all(), noop, waits, approved]) });
  const person = Object.keys(cfg.people)[0]!;
  const approver = Object.entries(cfg.people).find(([id, p]) => id !== person && p.roles.includes('approver'))![0];
  const host = lab.hosts[0]!.name;
  const results: Record<string, unknown> = {};
  const lines: string[] = ['## The engine', ''];
  try {
    // 1 and 2. No-op steps through one pass, and round trips per step.
    const store = rt.engine.opts.store;
    await store.redis.ping();
    const writes = countWrites(store.redis);
    const throughput: { concurrency: number; stepsPerSecond: number; roundTripsPerStep: number }[] = [];
    // A first run warms the JIT and the connection, as a worker that has been up a while is.
    const warm = (await rt.intake.prepare({ text: 'bench noop --count 500', person, origin: { adapter: 'bench' } })).run;
    await store.create(warm, []);
    await rt.engine.advance(warm.id);
    for (const concurrency of [1, 16]) {
      const { run } = await rt.intake.prepare({ text: `bench noop --count ${NOOP_STEPS} --concurrency ${concurrency}`, person, origin: { adapter: 'bench' } });
      await store.create(run, []);
      const before = writes.count();
      const t = performance.now();
      const status = await rt.engine.advance(run.id);
      const elapsed = performance.now() - t;
      if (status !== 'succeeded') throw new Error(`bench noop ended ${status}`);
      throughput.push({ concurrency, stepsPerSecond: Math.round(NOOP_STEPS / (elapsed / 1000)), roundTripsPerStep: ms((writes.count() - before) / NOOP_STEPS) });
    }
    results.noopSteps = { steps: NOOP_STEPS, throughput, targets: { stepsPerSecond: 1_000, roundTripsPerStep: 4 } };
    lines.push(
      `### No-op steps and round trips`,
      '',
      `${NOOP_STEPS} report steps in one forEach, advanced by one pass of one worker after a warm-up run; round trips are socket writes on the engine's Redis connection (a pipeline or a transaction is one).`,
      '',
      '| concurrency | steps per second (target ≥ 1,000) | Redis round trips per step (target ≤ 4) |',
      '|---|---|---|',
      ...throughput.map((r) => `| ${r.concurrency} | ${r.stepsPerSecond} | ${r.roundTripsPerStep} |`),
      '',
    );

    // 3. One checkpoint in runs of 10, 100 and 1,000 steps.
    const cost: { steps: number; checkpointMs: number }[] = [];
    for (const size of CHECKPOINT_SIZES) {
      const { run } = await rt.intake.prepare({ text: `bench noop --count ${size}`, person, origin: { adapter: 'bench' } });
      await store.create(run, []);
      const token = `bench:${size}`;
      await store.takeLease(run.id, token, 600_000);
      const tx = new Transitions(run);
      tx.takeRun('bench');
      const def = { title: 'Nothing', kind: 'report' as const, risk: 'read' as const };
      for (let i = 0; i < size; i++) tx.step(`each[${i}].noop`, def, 'start');
      await store.commit(run, tx.take(), token);
      const times: number[] = [];
      for (let i = 0; i < CHECKPOINTS; i++) {
        const path = `each[${i % size}].noop`;
        tx.step(path, def, run.steps[path]!.status === 'running' ? 'wait' : 'resume');
        tx.emit({ type: 'step.progress', path, message: 'checkpoint' });
        const t = performance.now();
        await store.commit(run, tx.take(), token);
        times.push(performance.now() - t);
      }
      for (let i = 0; i < size; i++) tx.step(`each[${i}].noop`, def, run.steps[`each[${i}].noop`]!.status === 'running' ? 'succeed' : 'cancel');
      tx.endRun('succeeded');
      await store.commit(run, tx.take(), token);
      await rt.engine.relay(run.id);
      await store.dropLease(run.id, token);
      cost.push({ steps: size, checkpointMs: ms(median(times)) });
    }
    results.checkpoint = { commits: CHECKPOINTS, cost, target: 'flat in the run size' };
    lines.push('### One checkpoint in a run of N steps', '', `Median of ${CHECKPOINTS} commits of one step's change and its event, the run holding N steps (one hash field per step).`, '', '| steps in the run | ms per checkpoint |', '|---|---|', ...cost.map((c) => `| ${c.steps} | ${c.checkpointMs} |`), '');

    // 4. Resident memory of a `runbook worker` process with 1,000 runs waiting at gates: with V8's
    // default heap sizing, with the 4 MB young generation `npm start` and the image give it, and with
    // an old-space cap. The worker loads the same procedure as a pack (RUNBOOK_PACKS), as an
    // operator's would be.
    const packDir = join(dir, 'bench-pack');
    mkdirSync(packDir);
    writeFileSync(join(packDir, 'index.ts'), WAITS_PACK);
    const memory: { nodeFlags: string; idleMb: number; waitingMb: number; parkedInMs: number }[] = [];
    for (const flags of [[], [SHIPPED_NODE_FLAG], ['--max-old-space-size=96']]) {
      const label = flags.length === 0 ? '(none: V8 defaults)' : flags[0] === SHIPPED_NODE_FLAG ? `${SHIPPED_NODE_FLAG} (as \`npm start\` and the image run it)` : flags.join(' ');
      memory.push({ nodeFlags: label, ...(await waitingWorkerRss(rt, lab.configPath, packDir, person, flags)) });
    }
    results.waitingRuns = { runs: WAITING_RUNS, memory, targetMb: 150 };
    lines.push(
      '### A worker process with 1,000 runs waiting at gates',
      '',
      `A \`runbook worker\` process (concurrency 8) takes ${WAITING_RUNS} runs, asked for one after another, to their gates (a manual step). A waiting run holds no worker slot and nothing of it stays in the worker: what RSS gains is garbage V8 has not collected yet: a smaller young generation (which bounds nothing a large run needs) or a heap cap keeps it down.`,
      '',
      '| node flags | RSS idle MB | RSS with the runs waiting MB (target ≤ 150) | all waiting after ms |',
      '|---|---|---|---|',
      ...memory.map((m) => `| ${m.nodeFlags} | ${m.idleMb} | ${m.waitingMb} | ${m.parkedInMs} |`),
      '',
    );
    rt.startWorker(4);

    // 5. Approval to command started on the host.
    const latencies: number[] = [];
    for (let i = 0; i < APPROVALS; i++) {
      const req = await rt.intake.request({ text: `bench approved ${host}`, person, origin: { adapter: 'bench' } });
      let gate: string | undefined;
      while (!gate) {
        gate = Object.values((await rt.store.load(req.id)).gates).find((g) => g.status === 'open')?.id;
        if (!gate) await new Promise((r) => setTimeout(r, 20));
      }
      const clicked = Date.now();
      await rt.decisions.decide(req.id, approver, 'approve', { gateId: gate });
      let run = await rt.store.load(req.id);
      while (run.status !== 'succeeded') {
        if (run.status === 'failed') throw new Error(`bench approved failed: ${run.error}`);
        await new Promise((r) => setTimeout(r, 20));
        run = await rt.store.load(req.id);
      }
      const startedNs = BigInt(String(run.captures.stamp));
      if (i > 0) latencies.push(Number(startedNs / 1_000_000n) - clicked);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    results.approvalToCommand = { rounds: latencies.length, p50Ms: median(latencies), p90Ms: sorted[Math.floor(sorted.length * 0.9)], targetMs: 50 };
    lines.push('### Approval to command started on the host', '', `The time from recording an approval to the gated command starting on the lab host (its own \`date +%s%N\`), ${latencies.length} runs after a first that warms the connection.`, '', '| p50 ms (target ≤ 50) | p90 ms |', '|---|---|', `| ${median(latencies)} | ${sorted[Math.floor(sorted.length * 0.9)]} |`, '');
  } finally {
    await rt.store.purge().catch(() => undefined);
    await rt.close();
    await labDown(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  return { results, lines };
}

if (process.argv[2] === '--standalone' && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) runStandalone(benchEngine);
