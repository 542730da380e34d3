/**
 * Gathers what an ad-hoc command printed on many hosts the way `clush -b` does: hosts whose output
 * is identical share one node-set header (`node-[1-3,5] (4)`), each different output is shown once
 * under its hosts, non-zero exit codes are summarised, hosts that could not be reached are listed
 * with the reason, hosts where the command did not run are listed with why. Pure: no I/O.
 */
import { foldNodeSet } from '../nodeset.js';
import type { KeptOutput, StepStatus } from './dsl.js';

export interface HostResult {
  host: string;
  /** The step's status (`pending` when it never started). */
  status: StepStatus;
  /** What `keepOutput` kept; undefined when the command never ran there. */
  output?: KeptOutput | undefined;
}

export type HostOutcome = 'ok' | 'exit' | 'signal' | 'timeout' | 'unreachable' | 'cancelled' | 'not-run';

export interface OutputGroup {
  hosts: string[];
  /** `node-[1-3,5]` */
  nodeset: string;
  /** stdout, then stderr, as printed. */
  text: string;
  truncated: boolean;
}

export interface Gathered {
  total: number;
  counts: Record<HostOutcome, number>;
  /** Hosts with output, grouped by identical output: largest group first. */
  groups: OutputGroup[];
  /** Non-zero exit codes and signals: `{ what: 'exit code 1', hosts }`. */
  failures: { what: string; hosts: string[] }[];
  /** Command could not run or finish: host and reason. */
  problems: { outcome: 'timeout' | 'unreachable' | 'cancelled'; host: string; reason: string }[];
  /** Never started (the run was rejected, cancelled or stopped before them). */
  notRun: { host: string; status: StepStatus }[];
}

export function outcomeOf(r: HostResult): HostOutcome {
  const o = r.output;
  if (!o) return r.status === 'cancelled' ? 'cancelled' : 'not-run';
  if (o.exitCode === 0) return 'ok';
  if (o.exitCode !== null) return 'exit';
  if (o.signal && !o.error) return 'signal';
  const why = o.error ?? '';
  if (/timeout|timed out/i.test(why)) return 'timeout';
  if (/cancel/i.test(why)) return 'cancelled';
  if (o.signal) return 'signal';
  return 'unreachable';
}

/** stdout then stderr, without the trailing newline. */
function outputText(o: KeptOutput): string {
  const out = o.stdout.replace(/\n$/, '');
  const err = o.stderr.replace(/\n$/, '');
  return out && err ? `${out}\n${err}` : out || err;
}

export function gather(results: readonly HostResult[]): Gathered {
  const counts: Record<HostOutcome, number> = { ok: 0, exit: 0, signal: 0, timeout: 0, unreachable: 0, cancelled: 0, 'not-run': 0 };
  const byText = new Map<string, { hosts: string[]; truncated: boolean }>();
  const failures = new Map<string, string[]>();
  const problems: Gathered['problems'] = [];
  const notRun: Gathered['notRun'] = [];
  for (const r of results) {
    const outcome = outcomeOf(r);
    counts[outcome]++;
    const o = r.output;
    if (outcome === 'not-run' || (outcome === 'cancelled' && !o)) {
      notRun.push({ host: r.host, status: r.status });
      continue;
    }
    if (!o) continue;
    const text = outputText(o);
    // Output shown when the command ran (even partly: a timed-out command's output is kept).
    if (outcome !== 'unreachable' && (text || outcome === 'ok' || outcome === 'exit' || outcome === 'signal')) {
      const g = byText.get(text) ?? { hosts: [], truncated: false };
      g.hosts.push(r.host);
      g.truncated ||= o.truncated;
      byText.set(text, g);
    }
    if (outcome === 'exit') push(failures, `exit code ${o.exitCode}`, r.host);
    else if (outcome === 'signal') push(failures, `killed by signal ${o.signal ?? '?'}`, r.host);
    else if (outcome === 'timeout' || outcome === 'unreachable' || outcome === 'cancelled') problems.push({ outcome, host: r.host, reason: o.error ?? outcome });
  }
  const groups = [...byText.entries()]
    .map(([text, g]) => ({ hosts: g.hosts, nodeset: foldNodeSet(g.hosts), text, truncated: g.truncated }))
    .sort((a, b) => b.hosts.length - a.hosts.length || a.nodeset.localeCompare(b.nodeset));
  return {
    total: results.length,
    counts,
    groups,
    failures: [...failures.entries()].map(([what, hosts]) => ({ what, hosts })),
    problems,
    notRun,
  };
}

function push(m: Map<string, string[]>, k: string, v: string): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

const RULE = '---------------';

/** One line: `6 hosts: 4 ok · 1 failed · 1 unreachable`. */
export function summaryLine(g: Gathered): string {
  const c = g.counts;
  const parts = [`${c.ok} ok`];
  if (c.exit + c.signal) parts.push(`${c.exit + c.signal} failed`);
  if (c.timeout) parts.push(`${c.timeout} timed out`);
  if (c.unreachable) parts.push(`${c.unreachable} unreachable`);
  if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
  if (c['not-run']) parts.push(`${c['not-run']} not run`);
  return `${g.total} host${g.total === 1 ? '' : 's'}: ${parts.join(' · ')}`;
}

/**
 * The gathered report as text, clush -b style:
 *
 * ```
 * ---------------
 * node-[1-3,5] (4)
 * ---------------
 *  10:01:02 up 3 days, …
 * ```
 * then failures, unreachable hosts and hosts not run. Every host's whole kept output is in it.
 */
export function renderGathered(g: Gathered, heading?: string): string {
  const lines: string[] = [];
  if (heading) lines.push(heading);
  lines.push(summaryLine(g));
  for (const grp of g.groups) {
    lines.push(RULE, `${grp.nodeset} (${grp.hosts.length})`, RULE);
    lines.push(grp.text === '' ? '(no output)' : grp.text);
    if (grp.truncated) lines.push('(output cut: only the last part of a long output was kept per host)');
  }
  if (g.failures.length) {
    lines.push('', 'Failed:');
    for (const f of g.failures) lines.push(`  ${foldNodeSet(f.hosts)} (${f.hosts.length}): ${f.what}`);
  }
  const problems = (outcome: 'timeout' | 'unreachable' | 'cancelled', title: string) => {
    const ps = g.problems.filter((p) => p.outcome === outcome);
    if (!ps.length) return;
    lines.push('', title);
    for (const p of ps) lines.push(`  ${p.host}: ${p.reason}`);
  };
  problems('unreachable', 'Unreachable:');
  problems('timeout', 'Timed out:');
  problems('cancelled', 'Cancelled while running:');
  if (g.notRun.length) {
    lines.push('', 'Not run:');
    const byStatus = new Map<string, string[]>();
    for (const n of g.notRun) push(byStatus, n.status, n.host);
    for (const [status, hosts] of byStatus) lines.push(`  ${foldNodeSet(hosts)} (${hosts.length}): ${status === 'pending' ? 'never started (the run ended before them)' : status}`);
  }
  return lines.join('\n');
}
