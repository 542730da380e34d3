import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Policy } from '../../../src/approvals/policy.js';
import { treeFingerprint } from '../../../src/procedures/fingerprint.js';
import { Machine } from '../../../src/engine/machine.js';
import type { LeafResult } from '../../../src/engine/results.js';
import { isTerminal, type DecisionRecord, type Run, type RunEvent, type RunStatus } from '../../../src/engine/types.js';
import type { Effect } from '../../../src/engine/transitions.js';
import type { ExecResult } from '../../../src/executors/ssh/pool.js';
import { Inventory } from '../../../src/inventory.js';
import { parse, procedure, sh, type Procedure, type Step } from '../../../src/procedures/dsl.js';
import { fixtureConfig } from '../../helpers/fixtures.js';

/**
 * The run's state machine without Redis or sshd: a Machine is driven here as the engine's pass
 * drives it (engine.ts `Pass.loop`): plan, apply, start, checkpoint, then the step's result. The
 * commands' results are the input of these tests, as a host would have answered.
 */
const cfg = fixtureConfig();
const inventory = new Inventory(cfg.hosts);
const policy = new Policy(cfg);

const T0 = Date.parse('2026-11-30T12:00:00.000Z');

function exec(stdout = '', exitCode: number | null = 0, stderr = ''): LeafResult {
  const res: ExecResult = { exitCode, stdout, stderr, tail: `${stdout}${stderr}`, truncated: false, durationMs: 5 };
  return { kind: 'exec', res };
}

/** What a host answers: by step path (a function of how many times it ran), `exec()` when not said. */
type Answers = Record<string, LeafResult | ((n: number) => LeafResult)>;

/** One checkpoint: the run as committed, with the events and effects of that commit. */
interface Checkpoint {
  run: Run;
  events: RunEvent[];
  effects: Effect[];
}

interface World {
  now: number;
  /** Step paths in the order their commands started, across passes. */
  started: string[];
  checkpoints: Checkpoint[];
  decisions: DecisionRecord[];
  cancel?: { by: string; at: string };
  /** Hosts held by other runs: a pass that needs them parks. */
  heldBy?: string;
}

function newRun(proc: Procedure, args: Record<string, unknown> = {}): Run {
  const at = new Date(T0).toISOString();
  return {
    id: 'r-test', procedure: `${proc.pack} ${proc.name}`, args, requester: 'alice', origin: { adapter: 'test' }, createdAt: at, updatedAt: at, status: 'queued',
    plan: [], notes: [], locks: [{ host: 'node-3', mode: 'write' }], definition: { file: 'built-in', fingerprint: 'sha256:test', tree: treeFingerprint(proc) }, steps: {}, captures: {}, expansions: {}, gates: {}, phase: 'main',
  };
}

/** One pass, as the engine runs it; returns the run's status when the pass gives it up. */
function pass(w: World, persisted: Run, proc: Procedure, answers: Answers = {}): RunStatus {
  const run = structuredClone(persisted);
  // As Engine.advance: an ended run has nothing left to do.
  if (isTerminal(run.status)) return run.status;
  const m = new Machine(run, { proc, inventory, policy, worker: 'w1', clock: () => w.now });
  const checkpoint = () => {
    const c = m.tx.take();
    if (c.empty) return;
    w.checkpoints.push({ run: structuredClone(run), events: c.events, effects: c.effects });
  };
  const ran = (path: string) => w.started.filter((p) => p === path).length;
  m.arrive(w.decisions, w.cancel, w.now);
  m.resume();
  const done: { a: Parameters<Machine['settle']>[0]; r: LeafResult }[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    for (const c of done.splice(0)) m.settle(c.a, c.r);
    const p = m.plan();
    if (p.actions.some((a) => a.type === 'take-locks')) {
      if (w.heldBy) {
        m.waitForLocks([w.heldBy], [{ run: w.heldBy }]);
        checkpoint();
        return run.status;
      }
      m.locked();
      continue;
    }
    const end = p.actions.find((a) => a.type === 'end');
    if (end?.type === 'end') {
      m.end(end);
      checkpoint();
      return run.status;
    }
    if (p.actions.length) m.take();
    const starts = [];
    for (const a of p.actions) {
      if (a.type === 'start') starts.push(a);
      else if (a.type === 'open-gate') m.openGate(a);
      else if (a.type !== 'take-locks' && a.type !== 'end') m.apply(a);
    }
    if (p.actions.length && !starts.length) continue;
    for (const a of starts) m.start(a);
    if (starts.length) checkpoint();
    for (const a of starts) {
      w.started.push(a.path);
      const given = answers[a.path] ?? answers[a.path.replace(/\[[^\]]*\]/g, '[*]')];
      const r = typeof given === 'function' ? given(ran(a.path)) : (given ?? (a.step.kind === 'report' ? { kind: 'report' as const, text: a.step.text(a.ctx) } : exec()));
      done.push({ a, r });
    }
    if (done.length) {
      checkpoint();
      continue;
    }
    m.park(Machine.waitingFor(p));
    checkpoint();
    return run.status;
  }
  throw new Error('the pass did not settle');
}

