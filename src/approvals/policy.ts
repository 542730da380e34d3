import { unixNames, type PersonConfig, type PolicyConfig, type Risk, type RunbookConfig } from '../config/runbook-config.js';
import { NotAllowedError, NotFoundError, UsageError } from '../errors.js';
import { clip } from '../input.js';
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

/** People named in one refusal: enough to know whom to ask, short enough to read. */
const WHO_MAX = 10;

/** People ids for an answer: `alice, bob`, or the first few `and 40 more`. */
function listed(ids: readonly string[]): string {
  return `${ids.slice(0, WHO_MAX).join(', ')}${ids.length > WHO_MAX ? ` and ${ids.length - WHO_MAX} more` : ''}`;
}

/** "Who may: alice, bob." for a refusal. */
function whoMay(ids: readonly string[]): string {
  return ids.length ? `Who may: ${listed(ids)}.` : 'Nobody may: fix the roles in runbook.yaml.';
}

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
    if (p) return p;
    throw new NotFoundError(`unknown person "${clip(id)}": people in runbook.yaml are ${listed([...this.people.keys()]) || '(none)'}`, { person: clip(id) });
  }

  /** The person mapped to a chat user id (`people.<id>.slack` / `.discord`). */
  byPlatform(platform: 'slack' | 'discord', userId: string): Person | undefined {
    return [...this.people.values()].find((p) => p[platform] === userId);
  }

  /** The person whose `email` is this address (as a sign-in proxy forwards it; case does not matter). */
  byEmail(email: string): Person | undefined {
    const wanted = email.trim().toLowerCase();
    return [...this.people.values()].find((p) => p.email?.toLowerCase() === wanted);
  }

  /** The person an operating-system user acts as (`people.<id>.unix`). */
  byUnix(user: string): Person | undefined {
    return [...this.people.values()].find((p) => unixNames(p).includes(user));
  }

  /** Whether runbook.yaml maps operating-system users to people: then the CLI acts only as the person it maps to. */
  get mapsUnixUsers(): boolean {
    return [...this.people.values()].some((p) => unixNames(p).length > 0);
  }

  isAdmin(person: Person): boolean {
    return person.roles.includes('admin');
  }

  /**
   * Who a command typed by `osUser` acts as: the person named with `--as`, or the one the user maps
   * to. Once runbook.yaml maps any operating-system user, an unmapped user may not act, and a user
   * may name someone else only when mapped to an admin. Without mappings `--as` is taken as given.
   * @returns the person acted as, and the admin acting for them when it is someone else
   */
  actingAs(osUser: string, host: string, named: string | undefined): { person: Person; actor?: Person } {
    if (!this.mapsUnixUsers) {
      if (!named) throw new UsageError('say who is asking with --as <person> (a person of runbook.yaml), or map your operating-system user to a person (people.<id>.unix)');
      return { person: this.requirePerson(named) };
    }
    const actor = this.byUnix(osUser);
    if (!actor) throw new NotAllowedError(`operating-system user ${osUser} on ${host} is not mapped to a person of runbook.yaml: ask an admin to add it to people.<id>.unix`, { osUser, host });
    if (!named || named === actor.id) return { person: actor };
    const person = this.requirePerson(named);
    if (!this.isAdmin(actor)) throw new NotAllowedError(`${osUser} on ${host} is ${actor.id} and may not act as ${named}: only an admin may act for someone else (drop --as to act as ${actor.id})`, { osUser, host, person: named });
    return { person, actor };
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
        const may = [...this.people.values()].filter((p) => this.hasRole(p, run)).map((p) => p.id);
      throw new NotAllowedError(`${personId} may not run "${procedureId}": it needs one of the roles ${run.join(', ')}, and ${personId} has ${person.roles.join(', ')}. ${whoMay(may)}`, { person: personId, procedure: procedureId });
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
      throw new NotAllowedError(`${personId} may not ${decision} this step of "${run.procedure}": it needs one of the roles ${roles.join(', ')}, and ${personId} has ${person.roles.join(', ')}. ${whoMay(gate.deciders)}`, { runId: run.id, gateId: gate.id, person: personId });
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
