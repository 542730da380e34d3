/**
 * The run's state machine: which status may follow which, for runs, steps and gates, as tables
 * (the shape of StackStorm orquesta's `machines.py`), and the one place that applies them. Every
 * change of a status goes through `Transitions`, which refuses an illegal one, and records the event
 * that the change produces and the fields it touched, so a checkpoint commits the change and its
 * events together (store.ts `commit`). Nothing here does I/O.
 */
import type { Risk } from '../procedures/dsl.js';
import { IllegalTransitionError } from '../errors.js';
import type { Decision, EndStatus, Gate, GateStatus, Origin, RenderedStep, Run, RunEvent, RunStatus, StepKind, StepState, StepStatus, WaitingFor } from './types.js';

/** `take`: a worker starts (or takes over) the run. `park`: it stops waiting for something, and no worker holds it. */
export type RunInput = 'take' | 'park' | 'succeed' | 'fail' | 'reject' | 'cancel' | 'expire';

export const RUN_TRANSITIONS: { readonly [S in RunStatus]: Readonly<Partial<Record<RunInput, RunStatus>>> } = {
  queued: { take: 'running', park: 'waiting' },
  waiting: { take: 'running', park: 'waiting' },
  // `take` from running: the worker that ran it died and another takes it over.
  running: { take: 'running', park: 'waiting', succeed: 'succeeded', fail: 'failed', reject: 'rejected', cancel: 'cancelled', expire: 'expired' },
  succeeded: {},
  failed: {},
  rejected: {},
  cancelled: {},
  expired: {},
};

/** The input that ends a run with each status. */
const END_INPUT: { readonly [S in EndStatus]: RunInput } = { succeeded: 'succeed', failed: 'fail', rejected: 'reject', cancelled: 'cancel', expired: 'expire' };

/**
 * `start`: it runs (a leaf's command, a group's or forEach's children), counting an attempt.
 * `resume`: a poll's next check, within the same attempt. `wait`: for a gate, or a poll's interval.
 * `interrupt`: the worker running it died, so nobody knows whether it finished.
 */
export type StepInput = 'start' | 'resume' | 'wait' | 'succeed' | 'fail' | 'skip' | 'cancel' | 'interrupt';

export const STEP_TRANSITIONS: { readonly [S in StepStatus]: Readonly<Partial<Record<StepInput, StepStatus>>> } = {
  pending: { start: 'running', wait: 'waiting', fail: 'failed', skip: 'skipped' },
  running: { wait: 'waiting', succeed: 'succeeded', fail: 'failed', cancel: 'cancelled', interrupt: 'interrupted' },
  waiting: { start: 'running', resume: 'running', succeed: 'succeeded', fail: 'failed', cancel: 'cancelled' },
  interrupted: { start: 'running', skip: 'skipped', fail: 'failed', cancel: 'cancelled' },
  succeeded: {},
  failed: {},
  skipped: {},
  cancelled: {},
};

/** `void`: the gate no longer counts: what it covered changed (an approval, even a given one), or the run was cancelled. */
export type GateInput = 'decide' | 'void';

export const GATE_TRANSITIONS: { readonly [S in GateStatus]: Readonly<Partial<Record<GateInput, GateStatus>>> } = {
  open: { decide: 'decided', void: 'void' },
  decided: { void: 'void' },
  void: {},
};

const FINISHING: ReadonlySet<StepInput> = new Set(['succeed', 'fail', 'skip', 'cancel']);

/** The status `input` leads to from `from`; throws IllegalTransitionError when the table has none. */
export function next<S extends string, I extends string>(table: { readonly [K in S]: Readonly<Partial<Record<I, S>>> }, machine: 'run' | 'step' | 'gate', id: string, from: S, input: I): S {
  const to = table[from][input];
  if (to === undefined) throw new IllegalTransitionError(machine, id, from, input);
  return to;
}

/** Effects outside the run's own keys, done after the commit that asks for them (store.ts `relay`). Each is idempotent. */
export type Effect =
  | { do: 'release-locks'; hosts: string[] }
  | { do: 'expire-at'; gate: string; at: number }
  | { do: 'wake-at'; at: number }
  | { do: 'deactivate' };

/** What one commit writes: the parts of the run that changed, the events they produced, and the effects to do after. */
export class Changes {
  head = false;
  readonly steps = new Set<string>();
  readonly captures = new Set<string>();
  readonly expansions = new Set<string>();
  readonly gates = new Set<string>();
  readonly events: RunEvent[] = [];
  readonly effects: Effect[] = [];

  get empty(): boolean {
    return !this.head && !this.steps.size && !this.captures.size && !this.expansions.size && !this.gates.size && !this.events.length && !this.effects.length;
  }
}

export interface StepDef {
  title: string;
  kind: StepKind;
  risk: Risk;
}

/** What a started step's event says of what runs. */
export type StartDetails = Pick<RenderedStep, 'host' | 'command' | 'stdin' | 'reference' | 'variant' | 'database' | 'statement'>;