/** Passes until the run ends or waits with nothing due; a due timer is another pass. */
function drive(w: World, run: Run, proc: Procedure, answers: Answers = {}): Run {
  let persisted = run;
  for (let n = 0; n < 100; n++) {
    pass(w, persisted, proc, answers);
    persisted = w.checkpoints.at(-1)?.run ?? persisted;
    const timer = persisted.waitingFor?.timer;
    if (persisted.status !== 'waiting' || !timer || persisted.waitingFor?.gates?.length) return persisted;
    w.now = Math.max(w.now, Date.parse(timer.at));
  }
  throw new Error('the run did not settle');
}

const world = (): World => ({ now: T0, started: [], checkpoints: [], decisions: [] });
const events = (w: World) => w.checkpoints.flatMap((c) => c.events);
const decide = (w: World, gateId: string, decision: DecisionRecord['decision'], by = 'bob', step?: string) => w.decisions.push({ gateId, decision, by, at: new Date(w.now).toISOString(), ...(step ? { step } : {}) });
const openGates = (r: Run) => Object.values(r.gates).filter((g) => g.status === 'open');

const on3 = { host: 'node-3' } as const;
const ssh = (id: string, risk: Step['risk'] = 'write', extra: Partial<Step> = {}): Step => ({ kind: 'ssh', id, title: `Step ${id}`, risk, host: on3.host, command: sh`do ${id}`, ...extra }) as Step;
const proc = (steps: Step[], fin: Step[] = [], name = 'p') =>
  procedure({ pack: 'test', name, summary: 's', usage: 'test p', examples: [], source: 'test', args: z.object({}), positional: [], steps, ...(fin.length ? { finally: fin } : {}) });

