import { createHash } from 'node:crypto';
import type { Inventory } from '../inventory.js';
import type { Procedure, Step, StepContext } from '../procedures/dsl.js';
import { FactsNotYetKnown, NotYetKnown, childScope, makeContext, value, type Scope } from './context.js';
import { groupPrefix, itemPrefix } from './paths.js';
import type { PlanStep, RenderedStep, Run } from './types.js';

export type LeafStep = Exclude<Step, { kind: 'forEach' } | { kind: 'group' }>;

/** A step that runs something itself (not a forEach or a group): a step definition, a step's state, an event. */
export function isLeaf<S extends { kind: string }>(step: S): step is Exclude<S, { kind: 'forEach' } | { kind: 'group' }> {
  return step.kind !== 'forEach' && step.kind !== 'group';
}

/** The step exactly as it will run now. Throws NotYetKnown when it depends on a capture not made yet. */
export function renderLeaf(step: LeafStep, ctx: StepContext, path: string): RenderedStep {
  const base = { path, title: value(step.title, ctx), kind: step.kind, risk: step.risk };
  const shown = (s: Extract<LeafStep, { kind: 'ssh' | 'poll' | 'sql' }>) => {
    const reference = s.reference === undefined ? undefined : value(s.reference, ctx);
    const variant = s.variant === undefined ? undefined : value(s.variant, ctx);
    return { ...(reference !== undefined ? { reference } : {}), ...(variant !== undefined ? { variant } : {}) };
  };
  switch (step.kind) {
    case 'ssh':
    case 'poll': {
      const hostName = value(step.host, ctx);
      const host = ctx.host(hostName);
      const command = value(step.command, ctx).display;
      const stdin = step.stdin === undefined ? undefined : value(step.stdin, ctx);
      const r: RenderedStep = { ...base, host: hostName, address: `${host.user}@${host.address}:${host.port}`, command, ...(stdin !== undefined ? { stdin } : {}), ...shown(step) };
      if (r.reference === command) delete r.reference;
      return r;
    }
    case 'sql': {
      const r: RenderedStep = { ...base, database: value(step.database, ctx), statement: value(step.statement, ctx), params: step.params ? value(step.params, ctx) : [], ...shown(step) };
      if (step.expect) r.expect = value(step.expect, ctx);
      if (r.reference === r.statement) delete r.reference;
      return r;
    }
    case 'manual':
      return { ...base, instructions: value(step.instructions, ctx) };
    case 'report':
      return base;
  }
}

/**
 * An approval is bound to this hash of what will run: hosts, commands, SQL and parameters, bounds.
 * Titles and preview rows are left out: they describe the step but do not change what it does.
 */
export function bindingHash(steps: RenderedStep[]): string {
  const material = steps.map((s) => [s.path, s.kind, s.host ?? null, s.address ?? null, s.command ?? null, s.database ?? null, s.statement ?? null, s.params ?? null, s.expect ?? null, s.instructions ?? null, ...(s.stdin !== undefined ? [s.stdin] : [])]);
  return createHash('sha256').update(JSON.stringify(material)).digest('hex');
}

export interface ForEachItem {
  key: string;
  label: string;
  item: unknown;
}

export function expandItems(step: Extract<Step, { kind: 'forEach' }>, ctx: StepContext): ForEachItem[] {
  const items = step.items(ctx);
  const seen = new Set<string>();
  return items.map((item) => {
    const key = step.key(item);
    if (!/^[A-Za-z0-9._@-]+$/.test(key)) throw new Error(`forEach "${step.id}": item key "${key}" must be letters, digits, ".", "_", "@" or "-"`);
    if (seen.has(key)) throw new Error(`forEach "${step.id}": two items have the key "${key}"`);
    seen.add(key);
    return { key, label: step.label ? step.label(item) : key, item };
  });
}

/**
 * Every leaf under `step` rendered for a gate that covers them all (a group or a forEach).
 * forEach items are expanded (and must be expandable now); the caller stores the expansion.
 */
