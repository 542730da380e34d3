import { z } from 'zod';
import { NotFoundError, UsageError } from '../errors.js';
import { nearest, type Inventory } from '../inventory.js';
import { procedureId, type Procedure } from './dsl.js';
import { fingerprint } from './fingerprint.js';

/** Splits a command line into words: double or single quotes group, backslash escapes. */
export function tokenize(text: string): string[] {
  return words(text).map((w) => w.word);
}

/**
 * `tokenize`, splitting off what follows the first standalone, unquoted `--`: that part is returned
 * exactly as typed (trimmed), for a procedure's `rest` argument. `undefined` when there is no `--`.
 */
export function tokenizeRest(text: string): { words: string[]; rest: string | undefined } {
  const all = words(text);
  const i = all.findIndex((w) => w.word === '--' && text.slice(w.start, w.end) === '--');
  if (i < 0) return { words: all.map((w) => w.word), rest: undefined };
  return { words: all.slice(0, i).map((w) => w.word), rest: text.slice(all[i]!.end).trim() };
}

function words(text: string): { word: string; start: number; end: number }[] {
  const words: { word: string; start: number; end: number }[] = [];
  let cur = '';
  let inWord = false;
  let start = 0;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (!quote && !inWord && !/\s/.test(c)) start = i;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push({ word: cur, start, end: i });
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new UsageError(`unclosed ${quote === '"' ? 'double' : 'single'} quote in "${text}"`);
  if (inWord) words.push({ word: cur, start, end: text.length });
  return words;
}

const WRAPPERS = ['optional', 'default', 'nullable', 'prefault', 'pipe', 'readonly'];

/**
 * An argument's schema inside zod's wrappers (optional, default, …), and the first description
 * met on the way in: what the parser and the chat adapters read to know an argument's type.
 */