describe('a run, step by step', () => {
  it('runs the steps in order, each checkpointed as running before its command starts, and ends with its hosts released', () => {
    const w = world();
    const p = proc([ssh('a'), ssh('b'), ssh('c')]);
    const end = drive(w, newRun(p), p);
    expect(end.status).toBe('succeeded');
    expect(w.started).toEqual(['a', 'b', 'c']);
    for (const path of ['a', 'b', 'c']) {
      const before = w.checkpoints.find((c) => c.events.some((e) => e.type === 'step.started' && e.path === path))!;
      expect(before.run.steps[path]!.status).toBe('running');
    }
    const last = w.checkpoints.at(-1)!;
    expect(last.events.map((e) => e.type)).toEqual(['step.finished', 'run.finished']);
    expect(last.effects).toEqual([{ do: 'release-locks', hosts: ['node-3'] }, { do: 'deactivate' }]);
    expect(events(w).filter((e) => e.type === 'run.started')).toHaveLength(1);
  });

  it('skips a step whose condition is false, and a guard refusal fails the run before the step', () => {
    const w = world();
    const p = proc([ssh('a', 'read', { when: () => false }), ssh('b', 'read', { guard: () => 'not today' }), ssh('c')]);
    const end = drive(w, newRun(p), p);
    expect(end.status).toBe('failed');
    expect(end.steps.a).toMatchObject({ status: 'skipped', reason: 'condition not met' });
    expect(end.steps.b).toMatchObject({ status: 'failed', error: 'refused: not today' });
    expect(end.error).toBe('refused: not today');
    expect(w.started).toEqual([]);
  });

  it('fans a forEach out within its concurrency, and starts no new item after the first failure', () => {
    const w = world();
    const p = proc([
      { kind: 'ssh', id: 'list', title: 'List', risk: 'read', host: 'node-3', command: sh`list`, capture: parse.lines() },
      { kind: 'forEach', id: 'each', title: 'Each', risk: 'write', items: (ctx) => ctx.capture<string[]>('list'), key: (x: string) => x, concurrency: 2, steps: [ssh('do')] },
    ]);
    const end = drive(w, newRun(p), p, { list: exec('v1\nv2\nv3\nv4\nv5\n'), 'each[v3].do': exec('', 1, 'broken') });
    expect(end.status).toBe('failed');
    // Two lanes: v1 and v2 start together, then v3 and v4; v3 fails, so v5 never starts.
    expect(w.started).toEqual(['list', 'each[v1].do', 'each[v2].do', 'each[v3].do', 'each[v4].do']);
    expect(end.steps.each).toMatchObject({ status: 'failed', progress: { done: 3, failed: 1, total: 5 } });
    expect(end.error).toBe('step "Step do" failed on node-3 (exit code 1: broken)');
    expect(events(w).filter((e) => e.type === 'step.progress' && e.path === 'each').map((e) => (e as { message: string }).message).at(-1)).toBe('Each: 3/5 done · 1 failed');
  });

  it('goes on past failed items with continueOnError, then fails the forEach', () => {
    const w = world();
    const p = proc([{ kind: 'forEach', id: 'each', title: 'Each', risk: 'read', items: () => ['a', 'b', 'c'], key: (x: string) => x, continueOnError: true, steps: [ssh('do', 'read')] }]);
    const end = drive(w, newRun(p), p, { 'each[a].do': exec('', 2) });
    expect(w.started).toEqual(['each[a].do', 'each[b].do', 'each[c].do']);
    expect(end.steps.each).toMatchObject({ status: 'failed', progress: { done: 2, failed: 1, total: 3 } });
  });

  it('runs finally steps after a failure; a failed finally step fails a run that had succeeded', () => {
    const w1 = world();
    const p1 = proc([ssh('a')], [ssh('undo', 'write')]);
    const failed = drive(w1, newRun(p1), p1, { a: exec('', 1), undo: exec() });
    expect(failed.status).toBe('failed');
    expect(w1.started).toEqual(['a', 'undo']);
    const w2 = world();
    const ok = drive(w2, newRun(p1), p1, { undo: exec('', 1) });
    expect(ok.status).toBe('failed');
    expect(ok.error).toBe('a finally step failed');
  });
});

