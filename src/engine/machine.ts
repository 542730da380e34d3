/**
 * A run's state machine at work, without I/O: it takes what arrived (decisions, a cancellation),
 * checks a resumed run (its definition, its approvals, the steps a crash interrupted), asks the
 * planner what to do, and applies the transitions that follow (a started step, a step's result, a
 * gate, the run parking or ending) through `Transitions`. The engine's pass (engine.ts) drives it
 * and does the effects: commands, queries, checkpoints, locks and jobs. Unit tests drive it alone.
 */
import type { Policy } from '../approvals/policy.js';
import { errorMessage } from '../errors.js';
import type { Inventory } from '../inventory.js';
import type { Procedure } from '../procedures/dsl.js';
import { makeContext } from './context.js';
import { treeFingerprint } from '../procedures/fingerprint.js';
import { findStep, scopeOf } from './paths.js';
import { idempotent, newPlanCache, plan, type Action, type Plan, type PlanCache } from './planner.js';
import { bindingHash, buildPlan, isLeaf, renderLeaf, renderTree } from './render.js';
import { settle, type LeafResult } from './results.js';
import { Transitions, type StartDetails } from './transitions.js';
import type { DecisionRecord, Gate, GateKind, LockHolder, RenderedStep, Run, WaitingFor } from './types.js';

export interface MachineOptions {
  proc: Procedure;
  inventory: Inventory;
  policy: Pick<Policy, 'isGated' | 'deciders' | 'expiryMs'>;
  /** Names the worker in `run.started`. */
  worker: string;
  /** Multiplies poll intervals and timeouts. Default 1. */
  timeScale?: number;
  clock?: () => number;
}

export type Start = Extract<Action, { type: 'start' }>;

export class Machine {
  readonly tx: Transitions;
  private readonly cache: PlanCache = newPlanCache();
  private readonly clock: () => number;

  constructor(
    readonly run: Run,
    private readonly o: MachineOptions,
  ) {
    this.clock = o.clock ?? Date.now;
    this.tx = new Transitions(run, this.clock);
  }

  private get timeScale(): number {
    return this.o.timeScale ?? 1;
  }

  // ── what arrived while the run waited ───────────────────────────────────

  /** Decisions recorded and a cancellation requested since the last look; approvals past their expiry expire. */
  arrive(decisions: DecisionRecord[], cancel: { by: string; at: string } | undefined, now = this.clock()): void {
    if (cancel) this.cancelled(cancel);
    for (const d of [...decisions].sort((a, b) => a.at.localeCompare(b.at))) this.decided(d);
    for (const g of Object.values(this.run.gates)) {
      if (g.status === 'open' && g.expiresAt && now >= Date.parse(g.expiresAt)) this.tx.decideGate(g.id, { decision: 'expire', by: 'system', at: new Date(now).toISOString() });
    }
  }

  cancelled(req: { by: string; at: string }): void {
    if (!this.run.cancelRequested) this.tx.patchRun({ cancelRequested: req });
  }

  private decided(d: DecisionRecord): void {
    const g = this.run.gates[d.gateId];
    if (!g || g.status !== 'open') return;
    if (d.step) {
      if (!g.stepDecisions?.[d.step]) this.tx.decideGateStep(g.id, d.step, d);
      return;
    }
    this.tx.decideGate(g.id, d);
    if (g.kind === 'definition' && d.decision === 'approve' && g.definition) this.tx.patchRun({ definition: { ...this.run.definition!, tree: g.definition.now } });
  }

  // ── resuming ────────────────────────────────────────────────────────────

  /**
   * What a pass checks before anything runs: a run left running (its worker died) is taken over,
   * the procedure must be the one the run started with, approvals must still match what their steps
   * would run, and the steps the last worker left running are interrupted (those that may not simply
   * run again wait for one decision together).
   */
  resume(): void {
    if (this.run.status === 'running') this.tx.takeRun(this.o.worker);
    this.checkDefinition();
    this.reverifyApprovals();
    this.interrupted();
  }

  private checkDefinition(): void {
    const run = this.run;
    const now = treeFingerprint(this.o.proc);
    const was = run.definition?.tree;
    if (!was) {
      // A run from before step trees were kept: what is loaded now is all there is to go by.
      this.tx.patchRun({ definition: { file: run.definition?.file ?? 'built-in', fingerprint: run.definition?.fingerprint ?? '', tree: now } });
      return;
    }
    if (was === now) return;
    const id = `definition@${now.replace('sha256:', '').slice(0, 12)}`;
    for (const g of Object.values(run.gates)) if (g.kind === 'definition' && g.status === 'open' && g.id !== id) this.tx.voidGate(g.id, 'the procedure changed again since');
    if (run.gates[id]) return;
    this.tx.openGate(this.gate(id, 'definition', '', 'write', [], { definition: { was, now } }));
  }

