import type { z } from 'zod';
import type { PolicyConfig, Risk } from '../config/runbook-config.js';
import type { Inventory, InventoryHost } from '../inventory.js';
import { FACTS_PROBE, parseFacts, type HostFacts } from './facts.js';
import type { ShellCommand } from './shell.js';

export type { Risk };
export { sh, raw, secret, quote, ShellCommand } from './shell.js';
export { describeFacts, type HostFacts, type InitSystem, type KnownFacts } from './facts.js';

/**
 * Thrown by a step's function for a value the plan cannot know before the run (a forEach item, a
 * capture): the plan then shows the step as known at run time. Planning throws it for every such
 * step of every command, so it is made without a stack trace, which would cost more than the rest
 * of the step's rendering and which nobody reads.
 */
export class KnownAtRunTime extends Error {
  constructor(message = 'known at run time') {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'KnownAtRunTime';
  }
}

/**
 * The forEach item a step runs for; while planning there is none yet, and the step shows as known
 * at run time. Inside `forEach({...})` its type is the items' (`forEachItem(ctx).name`); in a
 * forEach written as a literal, say it (`forEachItem<Server>(ctx)`).
 */
export function forEachItem<T>(ctx: StepContext<any, T>): T;
export function forEachItem<T = unknown>(ctx: StepContext<any, unknown>): T;
export function forEachItem(ctx: StepContext<any, unknown>): unknown {
  if (ctx.item === undefined) throw new KnownAtRunTime();
  return ctx.item;
}

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled' | 'waiting' | 'interrupted';

/** What a step's functions see: the run's arguments, the inventory, and what earlier steps captured. */
export interface StepContext<A = Record<string, unknown>, I = unknown> {
  readonly args: A;
  readonly inventory: Inventory;
  /**
   * The forEach item this step runs for: undefined outside a forEach, and while the plan is drawn
   * before the run (a step that reads it then shows as known at run time; `forEachItem(ctx)` says so
   * without an error).
   */
  readonly item: I;
  /** Capture of a step, looked up in the innermost scope first (`'info'` inside a forEach, `'list'` at the top). */
  capture<T = unknown>(stepId: string): T;
  /** Status of a step, looked up like `capture`; `pending` if it never started. */
  status(stepId: string): StepStatus;
  /** Inventory host by name; throws if unknown. */
  host(name: string): InventoryHost;
  /**
   * What a `detectFacts` step learnt of a host (service manager, Python), or what an earlier run
   * learnt of it (the plan then shows the variant at once). Until then the step that asks is known
   * at run time, "after detecting <host>".
   */
  facts(host: string): HostFacts;
  /**
   * The schema a configured database points at, backquoted for SQL (`\`nova\``): the runbooks join
   * across databases (`cinder.volumes … nova.instances`), and a deployment may name them otherwise.
   */
  db(name: string): string;
}

/** A value fixed in the procedure, or computed from the context when the step is about to run. */
export type V<T, A = any, I = unknown> = T | ((ctx: StepContext<A, I>) => T);

/** Turns a step's output into a value later steps read with `ctx.capture(id)`. */
export interface Parser<T = unknown> {
  readonly name: string;
  parse(stdout: string): T;
}

export const parse = {
  json<T = unknown>(): Parser<T> {
    return { name: 'json', parse: (s) => JSON.parse(s) as T };
  },
  lines(): Parser<string[]> {
    return { name: 'lines', parse: (s) => s.split('\n').map((l) => l.trimEnd()).filter((l) => l.length > 0) };
  },
  text(): Parser<string> {
    return { name: 'text', parse: (s) => s.trim() };
  },
  /** First match of `re`: its named groups, or throws if nothing matches. */
  regex<T extends Record<string, string> = Record<string, string>>(re: RegExp): Parser<T> {
    return {
      name: `regex ${re}`,
      parse: (s) => {
        const m = re.exec(s);
        if (!m) throw new Error(`output does not match ${re}`);
        return { ...(m.groups ?? {}) } as T;
      },
    };
  },
  /** Every match of a global `re`, as the named groups of each. */
  matches<T extends Record<string, string> = Record<string, string>>(re: RegExp): Parser<T[]> {
    const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
    return { name: `matches ${re}`, parse: (s) => [...s.matchAll(g)].map((m) => ({ ...(m.groups ?? {}) }) as T) };
  },
  /** Applies `fn` to the result of `inner`. */
  map<I, O>(inner: Parser<I>, fn: (value: I) => O): Parser<O> {
    return { name: inner.name, parse: (s) => fn(inner.parse(s)) };
  },
};