const FINISHED_FIELDS = ['host', 'exitCode', 'signal', 'rowsAffected', 'durationMs', 'outputTail', 'outputTruncated', 'error', 'reason', 'attachment'] as const;

/**
 * Applies transitions to one run in memory and collects them for the next commit. The only code
 * that sets a run's, a step's or a gate's status.
 */
export class Transitions {
  private changes = new Changes();
  private nextSeq: number | undefined;

  constructor(
    readonly run: Run,
    private readonly clock: () => number = Date.now,
  ) {}

  private iso(): string {
    return new Date(this.clock()).toISOString();
  }

  /** Hands over what changed since the last call, for a commit. */
  take(): Changes {
    const c = this.changes;
    this.changes = new Changes();
    return c;
  }

  get pending(): Changes {
    return this.changes;
  }

  emit(event: RunEvent): void {
    this.changes.events.push(event);
  }

  effect(effect: Effect): void {
    this.changes.effects.push(effect);
  }

  /** Fields of the run that are not statuses (error, waitingFor, facts, …). */
  patchRun(patch: Partial<Omit<Run, 'status' | 'steps' | 'gates' | 'captures' | 'expansions'>>): void {
    Object.assign(this.run, patch);
    this.changes.head = true;
  }

  // ── run ──────────────────────────────────────────────────────────────

  /** A worker starts or takes over the run: `run.started` when its steps first start, or when a dead worker's run is taken over. */
  takeRun(worker: string): void {
    const resumed = this.run.status === 'running';
    this.run.status = next(RUN_TRANSITIONS, 'run', this.run.id, this.run.status, 'take');
    delete this.run.waitingFor;
    this.changes.head = true;
    if (resumed || !this.run.startedAt) {
      this.run.startedAt ??= this.iso();
      this.emit({ type: 'run.started', worker, resumed });
    }
  }

  /** No worker holds the run until what it waits for changes. */
  parkRun(waitingFor: WaitingFor): void {
    this.run.status = next(RUN_TRANSITIONS, 'run', this.run.id, this.run.status, 'park');
    this.run.waitingFor = waitingFor;
    this.changes.head = true;
    this.emit({ type: 'run.waiting', gates: waitingFor.gates ?? [], waitingFor });
  }

  /** The run ends: its locks are released and it leaves the active set, after the commit (outbox effects). */
  endRun(status: EndStatus, error?: string): void {
    const run = this.run;
    run.status = next(RUN_TRANSITIONS, 'run', run.id, run.status, END_INPUT[status]);
    if (error !== undefined) run.error = error;
    run.finishedAt = this.iso();
    delete run.waitingFor;
    this.changes.head = true;
    this.emit({ type: 'run.finished', status, ...(run.error ? { error: run.error } : {}), durationMs: Date.parse(run.finishedAt) - Date.parse(run.createdAt) });
    if (run.locks.length) this.effect({ do: 'release-locks', hosts: run.locks.map((l) => l.host) });
    this.effect({ do: 'deactivate' });
  }

  // ── steps ────────────────────────────────────────────────────────────

  /** A step's state, created `pending` the first time. */
  private state(path: string, def: StepDef): StepState {
    let st = this.run.steps[path];
    if (!st) {
      this.nextSeq ??= Object.values(this.run.steps).reduce((n, s) => Math.max(n, (s.seq ?? 0) + 1), Object.keys(this.run.steps).length);
      st = this.run.steps[path] = { path, seq: this.nextSeq++, title: def.title, kind: def.kind, risk: def.risk, status: 'pending', attempts: 0 };
    }
    st.title = def.title;
    return st;
  }

  /**
   * Moves a step. `start` counts an attempt and emits `step.started` with `details`; finishing inputs
   * emit `step.finished`; `interrupt` emits `step.interrupted`; `wait` and `resume` emit nothing.
   */
  step(path: string, def: StepDef, input: StepInput, patch: Partial<StepState> = {}, details: StartDetails = {}): StepState {
    const st = this.state(path, def);
    const to = next(STEP_TRANSITIONS, 'step', path, st.status, input);
    const now = this.iso();
    if (input === 'start') {
      st.attempts += 1;
      st.startedAt = now;
      delete st.finishedAt;
      delete st.error;
      delete st.durationMs;
    }
    Object.assign(st, patch, { status: to });
    this.changes.steps.add(path);
    if (input === 'start') {
      const shown = Object.fromEntries(Object.entries(details).filter(([, v]) => v !== undefined));
      this.emit({ type: 'step.started', path, title: st.title, kind: st.kind, risk: st.risk, attempt: st.attempts, ...shown });
    } else if (FINISHING.has(input)) {
      st.finishedAt = now;
      if (st.startedAt) st.durationMs = Date.parse(now) - Date.parse(st.startedAt);
      this.emit(this.finished(st));
    }
    return st;
  }

