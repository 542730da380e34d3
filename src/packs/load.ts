/**
 * Loads the operator's own packs of procedures, from outside this package, at start: the way
 * StackStorm's ContentPackLoader reads packs from the directories it is given and Temporal's worker
 * loads workflows from `workflowsPath`. A pack is a directory (its `index.ts`, `index.js`, … or its
 * package.json `main`) or a module; TypeScript loads as written through jiti, JavaScript as it is.
 *
 * The pack's `import … from 'runbook-bot/dsl'` (and `'zod'`) get this process's own modules, not a
 * copy: `sh` commands, parsers and schemas are then the very classes the engine and the chat
 * adapters read, and a pack needs no installation of the bot beside it.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { delimiter, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { PackError, type PackProblem } from '../errors.js';
import type { Procedure } from '../procedures/dsl.js';

/** A pack to load: where, and which of the bot's own procedures it may replace. */
export interface PackSource {
  /** Absolute path of the pack's directory or module. */
  path: string;
  /** `"<pack> <procedure>"` or `"<pack>"` of the bot's own that this pack replaces. */
  replaces: string[];
  /** Where it was named: the runbook.yaml file, or `RUNBOOK_PACKS`. */
  from: string;
}

/** The procedures one pack module exports. */
export interface LoadedPack {
  source: PackSource;
  /** The module that was imported. */
  file: string;
  procedures: Procedure[];
}

const ENTRIES = ['index.ts', 'index.mts', 'index.js', 'index.mjs', 'index.cjs'];
const MODULES = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'];

/**
 * The packs to load: runbook.yaml's `packs` (absolute already), then `RUNBOOK_PACKS` (paths joined
 * by ":", relative to `cwd`); one path named twice is loaded once.
 */
export function packSources(config: { packs: { path: string; replaces: string[] }[] }, configPath: string | undefined, env: NodeJS.ProcessEnv, cwd = process.cwd()): PackSource[] {
  const fromConfig = config.packs.map((p) => ({ path: p.path, replaces: p.replaces, from: configPath ?? 'runbook.yaml' }));
  const fromEnv = (env.RUNBOOK_PACKS ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((p) => ({ path: resolve(cwd, p), replaces: [], from: 'RUNBOOK_PACKS' }));
  const seen = new Set<string>();
  return [...fromConfig, ...fromEnv].filter((s) => !seen.has(s.path) && seen.add(s.path));
}

/** The module to import for a pack path; throws a PackProblem's message when there is none. */
export function packEntry(path: string): string {
  if (!existsSync(path)) throw new Error('no such file or directory');
  if (statSync(path).isFile()) {
    if (!MODULES.includes(extname(path))) throw new Error(`a pack module ends in ${MODULES.join(', ')}`);
    return path;
  }
  const pkg = join(path, 'package.json');
  if (existsSync(pkg)) {
    const main = (JSON.parse(readFileSync(pkg, 'utf8')) as { main?: unknown }).main;
    if (typeof main === 'string') {
      const entry = resolve(path, main);
      if (!existsSync(entry)) throw new Error(`package.json "main" names ${main}, which does not exist`);
      return entry;
    }
  }
  const entry = ENTRIES.map((e) => join(path, e)).find((e) => existsSync(e));
  if (!entry) throw new Error(`a pack directory holds its procedures in ${ENTRIES.join(', ')} (or package.json "main"): none is here`);
  return entry;
}

const isProcedure = (v: unknown): v is Procedure =>
  typeof v === 'object' && v !== null && typeof (v as Procedure).pack === 'string' && typeof (v as Procedure).name === 'string' && 'steps' in v;

/**
 * The procedures a module exports: its default export and its named ones, each a procedure or a
 * list of them (`export default [restart, check]`). Other exports (helpers, constants) are its own.
 */
function proceduresOf(mod: Record<string, unknown>): { procedures: Procedure[]; problems: string[] } {
  const found = new Set<Procedure>();
  const problems: string[] = [];
  const exports = Object.entries(mod).sort(([a], [b]) => (a === 'default' ? -1 : b === 'default' ? 1 : 0));
  for (const [name, value] of exports) {
    if (isProcedure(value)) found.add(value);
    else if (Array.isArray(value) && value.some(isProcedure)) {
      value.forEach((v, i) => {
        if (isProcedure(v)) found.add(v);
        else problems.push(`export ${name}[${i}] is not a procedure (a list of procedures holds only procedure({...}) values)`);
      });
    }
  }
  if (found.size === 0 && problems.length === 0) problems.push('exports no procedure: export each one (export const restart = procedure({...})) or a list of them (export default [restart])');
  return { procedures: [...found], problems };
}

/**
 * Where in the pack an error while loading it points: the first line of its stack (or, for a
 * syntax error, of its message) inside the pack's directory.
 */
function lineIn(err: Error, dir: string): number | undefined {
  const text = `${err.message}\n${err.stack ?? ''}`;
  for (const m of text.matchAll(/(?:file:\/\/)?(\/[^\s():]+):(\d+)(?::\d+)?/g)) {
    if (m[1]!.startsWith(`${dir}/`)) return Number(m[2]);
  }
  return undefined;
}

/** The error's message without jiti's frames or Node's "Require stack": what went wrong, in one line. */
function loadMessage(err: Error): string {
  const first = err.message.split('\n')[0]!.trim();
  if ((err as { code?: string }).code === 'MODULE_NOT_FOUND') {
    return `${first}: a pack imports runbook-bot/dsl, zod, node: modules, its own files, and packages installed in its own node_modules`;
  }
  return first.replace(/^ParseError: /, 'cannot parse: ');
}

/**
 * Imports every pack; throws a PackError listing every problem (file, line where known, message)
 * and never a stack trace, so a bad pack stops start-up with a readable answer.
 */
export async function loadPacks(sources: readonly PackSource[]): Promise<LoadedPack[]> {
  if (sources.length === 0) return [];
  const { createJiti } = await import('jiti');
  // This module's own DSL and zod, handed to the packs (see the top of this file).
  const [dsl, zod] = await Promise.all([import('../dsl.js'), import('zod')]);
  const jiti = createJiti(import.meta.url, {
    virtualModules: { 'runbook-bot/dsl': dsl, zod },
    // Loaded once, at start: no cache on disk to share between users, nothing reused in-process.
    fsCache: false,
    moduleCache: false,
    interopDefault: false,
  });
  const loaded: LoadedPack[] = [];
  const problems: PackProblem[] = [];
  for (const source of sources) {
    let file: string;
    try {
      file = packEntry(source.path);
    } catch (err) {
      problems.push({ file: source.path, message: `${(err as Error).message} (named in ${source.from})` });
      continue;
    }
    try {
      const mod = await jiti.import<Record<string, unknown>>(file);
      const found = proceduresOf(mod);
      problems.push(...found.problems.map((message) => ({ file, message })));
      loaded.push({ source, file, procedures: found.procedures });
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const dir = realpathSync(isAbsolute(source.path) && statSync(source.path).isDirectory() ? source.path : dirname(source.path));
      const line = lineIn(e, dir);
      problems.push({ file, ...(line ? { line } : {}), message: loadMessage(e) });
    }
  }
  if (problems.length) throw new PackError(problems);
  return loaded;
}
