/**
 * Deciding what happens next, apart from doing it (Temporal's workflow/activity split; orquesta's
 * conductor): given a run's state and its procedure, `plan` says which steps start, which are
 * skipped, failed or finished, which gates open, and what the run waits for. It reads the clock only
 * through `now`, calls only the procedure's own functions (titles, conditions, commands), and never
 * touches Redis, SSH or SQL; the engine applies what it says (transitions.ts) and does the rest.
 */
import type { Inventory } from '../inventory.js';
import type { ForEachStep, Procedure, Risk, Step, StepContext } from '../procedures/dsl.js';
import { errorMessage } from '../errors.js';
import { ROOT, childScope, makeContext, value, type Scope } from './context.js';
import { groupPrefix, itemPrefix } from './paths.js';
import { bindingHash, expandItems, isLeaf, renderLeaf, renderTree, type ForEachItem, type LeafStep } from './render.js';
import { decidedByFor, decisionFor, type StepDef } from './transitions.js';
import { isTerminal, type EndStatus, type Gate, type GateKind, type RenderedStep, type Run, type StepState } from './types.js';

/** What a part of the run comes to so far: a run status, without `queued`. */
export type Verdict = Exclude<Run['status'], 'queued'>;

export type Action =
  /** Run a leaf step: its command, statement, report, or a poll's next check (`check`: same attempt). */
  | { type: 'start'; path: string; def: StepDef; step: LeafStep; ctx: StepContext; rendered: RenderedStep; check: boolean; fin: boolean }
  /** A group or forEach starts its children; a forEach's items are fixed here. */
  | { type: 'begin'; path: string; def: StepDef; items?: ForEachItem[] }
  | { type: 'skip'; path: string; def: StepDef; reason: string }
  /** `runError`: what the run's error says, if it has none yet. */
  | { type: 'fail'; path: string; def: StepDef; error: string; runError?: string }
  | { type: 'succeed'; path: string; def: StepDef; reason: string }
  | { type: 'cancel'; path: string; def: StepDef; reason: string; runError?: string }
  /** A group or forEach whose children are done. */
  | { type: 'complete'; path: string; def: StepDef; status: 'succeeded' | 'failed' | 'cancelled'; progress?: StepState['progress'] }
  | { type: 'progress'; path: string; progress: NonNullable<StepState['progress']>; message: string }
  | { type: 'open-gate'; id: string; kind: GateKind; path: string; def: StepDef; rendered: RenderedStep[]; items?: ForEachItem[] }
  | { type: 'void-gate'; id: string; reason: string }
  | { type: 'take-locks' }
  /** The main steps are over: `outcome` is how the run ends, once its finally steps ran. */
  | { type: 'end-main'; outcome: EndStatus; error?: string }
  | { type: 'end'; status: EndStatus; error?: string };

export interface Plan {
  actions: Action[];
  /** Open gates the run needs a decision on. */
  gates: string[];
  /** The earliest poll check due, and the polls waiting for a check. */
  timer?: { at: number; steps: string[] };
}

/** Per-forEach memory kept across plans of one pass: items below `low` are finished. An optimisation only. */
export interface PlanCache {
  forEach: Map<string, { low: number; done: number; failed: number; worst: Verdict; prefixes: string[] }>;
}

export function newPlanCache(): PlanCache {
  return { forEach: new Map() };
}

export interface PlanInput {
  run: Run;
  proc: Procedure;
  inventory: Inventory;
  /** Whether the policy gates a step of this risk in this procedure. */
  gated(risk: Risk): boolean;
  now: number;
  /** Multiplies poll intervals and timeouts. Default 1. */
  timeScale?: number;
  cache?: PlanCache;
}

/** Worst first: what a forEach comes to when its items came to different things. */
const WORST: Verdict[] = ['failed', 'cancelled', 'rejected', 'expired', 'running', 'waiting', 'succeeded'];
const worst = (a: Verdict, b: Verdict): Verdict => (WORST.indexOf(a) <= WORST.indexOf(b) ? a : b);
const ENDED = new Set<Verdict>(['succeeded', 'failed', 'cancelled', 'rejected', 'expired']);

/** Is a poll or a read step safe to run again after a crash? */
export function idempotent(s: Step): boolean {
  return isLeaf(s) ? (s.idempotent ?? s.risk === 'read') : false;
}

const defOf = (s: Step, title: string): StepDef => ({ title, kind: s.kind, risk: s.risk });

