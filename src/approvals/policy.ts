import type { PersonConfig, PolicyConfig, Risk, RunbookConfig } from '../config/runbook-config.js';
import { NotAllowedError, NotFoundError } from '../errors.js';
import type { Decision, Gate, Run } from '../engine/types.js';

export interface Person extends PersonConfig {
  id: string;
}

interface Rule {
  run: string[];
  approve: string[];
  gate: Risk[];
}

const DECISIONS_BY_GATE: Record<Gate['kind'], Decision[]> = {
  approval: ['approve', 'reject'],
  manual: ['done', 'abort'],
  interrupted: ['retry', 'skip', 'abort'],
  definition: ['approve', 'abort'],
};

const GATE_NAME: Record<Gate['kind'], string> = { approval: 'approval', manual: 'manual step', interrupted: 'interrupted step', definition: 'changed procedure' };

/** Who may run what, who may decide which gate, and which risks are gated: `people` and `policy` of runbook.yaml. */
export class Policy {
  private readonly people: Map<string, Person>;
  private readonly policy: PolicyConfig;

  constructor(cfg: Pick<RunbookConfig, 'people' | 'policy'>) {
    this.people = new Map(Object.entries(cfg.people).map(([id, p]) => [id, { ...p, id }]));
    this.policy = cfg.policy;
  }

  get expiryMs(): number {
    return this.policy.approvalExpiryMinutes * 60_000;
  }

  get config(): PolicyConfig {
    return this.policy;
  }

  person(id: string): Person | undefined {
    return this.people.get(id);
  }

  requirePerson(id: string): Person {
    const p = this.people.get(id);
    if (!p) throw new NotFoundError(`unknown person "${id}": people in runbook.yaml are ${[...this.people.keys()].join(', ') || '(none)'}`, { person: id });
    return p;
  }

  /** The person mapped to a chat user id (`people.<id>.slack` / `.discord`). */
  byPlatform(platform: 'slack' | 'discord', userId: string): Person | undefined {
    return [...this.people.values()].find((p) => p[platform] === userId);
  }

  displayName(id: string): string {
    return this.people.get(id)?.name ?? id;
  }

  /** Procedure rule overrides pack rule, which overrides the defaults. */
  rule(procedureId: string): Rule {
    const pack = procedureId.split(' ')[0] ?? procedureId;
    const byPack = this.policy.procedures[pack] ?? {};
    const byProc = this.policy.procedures[procedureId] ?? {};
    return {
      run: byProc.run ?? byPack.run ?? this.policy.run,
      approve: byProc.approve ?? byPack.approve ?? this.policy.approve,
      gate: byProc.gate ?? byPack.gate ?? this.policy.gate,
    };
  }

  isGated(procedureId: string, risk: Risk): boolean {
    return this.rule(procedureId).gate.includes(risk);
  }

  private hasRole(person: Person, roles: string[]): boolean {
    return person.roles.some((r) => roles.includes(r));
  }

  assertCanRun(personId: string, procedureId: string): Person {
    const person = this.requirePerson(personId);
    const { run } = this.rule(procedureId);
    if (!this.hasRole(person, run)) {
      throw new NotAllowedError(`${personId} may not run "${procedureId}": it needs one of the roles ${run.join(', ')}, and ${personId} has ${person.roles.join(', ')}`, { person: personId, procedure: procedureId });
    }
    return person;
  }

  /** People who may approve a gated step of `procedureId` requested by `requester` (never the requester). */
  approvers(procedureId: string, requester: string): string[] {
    const { approve } = this.rule(procedureId);
    return [...this.people.values()].filter((p) => p.id !== requester && this.hasRole(p, approve)).map((p) => p.id);
  }

  /** People who may decide a gate: approvers for approvals, interrupted steps and changed procedures; runners for manual steps. */
  deciders(kind: Gate['kind'], run: Pick<Run, 'procedure' | 'requester'>): string[] {
    if (kind === 'manual') {
      const { run: runRoles, approve } = this.rule(run.procedure);
      return [...this.people.values()].filter((p) => this.hasRole(p, [...runRoles, ...approve])).map((p) => p.id);
    }
    return this.approvers(run.procedure, run.requester);
  }

  /** Throws NotAllowedError saying exactly why `personId` may not take `decision` on `gate`. */
  assertCanDecide(run: Pick<Run, 'procedure' | 'requester' | 'id'>, gate: Gate, personId: string, decision: Decision): void {
    const allowed = DECISIONS_BY_GATE[gate.kind];
    if (!allowed.includes(decision)) {
      throw new NotAllowedError(`"${decision}" is not a choice here: this ${GATE_NAME[gate.kind]} takes ${allowed.join(', ')}`, { runId: run.id, gateId: gate.id });
    }
    const person = this.requirePerson(personId);
    if (gate.kind !== 'manual' && personId === run.requester) {
      throw new NotAllowedError(`${personId} requested run ${run.id} and cannot ${decision} its own ${gate.risk} step: another person must decide (${this.approvers(run.procedure, run.requester).join(', ') || 'nobody is allowed: fix policy.approve'})`, { runId: run.id, gateId: gate.id, person: personId });
    }
    if (!gate.deciders.includes(personId)) {
      const { approve, run: runRoles } = this.rule(run.procedure);
      const roles = gate.kind === 'manual' ? [...runRoles, ...approve] : approve;
      throw new NotAllowedError(`${personId} may not ${decision} this step of "${run.procedure}": it needs one of the roles ${roles.join(', ')}, and ${personId} has ${person.roles.join(', ')}`, { runId: run.id, gateId: gate.id, person: personId });
    }
  }

  /** The requester, approvers and admins may cancel a run. */
  assertCanCancel(run: Pick<Run, 'procedure' | 'requester' | 'id'>, personId: string): void {
    const person = this.requirePerson(personId);
    if (personId === run.requester) return;
    if (this.hasRole(person, this.rule(run.procedure).approve)) return;
    throw new NotAllowedError(`${personId} may not cancel run ${run.id}: only its requester (${run.requester}) or an approver may`, { runId: run.id, person: personId });
  }
}
