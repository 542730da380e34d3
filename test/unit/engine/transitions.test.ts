import { describe, expect, it } from 'vitest';
import { IllegalTransitionError } from '../../../src/errors.js';
import { GATE_TRANSITIONS, RUN_TRANSITIONS, STEP_TRANSITIONS, Transitions, type GateInput, type RunInput, type StepInput } from '../../../src/engine/transitions.js';
import type { Gate, GateStatus, Run, RunStatus, StepStatus } from '../../../src/engine/types.js';

/**
 * Every legal move, written out here apart from the tables in transitions.ts: a change to a table
 * that is not made here too fails, and every pair missing from these lists must be refused.
 */
const RUN_LEGAL: Record<RunStatus, Partial<Record<RunInput, RunStatus>>> = {
  queued: { take: 'running', park: 'waiting' },
  waiting: { take: 'running', park: 'waiting' },
  running: { take: 'running', park: 'waiting', succeed: 'succeeded', fail: 'failed', reject: 'rejected', cancel: 'cancelled', expire: 'expired' },
  succeeded: {},
  failed: {},
  rejected: {},
  cancelled: {},
  expired: {},
};
const STEP_LEGAL: Record<StepStatus, Partial<Record<StepInput, StepStatus>>> = {
  pending: { start: 'running', wait: 'waiting', fail: 'failed', skip: 'skipped' },
  running: { wait: 'waiting', succeed: 'succeeded', fail: 'failed', cancel: 'cancelled', interrupt: 'interrupted' },
  waiting: { start: 'running', resume: 'running', succeed: 'succeeded', fail: 'failed', cancel: 'cancelled' },
  interrupted: { start: 'running', skip: 'skipped', fail: 'failed', cancel: 'cancelled' },
  succeeded: {},
  failed: {},
  skipped: {},
  cancelled: {},
};
const GATE_LEGAL: Record<GateStatus, Partial<Record<GateInput, GateStatus>>> = {
  open: { decide: 'decided', void: 'void' },
  decided: { void: 'void' },
  void: {},
};

const RUN_INPUTS: RunInput[] = ['take', 'park', 'succeed', 'fail', 'reject', 'cancel', 'expire'];
const STEP_INPUTS: StepInput[] = ['start', 'resume', 'wait', 'succeed', 'fail', 'skip', 'cancel', 'interrupt'];
const GATE_INPUTS: GateInput[] = ['decide', 'void'];

function run(status: RunStatus): Run {
  return {
    id: 'r-1', procedure: 'test p', args: {}, requester: 'alice', origin: { adapter: 'test' }, createdAt: '2026-11-30T12:00:00.000Z', updatedAt: '2026-11-30T12:00:00.000Z',
    status, plan: [], notes: [], locks: [{ host: 'node-3', mode: 'write' }], steps: {}, captures: {}, expansions: {}, gates: {}, phase: 'main',
  };
}

function gate(status: GateStatus): Gate {
  return { id: 'g', kind: 'approval', stepPath: 's', risk: 'destructive', hash: 'h', steps: [{ path: 's', title: 'S', kind: 'ssh', risk: 'destructive' }], requestedAt: '2026-11-30T12:00:00.000Z', deciders: ['bob'], status };
}

const END_OF: Partial<Record<RunInput, 'succeeded' | 'failed' | 'rejected' | 'cancelled' | 'expired'>> = { succeed: 'succeeded', fail: 'failed', reject: 'rejected', cancel: 'cancelled', expire: 'expired' };

