/** `runbook pack new` and `runbook pack check`: writing a pack, and knowing it will load and run. */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PackError, UsageError, errorMessage } from '../errors.js';
import { procedureId } from '../procedures/dsl.js';
import type { Catalog } from '../procedures/catalog.js';
import { defaultCatalog } from '../procedures/index.js';
import { NAME_MAX, WORD } from './check.js';
import { loadCatalog, policyKeyProblems, type PackSource } from './index.js';
import { packFiles } from './templates.js';

/** This installation's declarations of `runbook-bot/dsl`, for a new pack's tsconfig.json. */
const DSL_TYPES = fileURLToPath(new URL('../dsl.d.ts', import.meta.url));

/** Writes a new pack `pack` in `dir` (new or empty); returns the files written, relative to `dir`. */
export function newPack(dir: string, pack: string): string[] {
  if (!WORD.test(pack) || pack.length > NAME_MAX) throw new UsageError(`"${pack}" cannot be a pack's name: lower-case words joined by "-", at most ${NAME_MAX} characters (it is the chat command /${pack})`);
  if (defaultCatalog().packs().includes(pack)) throw new UsageError(`${pack} is a pack of the bot's own; give yours another name`);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new UsageError(`${dir} is not empty: runbook pack new writes a pack into a new or empty directory`);
  const files = packFiles(pack, DSL_TYPES);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return Object.keys(files);
}

export interface PackCheck {
  /** The packs loaded: the configured ones, and this one as runbook.yaml names it (or as it is). */
  sources: PackSource[];
  /** Lines to print: what loaded, and every problem. */
  lines: string[];
  problems: number;
}

/**
 * Loads the pack in `dir` beside the configured ones (as runbook.yaml names it, when it does) and
 * checks what a start would, then what only an author would: each example parses, and runbook.yaml's
 * policy keys name loaded procedures.
 */
export async function checkPack(dir: string, configured: readonly PackSource[], policy: { procedures: Record<string, unknown> } | undefined): Promise<PackCheck> {
  const path = resolve(dir);
  const own = configured.find((s) => s.path === path) ?? { path, replaces: [], from: 'runbook pack check' };
  const sources = [...configured.filter((s) => s.path !== path), own];
  let catalog: Catalog;
  try {
    catalog = await loadCatalog(sources);
  } catch (err) {
    if (!(err instanceof PackError)) throw err;
    return { sources, lines: err.problems.map((p) => `  ✘ ${p.file}${p.line ? `:${p.line}` : ''}: ${p.procedure ? `${p.procedure}: ` : ''}${p.message}`), problems: err.problems.length };
  }
  const mine = catalog.all().filter((p) => catalog.origin(procedureId(p)).pack === path);
  const lines: string[] = [];
  let problems = 0;
  const where = (file: string) => relative(process.cwd(), file) || file;
  for (const p of mine) {
    const id = procedureId(p);
    const origin = catalog.origin(id);
    const bad = p.examples.flatMap((e) => {
      try {
        const parsed = catalog.parse(e);
        return procedureId(parsed.procedure) === id ? [] : [`example "${e}" runs ${procedureId(parsed.procedure)}, not ${id}`];
      } catch (err) {
        return [`example "${e}": ${errorMessage(err).split('\n')[0]}`];
      }
    });
    problems += bad.length;
    lines.push(`  ${bad.length ? '✘' : '✓'} ${id}${origin.replaces ? ' (replaces the bot\'s own)' : ''}: ${p.steps.length} step${p.steps.length === 1 ? '' : 's'}, ${p.examples.length} example${p.examples.length === 1 ? '' : 's'} · ${where(origin.file)}`, ...bad.map((b) => `      ${b}`));
  }
  if (mine.length === 0) {
    problems++;
    lines.push(`  ✘ ${dir} defines no procedure`);
  }
  for (const p of policy ? policyKeyProblems(policy, catalog) : []) {
    problems++;
    lines.push(`  ✘ runbook.yaml ${p.path}: ${p.message}`);
  }
  return { sources, lines, problems };
}

/** Each pack with its procedures and where they were defined: what `runbook help` lists. */
export function describePacks(catalog: Catalog, only?: string): string[] {
  return catalog
    .packs()
    .filter((pack) => only === undefined || pack === only)
    .flatMap((pack) => {
      const byFile = new Map<string, string[]>();
      for (const p of catalog.inPack(pack)) {
        const o = catalog.origin(procedureId(p));
        byFile.set(o.file, [...(byFile.get(o.file) ?? []), `${p.name}${o.replaces ? " (replaces the bot's own)" : ''}`]);
      }
      const from = [...byFile].map(([file, names]) => `${file === 'built-in' ? 'built in' : file}${byFile.size > 1 ? `: ${names.join(', ')}` : ''}`);
      return [`  ${pack.padEnd(10)} ${catalog.inPack(pack).map((p) => p.name).join(', ')}`, `  ${''.padEnd(10)} from ${from.join('; ')}`];
    });
}