/** The gate of kind `kind` that counts for `path` now: the newest one not void. */
function liveGate(run: Run, kind: GateKind, path: string): Gate | undefined {
  let found: Gate | undefined;
  for (const g of Object.values(run.gates)) {
    if (g.kind !== kind || g.status === 'void') continue;
    if (kind === 'interrupted' ? g.steps.some((s) => s.path === path) : g.stepPath === path) {
      if (!found || g.requestedAt >= found.requestedAt) found = g;
    }
  }
  return found;
}

/** The id of an approval gate: bound to the hash of what it shows. */
function approvalGateId(path: string, hash: string): string {
  return `${path}@${hash.slice(0, 12)}`;
}

export function plan(input: PlanInput): Plan {
  return new Planner(input).plan();
}

class Planner {
  private readonly run: Run;
  private readonly actions: Action[] = [];
  private readonly gates = new Set<string>();
  private timer: { at: number; steps: string[] } | undefined;
  private readonly cache: PlanCache;

  constructor(private readonly i: PlanInput) {
    this.run = i.run;
    this.cache = i.cache ?? newPlanCache();
  }

  private out(): Plan {
    return { actions: this.actions, gates: [...this.gates], ...(this.timer ? { timer: this.timer } : {}) };
  }

  plan(): Plan {
    const run = this.run;
    if (isTerminal(run.status)) return this.out();
    const definition = Object.values(run.gates).find((g) => g.kind === 'definition' && g.status === 'open');
    if (run.phase === 'main') {
      if (run.cancelRequested) return this.cancelMain();
      if (definition) {
        this.gates.add(definition.id);
        return this.out();
      }
      const aborted = Object.values(run.gates).find((g) => g.kind === 'definition' && g.status === 'decided' && g.decision === 'abort');
      if (aborted) {
        this.endMain('failed', `aborted by ${aborted.decidedBy ?? 'a person'}: "${run.procedure}" changed since the run started`, 'the run was aborted');
        return this.out();
      }
      if (!run.locked) {
        this.actions.push({ type: 'take-locks' });
        return this.out();
      }
      const v = this.list(this.i.proc.steps, ROOT, false, false);
      // Only once what this plan changes is applied: the next plan sees the steps as they end.
      if (ENDED.has(v) && !this.actions.length) this.endMain(v as EndStatus, undefined, 'the run ended');
      return this.out();
    }
    if (definition) {
      this.gates.add(definition.id);
      return this.out();
    }
    const v = this.list(this.i.proc.finally ?? [], ROOT, true, false);
    if (ENDED.has(v) && !this.actions.length) {
      const outcome = run.outcome ?? 'failed';
      if (v === 'failed') {
        if (outcome === 'succeeded') this.actions.push({ type: 'end', status: 'failed', error: 'a finally step failed' });
        else this.actions.push({ type: 'end', status: outcome, error: `${run.error ?? outcome}; a finally step also failed` });
      } else this.actions.push({ type: 'end', status: outcome });
    }
    return this.out();
  }

  /**
   * Cancellation in the main steps: nothing new starts; once the running steps stopped (the engine
   * aborts them), open gates no longer count, waiting and interrupted steps are cancelled, and the
   * finally steps run.
   */
  private cancelMain(): Plan {
    const run = this.run;
    if (Object.values(run.steps).some((st) => st.status === 'running' && isLeaf(st))) return this.out();
    const by = run.cancelRequested?.by ?? 'a person';
    this.endMain('cancelled', `cancelled by ${by}`, 'the run was cancelled');
    return this.out();
  }

  /**
   * The main steps are over. What is left open (a gate nobody needs now, a step waiting for one, a
   * group or forEach stopped midway) is closed, so the run's state says what happened to each.
   */
  private endMain(outcome: EndStatus, error: string | undefined, why: string): void {
    const by = this.run.cancelRequested?.by;
    for (const g of Object.values(this.run.gates)) if (g.status === 'open') this.actions.push({ type: 'void-gate', id: g.id, reason: why });
    const open = Object.values(this.run.steps).filter((st) => st.status === 'waiting' || st.status === 'interrupted' || st.status === 'running');
    // Inner steps first: a group is closed after what it holds.
    open.sort((a, b) => b.path.length - a.path.length);
    for (const st of open) {
      const reason = !by ? why : st.kind === 'poll' && st.status === 'waiting' ? 'the run was cancelled while waiting' : `cancelled by ${by}`;
      this.actions.push({ type: 'cancel', path: st.path, def: st, reason });
    }
    this.actions.push({ type: 'end-main', outcome, ...(error ? { error } : {}) });
  }

