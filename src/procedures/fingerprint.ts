import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Procedure } from './dsl.js';
import { ShellCommand } from './shell.js';

/**
 * A fingerprint of a procedure's definition as loaded: its argument schema, and every step with
 * what it runs, functions by their source text. Two processes that loaded the same definition
 * agree on it; any change to a step (an id, a command, a condition) changes it. A run keeps the
 * fingerprint it was planned from, so a resume can tell the definition changed under it.
 */
export function fingerprint(proc: Procedure): string {
  const { args, ...rest } = proc;
  const text = JSON.stringify({ ...rest, args: z.toJSONSchema(args, { unrepresentable: 'any', io: 'input' }) }, (_key, value: unknown) => {
    if (typeof value === 'function') return `fn ${value.toString()}`;
    if (value instanceof RegExp) return `re ${value.toString()}`;
    // What people see of a command: a secret() in it stays out of even a hash's input.
    if (value instanceof ShellCommand) return `sh ${value.display}`;
    return value;
  });
  return `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
}