  /** Approvals, open or given, of steps that have not finished: void when what the step would run now differs. */
  private reverifyApprovals(): void {
    const run = this.run;
    for (const g of Object.values(run.gates)) {
      if (g.kind !== 'approval' || (g.status !== 'open' && !(g.status === 'decided' && g.decision === 'approve'))) continue;
      const st = run.steps[g.stepPath];
      if (st && st.status !== 'pending' && st.status !== 'waiting' && st.status !== 'running' && st.status !== 'interrupted') continue;
      const def = findStep(this.o.proc, g.stepPath);
      if (!def) continue;
      let hash: string;
      try {
        hash = bindingHash(renderTree(def, run, this.o.inventory, scopeOf(run, g.stepPath), g.stepPath));
      } catch {
        continue;
      }
      if (hash === g.hash) continue;
      const who = g.status === 'decided' ? `The approval by ${g.decidedBy}` : 'The open approval request';
      this.tx.voidGate(g.id, 'what this step would run changed; a new decision is needed');
      this.tx.emit({ type: 'step.progress', path: g.stepPath, message: `${who} no longer counts: what "${g.steps[0]?.title ?? g.stepPath}" would run has changed since. A new approval is requested.` });
    }
  }

  private interrupted(): void {
    const run = this.run;
    const left = Object.values(run.steps).filter((s) => s.status === 'running' && isLeaf(s));
    if (!left.length) return;
    const gated: RenderedStep[] = [];
    for (const st of left) {
      const def = findStep(this.o.proc, st.path);
      if (def && idempotent(def)) {
        this.tx.interrupt(st.path, true);
        continue;
      }
      try {
        if (!def || !isLeaf(def)) throw new Error('the procedure has no such step any more');
        gated.push(renderLeaf(def, makeContext(run, this.o.inventory, scopeOf(run, st.path)), st.path));
      } catch (err) {
        this.tx.interrupt(st.path, false);
        this.tx.step(st.path, st, 'fail', { error: `interrupted, and cannot be prepared again: ${errorMessage(err)}` });
        this.runError(`step "${st.title}" was interrupted and cannot be prepared again`);
      }
    }
    if (!gated.length) return;
    const crash = (run.crashes ?? 0) + 1;
    const id = `interrupted@${crash}`;
    this.tx.patchRun({ crashes: crash });
    for (const r of gated) this.tx.interrupt(r.path, false, id);
    const risk = gated.some((r) => r.risk === 'destructive') ? 'destructive' : gated.some((r) => r.risk === 'sensitive') ? 'sensitive' : 'write';
    this.tx.openGate(this.gate(id, 'interrupted', gated[0]!.path, risk, gated));
  }

  private gate(id: string, kind: GateKind, stepPath: string, risk: Gate['risk'], steps: RenderedStep[], extra: Partial<Gate> = {}): Gate {
    const now = this.clock();
    return {
      id,
      kind,
      stepPath,
      risk,
      hash: bindingHash(steps),
      steps,
      requestedAt: new Date(now).toISOString(),
      ...(kind === 'approval' ? { expiresAt: new Date(now + this.o.policy.expiryMs).toISOString() } : {}),
      deciders: this.o.policy.deciders(kind, this.run),
      status: 'open',
      ...extra,
    };
  }

  // ── the plan ──────────────────────────────────────────────────────────

  plan(): Plan {
    const run = this.run;
    return plan({ run, proc: this.o.proc, inventory: this.o.inventory, gated: (risk) => this.o.policy.isGated(run.procedure, risk), now: this.clock(), timeScale: this.timeScale, cache: this.cache });
  }

  /** The run's steps start (or start again) for this worker, unless it runs already. */
  take(): void {
    if (this.run.status !== 'running') this.tx.takeRun(this.o.worker);
  }

  private runError(text: string | undefined): void {
    if (text && this.run.error === undefined) this.tx.patchRun({ error: text });
  }