  private ctx(scope: Scope): StepContext {
    return makeContext(this.run, this.i.inventory, scope);
  }

  /**
   * A list of steps. In the main steps the first that has not succeeded decides; finally steps all
   * run in order whatever the others came to, and one waiting for a person does not hold up the next.
   */
  private list(steps: Step[], scope: Scope, fin: boolean, covered: boolean): Verdict {
    if (!fin) {
      for (const s of steps) {
        const v = this.node(s, scope, `${scope.prefix}${s.id}`, fin, covered);
        if (v !== 'succeeded') return v;
      }
      return 'succeeded';
    }
    let waiting = false;
    let failed = false;
    for (const s of steps) {
      const v = this.node(s, scope, `${scope.prefix}${s.id}`, fin, covered);
      if (v === 'running') return 'running';
      if (v === 'waiting') waiting = true;
      if (v === 'failed') failed = true;
    }
    return waiting ? 'waiting' : failed ? 'failed' : 'succeeded';
  }

  /** What a finished step comes to: a step cancelled because its approval was refused or ran out says so. */
  private ended(st: StepState): Verdict | undefined {
    switch (st.status) {
      case 'succeeded':
      case 'skipped':
        return 'succeeded';
      case 'failed':
        return 'failed';
      case 'cancelled': {
        const g = liveGate(this.run, 'approval', st.path);
        return g?.decision === 'reject' ? 'rejected' : g?.decision === 'expire' ? 'expired' : 'cancelled';
      }
      default:
        return undefined;
    }
  }

  private node(s: Step, scope: Scope, path: string, fin: boolean, covered: boolean): Verdict {
    const st = this.run.steps[path];
    if (st) {
      const v = this.ended(st);
      if (v) return v;
      if (st.status === 'running' && isLeaf(s)) return 'running';
    }
    const ctx = this.ctx(scope);
    let title: string;
    if (!st || st.status === 'pending') {
      try {
        title = value(s.title, ctx);
        if (s.when && !s.when(ctx)) {
          this.actions.push({ type: 'skip', path, def: defOf(s, title), reason: 'condition not met' });
          return 'running';
        }
        const refusal = s.guard?.(ctx);
        if (refusal) {
          this.actions.push({ type: 'fail', path, def: defOf(s, title), error: `refused: ${refusal}`, runError: `refused: ${refusal}` });
          return 'running';
        }
      } catch (err) {
        const error = `cannot prepare the step: ${errorMessage(err)}`;
        this.actions.push({ type: 'fail', path, def: defOf(s, typeof s.title === 'string' ? s.title : s.id), error, runError: error });
        return 'running';
      }
    } else title = st.title;
    const def = defOf(s, title);

    if (!fin && !covered && this.i.gated(s.risk)) {
      const v = this.approval(s, scope, path, def, st);
      if (v !== 'succeeded') return v;
      covered = true;
    }
    if (s.kind === 'group') return this.group(s, scope, path, def, st, fin, covered);
    if (s.kind === 'forEach') return this.forEach(s, scope, path, def, st, fin, covered);
    return this.leaf(s, ctx, path, def, st, fin);
  }

  /**
   * An approval gate in front of a step: `succeeded` once approved (for what the step would run now:
   * the engine voids an approval whose step changed), else what the step comes to meanwhile.
   */
  private approval(s: Step, scope: Scope, path: string, def: StepDef, st: StepState | undefined): Verdict {
    const g = liveGate(this.run, 'approval', path);
    if (g?.status === 'decided') {
      if (g.decision === 'approve') return 'succeeded';
      if (st?.status === 'waiting') {
        const reason = g.decision === 'reject' ? `rejected by ${g.decidedBy}${g.reason ? `: ${g.reason}` : ''}` : 'approval expired';
        const runError = g.decision === 'reject' ? reason : `approval of "${g.steps[0]?.title ?? g.stepPath}" expired at ${g.expiresAt}`;
        this.actions.push({ type: 'cancel', path, def, reason, runError });
        return 'running';
      }
      return g.decision === 'reject' ? 'rejected' : 'expired';
    }
    if (g?.status === 'open') {
      this.gates.add(g.id);
      return 'waiting';
    }
    let rendered: RenderedStep[];
    let items: ForEachItem[] | undefined;
    try {
      if (s.kind === 'forEach' && !this.run.expansions[path]) items = expandItems(s, this.ctx(scope));
      rendered = renderTree(s, items ? { ...this.run, expansions: { ...this.run.expansions, [path]: items } } : this.run, this.i.inventory, scope, path);
    } catch (err) {
      const error = `cannot prepare the step: ${errorMessage(err)}`;
      this.actions.push({ type: 'fail', path, def, error, runError: error });
      return 'running';
    }
    this.actions.push({ type: 'open-gate', id: approvalGateId(path, bindingHash(rendered)), kind: 'approval', path, def, rendered, ...(items ? { items } : {}) });
    return 'waiting';
  }

