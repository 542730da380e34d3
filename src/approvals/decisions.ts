import { DecisionError, NotAllowedError } from '../errors.js';
import type { RunStore } from '../engine/store.js';
import { isTerminal, type Decision, type Gate, type Origin, type Run } from '../engine/types.js';
import type { Policy } from './policy.js';

export interface Continuations {
  advance(runId: string, why: string): Promise<void>;
}

/**
 * Takes people's decisions on gates and cancellations. A decision is checked against the policy,
 * recorded once (the first wins: a double click decides nothing twice), audited, and then the
 * run's continuation is enqueued under a job id derived from the gate.
 */
export class Decisions {
  constructor(
    private readonly store: RunStore,
    private readonly policy: Policy,
    private readonly queue: Continuations,
  ) {}

  /**
   * The gate a decision is about: the one named, the open one holding `step`, or the run's only
   * open gate. A decision on one `step` is only for a gate of interrupted steps, where that step
   * has no decision yet.
   */
  openGate(run: Run, gateId?: string, step?: string): Gate {
    let g: Gate | undefined;
    if (gateId) {
      g = run.gates[gateId];
      if (!g) throw new DecisionError(`run ${run.id} has no gate ${gateId}`, { runId: run.id, gateId });
      if (g.status !== 'open') throw new DecisionError(alreadyDecided(g), { runId: run.id, gateId });
    } else {
      const open = Object.values(run.gates).filter((x) => x.status === 'open' && (!step || x.steps.some((s) => s.path === step)));
      if (open.length === 0) throw new DecisionError(step ? `run ${run.id} has no open gate for step ${step}` : `run ${run.id} is not waiting for a decision (it is ${run.status})`, { runId: run.id });
      if (open.length > 1) throw new DecisionError(`run ${run.id} waits at ${open.length} gates; name one: ${open.map((x) => x.id).join(', ')}`, { runId: run.id });
      g = open[0]!;
    }
    if (step) {
      if (g.kind !== 'interrupted') throw new DecisionError(`gate ${g.id} is decided as a whole: only a gate of interrupted steps takes a decision per step`, { runId: run.id, gateId: g.id });
      if (!g.steps.some((s) => s.path === step)) throw new DecisionError(`gate ${g.id} does not hold step ${step}; it holds ${g.steps.map((s) => s.path).join(', ')}`, { runId: run.id, gateId: g.id });
      const prior = g.stepDecisions?.[step];
      if (prior) throw new DecisionError(`already decided: ${prior.decision} by ${prior.by} at ${prior.at}`, { runId: run.id, gateId: g.id });
    }
    return g;
  }

  /** `via` says where the decision was taken (the chat user, the console's sign-in, the CLI's OS user): it goes to the audit. */
  async decide(runId: string, personId: string, decision: Decision, opts: { gateId?: string; step?: string; reason?: string; via?: Origin } = {}): Promise<Gate> {
    const run = await this.store.load(runId);
    if (isTerminal(run.status)) throw new DecisionError(`run ${runId} has already ended (${run.status})`, { runId });
    const gate = this.openGate(run, opts.gateId, opts.step);
    const via = opts.via ? { via: opts.via } : {};
    try {
      this.policy.assertCanDecide(run, gate, personId, decision);
    } catch (err) {
      if (err instanceof NotAllowedError) await this.store.emit(runId, { type: 'gate.refused', gateId: gate.id, by: personId, reason: err.message, ...via });
      throw err;
    }
    const recorded = await this.store.decide(runId, { gateId: gate.id, ...(opts.step ? { step: opts.step } : {}), decision, by: personId, at: new Date().toISOString(), ...(opts.reason ? { reason: opts.reason } : {}), ...via });
    if (!recorded) {
      const prior = (await this.store.decisions(runId)).find((d) => d.gateId === gate.id && d.step === opts.step);
      throw new DecisionError(`already decided: ${prior?.decision ?? 'decided'} by ${prior?.by ?? 'someone'} at ${prior?.at ?? '?'}`, { runId, gateId: gate.id });
    }
    await this.queue.advance(runId, opts.step ? `gate.${gate.id}.${opts.step}` : `gate.${gate.id}`);
    return gate;
  }

  /** Called by the expiry job: records `expire` unless a person decided first. */
  async expire(runId: string, gateId: string): Promise<void> {
    const run = await this.store.find(runId);
    const gate = run?.gates[gateId];
    if (!run || !gate || gate.status !== 'open' || isTerminal(run.status)) return;
    await this.store.decide(runId, { gateId, decision: 'expire', by: 'system', at: new Date().toISOString() });
  }

  async cancel(runId: string, personId: string, via?: Origin): Promise<Run> {
    const run = await this.store.load(runId);
    if (isTerminal(run.status)) throw new DecisionError(`run ${runId} has already ended (${run.status})`, { runId });
    this.policy.assertCanCancel(run, personId);
    if (await this.store.requestCancel(runId, personId)) {
      await this.store.emit(runId, { type: 'run.cancel-requested', by: personId, ...(via ? { via } : {}) });
    }
    await this.queue.advance(runId, 'cancel');
    return run;
  }
}

function alreadyDecided(g: Gate): string {
  if (g.status === 'void') return `that request no longer counts: ${g.reason ?? 'the step changed'}`;
  return `already decided: ${g.decision ?? g.status} by ${g.decidedBy ?? 'someone'} at ${g.decidedAt ?? '?'}`;
}
