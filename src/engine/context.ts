import type { Inventory, InventoryHost } from '../inventory.js';
import { KnownAtRunTime, type HostFacts, type StepContext, type StepStatus, type V } from '../procedures/dsl.js';
import type { Run } from './types.js';

/** Where a step sits: `''` at the top, `flush[vd-3-01].` inside a forEach item, `inspect.` inside a group. */
export interface Scope {
  prefix: string;
  item: unknown;
  parent?: Scope;
}

export const ROOT: Scope = { prefix: '', item: undefined };

export function childScope(parent: Scope, prefix: string, item: unknown = parent.item): Scope {
  return { prefix, item, parent };
}

/** Thrown by `ctx.capture` when the step has not captured anything yet (planning before the run). */
export class NotYetKnown extends KnownAtRunTime {
  constructor(readonly stepId: string) {
    super(`known after step "${stepId}"`);
  }
}

/** Thrown by `ctx.facts` for a host nobody has detected yet (planning, or before its detect step ran). */
export class FactsNotYetKnown extends KnownAtRunTime {
  constructor(readonly host: string) {
    super(`known after detecting ${host}`);
  }
}

export function makeContext<A = any>(run: Pick<Run, 'args' | 'captures' | 'steps'> & Partial<Pick<Run, 'facts'>>, inventory: Inventory, scope: Scope): StepContext<A> {
  const lookup = <T>(id: string, table: Record<string, T>): T | undefined => {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const key = s.prefix + id;
      if (key in table) return table[key];
    }
    return undefined;
  };
  return {
    args: run.args as A,
    inventory,
    item: scope.item,
    capture<T>(id: string): T {
      const v = lookup(id, run.captures);
      if (v === undefined) throw new NotYetKnown(id);
      return v as T;
    },
    status(id: string): StepStatus {
      return lookup(id, run.steps)?.status ?? 'pending';
    },
    facts(host: string): HostFacts {
      const f = run.facts?.[host];
      if (f === undefined) throw new FactsNotYetKnown(host);
      return f;
    },
    host(name: string): InventoryHost {
      const h = inventory.get(name);
      if (!h) throw new Error(`unknown host "${name}"`);
      return h;
    },
    db(name: string): string {
      return `\`${inventory.schema(name).replace(/`/g, '``')}\``;
    },
  };
}

export function value<T, A>(v: V<T, A>, ctx: StepContext<A>): T {
  return typeof v === 'function' ? (v as (c: StepContext<A>) => T)(ctx) : v;
}