describe('gates', () => {
  const gated = proc([ssh('look', 'read'), ssh('wipe', 'destructive')], [ssh('tidy', 'read')]);

  it('opens one approval gate before a destructive step and gives the run up; an approval runs it', () => {
    const w = world();
    let r = drive(w, newRun(gated), gated);
    expect(r.status).toBe('waiting');
    const [g] = openGates(r);
    expect(g).toMatchObject({ kind: 'approval', stepPath: 'wipe', deciders: ['bob', 'carol'] });
    expect(r.waitingFor).toEqual({ gates: [g!.id] });
    expect(r.steps.wipe!.status).toBe('waiting');
    // The gate and its expiry are committed together with the run waiting.
    const opened = w.checkpoints.find((c) => c.events.some((e) => e.type === 'gate.opened'))!;
    expect(opened.effects).toContainEqual({ do: 'expire-at', gate: g!.id, at: Date.parse(g!.expiresAt!) });
    expect(opened.events.map((e) => e.type)).toContain('run.waiting');
    decide(w, g!.id, 'approve');
    r = drive(w, r, gated);
    expect(r.status).toBe('succeeded');
    expect(w.started).toEqual(['look', 'wipe', 'tidy']);
  });

  it('a rejection cancels the step, runs the finally steps and ends the run rejected', () => {
    const w = world();
    let r = drive(w, newRun(gated), gated);
    decide(w, openGates(r)[0]!.id, 'reject');
    w.decisions[0]!.reason = 'not now';
    r = drive(w, r, gated);
    expect(r.status).toBe('rejected');
    expect(r.error).toBe('rejected by bob: not now');
    expect(r.steps.wipe).toMatchObject({ status: 'cancelled', reason: 'rejected by bob: not now' });
    expect(w.started).toEqual(['look', 'tidy']);
  });

  it('an approval past its expiry expires the run, even without the expiry job', () => {
    const w = world();
    let r = drive(w, newRun(gated), gated);
    w.now = Date.parse(openGates(r)[0]!.expiresAt!) + 1;
    r = drive(w, r, gated);
    expect(r.status).toBe('expired');
    expect(Object.values(r.gates)[0]).toMatchObject({ status: 'decided', decision: 'expire', decidedBy: 'system' });
  });

  it('an approval no longer counts once what the step would run changed, and a new one is asked', () => {
    const w = world();
    const target = { v: 'one' };
    const p = proc([{ kind: 'ssh', id: 'wipe', title: 'Wipe', risk: 'destructive', host: 'node-3', command: () => sh`wipe ${target.v}` }]);
    let r = drive(w, newRun(p), p);
    const first = openGates(r)[0]!;
    decide(w, first.id, 'approve');
    target.v = 'two';
    r = drive(w, r, p);
    expect(r.status).toBe('waiting');
    expect(r.gates[first.id]).toMatchObject({ status: 'void' });
    expect(openGates(r)[0]!.steps[0]!.command).toBe("wipe two");
    expect(w.started).toEqual([]);
  });

  it('a manual step waits for a person: done succeeds it, abort fails the run', () => {
    const manual = proc([{ kind: 'manual', id: 'power', title: 'Power it on', risk: 'write', instructions: 'Press the button' }, ssh('after', 'read')]);
    const w = world();
    let r = drive(w, newRun(manual), manual);
    expect(openGates(r)[0]).toMatchObject({ id: 'power@manual', kind: 'manual' });
    decide(w, 'power@manual', 'done', 'alice');
    r = drive(w, r, manual);
    expect(r.status).toBe('succeeded');
    expect(r.steps.power).toMatchObject({ status: 'succeeded', reason: 'done, confirmed by alice' });
    const w2 = world();
    let r2 = drive(w2, newRun(manual), manual);
    decide(w2, 'power@manual', 'abort', 'alice');
    r2 = drive(w2, r2, manual);
    expect(r2).toMatchObject({ status: 'failed', error: '"Power it on" was aborted by alice' });
  });
});

describe('a forEach that waits', () => {
  it('an item waiting for a person holds its lane: "one by one" offers the next item only once this one is done', () => {
    const masters = proc([
      {
        kind: 'forEach',
        id: 'masters',
        title: 'Start all master nodes one by one',
        risk: 'write',
        items: () => ['node-1', 'node-2', 'node-3'],
        key: (n: string) => n,
        concurrency: 1,
        steps: [{ kind: 'manual', id: 'power-on', title: 'Power on the node', risk: 'write', instructions: 'Press the button' }, ssh('ssh', 'read')],
      },
    ]);
    const w = world();
    let r = drive(w, newRun(masters), masters);
    expect(openGates(r).map((g) => g.id)).toEqual(['masters[node-1].power-on@manual']);
    decide(w, 'masters[node-1].power-on@manual', 'done', 'alice');
    r = drive(w, r, masters);
    expect(r.steps['masters[node-1].ssh']?.status).toBe('succeeded');
    expect(openGates(r).map((g) => g.id)).toEqual(['masters[node-2].power-on@manual']);
    decide(w, 'masters[node-2].power-on@manual', 'done', 'alice');
    r = drive(w, r, masters);
    decide(w, 'masters[node-3].power-on@manual', 'done', 'alice');
    r = drive(w, r, masters);
    expect(r.status).toBe('succeeded');
    expect(w.started.filter((p) => p.endsWith('.ssh'))).toEqual(['masters[node-1].ssh', 'masters[node-2].ssh', 'masters[node-3].ssh']);
  });

  it('with two lanes, two items wait at once and a third waits for a lane', () => {
    const two = proc([
      { kind: 'forEach', id: 'each', title: 'Each', risk: 'write', items: () => ['a', 'b', 'c'], key: (n: string) => n, concurrency: 2, steps: [{ kind: 'manual', id: 'ok', title: 'Confirm', risk: 'write', instructions: 'Look' }] },
    ]);
    const w = world();
    const r = drive(w, newRun(two), two);
    expect(openGates(r).map((g) => g.id).sort()).toEqual(['each[a].ok@manual', 'each[b].ok@manual']);
  });
});

