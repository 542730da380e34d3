import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { statusLine } from '../../src/adapters/messages.js';
import { Transitions } from '../../src/engine/transitions.js';
import type { Run } from '../../src/engine/types.js';
import { procedure, sh, parse } from '../../src/procedures/dsl.js';
import { Catalog, defaultCatalog } from '../../src/procedures/index.js';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { finished, testRuntime, waitForEvent } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

/**
 * Waiting never holds a worker, and nothing is stranded: runs waiting for a host, a gate or a poll's
 * next check give their worker back, and the sweeper finds what a crash or a lost job left behind.
 * The crash points are made as a dead worker leaves them, through the store's own writes.
 */
let lab: Awaited<ReturnType<typeof startTestLab>>;
const runtimes: ReturnType<typeof testRuntime>[] = [];

/** Steps a lab host can run that say when they ran: a write (it holds its host) and a poll on the clock. */
const touch = procedure({
  pack: 'test', name: 'touch', summary: 'a write on a host', usage: 'test touch <node>', examples: [], source: 'test',
  args: z.object({ node: z.string() }), positional: ['node'], hosts: { node: {} },
  steps: [{ kind: 'ssh', id: 'touch', title: 'Touch it', risk: 'write', host: (ctx) => ctx.args.node, command: sh`true` }],
});
const later = procedure({
  pack: 'test', name: 'later', summary: 'wait two seconds by polling the clock', usage: 'test later <node>', examples: [], source: 'test',
  args: z.object({ node: z.string() }), positional: ['node'], hosts: { node: {} },
  steps: [
    { kind: 'ssh', id: 'now', title: 'What time is it', risk: 'read', host: (ctx) => ctx.args.node, command: sh`date +%s`, capture: parse.text() },
    { kind: 'poll', id: 'wait', title: 'Wait two seconds', risk: 'read', host: (ctx) => ctx.args.node, command: sh`date +%s`, capture: parse.text(), until: (v: string, ctx) => Number(v) >= Number(ctx.capture('now')) + 2, intervalMs: 700, timeoutMs: 60_000 },
  ],
});

function newRuntime(opts: Parameters<typeof testRuntime>[1] = {}) {
  const rt = testRuntime(lab.lab.configPath, { catalog: new Catalog([...defaultCatalog().all(), touch, later]), ...opts });
  runtimes.push(rt);
  return rt;
}

const request = (rt: ReturnType<typeof testRuntime>, text: string, person = 'alice') => rt.intake.request({ text, person, origin: { adapter: 'test' } });

beforeAll(async () => {
  lab = await startTestLab({ only: ['c01'], extraHosts: 1 });
});

afterAll(async () => {
  for (const rt of runtimes) await rt.cleanup();
  await lab?.down();
});