export function renderTree(step: Step, run: Pick<Run, 'args' | 'captures' | 'steps' | 'expansions'>, inventory: Inventory, scope: Scope, path: string): RenderedStep[] {
  const ctx = makeContext(run, inventory, scope);
  if (isLeaf(step)) return [renderLeaf(step, ctx, path)];
  if (step.kind === 'group') {
    const inner = childScope(scope, groupPrefix(path));
    return step.steps.flatMap((s) => renderTree(s, run, inventory, inner, `${groupPrefix(path)}${s.id}`));
  }
  const items = run.expansions[path] ?? expandItems(step, ctx);
  return items.flatMap((it) => {
    const inner = childScope(scope, itemPrefix(path, it.key), it.item);
    return step.steps.flatMap((s) => renderTree(s, run, inventory, inner, `${itemPrefix(path, it.key)}${s.id}`));
  });
}

function describeUnknown(err: unknown): string {
  if (err instanceof NotYetKnown) return `after "${err.stepId}"`;
  if (err instanceof FactsNotYetKnown) return `after detecting ${err.host}`;
  return 'at run time';
}

/** The plan: every step with its risk, and its command or SQL where it is known before the run. */
export function buildPlan(proc: Procedure, args: Record<string, unknown>, inventory: Inventory, gated: (risk: Step['risk']) => boolean, facts: Run['facts'] = {}): PlanStep[] {
  const run = { args, captures: {}, steps: {}, expansions: {}, facts };
  /**
   * A step whose condition is false on the arguments and inventory alone is left out of the plan;
   * one whose condition reads what earlier steps did or captured stays in.
   */
  const surelySkipped = (s: Step, scope: Scope): boolean => {
    if (!s.when) return false;
    const ctx = makeContext(run, inventory, scope);
    let dynamic = false;
    const probe: StepContext = {
      ...ctx,
      capture: (id) => ((dynamic = true), ctx.capture(id)),
      status: (id) => ((dynamic = true), ctx.status(id)),
    };
    try {
      return !s.when(probe) && !dynamic;
    } catch {
      return false;
    }
  };
  const walk = (steps: Step[], scope: Scope, prefix: string, isFinally: boolean, covered: boolean): PlanStep[] =>
    steps.filter((s) => !surelySkipped(s, scope)).map((s) => {
      const path = `${prefix}${s.id}`;
      const ctx = makeContext(run, inventory, scope);
      let title: string;
      try {
        title = value(s.title, ctx);
      } catch {
        title = s.id;
      }
      const selfGated = !isFinally && !covered && gated(s.risk);
      const p: PlanStep = { path, title, kind: s.kind, risk: s.risk, gated: selfGated };
      if (isFinally) p.finally = true;
      if (isLeaf(s)) {
        try {
          const r = renderLeaf(s, ctx, path);
          if (r.host) p.host = r.host;
          if (r.command) p.command = r.command;
          if (r.stdin !== undefined) p.stdin = r.stdin;
          if (r.reference !== undefined) p.reference = r.reference;
          if (r.variant !== undefined) p.variant = r.variant;
          if (r.database) p.database = r.database;
          if (r.statement) p.command = r.statement;
          if (r.instructions) p.command = r.instructions;
        } catch (err) {
          p.after = describeUnknown(err);
          // The page's command is known even when the one that will run is not yet (it waits for a
          // host's facts): the plan still shows what the step stands for.
          if (s.kind !== 'manual' && s.kind !== 'report' && s.reference !== undefined) {
            try {
              p.reference = value(s.reference, ctx);
            } catch {
              // Known at run time too.
            }
          }
        }
      } else if (s.kind === 'group') {
        p.children = walk(s.steps, childScope(scope, `${path}.`), `${path}.`, isFinally, covered || selfGated);
      } else {
        p.after = (() => {
          try {
            return `${expandItems(s, ctx).length} items`;
          } catch (err) {
            return describeUnknown(err);
          }
        })();
        p.children = walk(s.steps, childScope(scope, `${path}[*].`), `${path}[*].`, isFinally, covered || selfGated);
      }
      return p;
    });
  return [...walk(proc.steps, { prefix: '', item: undefined }, '', false, false), ...walk(proc.finally ?? [], { prefix: '', item: undefined }, '', true, false)];
}