  private group(s: Extract<Step, { kind: 'group' }>, scope: Scope, path: string, def: StepDef, st: StepState | undefined, fin: boolean, covered: boolean): Verdict {
    if (!st || st.status === 'pending' || st.status === 'waiting') {
      this.actions.push({ type: 'begin', path, def });
      return 'running';
    }
    const v = this.list(s.steps, childScope(scope, groupPrefix(path)), fin, covered);
    if (ENDED.has(v)) this.actions.push({ type: 'complete', path, def, status: v === 'succeeded' ? 'succeeded' : v === 'failed' ? 'failed' : 'cancelled' });
    return v;
  }

  private forEach(s: ForEachStep, scope: Scope, path: string, def: StepDef, st: StepState | undefined, fin: boolean, covered: boolean): Verdict {
    if (!st || st.status === 'pending' || st.status === 'waiting') {
      let items = this.run.expansions[path];
      if (!items) {
        try {
          items = expandItems(s, this.ctx(scope));
        } catch (err) {
          const error = `cannot list the items: ${errorMessage(err)}`;
          this.actions.push({ type: 'fail', path, def, error, runError: error });
          return 'running';
        }
      }
      this.actions.push({ type: 'begin', path, def, items });
      return 'running';
    }
    const items = this.run.expansions[path] ?? [];
    const total = items.length;
    let memo = this.cache.forEach.get(path);
    if (!memo) {
      memo = { low: 0, done: 0, failed: 0, worst: 'succeeded', prefixes: items.map((it) => itemPrefix(path, it.key)) };
      this.cache.forEach.set(path, memo);
    }
    const m = memo;
    const first = s.steps[0];
    const started = (i: number) => !!first && this.run.steps[`${m.prefixes[i]}${first.id}`] !== undefined;
    const itemVerdict = (i: number) => this.list(s.steps, childScope(scope, m.prefixes[i]!, items[i]!.item), fin, covered);
    const count = (v: Verdict, into: { done: number; failed: number }) => {
      if (v === 'succeeded') into.done++;
      else if (ENDED.has(v)) into.failed++;
    };
    // An item that stops the others: the first failure (unless the forEach goes on past them, or
    // these are finally steps), a cancellation, a refused or expired approval.
    const stops = (v: Verdict) => v === 'cancelled' || v === 'rejected' || v === 'expired' || (v === 'failed' && !fin && !s.continueOnError);
    // Items below `low` ended in an earlier plan of this pass: their results are in the memo, and
    // each plan looks only at the items after them.
    const tally = { done: m.done, failed: m.failed };
    let ended = m.worst;
    let stopped = stops(m.worst);
    let active = 0;
    // Items in progress, running or waiting (for a person, a host, a poll's next check): each holds
    // one of the `concurrency` lanes. "One by one" means the next item starts only once this one is
    // done, even when this one waits for someone to power a node on.
    let busy = 0;
    let waiting = false;
    let next = m.low;
    for (; next < total && started(next); next++) {
      const v = itemVerdict(next);
      count(v, tally);
      if (v === 'running') active++;
      else if (v === 'waiting') waiting = true;
      else ended = worst(ended, v);
      if (v === 'running' || v === 'waiting') busy++;
      if (stops(v)) stopped = true;
      if (next === m.low && ENDED.has(v)) {
        count(v, m);
        m.worst = worst(m.worst, v);
        m.low++;
      }
    }
    // New items, in order, while lanes are free.
    const concurrency = Math.max(1, value(s.concurrency ?? 1, this.ctx(scope)));
    for (; !stopped && busy < concurrency && next < total; next++) {
      const v = itemVerdict(next);
      if (v === 'waiting') waiting = true;
      else active++;
      busy++;
    }
    const progress = { done: tally.done, total, failed: tally.failed };
    const was = st.progress;
    if (!was || was.done !== progress.done || was.failed !== progress.failed || was.total !== total) {
      this.actions.push({ type: 'progress', path, progress, message: `${def.title}: ${progress.done}/${total} done${progress.failed ? ` · ${progress.failed} failed` : ''}` });
    }
    if (active > 0) return 'running';
    if (waiting && !stopped) return 'waiting';
    const end: Verdict = ended === 'succeeded' && fin && tally.failed ? 'failed' : ended;
    this.actions.push({ type: 'complete', path, def, status: end === 'succeeded' ? 'succeeded' : end === 'failed' ? 'failed' : 'cancelled', progress });
    return end;
  }