describe('waiting never holds a worker', () => {
  it('runs on free hosts finish while others wait behind an approval gate, and cancelling the gated run frees its host', async () => {
    const rt = newRuntime();
    rt.startWorker(2);
    const gated = await request(rt, 'nova inspect-disk instance-0000274a');
    await waitForEvent(rt, gated.id, (e) => e.type === 'gate.opened');
    const behind: Run[] = [];
    for (let i = 0; i < 4; i++) behind.push(await request(rt, 'ops exec c01 -- uptime'));
    // Each parks on c01's waiters, naming who holds it, and gives its worker back.
    await until('the runs behind the gate to wait for c01', async () => (await rt.store.many(behind.map((b) => b.id))).every((r) => r.status === 'waiting' && r.waitingFor?.locks?.heldBy[0]?.run === gated.id));
    const free: Run[] = [];
    for (let i = 0; i < 3; i++) free.push(await request(rt, 'ops exec lab-001 -- uptime'));
    for (const f of free) expect((await finished(rt, f.id)).status).toBe('succeeded');

    const waiting = await rt.store.load(behind[0]!.id);
    expect(statusLine(waiting)).toMatch(new RegExp(`^waiting for c01, held by run ${gated.id} \\(nova inspect-disk, alice\\)`));
    const show = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: rt.prefix }, 'show', behind[0]!.id);
    expect(show.stdout).toContain(`waiting for c01, held by run ${gated.id} (nova inspect-disk, alice)`);

    await rt.decisions.cancel(gated.id, 'alice');
    expect((await finished(rt, gated.id)).status).toBe('cancelled');
    for (const b of behind) expect((await finished(rt, b.id)).status).toBe('succeeded');
    // An ended run's hosts are released by the effect committed with its end, just after it.
    await until('c01 to be free', async () => (await rt.store.lockHolders(['c01'])).get('c01')?.readers.length === 0);
    expect(await rt.store.lockHolders(['c01'])).toEqual(new Map([['c01', { readers: [] }]]));
  });

  it('a poll waiting for its next check gives its worker back to another run', async () => {
    const rt = newRuntime({ timeScale: 1 });
    rt.startWorker(1);
    const slow = await request(rt, 'test later lab-001');
    await until('the poll to park its run', async () => (await rt.store.load(slow.id)).waitingFor?.timer);
    const quick = await request(rt, 'ops exec c01 -- uptime');
    expect((await finished(rt, quick.id)).status).toBe('succeeded');
    expect((await rt.store.load(slow.id)).status).not.toBe('succeeded');
    const done = await finished(rt, slow.id);
    expect(done.status).toBe('succeeded');
    expect(done.steps.wait!.checks).toBeGreaterThan(1);
  });
});

describe('host locks are fair (src/engine/store.ts TAKE_LOCKS)', () => {
  const read = (host: string) => ({ host, mode: 'read' as const });
  const write = (host: string) => ({ host, mode: 'write' as const });

  it('a writer waiting only for readers is next in line: readers that come after it wait behind it, so status checks never starve a flush', async () => {
    const { store } = newRuntime();
    expect(await store.takeLocks('r-status-1', [read('node-3')])).toEqual([]);
    expect(await store.takeLocks('r-flush', [write('node-3')])).toEqual(['r-status-1']);
    // Another status check on node-3 would share it with the first, but the flush is waiting.
    expect(await store.lockBlockers('r-status-2', [read('node-3')])).toEqual({ all: ['r-flush'], ahead: new Set(['r-flush']) });
    expect(await store.takeLocks('r-status-2', [read('node-3')])).toEqual(['r-flush']);
    // The first check ends: both are woken; the later reader still finds the flush before it.
    expect((await store.dropLocks('r-status-1', ['node-3'])).sort()).toEqual(['r-flush', 'r-status-2']);
    expect(await store.takeLocks('r-status-2', [read('node-3')])).toEqual(['r-flush']);
    expect(await store.takeLocks('r-flush', [write('node-3')])).toEqual([]);
    expect(await store.takeLocks('r-status-2', [read('node-3')])).toEqual(['r-flush']);
    expect(await store.dropLocks('r-flush', ['node-3'])).toEqual(['r-status-2']);
    expect(await store.takeLocks('r-status-2', [read('node-3')])).toEqual([]);
    expect((await store.lockHolders(['node-3'])).get('node-3')).toEqual({ readers: ['r-status-2'] });
  });

  it('a writer that also waits for another writer keeps nobody waiting: a run held up elsewhere does not freeze its other hosts', async () => {
    const { store } = newRuntime();
    expect(await store.takeLocks('r-gated', [write('node-6')])).toEqual([]);
    expect(await store.takeLocks('r-status-1', [read('node-3')])).toEqual([]);
    expect((await store.takeLocks('r-wide', [write('node-3'), write('node-6')])).sort()).toEqual(['r-gated', 'r-status-1']);
    expect(await store.takeLocks('r-status-2', [read('node-3')])).toEqual([]);
    // Once node-6 is free, the wide writer waits only for node-3's readers, and is next in line there.
    await store.dropLocks('r-gated', ['node-6']);
    expect(await store.lockBlockers('r-status-3', [read('node-3')])).toEqual({ all: ['r-wide'], ahead: new Set(['r-wide']) });
  });

  it('a writer next in line that ended or is gone is passed over by the next reader, which reclaims its place', async () => {
    const rt = newRuntime();
    rt.startWorker(1);
    expect(await rt.store.takeLocks('r-status-gone', [read('lab-001')])).toEqual([]);
    expect(await rt.store.takeLocks('r-flush-gone', [write('lab-001')])).toEqual(['r-status-gone']);
    const next = await request(rt, 'ops exec lab-001 -- uptime');
    expect((await finished(rt, next.id)).status).toBe('succeeded');
  });

  it('the waiting run says who is before it, and the sweeper does not wake it while that writer waits', async () => {
    const rt = newRuntime({ timeScale: 1 });
    // A reader holding c01 while it waits for its poll's next check, a writer waiting for it, then a reader.
    const reading = await request(rt, 'test later c01');
    expect(await rt.engine.advance(reading.id)).toBe('waiting');
    const flush = await request(rt, 'test touch c01');
    expect(await rt.engine.advance(flush.id)).toBe('waiting');
    const check = await request(rt, 'ops exec c01 -- uptime');
    expect(await rt.engine.advance(check.id)).toBe('waiting');
    const waiting = await rt.store.load(check.id);
    expect(statusLine(waiting)).toMatch(new RegExp(`^waiting for c01, after run ${flush.id} \\(test touch, alice\\), next in line`));
    const report = await rt.sweeper.sweep();
    expect(report.woken.map((w) => w.run)).not.toContain(check.id);
    for (const r of [reading, flush, check]) await rt.decisions.cancel(r.id, 'alice');
  });
});