describe('the transition tables', () => {
  it('are the legal moves and no others', () => {
    expect(RUN_TRANSITIONS).toEqual(RUN_LEGAL);
    expect(STEP_TRANSITIONS).toEqual(STEP_LEGAL);
    expect(GATE_TRANSITIONS).toEqual(GATE_LEGAL);
  });

  it('let every run, step and gate that has not ended reach an end', () => {
    const reachesEnd = <S extends string>(table: Record<S, Partial<Record<string, S>>>, from: S): boolean => {
      const seen = new Set<S>([from]);
      const todo = [from];
      while (todo.length) {
        const s = todo.pop()!;
        const next = Object.values(table[s]) as S[];
        if (next.length === 0) return true;
        for (const n of next) if (!seen.has(n)) (seen.add(n), todo.push(n));
      }
      return false;
    };
    for (const s of Object.keys(RUN_LEGAL) as RunStatus[]) expect(reachesEnd(RUN_TRANSITIONS, s), s).toBe(true);
    for (const s of Object.keys(STEP_LEGAL) as StepStatus[]) expect(reachesEnd(STEP_TRANSITIONS, s), s).toBe(true);
    for (const s of Object.keys(GATE_LEGAL) as GateStatus[]) expect(reachesEnd(GATE_TRANSITIONS, s), s).toBe(true);
  });
});

describe('runs', () => {
  for (const from of Object.keys(RUN_LEGAL) as RunStatus[]) {
    for (const input of RUN_INPUTS) {
      const to = RUN_LEGAL[from][input];
      it(`${from} --${input}--> ${to ?? 'refused'}`, () => {
        const r = run(from);
        const tx = new Transitions(r, () => Date.parse('2026-11-30T12:05:00.000Z'));
        const apply = () => (input === 'take' ? tx.takeRun('w1') : input === 'park' ? tx.parkRun({ gates: ['g'] }) : tx.endRun(END_OF[input]!, input === 'succeed' ? undefined : 'why'));
        if (!to) {
          expect(apply).toThrow(IllegalTransitionError);
          expect(r.status).toBe(from);
          expect(tx.pending.empty).toBe(true);
          return;
        }
        apply();
        expect(r.status).toBe(to);
        const types = tx.pending.events.map((e) => e.type);
        if (input === 'park') expect(types).toEqual(['run.waiting']);
        if (input === 'take') expect(types).toEqual(['run.started']);
        if (END_OF[input]) {
          // An end always carries the release of the run's hosts and its leaving the active set.
          expect(types).toEqual(['run.finished']);
          expect(tx.pending.effects).toEqual([{ do: 'release-locks', hosts: ['node-3'] }, { do: 'deactivate' }]);
          expect(r.finishedAt).toBe('2026-11-30T12:05:00.000Z');
        }
      });
    }
  }

  it('says run.started the first time its steps start and when a dead worker is taken over, not at every wake', () => {
    const r = run('queued');
    const tx = new Transitions(r);
    tx.takeRun('w1');
    tx.parkRun({ gates: ['g'] });
    tx.takeRun('w1');
    r.status = 'running';
    tx.takeRun('w2');
    expect(tx.pending.events.filter((e) => e.type === 'run.started')).toEqual([{ type: 'run.started', worker: 'w1', resumed: false }, { type: 'run.started', worker: 'w2', resumed: true }]);
  });
});