export function unwrapSchema(schema: z.ZodType): { inner: z.ZodType; description?: string } {
  let t = schema;
  let description = t.description;
  for (;;) {
    const def = (t as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
    if (!def.innerType || !WRAPPERS.includes(def.type)) return { inner: t, ...(description ? { description } : {}) };
    t = def.innerType;
    description ??= t.description;
  }
}

function describeShape(shape: z.ZodType): 'boolean' | 'array' | 'number' | 'string' {
  const type = (unwrapSchema(shape).inner as unknown as { def: { type: string } }).def.type;
  return type === 'boolean' || type === 'array' || type === 'number' ? type : 'string';
}

export interface ParsedCommand {
  procedure: Procedure;
  args: Record<string, unknown>;
}

/** Where a procedure's definition comes from: the bot itself, or a pack file of the operator's. */
export interface ProcedureOrigin {
  /** `built-in`, or the absolute path of the pack's module that defined it. */
  file: string;
  /** The pack directory or module named in runbook.yaml `packs` or RUNBOOK_PACKS; absent for built-ins. */
  pack?: string;
  /** Set when this definition replaces the bot's own procedure of the same name. */
  replaces?: true;
}

/** The procedures the bot knows, by `<pack> <name>`, and the parser of what people type. */
export class Catalog {
  private readonly byId = new Map<string, Procedure>();
  private readonly origins: ReadonlyMap<string, ProcedureOrigin>;
  private readonly fingerprints = new Map<string, string>();

  /** `origins` by procedure id; a procedure without one is built in. */
  constructor(procedures: Procedure[], origins: ReadonlyMap<string, ProcedureOrigin> = new Map()) {
    for (const p of procedures) {
      const id = procedureId(p);
      if (this.byId.has(id)) throw new Error(`two procedures are called "${id}"`);
      this.byId.set(id, p);
    }
    this.origins = origins;
  }

  /** Where the procedure was defined, and a fingerprint of its definition (see fingerprint.ts). */
  origin(id: string): ProcedureOrigin & { fingerprint: string } {
    const p = this.require(id);
    let fp = this.fingerprints.get(id);
    if (fp === undefined) this.fingerprints.set(id, (fp = fingerprint(p)));
    return { ...(this.origins.get(id) ?? { file: 'built-in' }), fingerprint: fp };
  }

  all(): Procedure[] {
    return [...this.byId.values()];
  }

  packs(): string[] {
    return [...new Set(this.all().map((p) => p.pack))];
  }

  inPack(pack: string): Procedure[] {
    return this.all().filter((p) => p.pack === pack);
  }

  get(id: string): Procedure | undefined {
    return this.byId.get(id);
  }

  require(id: string): Procedure {
    const p = this.byId.get(id);
    if (!p) throw new NotFoundError(`no procedure "${id}" in this version of the bot`, { procedure: id });
    return p;
  }

  /** Finds the procedure named by the first two words, or says what was meant. */
  resolve(words: string[]): Procedure {
    const [pack, name] = words;
    if (!pack) throw new UsageError(`say what to run: <pack> <procedure> [arguments]. Packs: ${this.packs().join(', ')}. Try "${this.packs()[0] ?? 'ovs'} help".`);
    if (!this.packs().includes(pack)) {
      const guess = nearest(pack, this.packs());
      throw new UsageError(`unknown pack "${pack}"${guess.length ? `; did you mean ${guess.map((g) => `"${g}"`).join(' or ')}?` : ''} Packs: ${this.packs().join(', ')}.`, { pack });
    }
    const names = this.inPack(pack).map((p) => p.name);
    if (!name) throw new UsageError(`say which procedure of ${pack}: ${names.join(', ')}. "${pack} help <procedure>" explains one.`, { pack });
    const proc = this.byId.get(`${pack} ${name}`);
    if (!proc) {
      const guess = nearest(name, names);
      throw new UsageError(`"${pack} ${name}" is not a procedure${guess.length ? `; did you mean ${guess.map((g) => `"${pack} ${g}"`).join(' or ')}?` : '.'} Procedures of ${pack}: ${names.join(', ')}.`, { pack, name });
    }
    return proc;
  }

  /**
   * `ovs flush node-3`, `ovs flush --node node-3`, `ovs flush node:node-3` (Discord's form) and
   * `ovs flush node=node-3` all give `{ node: 'node-3' }`. Host arguments are checked against the
   * inventory; without one (a pack's examples, checked before any runbook.yaml) they are not.
   */
  parse(text: string, inventory?: Inventory): ParsedCommand {
    const split = tokenizeRest(text.trim());
    const proc = this.resolve(split.words);
    // `--` ends the options only for a procedure that takes a verbatim rest (an ad-hoc command).
    const words = proc.rest || split.rest === undefined ? split.words : tokenize(text.trim());
    const shape = proc.args.shape as Record<string, z.ZodType>;
    const kinds = Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, describeShape(v)]));
    const raw: Record<string, unknown> = {};
    const positional: string[] = [];
    const known = (key: string) => {
      if (proc.internal?.includes(key)) throw new UsageError(`"${kebab(key)}" is set by the bot, not given\nUsage: ${proc.usage}`, { procedure: procedureId(proc) });
      if (key in shape) return;
      const guess = nearest(key, Object.keys(shape));
      throw new UsageError(`"${procedureId(proc)}" has no option "${kebab(key)}"${guess.length ? `; did you mean "${kebab(guess[0]!)}"?` : ''}\nUsage: ${proc.usage}`, { procedure: procedureId(proc) });
    };
    const put = (key: string, v: string | boolean) => {
      known(key);
      if (kinds[key] === 'array') raw[key] = [...((raw[key] as unknown[]) ?? []), ...String(v).split(',').filter(Boolean)];
      else if (kinds[key] === 'number' && typeof v === 'string') raw[key] = Number(v);
      else raw[key] = v;
    };
    const rest = words.slice(2);
    for (let i = 0; i < rest.length; i++) {
      const w = rest[i]!;
      const long = /^--([a-zA-Z][\w-]*)(?:=(.*))?$/.exec(w);
      const colon = /^([a-zA-Z][\w-]*)[:=](.+)$/.exec(w);
      if (long) {
        const key = camel(long[1]!);
        known(key);
        if (long[2] !== undefined) put(key, long[2]);
        else if (kinds[key] === 'boolean') put(key, true);
        else {
          const next = rest[i + 1];
          if (next === undefined || next.startsWith('--')) throw new UsageError(`option --${long[1]} needs a value\nUsage: ${proc.usage}`, { procedure: procedureId(proc) });
          put(key, next);
          i++;
        }
      } else if (colon && camel(colon[1]!) in shape) {
        put(camel(colon[1]!), colon[2]!);
      } else positional.push(w);
    }
    if (proc.rest && split.rest !== undefined) {
      if (raw[proc.rest] !== undefined) throw new UsageError(`<${kebab(proc.rest)}> is given twice: as an option and after "--"\nUsage: ${proc.usage}`, { procedure: procedureId(proc) });
      if (split.rest) raw[proc.rest] = split.rest;
    }
    const slots = proc.positional.filter((k) => raw[k] === undefined);
    for (const [i, w] of positional.entries()) {
      const key = slots[i] ?? slots.filter((k) => kinds[k] === 'array').at(-1);
      if (!key) throw new UsageError(`too many arguments: "${w}" is not expected\nUsage: ${proc.usage}`, { procedure: procedureId(proc) });
      put(key, w);
    }
    const parsed = proc.args.safeParse(raw);
    if (!parsed.success) {
      const lines = parsed.error.issues.map((iss) => {
        const key = String(iss.path[0] ?? '');
        if (raw[key] === undefined && key) return `missing <${kebab(key)}>`;
        return `${key ? `<${kebab(key)}> ` : ''}${iss.message}`;
      });
      throw new UsageError(`${lines.join('; ')}\nUsage: ${proc.usage}\nExample: ${proc.examples[0] ?? proc.usage}`, { procedure: procedureId(proc) });
    }
    const args = parsed.data as Record<string, unknown>;
    if (!inventory) return { procedure: proc, args };
    for (const [arg, spec] of Object.entries(proc.hosts ?? {})) {
      const v = args[arg];
      const names = Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)];
      const fits = inventory.inGroups(spec?.groups).map((h) => h.name);
      for (const n of names) {
        if (fits.includes(n)) continue;
        const what = spec?.groups?.length ? `hosts in ${spec.groups.map((g) => `@${g}`).join(' or ')}` : 'hosts';
        if (inventory.has(n)) throw new UsageError(`"${n}" cannot be the <${kebab(arg)}> of ${procedureId(proc)}: it is not in ${spec?.groups?.map((g) => `@${g}`).join(' or ')}. The ${what} are: ${fits.join(', ') || '(none)'}`, { procedure: procedureId(proc), host: n });
        const guess = nearest(n, fits);
        throw new UsageError(`unknown host "${n}"${guess.length ? `; did you mean ${guess.map((g) => `"${g}"`).join(' or ')}?` : ''} The ${what} are: ${fits.join(', ') || '(none in runbook.yaml)'}`, { procedure: procedureId(proc), host: n });
      }
    }
    return { procedure: proc, args };
  }

  /** `ovs help` and `ovs help flush`. */
  help(pack?: string, name?: string): string {
    if (!pack) return this.packs().map((p) => this.help(p)).join('\n\n');
    const procs = this.inPack(pack);
    if (procs.length === 0) return this.resolve([pack]).usage;
    if (name) {
      const p = this.resolve([pack, name]);
      return [`${p.usage}`, `  ${p.summary}`, ...p.examples.map((e) => `  e.g. ${e}`), `  from ${p.source}`].join('\n');
    }
    return [`${pack}:`, ...procs.map((p) => `  ${p.usage.padEnd(44)} ${p.summary}`)].join('\n');
  }
}

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** `blockMigrate` → `block-migrate`: an argument's option name. */
export function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