  /** An action that only changes the run's state. */
  apply(a: Exclude<Action, Start | { type: 'open-gate' | 'take-locks' | 'end' }>): void {
    const tx = this.tx;
    switch (a.type) {
      case 'begin': {
        if (a.items && !this.run.expansions[a.path]) tx.expand(a.path, a.items);
        const items = this.run.expansions[a.path];
        tx.step(a.path, a.def, 'start', items ? { progress: { done: 0, total: items.length, failed: 0 } } : {});
        return;
      }
      case 'skip':
        tx.step(a.path, a.def, 'skip', { reason: a.reason });
        return;
      case 'fail':
        tx.step(a.path, a.def, 'fail', { error: a.error });
        this.runError(a.runError);
        return;
      case 'succeed':
        tx.step(a.path, a.def, 'succeed', { reason: a.reason });
        return;
      case 'cancel':
        tx.step(a.path, a.def, 'cancel', { reason: a.reason });
        this.runError(a.runError);
        return;
      case 'complete':
        tx.step(a.path, a.def, a.status === 'succeeded' ? 'succeed' : a.status === 'failed' ? 'fail' : 'cancel', a.progress ? { progress: a.progress } : {});
        return;
      case 'progress':
        tx.patchStep(a.path, { progress: a.progress });
        tx.emit({ type: 'step.progress', path: a.path, message: a.message, ...a.progress });
        return;
      case 'void-gate':
        tx.voidGate(a.id, a.reason);
        return;
      case 'end-main':
        this.runError(a.error);
        tx.patchRun({ outcome: a.outcome, phase: 'finally' });
        return;
    }
  }

  /** Opens the gate the plan asks for (`steps`: what it shows, with preview rows); its step waits for it. */
  openGate(a: Extract<Action, { type: 'open-gate' }>, steps: RenderedStep[] = a.rendered): void {
    if (a.items && !this.run.expansions[a.path]) this.tx.expand(a.path, a.items);
    this.tx.openGate({ ...this.gate(a.id, a.kind, a.path, a.def.risk, steps), hash: bindingHash(a.rendered) });
    // The step waits for the gate (it may wait already: for an approval that no longer counts).
    const st = this.run.steps[a.path];
    if (st?.status !== 'interrupted' && st?.status !== 'waiting') this.tx.step(a.path, a.def, 'wait');
  }

  /** The step's transition into running, to be checkpointed before its command starts: a crash from then on leaves it interrupted. */
  start(a: Start): void {
    const r = a.rendered;
    const patch = a.step.kind === 'poll' && !this.run.steps[a.path]?.deadline ? { deadline: new Date(this.clock() + a.step.timeoutMs * this.timeScale).toISOString() } : {};
    const shown = { ...(r.reference !== undefined ? { reference: r.reference } : {}), ...(r.variant !== undefined ? { variant: r.variant } : {}) };
    const details: StartDetails = r.host ? { host: r.host, command: r.command, ...(r.stdin !== undefined ? { stdin: r.stdin } : {}), ...shown } : r.database ? { database: r.database, statement: r.statement, ...shown } : {};
    this.tx.step(a.path, a.def, a.check ? 'resume' : 'start', { ...patch, ...(r.host ? { host: r.host, command: r.command } : {}), ...(r.database ? { database: r.database, statement: r.statement } : {}) }, details);
  }

  /** What a started step's result means. */
  settle(a: Start, result: LeafResult): void {
    const run = this.run;
    const replan = (facts: NonNullable<Run['facts']>) => buildPlan(this.o.proc, run.args, this.o.inventory, (risk) => this.o.policy.isGated(run.procedure, risk), facts);
    settle(this.tx, a, result, { now: this.clock(), timeScale: this.timeScale, runError: (t) => this.runError(t), replan });
  }

  /** The run holds its hosts. */
  locked(): void {
    this.tx.patchRun({ locked: true });
  }

  /** The run waits for hosts other runs hold; `lock.waiting` is said when who holds them changed. */
  waitForLocks(blockers: string[], heldBy: LockHolder[]): void {
    const hosts = this.run.locks.map((l) => l.host);
    if (this.run.waitingFor?.locks?.heldBy.map((h) => h.run).join() !== blockers.join()) this.tx.emit({ type: 'lock.waiting', hosts, heldBy: blockers, holders: heldBy });
    this.park({ locks: { hosts, heldBy } });
  }

  /**
   * The run waits for what the plan names (gates, a poll's next check); no worker holds it meanwhile.
   * A run already waiting for the same, with nothing else changed, stays as it was.
   */
  park(waitingFor: WaitingFor): void {
    const same = this.run.status === 'waiting' && JSON.stringify(this.run.waitingFor) === JSON.stringify(waitingFor);
    if (same && this.tx.pending.empty) return;
    this.tx.parkRun(waitingFor);
    if (waitingFor.timer) this.tx.effect({ do: 'wake-at', at: Date.parse(waitingFor.timer.at) });
  }

  /** What a plan that only waits waits for. */
  static waitingFor(p: Plan): WaitingFor {
    if (!p.gates.length && !p.timer) throw new Error('nothing runs and nothing is awaited (planner bug)');
    return {
      ...(p.gates.length ? { gates: [...p.gates].sort() } : {}),
      ...(p.timer ? { timer: { at: new Date(p.timer.at).toISOString(), steps: p.timer.steps } } : {}),
    };
  }

  end(a: Extract<Action, { type: 'end' }>): void {
    this.tx.endRun(a.status, a.error);
  }
}