describe('steps', () => {
  const def = { title: 'Do it', kind: 'ssh' as const, risk: 'write' as const };
  for (const from of Object.keys(STEP_LEGAL) as StepStatus[]) {
    for (const input of STEP_INPUTS) {
      const to = STEP_LEGAL[from][input];
      it(`${from} --${input}--> ${to ?? 'refused'}`, () => {
        const r = run('running');
        r.steps.s = { path: 's', seq: 0, title: 'Do it', kind: 'ssh', risk: 'write', status: from, attempts: 1, startedAt: '2026-11-30T12:00:00.000Z' };
        const tx = new Transitions(r, () => Date.parse('2026-11-30T12:00:02.000Z'));
        const apply = () => (input === 'interrupt' ? tx.interrupt('s', false) : tx.step('s', def, input));
        if (!to) {
          expect(apply).toThrow(IllegalTransitionError);
          expect(r.steps.s!.status).toBe(from);
          expect(tx.pending.empty).toBe(true);
          return;
        }
        apply();
        expect(r.steps.s!.status).toBe(to);
        expect([...tx.pending.steps]).toEqual(['s']);
        const events = tx.pending.events;
        if (input === 'start') expect(events).toMatchObject([{ type: 'step.started', path: 's', attempt: 2 }]);
        else if (input === 'interrupt') expect(events).toMatchObject([{ type: 'step.interrupted', path: 's', idempotent: false }]);
        else if (input === 'wait' || input === 'resume') expect(events).toEqual([]);
        else expect(events).toMatchObject([{ type: 'step.finished', path: 's', status: to, durationMs: 2000 }]);
      });
    }
  }

  it('creates a step pending the first time, in the order the run reaches it', () => {
    const r = run('running');
    const tx = new Transitions(r);
    tx.step('b', { title: 'B', kind: 'ssh', risk: 'read' }, 'skip', { reason: 'condition not met' });
    tx.step('a', { title: 'A', kind: 'ssh', risk: 'read' }, 'start');
    expect(Object.values(r.steps).map((s) => [s.path, s.seq, s.status])).toEqual([
      ['b', 0, 'skipped'],
      ['a', 1, 'running'],
    ]);
  });
});

describe('gates', () => {
  for (const from of Object.keys(GATE_LEGAL) as GateStatus[]) {
    for (const input of GATE_INPUTS) {
      const to = GATE_LEGAL[from][input];
      it(`${from} --${input}--> ${to ?? 'refused'}`, () => {
        const r = run('waiting');
        r.gates.g = gate(from);
        const tx = new Transitions(r);
        const apply = () => (input === 'decide' ? tx.decideGate('g', { decision: 'approve', by: 'bob', at: '2026-11-30T12:01:00.000Z' }) : tx.voidGate('g', 'the run was cancelled'));
        if (!to) {
          expect(apply).toThrow(IllegalTransitionError);
          expect(r.gates.g!.status).toBe(from);
          return;
        }
        apply();
        expect(r.gates.g!.status).toBe(to);
        expect(tx.pending.events.map((e) => e.type)).toEqual([input === 'decide' ? 'gate.decided' : 'gate.voided']);
      });
    }
  }

  it('opens a gate once, with its buttons and, for an approval, its expiry in the same commit', () => {
    const r = run('running');
    const tx = new Transitions(r);
    tx.openGate({ ...gate('open'), expiresAt: '2026-11-30T12:15:00.000Z' });
    expect(tx.pending.events.map((e) => e.type)).toEqual(['gate.opened']);
    expect(tx.pending.effects).toEqual([{ do: 'expire-at', gate: 'g', at: Date.parse('2026-11-30T12:15:00.000Z') }]);
    expect(() => tx.openGate(gate('open'))).toThrow(IllegalTransitionError);
  });

  it('decides a gate of interrupted steps step by step, and the gate once every step is decided', () => {
    const r = run('waiting');
    r.gates.g = { ...gate('open'), kind: 'interrupted', steps: [{ path: 'a', title: 'A', kind: 'ssh', risk: 'write' }, { path: 'b', title: 'B', kind: 'ssh', risk: 'write' }] };
    const tx = new Transitions(r);
    tx.decideGateStep('g', 'a', { decision: 'retry', by: 'bob', at: '2026-11-30T12:01:00.000Z' });
    expect(r.gates.g!.status).toBe('open');
    expect(() => tx.decideGateStep('g', 'nope', { decision: 'skip', by: 'bob', at: '2026-11-30T12:01:00.000Z' })).toThrow(IllegalTransitionError);
    tx.decideGateStep('g', 'b', { decision: 'skip', by: 'carol', at: '2026-11-30T12:02:00.000Z' });
    expect(r.gates.g).toMatchObject({ status: 'decided', stepDecisions: { a: { decision: 'retry' }, b: { decision: 'skip' } } });
  });
});