interface StepBase<A, I> {
  /** Unique within its list; forms the step's path (`flush[vd-3-01].snapshot`). */
  id: string;
  /** The runbook page's words. */
  title: V<string, A, I>;
  risk: Risk;
  /** Run only when this holds; otherwise the step is skipped with the reason "condition not met". */
  when?: (ctx: StepContext<A, I>) => boolean;
  /** A refusal: return a reason to stop the run before this step (a runbook's safety rule as code). */
  guard?: (ctx: StepContext<A, I>) => string | undefined;
  /**
   * May run again after a crash interrupted it. Default: true for `read` steps, false otherwise;
   * an interrupted non-idempotent step waits for a person to choose retry, skip or abort.
   */
  idempotent?: boolean;
}

/** What runs where a real host and the runbook page differ: shown beside the command that runs. */
interface Variant<A, I> {
  /**
   * The page's own command (or SQL) when what runs differs from it: the plan, the thread and the
   * approval show it as the reference the step stands for. Never run.
   */
  reference?: V<string, A, I>;
  /** Which variant runs (`systemd`, `cinder ≥ Kilo`), said in the plan and the thread. */
  variant?: V<string, A, I>;
}

/** What `keepOutput` keeps of an ssh step, whatever its outcome: `ctx.capture(id)` reads it. */
export interface KeptOutput {
  exitCode: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
  /** Why there is no exit code: the host could not be reached, the command timed out. */
  error?: string;
  /** True when stdout or stderr was longer than KEPT_OUTPUT_CHARS and its start was dropped. */
  truncated: boolean;
}

export interface SshStep<A = any, I = unknown> extends StepBase<A, I>, Variant<A, I> {
  kind: 'ssh';
  host: V<string, A, I>;
  command: V<ShellCommand, A, I>;
  /**
   * A script body sent on the command's standard input, then end-of-file: for `python3 -` or
   * `bash -s`. A literal of the procedure, never built from input (values go in the command's
   * arguments, through \`sh\`). Shown whole in the plan, the approval and the audit, and covered by
   * the approval's hash. Without it the command's input is closed at once, as \`ssh host cmd
   * </dev/null\`: a program that waits for input reads end-of-file instead of hanging.
   */
  stdin?: V<string, A, I>;
  /**
   * A file on the host to fetch once the command succeeded (over the same connection) and attach
   * to the step's message in the thread; may read this step's own capture. Bounded in size: a
   * larger file is not fetched and the step says so.
   */
  attach?: V<string, A, I>;
  /** Set by `detectFacts`: the capture is the host's facts, kept for `ctx.facts(host)`. */
  detects?: boolean;
  capture?: Parser;
  /**
   * Keep stdout, stderr and the exit code as the step's capture even when it fails (ad-hoc commands
   * gather every host's result). Not with `capture`.
   */
  keepOutput?: boolean;
  /** Default: the config's `ssh.commandTimeoutMs`. */
  timeoutMs?: V<number, A, I>;
  /** Exit codes that count as success. Default [0]. */
  okExitCodes?: number[];
}

export interface SqlStep<A = any, I = unknown> extends StepBase<A, I>, Variant<A, I> {
  kind: 'sql';
  database: V<string, A, I>;
  /** With `?` placeholders; values only ever go in `params` (a function only to name schemas: `ctx.db('nova')`). */
  statement: V<string, A, I>;
  params?: V<unknown[], A, I>;
  /** Bounds on rows affected; outside them the transaction is rolled back and the step fails. */
  expect?: V<{ min?: number; max?: number }, A, I>;
  /** A SELECT of the rows the statement will touch, shown in the approval request. */
  preview?: { statement: V<string, A, I>; params?: V<unknown[], A, I> };
  /** Keep the result rows (SELECT) as the step's capture. */
  capture?: boolean;
}

export interface PollStep<A = any, I = unknown> extends StepBase<A, I>, Variant<A, I> {
  kind: 'poll';
  host: V<string, A, I>;
  command: V<ShellCommand, A, I>;
  /** As for an ssh step: a script body on standard input, sent again at every check. */
  stdin?: V<string, A, I>;
  capture: Parser;
  until: (value: any, ctx: StepContext<A, I>) => boolean;
  intervalMs: number;
  timeoutMs: number;
  /** Said in the thread while waiting (the page's "Sleeping 5 seconds until …"). */
  waiting?: V<string, A, I>;
  /**
   * A check that fails (cannot connect, exits non-zero, prints something unreadable) counts as
   * "not yet" instead of failing the step: waiting for a rebooted host to answer SSH. Default false.
   */
  untilReachable?: boolean;
}

