/**
 * What makes a procedure loadable, and usable from every way in: the rules the DSL's own types
 * state (a pack may be plain JavaScript, or a TypeScript file never type-checked), the chat
 * platforms' limits on names, and the rules that keep commands safe (a command is built by `sh`).
 * Slack and Discord name commands alike: lower case, at most 32 characters; Discord allows 25
 * subcommands per command and 25 options per subcommand (its API reference, "Application
 * Commands": name `^[-_\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$`, lower case).
 */
import { z } from 'zod';
import { kebab } from '../procedures/catalog.js';
import { stepIdProblems, type Procedure, type Step } from '../procedures/dsl.js';
import { ShellCommand } from '../procedures/shell.js';

/** Discord's (and Slack's) longest command and option name. */
export const NAME_MAX = 32;
/** Discord: subcommands of a command, options of a subcommand. */
export const SUBCOMMANDS_MAX = 25;
export const OPTIONS_MAX = 25;
/** Subcommands every pack has besides its procedures (see adapters/discord/commands.ts). */
const BUILTIN_SUBCOMMANDS = ['help', 'status', 'cancel'];

/** A pack's or procedure's name: a chat command's word. */
export const WORD = /^[a-z][a-z0-9-]*$/;
const ARG = /^[a-z][a-zA-Z0-9]*$/;
const RISKS = ['read', 'write', 'destructive', 'sensitive'];
const KINDS = ['ssh', 'sql', 'poll', 'manual', 'report', 'forEach', 'group'];

const isFn = (v: unknown) => typeof v === 'function';
const text = (v: unknown) => typeof v === 'string' || isFn(v);

/** Problems of one step and the steps inside it; `at` is its path. */
function stepProblems(s: Step, at: string): string[] {
  const p: string[] = [];
  const need = (ok: boolean, what: string): boolean => {
    if (!ok) p.push(`step ${at}: ${what}`);
    return ok;
  };
  need(KINDS.includes(s.kind), `kind "${String(s.kind)}" is not one of ${KINDS.join(', ')}`);
  need(RISKS.includes(s.risk), `risk "${String(s.risk)}" is not one of ${RISKS.join(', ')}`);
  need(text(s.title), 'needs a title (the runbook page\'s words)');
  // A command is built by sh`…`, which quotes every value: a plain string would run unquoted.
  const command = (c: unknown) => need(c instanceof ShellCommand || isFn(c), 'its command must be built with sh`…` (or a function returning one), never a plain string');
  switch (s.kind) {
    case 'ssh':
      need(text(s.host), 'needs a host');
      command(s.command);
      break;
    case 'poll':
      need(text(s.host), 'needs a host');
      command(s.command);
      need(typeof s.capture?.parse === 'function', 'needs a capture (parse.json(), parse.text(), …) for its until to read');
      need(isFn(s.until), 'needs until: (value, ctx) => boolean');
      need(Number.isFinite(s.intervalMs) && s.intervalMs > 0 && Number.isFinite(s.timeoutMs) && s.timeoutMs > 0, 'needs intervalMs and timeoutMs, in milliseconds');
      break;
    case 'sql':
      need(text(s.database), 'needs a database');
      need(text(s.statement), 'needs a statement');
      break;
    case 'manual':
      need(text(s.instructions), 'needs instructions');
      break;
    case 'report':
      need(s.risk === 'read', 'is a report, so its risk is read');
      need(isFn(s.text), 'needs text: (ctx) => string');
      break;
    case 'forEach':
      need(isFn(s.items) && isFn(s.key), 'needs items: (ctx) => [...] and key: (item) => string');
      break;
  }
  if ((s.kind === 'forEach' || s.kind === 'group') && need(Array.isArray(s.steps), 'needs steps')) {
    for (const inner of s.steps) p.push(...stepProblems(inner, `${at}.${inner.id}`));
  }
  return p;
}

/** Everything wrong with one procedure, each a sentence; empty when it is fine. */
export function procedureProblems(proc: Procedure): string[] {
  const p: string[] = [];
  for (const key of ['pack', 'name'] as const) {
    const v: unknown = proc[key];
    if (typeof v !== 'string' || !WORD.test(v)) p.push(`${key} "${String(v)}" must be lower-case words joined by "-" (it is a chat command)`);
    else if (v.length > NAME_MAX) p.push(`${key} "${v}" is longer than ${NAME_MAX} characters, Slack's and Discord's limit for a command`);
  }
  for (const key of ['summary', 'usage', 'source'] as const) if (typeof proc[key] !== 'string' || !proc[key]) p.push(`needs a ${key}`);
  if (!Array.isArray(proc.examples) || proc.examples.some((e) => typeof e !== 'string')) p.push('examples must be a list of commands');
  if (!(proc.args instanceof z.ZodObject)) {
    p.push("args must be a z.object({...}) made with runbook-bot/dsl's z");
    return p;
  }
  const keys = Object.keys(proc.args.shape);
  for (const k of keys) {
    if (!ARG.test(k)) p.push(`argument "${k}" must be a camelCase name (it becomes the option --${kebab(k)})`);
    else if (kebab(k).length > NAME_MAX) p.push(`argument "${k}" gives the option name "${kebab(k)}", longer than Discord's ${NAME_MAX} characters`);
  }
  const offered = keys.filter((k) => !proc.internal?.includes(k));
  if (offered.length > OPTIONS_MAX) p.push(`${offered.length} arguments: Discord offers at most ${OPTIONS_MAX} options per command`);
  const known = (list: unknown, what: string) => {
    for (const k of Array.isArray(list) ? list : list === undefined ? [] : [list]) if (!keys.includes(String(k))) p.push(`${what} names "${String(k)}", which is not an argument (${keys.join(', ') || 'none'})`);
  };
  known(proc.positional, 'positional');
  known(proc.internal, 'internal');
  known(proc.rest, 'rest');
  known(Object.keys(proc.hosts ?? {}), 'hosts');
  if (!Array.isArray(proc.steps) || proc.steps.length === 0) p.push('needs at least one step');
  else {
    p.push(...stepIdProblems(proc));
    for (const s of [...proc.steps, ...(proc.finally ?? [])]) p.push(...stepProblems(s, s.id));
  }
  return p;
}

/** What is wrong with a pack as one chat command: its procedures, as Discord's subcommands. */
export function packProblems(pack: string, procs: readonly Procedure[]): string[] {
  const subcommands = new Set([...procs.map((p) => p.name), ...BUILTIN_SUBCOMMANDS]);
  return subcommands.size > SUBCOMMANDS_MAX
    ? [`pack ${pack} has ${procs.length} procedures: with help, status and cancel that is ${subcommands.size} subcommands, and Discord allows ${SUBCOMMANDS_MAX} per command; split it into two packs`]
    : [];
}