describe('waiting without a worker', () => {
  it('a poll between checks parks the run with its timer, and checks again when it is due, keeping its deadline', () => {
    const w = world();
    const p = proc([{ kind: 'poll', id: 'wait', title: 'Wait for it', risk: 'read', host: 'node-3', command: sh`check`, capture: parse.text(), until: (v) => v === 'ready', intervalMs: 5_000, timeoutMs: 60_000 }]);
    const first = (pass(w, newRun(p), p, { wait: (n) => exec(n < 3 ? 'not yet' : 'ready') }), w.checkpoints.at(-1)!.run);
    expect(first.status).toBe('waiting');
    expect(first.waitingFor).toEqual({ timer: { at: new Date(T0 + 5_000).toISOString(), steps: ['wait'] } });
    expect(w.checkpoints.at(-1)!.effects).toEqual([{ do: 'wake-at', at: T0 + 5_000 }]);
    expect(first.steps.wait).toMatchObject({ status: 'waiting', checks: 1, deadline: new Date(T0 + 60_000).toISOString() });
    const end = drive(w, first, p, { wait: (n) => exec(n < 3 ? 'not yet' : 'ready') });
    expect(end.status).toBe('succeeded');
    expect(end.steps.wait).toMatchObject({ status: 'succeeded', attempts: 1, checks: 3, reason: 'condition met after 3 checks' });
    expect(events(w).filter((e) => e.type === 'step.started')).toHaveLength(1);
  });

  it('a run whose hosts are held waits for them, saying who holds them once, and runs when they are free', () => {
    const w: World = { ...world(), heldBy: 'r-other' };
    const p = proc([ssh('a')]);
    let r = newRun(p);
    pass(w, r, p);
    r = w.checkpoints.at(-1)!.run;
    expect(r).toMatchObject({ status: 'waiting', waitingFor: { locks: { hosts: ['node-3'], heldBy: [{ run: 'r-other' }] } } });
    expect(r.startedAt).toBeUndefined();
    const count = w.checkpoints.length;
    pass(w, r, p);
    expect(w.checkpoints.length).toBe(count);
    w.heldBy = undefined;
    r = drive(w, r, p);
    expect(r.status).toBe('succeeded');
    expect(events(w).filter((e) => e.type === 'lock.waiting')).toHaveLength(1);
  });
});

describe('cancellation', () => {
  it('starts nothing new, voids open gates, cancels waiting steps and still runs the finally steps', () => {
    const w = world();
    const p = proc([ssh('look', 'read'), ssh('wipe', 'destructive'), ssh('more')], [ssh('tidy', 'read')]);
    let r = drive(w, newRun(p), p);
    w.cancel = { by: 'alice', at: new Date(w.now).toISOString() };
    r = drive(w, r, p);
    expect(r.status).toBe('cancelled');
    expect(r.error).toBe('cancelled by alice');
    expect(Object.values(r.gates)[0]).toMatchObject({ status: 'void', reason: 'the run was cancelled' });
    expect(r.steps.wipe).toMatchObject({ status: 'cancelled' });
    expect(w.started).toEqual(['look', 'tidy']);
  });

  it('a run cancelled while it waits for its hosts never takes them, and runs its finally steps', () => {
    const w: World = { ...world(), heldBy: 'r-other' };
    const p = proc([ssh('a')], [ssh('tidy', 'read')]);
    pass(w, newRun(p), p);
    w.cancel = { by: 'alice', at: new Date(w.now).toISOString() };
    const r = drive(w, w.checkpoints.at(-1)!.run, p);
    expect(r.status).toBe('cancelled');
    expect(r.locked).toBeUndefined();
    expect(w.started).toEqual(['tidy']);
  });
});

