/**
 * A step's path names it within a run: `vdisks` at the top, `inspect.suspend` inside a group,
 * `flush[vd-3-01].snapshot` inside the forEach item keyed `vd-3-01`. Built and read only here.
 */
import type { Procedure, Step } from '../procedures/dsl.js';
import { ROOT, childScope, type Scope } from './context.js';
import type { Run } from './types.js';

/** The prefix of the steps inside group `path`. */
export function groupPrefix(path: string): string {
  return `${path}.`;
}

/** The prefix of the steps inside the item `key` of forEach `path`. */
export function itemPrefix(forEachPath: string, key: string): string {
  return `${forEachPath}[${key}].`;
}

interface PathSegment {
  id: string;
  /** The forEach item key, when this segment is an item of a forEach. */
  key?: string;
}

/** `flush[vd-3.01].snapshot` → [{ id: 'flush', key: 'vd-3.01' }, { id: 'snapshot' }]. Keys may hold dots. */
function parsePath(path: string): PathSegment[] {
  const out: PathSegment[] = [];
  let i = 0;
  while (i < path.length) {
    let j = i;
    while (j < path.length && path[j] !== '[' && path[j] !== '.') j++;
    const seg: PathSegment = { id: path.slice(i, j) };
    if (path[j] === '[') {
      const close = path.indexOf(']', j);
      if (close < 0) throw new Error(`step path "${path}" has an unclosed "["`);
      seg.key = path.slice(j + 1, close);
      j = close + 1;
    }
    out.push(seg);
    if (j < path.length && path[j] !== '.') throw new Error(`step path "${path}" is not <id>[<key>].<id>…`);
    i = j + 1;
  }
  return out;
}

/** The step definition at `path` in the procedure (steps, then finally), or undefined. */
export function findStep(proc: Pick<Procedure, 'steps' | 'finally'>, path: string): Step | undefined {
  let list: Step[] = [...proc.steps, ...(proc.finally ?? [])];
  let found: Step | undefined;
  for (const seg of parsePath(path)) {
    found = list.find((s) => s.id === seg.id);
    if (!found) return undefined;
    list = found.kind === 'forEach' || found.kind === 'group' ? found.steps : [];
  }
  return found;
}

/** The scope the step at `path` runs in: its groups' prefixes and its forEach items, from the run's expansions. */
export function scopeOf(run: Pick<Run, 'expansions'>, path: string): Scope {
  const segs = parsePath(path);
  let scope = ROOT;
  let prefix = '';
  for (const seg of segs.slice(0, -1)) {
    const at = `${prefix}${seg.id}`;
    if (seg.key !== undefined) {
      const item = run.expansions[at]?.find((x) => x.key === seg.key);
      prefix = itemPrefix(at, seg.key);
      scope = childScope(scope, prefix, item?.item);
    } else {
      prefix = groupPrefix(at);
      scope = childScope(scope, prefix);
    }
  }
  return scope;
}