  private leaf(s: LeafStep, ctx: StepContext, path: string, def: StepDef, st: StepState | undefined, fin: boolean): Verdict {
    if (st?.status === 'interrupted' && !idempotent(s)) {
      const g = liveGate(this.run, 'interrupted', path);
      if (!g) {
        // A crash gate is opened when the pass starts; this is one the last pass could not open.
        return this.openInterrupted(s, ctx, path, def);
      }
      const d = decisionFor(g, path);
      if (!d) {
        this.gates.add(g.id);
        return 'waiting';
      }
      const by = decidedByFor(g, path);
      if (d === 'skip') {
        this.actions.push({ type: 'skip', path, def, reason: `interrupted, then skipped by ${by}` });
        return 'running';
      }
      if (d === 'abort') {
        this.actions.push({ type: 'fail', path, def, error: `interrupted, then aborted by ${by}`, runError: `aborted by ${by} after "${def.title}" was interrupted` });
        return 'running';
      }
    }
    if (s.kind === 'manual') return this.manual(s, ctx, path, def);
    if (s.kind === 'poll' && st?.status === 'waiting' && st.nextCheckAt) {
      const at = Date.parse(st.nextCheckAt);
      if (at > this.i.now) {
        this.timer = { at: Math.min(at, this.timer?.at ?? at), steps: [...(this.timer?.steps ?? []), path] };
        return 'waiting';
      }
      return this.start(s, ctx, path, def, true, fin);
    }
    return this.start(s, ctx, path, def, false, fin);
  }

  private start(s: LeafStep, ctx: StepContext, path: string, def: StepDef, check: boolean, fin: boolean): Verdict {
    let rendered: RenderedStep;
    try {
      rendered = renderLeaf(s, ctx, path);
    } catch (err) {
      const error = `cannot prepare the step: ${errorMessage(err)}`;
      this.actions.push({ type: 'fail', path, def, error, runError: `step "${def.title}" could not be prepared` });
      return 'running';
    }
    this.actions.push({ type: 'start', path, def: { ...def, title: rendered.title }, step: s, ctx, rendered, check, fin });
    return 'running';
  }

  private openInterrupted(s: LeafStep, ctx: StepContext, path: string, def: StepDef): Verdict {
    try {
      const rendered = renderLeaf(s, ctx, path);
      this.actions.push({ type: 'open-gate', id: `interrupted@${path}`, kind: 'interrupted', path, def, rendered: [rendered] });
      return 'waiting';
    } catch (err) {
      const error = `cannot prepare the step: ${errorMessage(err)}`;
      this.actions.push({ type: 'fail', path, def, error, runError: error });
      return 'running';
    }
  }

  private manual(s: Extract<LeafStep, { kind: 'manual' }>, ctx: StepContext, path: string, def: StepDef): Verdict {
    const g = liveGate(this.run, 'manual', path);
    if (!g) {
      let rendered: RenderedStep;
      try {
        rendered = renderLeaf(s, ctx, path);
      } catch (err) {
        const error = `cannot prepare the step: ${errorMessage(err)}`;
        this.actions.push({ type: 'fail', path, def, error, runError: error });
        return 'running';
      }
      this.actions.push({ type: 'open-gate', id: `${path}@manual`, kind: 'manual', path, def, rendered: [rendered] });
      return 'waiting';
    }
    if (g.status === 'open') {
      this.gates.add(g.id);
      return 'waiting';
    }
    const by = g.decidedBy ?? 'a person';
    if (g.decision === 'abort') this.actions.push({ type: 'fail', path, def, error: `aborted by ${by}`, runError: `"${def.title}" was aborted by ${by}` });
    else this.actions.push({ type: 'succeed', path, def, reason: `done, confirmed by ${by}` });
    return 'running';
  }
}
