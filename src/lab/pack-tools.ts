/**
 * No upstream: lab plumbing (it doubles no real program; each pack simulator names its own source).
 * Simulators a pack brings for its own tools, so its procedures run in the lab like the bot's own:
 * `<pack>/lab/<tool>.cjs` exports `{ '<tool>': handler }` exactly as src/lab/tools/sims/ do (the
 * file's name is the tool's name; files in folders below lab/ are its helpers). `runbook lab up`
 * copies each pack's lab/ into the lab's tools/packs/, links every tool into the lab's bin/ beside
 * the built-in ones, and lists them in tools/packs.json, where labtool.cjs finds them.
 *
 * Nothing changes for the lab's safety: a pack's simulator runs as the built-in ones do, through
 * labtool.cjs on a lab host, as the unprivileged lab user, with the host's own state only.
 */
import { cpSync, existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UsageError } from '../errors.js';
import { labPaths } from './paths.js';

/** The manifest labtool.cjs reads: tool name → its module, relative to the lab's tools/. */
export const PACK_TOOLS = 'packs.json';

const TOOL = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** The tools a pack simulates: one per `lab/<tool>.cjs`. */
export function packSimulators(packDir: string): { tool: string; file: string }[] {
  const dir = join(packDir, 'lab');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.cjs'))
    .map((e) => ({ tool: basename(e.name, '.cjs'), file: join(dir, e.name) }))
    .sort((a, b) => a.tool.localeCompare(b.tool));
}

/**
 * Copies the packs' simulators into the lab in `dir` and links their tools into its bin/; throws
 * before copying anything when a tool's name is not a program name or is already simulated.
 */
export function installPackTools(dir: string, packs: readonly string[], builtin: readonly string[]): void {
  const p = labPaths(dir);
  const owner = new Map(builtin.map((t) => [t, 'the lab']));
  const manifest: Record<string, string> = {};
  const copies: { from: string; to: string }[] = [];
  packs.forEach((pack, i) => {
    const sims = packSimulators(pack);
    if (sims.length === 0) return;
    const to = join('packs', String(i + 1));
    copies.push({ from: join(pack, 'lab'), to: join(p.tools, to) });
    for (const { tool, file } of sims) {
      if (!TOOL.test(tool)) throw new UsageError(`${file}: "${tool}" cannot be a program's name`);
      const other = owner.get(tool);
      if (other) throw new UsageError(`${file}: the tool ${tool} is simulated by ${other} already; a pack simulates only its own tools`);
      owner.set(tool, file);
      manifest[tool] = join(to, `${tool}.cjs`);
    }
  });
  for (const c of copies) cpSync(c.from, c.to, { recursive: true, dereference: true });
  writeFileSync(join(p.tools, PACK_TOOLS), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const tool of Object.keys(manifest)) symlinkSync(join('..', 'tools', 'labtool.cjs'), join(p.bin, tool));
}