describe('crashes', () => {
  const flush = proc(
    [
      { kind: 'ssh', id: 'list', title: 'List', risk: 'read', host: 'node-3', command: sh`list`, capture: parse.lines() },
      {
        kind: 'forEach', id: 'flush', title: 'Flush', risk: 'write', items: (ctx) => ctx.capture<string[]>('list'), key: (x: string) => x, concurrency: 2,
        steps: [ssh('snapshot'), { kind: 'poll', id: 'done', title: 'Done?', risk: 'read', host: 'node-3', command: sh`check`, capture: parse.text(), until: (v) => v === 'yes', intervalMs: 1_000, timeoutMs: 60_000 }, ssh('delete')],
      },
    ],
    [ssh('report', 'read')],
  );
  const answers: Answers = { list: exec('a\nb\nc\n'), 'flush[*].done': (n) => exec(n % 2 ? 'no' : 'yes') };

  it('resumes from every checkpoint: no completed step runs again, idempotent steps run again, others wait for one decision, and every end is said', () => {
    const clean = world();
    const final = drive(clean, newRun(flush), flush, answers);
    expect(final.status).toBe('succeeded');
    const leaves = Object.values(final.steps).filter((s) => s.kind !== 'forEach' && s.kind !== 'group').map((s) => s.path);
    expect(clean.checkpoints.length).toBeGreaterThan(5);
    for (const [k, cp] of clean.checkpoints.entries()) {
      // The worker dies right after checkpoint k: whatever it did after is lost, except on the hosts.
      const w: World = { ...world(), now: clean.now, checkpoints: clean.checkpoints.slice(0, k + 1) };
      const doneBefore = Object.values(cp.run.steps).filter((s) => s.status === 'succeeded').map((s) => s.path);
      const runningBefore = Object.values(cp.run.steps).filter((s) => s.status === 'running' && s.kind !== 'forEach').map((s) => s.path);
      let r: Run;
      try {
        r = drive(w, cp.run, flush, answers);
      } catch (err) {
        throw new Error(`checkpoint ${k}: ${(err as Error).message}\n${JSON.stringify(Object.values(cp.run.steps).map((s) => `${s.path}:${s.status}`))} ${cp.run.status} ${JSON.stringify(cp.run.gates)}`);
      }
      const crashGate = openGates(r).find((g) => g.kind === 'interrupted');
      const mustAsk = runningBefore.filter((p) => !p.endsWith('.done') && p !== 'list' && p !== 'report');
      if (mustAsk.length) {
        // One decision for everything the crash interrupted that may not run again by itself.
        expect(crashGate, `checkpoint ${k}`).toBeDefined();
        expect(crashGate!.steps.map((s) => s.path).sort()).toEqual([...mustAsk].sort());
        decide(w, crashGate!.id, 'retry', 'carol');
        r = drive(w, r, flush, answers);
      } else expect(crashGate, `checkpoint ${k}`).toBeUndefined();
      expect(r.status, `checkpoint ${k}`).toBe('succeeded');
      const again = w.started;
      for (const p of doneBefore) expect(again, `checkpoint ${k}: ${p} ran again`).not.toContain(p);
      for (const p of runningBefore) expect(again, `checkpoint ${k}: ${p} was interrupted`).toContain(p);
      // Across the crash, every step's end and the run's end were committed exactly once.
      const all = events(w);
      for (const p of leaves) expect(all.filter((e) => e.type === 'step.finished' && e.path === p).length, `checkpoint ${k}: ${p}`).toBe(1);
      expect(all.filter((e) => e.type === 'run.finished')).toHaveLength(1);
      expect(w.checkpoints.at(-1)!.effects).toContainEqual({ do: 'release-locks', hosts: ['node-3'] });
    }
  });

  it('offers the steps one crash interrupted as one decision; skip all, or decide each from the CLI', () => {
    const w = world();
    const p = proc([{ kind: 'forEach', id: 'each', title: 'Each', risk: 'write', items: () => ['a', 'b', 'c'], key: (x: string) => x, concurrency: 3, steps: [ssh('do')] }]);
    // The worker dies with all three running.
    pass(w, newRun(p), p, { 'each[*].do': exec() });
    const crashed = w.checkpoints.find((c) => Object.values(c.run.steps).filter((s) => s.status === 'running' && s.kind === 'ssh').length === 3)!.run;
    const ws = world();
    let r = drive(ws, crashed, p);
    const gates = openGates(r);
    expect(gates).toHaveLength(1);
    expect(gates[0]).toMatchObject({ id: 'interrupted@1', kind: 'interrupted', stepPath: 'each[a].do' });
    expect(gates[0]!.steps.map((s) => s.path)).toEqual(['each[a].do', 'each[b].do', 'each[c].do']);
    expect(events(ws).filter((e) => e.type === 'step.interrupted').map((e) => (e as { gate?: string }).gate)).toEqual(['interrupted@1', 'interrupted@1', 'interrupted@1']);
    decide(ws, 'interrupted@1', 'retry', 'carol', 'each[b].do');
    r = drive(ws, r, p);
    expect(ws.started).toEqual(['each[b].do']);
    expect(openGates(r)).toHaveLength(1);
    decide(ws, 'interrupted@1', 'skip', 'carol');
    r = drive(ws, r, p);
    expect(r.status).toBe('succeeded');
    expect(r.steps['each[a].do']).toMatchObject({ status: 'skipped', reason: 'interrupted, then skipped by carol' });
    expect(r.steps['each[b].do']).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(r.gates['interrupted@1']).toMatchObject({ status: 'decided', decision: 'skip' });
  });
});