export interface ManualStep<A = any, I = unknown> extends StepBase<A, I> {
  kind: 'manual';
  /** What the person must do, in the page's words; they press Done when it is done. */
  instructions: V<string, A, I>;
}

/**
 * Fans out over the items an earlier step found. Written as a literal its items are `unknown` to
 * the steps inside (`forEachItem<Server>(ctx)` names them); written with `s.forEach(...)` (see
 * StepKit) their type is the one `items` returns, in `key`, `label` and every step inside.
 */
export interface ForEachStep<A = any, I = unknown, T = unknown> extends StepBase<A, I> {
  kind: 'forEach';
  items: (ctx: StepContext<A, I>) => readonly T[];
  /** Stable key of an item, part of its steps' paths. */
  key(item: T): string;
  label?(item: T): string;
  /** Items run at once. Default 1. */
  concurrency?: V<number, A, I>;
  /**
   * Go on with the other items when one fails (each instance rebooted, each host asked), then end
   * failed. Default false: the first failure stops new items from starting.
   */
  continueOnError?: boolean;
  steps: Step<A, T>[];
}

/**
 * A result computed from what earlier steps did, touching nothing: its text is the step's output
 * (a gathered summary, a comparison). Always `read`.
 */
export interface ReportStep<A = any, I = unknown> extends StepBase<A, I> {
  kind: 'report';
  risk: 'read';
  text: (ctx: StepContext<A, I>) => string;
}

/** Steps approved together: one gate shows every command inside, then they run in order. */
export interface GroupStep<A = any, I = unknown> extends StepBase<A, I> {
  kind: 'group';
  steps: Step<A, I>[];
}

/** A step of a procedure whose arguments are `A`, inside a forEach whose item is `I` (unknown at the top). */
export type Step<A = any, I = unknown> = SshStep<A, I> | SqlStep<A, I> | PollStep<A, I> | ManualStep<A, I> | ReportStep<A, I> | ForEachStep<A, I> | GroupStep<A, I>;

/** What `detectFacts` needs: the host to ask, and optionally its own id, title and condition. */
export interface DetectFacts<A, I> {
  host: V<string, A, I>;
  /** Default `detect`. */
  id?: string;
  title?: V<string, A, I>;
  when?: StepBase<A, I>['when'];
}

/**
 * A read-only step that asks `host` what differs between real hosts (service manager, Python) and
 * keeps the answer for `ctx.facts(host)` (see facts.ts). Runs again after a crash.
 */
export function detectFacts<A = any, I = unknown>(o: DetectFacts<A, I>): SshStep<A, I> {
  return {
    kind: 'ssh',
    id: o.id ?? 'detect',
    title: o.title ?? ((ctx: StepContext<A, I>) => `Detect the service manager and Python on ${typeof o.host === 'function' ? o.host(ctx) : o.host}`),
    risk: 'read',
    host: o.host,
    command: FACTS_PROBE,
    capture: { name: 'host facts', parse: parseFacts },
    detects: true,
    ...(o.when ? { when: o.when } : {}),
  };
}

/**
 * Steps as a list, or as `(s) => [...]`: then `s` already knows the procedure's arguments (and,
 * inside `s.forEach`, the item), so the steps it builds need no annotation. TypeScript infers a
 * type inside a function only once what it depends on is known; a list of calls is read too early.
 */
export type StepList<A, I = unknown> = Step<A, I>[] | ((s: StepKit<A, I>) => Step<A, I>[]);

/** The step builders of `(s) => [...]`, typed to the procedure's arguments `A` and the item `I`. */
export interface StepKit<A, I = unknown> {
  /**
   * A forEach step whose items keep their type: `T` is what `items` returns, and `key`, `label` and
   * the steps inside read it as `ctx.item`.
   */
  forEach<T>(step: Omit<ForEachStep<A, I, T>, 'kind' | 'steps'>, steps: StepList<A, T>): ForEachStep<A, I>;
  detectFacts(o: DetectFacts<A, I>): SshStep<A, I>;
}

const kit: StepKit<any, any> = {
  // The engine hands each step inside the item `items` returned for it: T holds where the type forgets it.
  forEach: (step, steps) => ({ kind: 'forEach', ...step, steps: stepList(steps) }) as ForEachStep,
  detectFacts,
};

function stepList<A, I>(steps: StepList<A, I>): Step<A, I>[] {
  return typeof steps === 'function' ? steps(kit) : steps;
}

export interface HostArg {
  /** The host must be in one of these inventory groups. */
  groups?: string[];
}

export interface LockSpec {
  host: string;
  mode: 'read' | 'write';
}

