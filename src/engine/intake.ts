import type { Policy } from '../approvals/policy.js';
import { GuardError, UsageError } from '../errors.js';
import type { SqlExecutor } from '../executors/sql/index.js';
import type { Inventory } from '../inventory.js';
import type { Catalog } from '../procedures/catalog.js';
import { procedureId, type Procedure } from '../procedures/dsl.js';
import { ROOT, makeContext } from './context.js';
import { treeFingerprint } from '../procedures/fingerprint.js';
import { locksFor } from './locks.js';
import { buildPlan } from './render.js';
import { newRunId, type RunStore } from './store.js';
import type { Origin, Run } from './types.js';

export interface IntakeRequest {
  /** What the person typed after the slash: `ovs flush node-3`. */
  text: string;
  person: string;
  origin: Origin;
  dryRun?: boolean;
  /**
   * Stored with the run, in the same transaction: `value(runId)` under `key` for `ttlSeconds`.
   * A chat adapter records there that its request started this run, and so never starts it twice.
   */
  record?: { key: string; ttlSeconds: number; value(runId: string): string };
}

/** The hosts a run's arguments name. */
function hostArgs(procedure: Procedure, args: Record<string, unknown>): string[] {
  return Object.keys(procedure.hosts ?? {}).flatMap((arg) => {
    const v = args[arg];
    return (Array.isArray(v) ? v : v === undefined ? [] : [v]).map(String);
  });
}

export interface Starter {
  advance(runId: string, why: string): Promise<void>;
}

/**
 * Turns what a person typed into a checked plan and a stored, enqueued run. Everything that can be
 * wrong with a request (unknown procedure or host, bad argument, not allowed, refused by a guard)
 * is found here and said in one clear sentence, before anything runs.
 */
export class Intake {
  constructor(
    private readonly deps: { catalog: Catalog; inventory: Inventory; policy: Policy; store: RunStore; queue: Starter; sql: SqlExecutor },
  ) {}

  async prepare(req: IntakeRequest): Promise<{ run: Run; procedure: Procedure }> {
    const { catalog, inventory, policy, sql } = this.deps;
    const { procedure, args: parsed } = catalog.parse(req.text, inventory);
    const id = procedureId(procedure);
    policy.assertCanRun(req.person, id);
    const args = procedure.resolve
      ? await procedure.resolve(parsed, { inventory, policy: policy.config, query: async (db, statement, params) => (await sql.query(db, statement, params)).rows })
      : parsed;
    for (const h of hostArgs(procedure, args)) {
      if (!inventory.has(h)) throw new UsageError(`unknown host "${h}"`, { procedure: id });
    }
    const ctx = makeContext({ args, captures: {}, steps: {} }, inventory, ROOT);
    const locks = locksFor(procedure, ctx);
    // What earlier runs detected on these hosts lets the plan name the variant that will run; the
    // run's own detect steps ask the hosts again before anything depends on it.
    const facts = await this.deps.store.cachedFacts([...new Set([...locks.map((l) => l.host), ...hostArgs(procedure, args)])]);
    const planCtx = makeContext({ args, captures: {}, steps: {}, facts }, inventory, ROOT);
    const refusal = procedure.guard?.(planCtx);
    if (refusal) throw new GuardError(`${id} refused: ${refusal}`, { procedure: id });
    const now = new Date().toISOString();
    const origin = catalog.origin(id);
    const run: Run = {
      id: newRunId(),
      procedure: id,
      definition: { file: origin.file, fingerprint: origin.fingerprint, tree: treeFingerprint(procedure) },
      args,
      requester: req.person,
      origin: req.origin,
      createdAt: now,
      updatedAt: now,
      status: 'queued',
      plan: buildPlan(procedure, args, inventory, (risk) => policy.isGated(id, risk), facts),
      notes: procedure.notes?.(planCtx) ?? [],
      locks,
      steps: {},
      captures: {},
      ...(Object.keys(facts).length ? { facts } : {}),
      expansions: {},
      gates: {},
      phase: 'main',
      ...(req.dryRun ? { dryRun: true } : {}),
    };
    return { run, procedure };
  }

  /** Prepares, stores and enqueues a run (a dry run is only prepared). */
  async request(req: IntakeRequest): Promise<Run> {
    const { run } = await this.prepare(req);
    if (req.dryRun) return run;
    const events = [
      { type: 'run.requested' as const, by: req.person, command: req.text.trim(), origin: req.origin },
      { type: 'run.planned' as const, plan: run.plan, notes: run.notes },
    ];
    await this.deps.store.create(run, events, req.record && { key: req.record.key, value: req.record.value(run.id), ttlSeconds: req.record.ttlSeconds });
    await this.deps.queue.advance(run.id, 'start');
    return run;
  }
}
