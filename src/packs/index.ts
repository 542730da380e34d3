/**
 * The catalog every process builds at start (the bot, each worker, the Slack work process, the
 * CLI): the bot's own procedures and those of the operator's packs, checked as one. Loading is at
 * start only; a bad pack stops start-up with its file, procedure and problem.
 */
import type { ConfigProblem } from '../errors.js';
import { PackError, type PackProblem } from '../errors.js';
import { nearest } from '../inventory.js';
import { procedureId, type Procedure } from '../procedures/dsl.js';
import { Catalog, type ProcedureOrigin } from '../procedures/catalog.js';
import { defaultCatalog } from '../procedures/index.js';
import { packProblems, procedureProblems } from './check.js';
import { loadPacks, type LoadedPack, type PackSource } from './load.js';

export { packSources, type PackSource } from './load.js';

/** Whether `pack` may define `id` in place of the bot's own: its `replaces` names it or its pack. */
const replaces = (pack: LoadedPack, id: string) => pack.source.replaces.some((r) => r === id || r === id.split(' ')[0]);

/**
 * The bot's own procedures with the packs' added: a pack may add procedures to a new pack name or
 * to one of the bot's; it may redefine one of the bot's only when runbook.yaml says it replaces it
 * (`replaces: ["ovs flush"]`, or `["ovs"]` for the whole pack, whose other procedures then go).
 */
export async function loadCatalog(sources: readonly PackSource[]): Promise<Catalog> {
  const builtins = defaultCatalog().all();
  if (sources.length === 0) return new Catalog(builtins);
  const packs = await loadPacks(sources);
  const own = new Map(builtins.map((p) => [procedureId(p), p]));
  const ownPacks = new Set(builtins.map((p) => p.pack));
  const problems: PackProblem[] = [];
  const defined = new Map<string, { proc: Procedure; pack: LoadedPack }>();
  const dropped = new Set<string>();
  for (const pack of packs) {
    for (const r of pack.source.replaces) {
      const whole = !r.includes(' ');
      if (whole ? !ownPacks.has(r) : !own.has(r)) {
        problems.push({ file: pack.source.from, message: `the pack ${pack.source.path} replaces "${r}", which is not ${whole ? 'a pack' : 'a procedure'} of the bot's own (${whole ? [...ownPacks].join(', ') : nearest(r, [...own.keys()]).join(', ') || 'see runbook help'})` });
      } else if (whole) {
        for (const id of own.keys()) if (id.startsWith(`${r} `)) dropped.add(id);
      } else if (!pack.procedures.some((p) => procedureId(p) === r)) {
        problems.push({ file: pack.source.from, message: `the pack ${pack.source.path} replaces "${r}" but does not define it` });
      }
    }
    for (const proc of pack.procedures) {
      const id = procedureId(proc);
      const at = { file: pack.file, procedure: id };
      problems.push(...procedureProblems(proc).map((message) => ({ ...at, message })));
      const twice = defined.get(id);
      if (twice) problems.push({ ...at, message: `is defined by ${twice.pack.file} too` });
      else if (own.has(id) && !replaces(pack, id)) {
        problems.push({ ...at, message: `is one of the bot's own procedures: to replace it, say so in runbook.yaml (packs: [{ path: ${pack.source.path}, replaces: ["${id}"] }])` });
      }
      defined.set(id, { proc, pack });
      if (own.has(id)) dropped.add(id);
    }
  }
  const procedures = [...builtins.filter((p) => !dropped.has(procedureId(p))), ...[...defined.values()].map((d) => d.proc)];
  const origins = new Map<string, ProcedureOrigin>(
    [...defined].map(([id, d]) => [id, { file: d.pack.file, pack: d.pack.source.path, ...(own.has(id) ? { replaces: true as const } : {}) }]),
  );
  for (const name of new Set(procedures.map((p) => p.pack))) {
    const inPack = procedures.filter((p) => p.pack === name);
    const file = [...new Set(inPack.map((p) => origins.get(procedureId(p))?.file).filter((f): f is string => !!f))].join(', ');
    if (file) problems.push(...packProblems(name, inPack).map((message) => ({ file, message })));
  }
  if (problems.length) throw new PackError(problems);
  return new Catalog(procedures, origins);
}

/**
 * runbook.yaml's per-procedure policy keys that name no pack or procedure of the catalog: a typo
 * there would leave a stricter rule unapplied without a word.
 */
export function policyKeyProblems(policy: { procedures: Record<string, unknown> }, catalog: Catalog): ConfigProblem[] {
  const ids = catalog.all().map(procedureId);
  const packs = catalog.packs();
  return Object.keys(policy.procedures).flatMap((key) => {
    const known = key.includes(' ') ? ids : packs;
    if (known.includes(key)) return [];
    const guess = nearest(key, known);
    return [{ path: `policy.procedures."${key}"`, message: `no ${key.includes(' ') ? 'procedure' : 'pack'} "${key}" is loaded${guess.length ? `; did you mean ${guess.map((g) => `"${g}"`).join(' or ')}?` : ''}` }];
  });
}
