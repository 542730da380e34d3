import type { Procedure, Step, StepContext } from '../procedures/dsl.js';
import { isLeaf } from './render.js';

/** Hosts a run holds: declared by the procedure, or every host argument (write unless the procedure only reads). */
export function locksFor(proc: Procedure, ctx: StepContext): { host: string; mode: 'read' | 'write' }[] {
  if (proc.locks) return proc.locks(ctx);
  const risks = new Set<string>();
  const collect = (steps: Step[]) => steps.forEach((s) => (risks.add(s.risk), isLeaf(s) ? undefined : collect(s.steps)));
  collect([...proc.steps, ...(proc.finally ?? [])]);
  const mode = [...risks].every((r) => r === 'read') ? 'read' : 'write';
  const hosts = Object.keys(proc.hosts ?? {}).flatMap((arg) => {
    const v = (ctx.args as Record<string, unknown>)[arg];
    return Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)];
  });
  return [...new Set(hosts)].map((host) => ({ host, mode }));
}