describe('nothing is stranded', () => {
  it('a run stored whose job was never queued (the bot died between the two) is found and run', async () => {
    const rt = newRuntime();
    rt.startWorker(1);
    const { run } = await rt.intake.prepare({ text: 'ops exec lab-001 -- uptime', person: 'alice', origin: { adapter: 'test' } });
    await rt.store.create(run, []);
    const report = await rt.sweeper.sweep();
    expect(report.woken).toEqual([{ run: run.id, why: 'nothing advances it (queued, no job)' }]);
    expect((await finished(rt, run.id)).status).toBe('succeeded');
  });

  it('a run that ended before its worker relayed it: the sweeper releases its host, tells the audit its end once, and forgets it', async () => {
    const rt = newRuntime();
    const { run } = await rt.intake.prepare({ text: 'test touch lab-001', person: 'alice', origin: { adapter: 'test' } });
    await rt.store.create(run, []);
    // What a worker leaves when it dies between its last checkpoint and the relay.
    await rt.store.takeLease(run.id, 'dead-worker', 60_000);
    expect(await rt.store.takeLocks(run.id, run.locks)).toEqual([]);
    const tx = new Transitions(run);
    tx.takeRun('dead-worker');
    tx.endRun('succeeded');
    expect(await rt.store.commit(run, tx.take(), 'dead-worker')).toBeDefined();
    await rt.store.dropLease(run.id, 'dead-worker');
    expect((await rt.store.lockHolders(['lab-001'])).get('lab-001')).toEqual({ writer: run.id, readers: [] });

    const report = await rt.sweeper.sweep();
    expect(report.flushed).toEqual([run.id]);
    expect((await rt.store.lockHolders(['lab-001'])).get('lab-001')).toEqual({ readers: [] });
    expect(await rt.store.active()).not.toContain(run.id);
    await rt.sweeper.sweep();
    const ends = (await rt.store.audit()).filter((e) => e.runId === run.id && e.type === 'run.finished');
    expect(ends).toHaveLength(1);
  });

  it('a lock held by a run that is gone is reclaimed by the next run on the host', async () => {
    const rt = newRuntime();
    rt.startWorker(1);
    expect(await rt.store.takeLocks('r-gone', [{ host: 'lab-001', mode: 'write' }])).toEqual([]);
    const next = await request(rt, 'test touch lab-001');
    expect((await finished(rt, next.id)).status).toBe('succeeded');
  });

  it('a decision whose job was lost is acted on at the next sweep', async () => {
    const rt = newRuntime();
    const gated = await request(rt, 'nova inspect-disk instance-0000274a');
    expect(await rt.engine.advance(gated.id)).toBe('waiting');
    const gate = Object.values((await rt.store.load(gated.id)).gates)[0]!;
    // Decisions.decide records, then queues; the process died between the two.
    await rt.store.decide(gated.id, { gateId: gate.id, decision: 'reject', by: 'carol', at: new Date().toISOString() });
    await (await rt.queue.queue.getJob(`${gated.id}.start`))?.remove();
    const report = await rt.sweeper.sweep();
    expect(report.woken).toEqual([{ run: gated.id, why: `a decision on ${gate.id} arrived` }]);
    rt.startWorker(1);
    expect((await finished(rt, gated.id)).status).toBe('rejected');
  });

  it('a relay by a worker that lost the run to another removes only what it relayed: no event is lost', async () => {
    const rt = newRuntime();
    const { run } = await rt.intake.prepare({ text: 'test touch lab-001', person: 'alice', origin: { adapter: 'test' } });
    await rt.store.create(run, []);
    await rt.store.takeLease(run.id, 'w1', 60_000);
    const tx = new Transitions(run);
    tx.takeRun('w1');
    await rt.store.commit(run, tx.take(), 'w1');
    // w1 reads its outbox, then stalls; the run is taken over, and its new owner commits and relays.
    const stale = await rt.store.outbox(run.id);
    tx.emit({ type: 'step.progress', path: 'touch', message: 'taken over' });
    await rt.store.commit(run, tx.take(), 'w1');
    const fresh = await rt.store.outbox(run.id);
    await rt.store.relayed(run.id, fresh.events.slice(0, 1), fresh.last - 1);
    // w1 wakes up and finishes its relay: it must not remove the entry the new owner has not relayed.
    await rt.store.relayed(run.id, stale.events, stale.last);
    expect((await rt.store.outbox(run.id)).events.map((e) => (JSON.parse(e) as { type: string }).type)).toEqual(['step.progress']);
  });

  it('a run stored by the previous version, as one document, loads (its gates say their decision), joins the active set and resumes', async () => {
    const rt = newRuntime({ timeScale: 1 });
    rt.startWorker(1);
    const { run } = await rt.intake.prepare({ text: 'test later lab-001', person: 'alice', origin: { adapter: 'test' } });
    const { definition: _, ...old } = run;
    const gate = { id: 'old@1', kind: 'approval', stepPath: 'now', risk: 'read', hash: 'h', steps: [], requestedAt: run.createdAt, deciders: ['bob'], status: 'approved', decidedBy: 'bob' };
    await rt.redis.set(`${rt.prefix}:run:{${run.id}}`, JSON.stringify({ ...old, gates: { [gate.id]: gate } }));
    await rt.redis.zadd(`${rt.prefix}:runs`, Date.parse(run.createdAt), run.id);
    expect((await rt.store.load(run.id)).gates['old@1']).toMatchObject({ status: 'decided', decision: 'approve' });
    await rt.queue.advance(run.id, 'start');
    // Its poll parks it: stored in parts now, and in the active set the sweeper looks after.
    await until('the run to park on its poll', async () => (await rt.store.load(run.id)).waitingFor?.timer);
    expect(await rt.store.active()).toContain(run.id);
    expect(Object.keys(JSON.parse((await rt.redis.get(`${rt.prefix}:run:{${run.id}}`))!) as object)).not.toContain('steps');
    const done = await finished(rt, run.id);
    expect(done.status).toBe('succeeded');
    expect(done.definition?.tree).toMatch(/^sha256:/);
  });
});
