/**
 * Slash commands from the procedure catalog: one command per pack, a subcommand per procedure with
 * typed options from its zod schema, and the way back from Discord's options to the text form the
 * catalog parses (`flush node:node-3`).
 */
import {
  ApplicationCommandOptionType,
  ApplicationCommandType,
  InteractionContextType,
  type APIApplicationCommandAutocompleteInteraction,
  type APIApplicationCommandBasicOption,
  type APIApplicationCommandInteractionDataBasicOption,
  type APIApplicationCommandInteractionDataOption,
  type APIApplicationCommandOptionChoice,
  type APIApplicationCommandSubcommandOption,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { z } from 'zod';
import type { Inventory } from '../../inventory.js';
import { kebab, unwrapSchema, type Catalog } from '../../procedures/catalog.js';
import type { Procedure } from '../../procedures/dsl.js';

/** Discord's limits on names, descriptions and choices. */
const NAME_MAX = 32;
const DESCRIPTION_MAX = 100;
const CHOICES_MAX = 25;

type OptionKind = 'string' | 'number' | 'integer' | 'boolean' | 'array';

interface SchemaInfo {
  kind: OptionKind;
  required: boolean;
  description?: string;
  choices?: string[];
  min?: number;
  max?: number;
  minLength?: number;
  maxLength?: number;
}

interface ZodLike {
  def: { type: string };
  description?: string;
  isInt?: boolean;
  minValue?: number | null;
  maxValue?: number | null;
  minLength?: number | null;
  maxLength?: number | null;
  options?: readonly unknown[];
  isOptional(): boolean;
}

/** What an argument's zod schema means for a Discord option. */
export function describeSchema(schema: z.ZodType): SchemaInfo {
  const outer = schema as unknown as ZodLike;
  const { inner, description } = unwrapSchema(schema);
  const t = inner as unknown as ZodLike;
  const info: SchemaInfo = { kind: 'string', required: !outer.isOptional(), ...(description ? { description } : {}) };
  const finite = (n: number | null | undefined) => (typeof n === 'number' && Number.isFinite(n) && Math.abs(n) <= Number.MAX_SAFE_INTEGER ? n : undefined);
  switch (t.def.type) {
    case 'boolean':
      return { ...info, kind: 'boolean' };
    case 'array':
      return { ...info, kind: 'array' };
    case 'number': {
      const min = finite(t.minValue);
      const max = finite(t.maxValue);
      return { ...info, kind: t.isInt ? 'integer' : 'number', ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
    }
    case 'enum':
      return { ...info, ...(t.options && t.options.length <= CHOICES_MAX ? { choices: t.options.map(String) } : {}) };
    case 'string':
      return { ...info, ...(t.minLength ? { minLength: t.minLength } : {}), ...(t.maxLength ? { maxLength: t.maxLength } : {}) };
    default:
      return info;
  }
}

/** `blockMigrate` → `block-migrate`: Discord option names are lower case. */
export function optionName(arg: string): string {
  return kebab(arg).slice(0, NAME_MAX);
}

function clip(text: string, max = DESCRIPTION_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function optionFor(proc: Procedure, arg: string, schema: z.ZodType): APIApplicationCommandBasicOption {
  const info = describeSchema(schema);
  const host = proc.hosts?.[arg];
  const groups = host?.groups?.length ? host.groups.map((g) => `@${g}`).join(' or ') : undefined;
  const what = info.description ?? (host ? `a host${groups ? ` in ${groups}` : ''}` : arg);
  const base = { name: optionName(arg), required: info.required };
  switch (info.kind) {
    case 'boolean':
      return { ...base, type: ApplicationCommandOptionType.Boolean, description: clip(what) };
    case 'integer':
    case 'number': {
      const range = { ...(info.min !== undefined ? { min_value: info.min } : {}), ...(info.max !== undefined ? { max_value: info.max } : {}) };
      return info.kind === 'integer'
        ? { ...base, ...range, type: ApplicationCommandOptionType.Integer, description: clip(what) }
        : { ...base, ...range, type: ApplicationCommandOptionType.Number, description: clip(what) };
    }
    case 'array':
      return { ...base, type: ApplicationCommandOptionType.String, description: clip(`${what} (comma-separated)`), ...(host ? { autocomplete: true } : {}) };
    default:
      if (info.choices && !host) return { ...base, type: ApplicationCommandOptionType.String, description: clip(what), choices: info.choices.map((c) => ({ name: c, value: c })) };
      return {
        ...base,
        type: ApplicationCommandOptionType.String,
        description: clip(what),
        ...(host ? { autocomplete: true } : {}),
        ...(info.minLength ? { min_length: Math.min(info.minLength, 6000) } : {}),
        ...(info.maxLength ? { max_length: Math.min(info.maxLength, 6000) } : {}),
      };
  }
}

/** A procedure's options: required ones first (Discord's rule), positional order, then the rest. */
function optionsOf(proc: Procedure): APIApplicationCommandBasicOption[] {
  const shape = proc.args.shape as Record<string, z.ZodType>;
  const order = [...proc.positional, ...Object.keys(shape).filter((k) => !proc.positional.includes(k))].filter((k) => !proc.internal?.includes(k));
  const options = order.map((arg) => optionFor(proc, arg, shape[arg]!));
  return [...options.filter((o) => o.required), ...options.filter((o) => !o.required)];
}

/** The subcommands every pack has besides its procedures, answered by the ChatService. */
function builtins(pack: string, procs: Procedure[]): APIApplicationCommandSubcommandOption[] {
  const sub = (name: string, description: string, options: APIApplicationCommandBasicOption[]): APIApplicationCommandSubcommandOption => ({ type: ApplicationCommandOptionType.Subcommand, name, description, options });
  return [
    sub('help', `How to use the ${pack} procedures`, [{ type: ApplicationCommandOptionType.String, name: 'procedure', description: 'The procedure to explain', required: false, choices: procs.slice(0, CHOICES_MAX).map((p) => ({ name: p.name, value: p.name })) }]),
    sub('status', 'Runs in progress, or one run', [{ type: ApplicationCommandOptionType.String, name: 'run', description: 'A run id (default: every run in progress)', required: false }]),
    sub('cancel', 'Cancel a run: its running step stops, its finally steps run', [{ type: ApplicationCommandOptionType.String, name: 'run', description: 'The run id to cancel', required: true }]),
  ];
}

/** Every pack as one chat-input command; registering the same list again changes nothing. */
export function commandsFor(catalog: Catalog): RESTPostAPIChatInputApplicationCommandsJSONBody[] {
  return catalog.packs().map((pack) => {
    const procs = catalog.inPack(pack);
    const names = new Set(procs.map((p) => p.name.toLowerCase()));
    return {
      type: ApplicationCommandType.ChatInput,
      // Runs are reported in a server channel and its threads, where the team sees them: not in DMs.
      contexts: [InteractionContextType.Guild],
      name: pack.toLowerCase().slice(0, NAME_MAX),
      description: clip(`Runbooks: ${procs.map((p) => p.name).join(', ')}`),
      options: [
        ...procs.map((p): APIApplicationCommandSubcommandOption => ({ type: ApplicationCommandOptionType.Subcommand, name: p.name.toLowerCase().slice(0, NAME_MAX), description: clip(p.summary), options: optionsOf(p) })),
        // Discord wants unique subcommand names; a procedure called help, status or cancel keeps its name.
        ...builtins(pack, procs).filter((b) => !names.has(b.name)),
      ],
    };
  });
}

function quote(value: string): string {
  return /^[^\s"'\\]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** The procedure a subcommand names, if it is one. */
export function procedureOf(catalog: Catalog, pack: string, sub: string): Procedure | undefined {
  return catalog.inPack(pack).find((p) => p.name.toLowerCase() === sub);
}

/** The subcommand and its options, from a chat-input or autocomplete interaction's data. */
export function subcommandOf(options: APIApplicationCommandInteractionDataOption[] | undefined): { sub: string; options: APIApplicationCommandInteractionDataBasicOption[] } | undefined {
  const first = options?.[0];
  if (!first || first.type !== ApplicationCommandOptionType.Subcommand) return undefined;
  return { sub: first.name, options: (first.options ?? []) as APIApplicationCommandInteractionDataBasicOption[] };
}

/**
 * `/ovs flush node:node-3` as the text the ChatService parses: `flush node:node-3`. Booleans become
 * `--flag` when true (the parser's form), and are left out when false; a procedure's `rest`
 * argument goes last, after `--`.
 */
export function commandText(catalog: Catalog, pack: string, sub: string, options: APIApplicationCommandInteractionDataBasicOption[]): string {
  const proc = procedureOf(catalog, pack, sub);
  if (!proc) {
    const value = options[0] && 'value' in options[0] ? String(options[0].value) : '';
    return [sub, value && quote(value)].filter(Boolean).join(' ');
  }
  const words = [proc.name];
  let verbatim: string | undefined;
  for (const o of options) {
    if (!('value' in o)) continue;
    if (proc.rest && o.name === optionName(proc.rest)) verbatim = String(o.value);
    else if (typeof o.value === 'boolean') {
      if (o.value) words.push(`--${o.name}`);
    } else {
      words.push(`${o.name}:${quote(String(o.value))}`);
    }
  }
  // An ad-hoc command travels verbatim after `--`, as typed.
  if (verbatim !== undefined) words.push('--', verbatim);
  return words.join(' ');
}

/**
 * Choices for a focused host option: the inventory hosts the procedure accepts for it, filtered by
 * what was typed. A comma-separated list completes its last item.
 */
export function hostChoices(catalog: Catalog, inventory: Inventory, interaction: APIApplicationCommandAutocompleteInteraction): APIApplicationCommandOptionChoice<string>[] {
  const pack = interaction.data.name;
  const found = subcommandOf(interaction.data.options);
  if (!found) return [];
  const proc = procedureOf(catalog, pack, found.sub);
  const focused = found.options.find((o) => 'focused' in o && o.focused);
  if (!proc || !focused || !('value' in focused)) return [];
  const arg = Object.keys(proc.args.shape).find((k) => optionName(k) === focused.name);
  const spec = arg ? proc.hosts?.[arg] : undefined;
  if (!arg || !spec) return [];
  const typed = String(focused.value);
  const isList = describeSchema((proc.args.shape as Record<string, z.ZodType>)[arg]!).kind === 'array';
  const cut = isList ? typed.lastIndexOf(',') + 1 : 0;
  const before = typed.slice(0, cut);
  const chosen = new Set(before.split(',').map((s) => s.trim()).filter(Boolean));
  const wanted = typed.slice(cut).trim().toLowerCase();
  const hosts = inventory.inGroups(spec.groups).filter((h) => !chosen.has(h.name));
  const matches = [...hosts.filter((h) => h.name.toLowerCase().startsWith(wanted)), ...hosts.filter((h) => !h.name.toLowerCase().startsWith(wanted) && h.name.toLowerCase().includes(wanted))];
  return matches.slice(0, CHOICES_MAX).map((h) => ({ name: clip(`${before}${h.name} (${h.groups.join(', ')})`), value: `${before}${h.name}`.slice(0, 100) }));
}