export interface ResolveTools {
  /** A read-only SELECT on a configured database, with bound parameters. */
  query(database: string, statement: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  inventory: Inventory;
  /** `policy` of runbook.yaml (e.g. the read-only and forbidden command patterns). */
  policy: PolicyConfig;
}

/** Everything of a procedure but its steps. */
export interface ProcedureHeader<S extends z.ZodObject<any> = z.ZodObject<any>> {
  pack: string;
  name: string;
  summary: string;
  /** `ovs flush <node>` */
  usage: string;
  examples: string[];
  /** The runbook page and section it follows. */
  source: string;
  /**
   * What the procedure needs on its hosts (an interpreter, a library, the service manager it asks)
   * and the releases it was checked against: `help` says it under the procedure.
   */
  requires?: { host: string; checked: string };
  args: S;
  /** Argument names in the order they may be given without a name. */
  positional: (keyof z.infer<S> & string)[];
  /**
   * Arguments only `resolve` sets (e.g. the risk of an ad-hoc command, from the policy): a person
   * cannot give them, and chat adapters do not offer them.
   */
  internal?: (keyof z.infer<S> & string)[];
  /**
   * The argument that takes everything after a standalone `--`, verbatim (an ad-hoc command:
   * `ops exec node-[1-3] -- initctl list`). Without it, `--` is an ordinary word.
   */
  rest?: keyof z.infer<S> & string;
  /** Arguments that name inventory hosts, and which hosts they accept. */
  hosts?: Partial<Record<keyof z.infer<S> & string, HostArg>>;
  /** Read-only look-ups done at intake, before the plan (e.g. which compute node runs an instance). */
  resolve?: (args: z.infer<S>, tools: ResolveTools) => Promise<z.infer<S>>;
  /** Refuse the whole procedure: return the reason. */
  guard?: (ctx: StepContext<z.infer<S>>) => string | undefined;
  /** Hosts the run holds while it lasts. Default: every host argument, `write` unless all steps are `read`. */
  locks?: (ctx: StepContext<z.infer<S>>) => LockSpec[];
  /** Said in the plan (e.g. "the whole cluster goes down on purpose"). */
  notes?: (ctx: StepContext<z.infer<S>>) => string[];
}

export interface Procedure<S extends z.ZodObject<any> = z.ZodObject<any>> extends ProcedureHeader<S> {
  steps: Step<z.infer<S>>[];
  /** Always run at the end, after success, failure, rejection, expiry or cancellation. Never gated. */
  finally?: Step<z.infer<S>>[];
}

/** What `procedure()` takes: its steps as lists, or as `(s) => [...]` (see StepList). */
export interface ProcedureDefinition<S extends z.ZodObject<any> = z.ZodObject<any>> extends ProcedureHeader<S> {
  steps: StepList<z.infer<S>>;
  /** Always run at the end, after success, failure, rejection, expiry or cancellation. Never gated. */
  finally?: StepList<z.infer<S>>;
}

export function procedure<S extends z.ZodObject<any>>(definition: ProcedureDefinition<S>): Procedure<S> {
  const { steps, finally: last, ...header } = definition;
  const def: Procedure<S> = { ...header, steps: stepList(steps), ...(last ? { finally: stepList(last) } : {}) };
  const problem = stepIdProblems(def)[0];
  if (problem) throw new Error(`${def.pack} ${def.name}: ${problem}`);
  return def;
}

/** What is wrong with the step ids of a procedure: each id is a word, unique in its list and across steps and finally. */
export function stepIdProblems(def: { steps: Step[]; finally?: Step[] | undefined }): string[] {
  const problems: string[] = [];
  const check = (steps: Step[], where: string) => {
    const ids = new Set<string>();
    for (const s of steps) {
      if (typeof s.id !== 'string' || !/^[a-z][a-z0-9-]*$/.test(s.id)) problems.push(`step id "${String(s.id)}" must be lower-case words joined by "-"`);
      else if (ids.has(s.id)) problems.push(`duplicate step id "${s.id}" in ${where}`);
      ids.add(s.id);
      if ((s.kind === 'forEach' || s.kind === 'group') && Array.isArray(s.steps)) check(s.steps, s.id);
    }
  };
  check(def.steps, 'steps');
  check(def.finally ?? [], 'finally');
  const top = new Set(def.steps.map((s) => s.id));
  for (const s of def.finally ?? []) if (top.has(s.id)) problems.push(`step id "${s.id}" is used in both steps and finally`);
  return problems;
}

export const procedureId = (p: Pick<Procedure, 'pack' | 'name'>): string => `${p.pack} ${p.name}`;
