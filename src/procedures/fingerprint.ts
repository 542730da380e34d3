import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Procedure } from './dsl.js';
import { ShellCommand } from './shell.js';

/**
 * A fingerprint of a procedure's definition as loaded: its argument schema, and every step with
 * what it runs, functions by their source text. Two processes that loaded the same definition
 * the same way agree on it; any change to a step (an id, a command, a condition) changes it. A
 * run keeps it, for the record, with its step tree's (`treeFingerprint`), which a resume compares.
 */
export function fingerprint(proc: Procedure): string {
  const { args, ...rest } = proc;
  return hash({ ...rest, args: z.toJSONSchema(args, { unrepresentable: 'any', io: 'input' }) }, (f) => `fn ${f.toString()}`);
}

const trees = new WeakMap<object, string>();

/**
 * A fingerprint of a procedure's step tree, steps and finally steps: ids, kinds, risks, order,
 * nesting, and every option given as a value (a fixed command or statement, intervals, exit codes,
 * flags); a function counts as being there, not by its text. A run resumed under another step tree
 * asks a person first (engine/machine.ts). Unlike `fingerprint`, builds of the same source agree on
 * it (the text of compiled functions differs between tsc and a test runner's transform), so every
 * process of a deployment does, whatever compiled it.
 */
export function treeFingerprint(proc: { steps: readonly unknown[]; finally?: readonly unknown[] | undefined }): string {
  let fp = trees.get(proc);
  if (!fp) trees.set(proc, (fp = hash({ steps: proc.steps, finally: proc.finally ?? [] }, () => 'fn')));
  return fp;
}

function hash(value: unknown, fn: (f: (...a: unknown[]) => unknown) => string): string {
  const text = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'function') return fn(v as (...a: unknown[]) => unknown);
    if (v instanceof RegExp) return `re ${v.toString()}`;
    // What people see of a command: a secret() in it stays out of even a hash's input.
    if (v instanceof ShellCommand) return `sh ${v.display}`;
    return v;
  });
  return `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
}
