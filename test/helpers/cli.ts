import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import type { TestLab } from './lab.js';

const CLI = resolve('dist/cli.js');
const exec = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The JSON `runbook run --json` prints (README: the CLI). */
export interface RunJson {
  id: string;
  procedure: string;
  status: string;
  error?: string;
  steps: { id: string; title: string; risk: string; status: string; exitCode?: number; rowsAffected?: number }[];
}

export interface FollowOptions {
  as?: string;
  approveAs?: string;
  /** Who presses Done on the run's manual steps (each one, as it opens). */
  done?: string;
  /** Called once for each manual step as it opens, before it is marked done (the person acts in the lab). */
  onManual?: (stepPath: string) => void | Promise<void>;
  /** Who approves gates with `runbook approve` (instead of --approve-as), after `onApproval` ran. */
  approver?: string;
  onApproval?: (stepPath: string) => void | Promise<void>;
}

/**
 * The `runbook` command line against a test lab, on its own Redis prefix: `runbook(...)` runs one
 * command; `follow(text, …)` runs `runbook run … --json` and, while it follows the run, answers its
 * manual steps with `runbook decide <id> done --as <person>` as an operator would.
 */
/** Runs a program with `env` added to this one's (LOG_LEVEL warn unless said), in `cwd`; never throws on a non-zero exit. */
export async function runProgram(file: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(file, args, { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, ...(cwd ? { cwd } : {}), maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** Runs `runbook …` (dist/cli.js) as a process with `env`; never throws on a non-zero exit. */
export async function runCli(env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.build.json)`);
  return runProgram(process.execPath, [CLI, ...args], env);
}

export function cli(lab: () => TestLab, prefix: string) {
  const env = () => ({ ...process.env, RUNBOOK_CONFIG: lab().lab.configPath, RUNBOOK_PREFIX: prefix, LOG_LEVEL: 'warn' });
  const runbook = (...args: string[]): Promise<CliResult> => runCli(env(), ...args);

  async function follow(text: string, opts: FollowOptions = {}): Promise<CliResult & { run: RunJson }> {
    const args = ['run', text, '--as', opts.as ?? 'alice', ...(opts.approveAs ? ['--approve-as', opts.approveAs] : []), '--json'];
    const child = spawn(process.execPath, [CLI, ...args], { env: env() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ended = new Promise<number>((res) => child.on('close', (code) => res(code ?? 1)));
    let code: number | undefined;
    void ended.then((c) => (code = c));
    const decided = new Set<string>();
    while (code === undefined) {
      await new Promise((r) => setTimeout(r, 400));
      if ((!opts.done && !opts.approver) || code !== undefined) continue;
      const id = /\b(r-[A-Za-z0-9]+)\b/.exec(stderr)?.[1];
      if (!id) continue;
      const show = await runbook('show', id, '--json');
      if (show.code !== 0) continue;
      const gates = (JSON.parse(show.stdout) as { gates: { id: string; kind: string; status: string; stepPath: string }[] }).gates;
      for (const g of gates.filter((x) => x.status === 'open' && !decided.has(x.id))) {
        let d: CliResult | undefined;
        if (g.kind === 'manual' && opts.done) {
          decided.add(g.id);
          await opts.onManual?.(g.stepPath);
          d = await runbook('decide', id, 'done', '--as', opts.done, '--gate', g.id);
        } else if (g.kind === 'approval' && opts.approver) {
          decided.add(g.id);
          await opts.onApproval?.(g.stepPath);
          d = await runbook('approve', id, '--as', opts.approver, '--gate', g.id);
        }
        if (d && d.code !== 0) throw new Error(`deciding ${g.id} of ${id} failed: ${d.stderr}`);
      }
    }
    await ended;
    if (!stdout.trim()) throw new Error(`runbook run "${text}" printed no JSON (exit ${code}): ${stderr}`);
    return { code, stdout, stderr, run: JSON.parse(stdout) as RunJson };
  }

  return { runbook, follow };
}

/** `{ path: status }` of a run's steps, for compact assertions. */
export function statuses(run: RunJson): Record<string, string> {
  return Object.fromEntries(run.steps.map((s) => [s.id, s.status]));
}