  /** Fields of a step that are not its status (a forEach's progress). */
  patchStep(path: string, patch: Partial<Omit<StepState, 'status'>>): void {
    const st = this.run.steps[path];
    if (!st) return;
    Object.assign(st, patch);
    this.changes.steps.add(path);
  }

  /** A step the last worker left running: it is interrupted. */
  interrupt(path: string, idempotent: boolean, gate?: string): void {
    const st = this.run.steps[path]!;
    st.status = next(STEP_TRANSITIONS, 'step', path, st.status, 'interrupt');
    this.changes.steps.add(path);
    this.emit({ type: 'step.interrupted', path, title: st.title, idempotent, ...(gate ? { gate } : {}) });
  }

  /** The `step.finished` event of a finished step; `extra` carries what is not kept in the state (a report's text). */
  finished(st: StepState, extra: { report?: string } = {}): Extract<RunEvent, { type: 'step.finished' }> {
    const e: Extract<RunEvent, { type: 'step.finished' }> = { type: 'step.finished', path: st.path, title: st.title, status: st.status, kind: st.kind, risk: st.risk };
    for (const k of FINISHED_FIELDS) if (st[k] !== undefined) (e as Record<string, unknown>)[k] = st[k];
    return { ...e, ...extra };
  }

  /** Replaces the last event, when it is the `step.finished` of `path`, with one carrying `extra`. */
  annotateFinished(path: string, extra: { report?: string }): void {
    const last = this.changes.events.at(-1);
    if (last?.type === 'step.finished' && last.path === path) Object.assign(last, extra);
  }

  capture(path: string, value: unknown): void {
    this.run.captures[path] = value;
    this.changes.captures.add(path);
  }

  expand(path: string, items: Run['expansions'][string]): void {
    this.run.expansions[path] = items;
    this.changes.expansions.add(path);
  }

  // ── gates ────────────────────────────────────────────────────────────

  openGate(gate: Gate): void {
    const existing = this.run.gates[gate.id];
    if (existing) throw new IllegalTransitionError('gate', gate.id, existing.status, 'open');
    if (gate.status !== 'open') throw new IllegalTransitionError('gate', gate.id, 'absent', gate.status);
    this.run.gates[gate.id] = gate;
    this.changes.gates.add(gate.id);
    this.emit({ type: 'gate.opened', gate });
    if (gate.expiresAt) this.effect({ do: 'expire-at', gate: gate.id, at: Date.parse(gate.expiresAt) });
  }

  /** A decision on a whole gate; `via` (where it was taken) goes to the audit with it. */
  decideGate(id: string, d: { decision: Decision; by: string; at: string; reason?: string; via?: Origin }): Gate {
    const g = this.run.gates[id]!;
    g.status = next(GATE_TRANSITIONS, 'gate', id, g.status, 'decide');
    Object.assign(g, { decision: d.decision, decidedBy: d.by, decidedAt: d.at }, d.reason ? { reason: d.reason } : {});
    this.changes.gates.add(id);
    this.emit({ type: 'gate.decided', gate: g, decision: d.decision, by: d.by, ...(d.reason ? { reason: d.reason } : {}), ...(d.via ? { via: d.via } : {}) });
    return g;
  }

  /** A decision on one step of an open `interrupted` gate; the gate is decided once all of its steps are. */
  decideGateStep(id: string, step: string, d: { decision: Decision; by: string; at: string; via?: Origin }): Gate {
    const g = this.run.gates[id]!;
    if (g.status !== 'open' || !g.steps.some((s) => s.path === step)) throw new IllegalTransitionError('gate', `${id} (${step})`, g.status, 'decide');
    g.stepDecisions = { ...g.stepDecisions, [step]: { decision: d.decision, by: d.by, at: d.at } };
    this.changes.gates.add(id);
    this.emit({ type: 'gate.decided', gate: g, decision: d.decision, by: d.by, step, ...(d.via ? { via: d.via } : {}) });
    if (g.steps.every((s) => g.stepDecisions?.[s.path])) {
      g.status = next(GATE_TRANSITIONS, 'gate', id, g.status, 'decide');
      Object.assign(g, { decision: d.decision, decidedBy: d.by, decidedAt: d.at });
    }
    return g;
  }

  /** The gate no longer counts; `why` is said to people (and its buttons go). */
  voidGate(id: string, why: string): Gate {
    const g = this.run.gates[id]!;
    g.status = next(GATE_TRANSITIONS, 'gate', id, g.status, 'void');
    g.reason = why;
    this.changes.gates.add(id);
    this.emit({ type: 'gate.voided', gate: g, reason: why });
    return g;
  }
}

/** The decision that applies to `step` under gate `g`: its own, else the gate's. */
export function decisionFor(g: Gate, step: string): Decision | undefined {
  return g.stepDecisions?.[step]?.decision ?? (g.status === 'decided' ? g.decision : undefined);
}

/** Who decided for `step` under gate `g`. */
export function decidedByFor(g: Gate, step: string): string {
  return g.stepDecisions?.[step]?.by ?? g.decidedBy ?? 'a person';
}