describe('versioned definitions', () => {
  const v1 = proc([ssh('look', 'read'), ssh('wipe', 'destructive')], [], 'v');
  const v2 = proc([ssh('look', 'read'), ssh('scrub', 'destructive')], [], 'v');

  it('a run resumed under a changed definition asks a person before anything runs', () => {
    const w = world();
    let r = drive(w, newRun(v1), v1);
    expect(r.status).toBe('waiting');
    const started = w.started.length;
    r = drive(w, r, v2);
    const g = openGates(r).find((x) => x.kind === 'definition')!;
    expect(g).toMatchObject({ definition: { was: treeFingerprint(v1), now: treeFingerprint(v2) }, deciders: ['bob', 'carol'] });
    expect(r.waitingFor!.gates).toContain(g.id);
    decide(w, g.id, 'approve');
    decide(w, Object.values(r.gates).find((x) => x.kind === 'approval')!.id, 'approve');
    r = drive(w, r, v2);
    expect(r.definition!.tree).toBe(treeFingerprint(v2));
    // The old approval was for `wipe`, which is no more: `scrub` needs its own.
    expect(w.started.slice(started)).toEqual([]);
    expect(openGates(r).map((x) => x.stepPath)).toEqual(['scrub']);
  });

  it('abort ends the run failed, and its finally steps run', () => {
    const w = world();
    const withFinally = proc([ssh('look', 'read'), ssh('wipe', 'destructive')], [ssh('tidy', 'read')], 'v');
    let r = drive(w, newRun(withFinally), withFinally);
    const changed = proc([ssh('peek', 'read'), ssh('wipe', 'destructive')], [ssh('tidy', 'read')], 'v');
    r = drive(w, r, changed);
    decide(w, openGates(r).find((x) => x.kind === 'definition')!.id, 'abort');
    r = drive(w, r, changed);
    expect(r.status).toBe('failed');
    expect(r.error).toBe('aborted by bob: "test v" changed since the run started');
    expect(w.started.at(-1)).toBe('tidy');
  });
});

