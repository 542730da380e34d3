/**
 * A fingerprint of a procedure's definition, kept with each run: resuming a run under a definition
 * that changed since it started (a deploy renamed a step, changed a command) asks a person first,
 * instead of silently walking a different step tree (as Temporal's `patched()` guards replays).
 */
import { createHash } from 'node:crypto';

const known = new WeakMap<object, string>();

/**
 * sha256 over the step tree, steps and finally steps: ids, kinds, risks, order, nesting, and every
 * option given as a value (a fixed command or statement, intervals, exit codes, flags). A function
 * counts as being there, not by its text: the text of compiled code differs between builds of the
 * same source (tsc, a test runner's transform), and every process of one deployment must agree.
 */
export function fingerprint(proc: { steps: readonly unknown[]; finally?: readonly unknown[] | undefined }): string {
  let fp = known.get(proc);
  if (fp) return fp;
  const text = JSON.stringify({ steps: proc.steps, finally: proc.finally ?? [] }, (_key, v: unknown) => {
    if (typeof v === 'function') return 'fn';
    if (v instanceof RegExp) return `re:${v.toString()}`;
    return v;
  });
  fp = createHash('sha256').update(text).digest('hex');
  known.set(proc, fp);
  return fp;
}
