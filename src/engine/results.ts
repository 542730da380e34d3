/**
 * What a step's result means for the run: the engine runs a command (effects.ts) and hands its raw
 * result here, which turns it into the step's transition, its capture and, on failure, the sentence
 * people read. Pure: no I/O, the clock only through `now`.
 */
import { CancelledError, HostKeyError, errorMessage } from '../errors.js';
import type { ExecResult } from '../executors/ssh/pool.js';
import type { SqlResult } from '../executors/sql/index.js';
import { tailOf } from '../executors/ssh/output.js';
import type { HostFacts, KeptOutput, KnownFacts } from '../procedures/dsl.js';
import { value } from './context.js';
import type { Action } from './planner.js';
import type { LeafStep } from './render.js';
import type { Transitions } from './transitions.js';
import type { Attachment, Run, StepState } from './types.js';

/** A file a step attaches: fetched and kept, left on the host (too large), or unreadable (the step fails). */
export type Attached = { attachment: Attachment } | { tooLarge: string } | { error: string };

/** What running a leaf step gave: a command's result (any exit code), rows, a report's text, or an error. */
export type LeafResult =
  | { kind: 'exec'; res: ExecResult; attached?: Attached }
  | { kind: 'sql'; res: SqlResult }
  | { kind: 'report'; text: string }
  | { kind: 'error'; error: unknown };

/** Characters of stdout and of stderr a `keepOutput` step keeps per host (the run holds them). */
const KEPT_OUTPUT_CHARS = 64 * 1024;
/** Characters of a report step's text kept and sent with its event (and attached as a file in chat). */
const REPORT_CHARS = 512 * 1024;

type Start = Extract<Action, { type: 'start' }>;

/** The command's result an executor error carries (a command that ran past its timeout, or was killed). */
function resultOf(err: unknown): ExecResult | undefined {
  return (err as { result?: ExecResult }).result;
}

/** `keepOutput`: the step's result as its capture, bounded, whatever the outcome. */
function kept(res: ExecResult | undefined, error?: string): KeptOutput {
  const cut = (t: string) => (t.length > KEPT_OUTPUT_CHARS ? t.slice(-KEPT_OUTPUT_CHARS) : t);
  return {
    exitCode: res?.exitCode ?? null,
    ...(res?.signal ? { signal: res.signal } : {}),
    stdout: cut(res?.stdout ?? ''),
    stderr: cut(res?.stderr ?? ''),
    ...(error ? { error } : {}),
    truncated: !!res?.truncated || (res?.stdout.length ?? 0) > KEPT_OUTPUT_CHARS || (res?.stderr.length ?? 0) > KEPT_OUTPUT_CHARS,
  };
}

const lastLine = (stderr: string) => (stderr.trim() ? `: ${stderr.trim().split('\n').slice(-1)[0]}` : '');

/**
 * What an ssh step's command came to: success with its capture, or why it failed (an exit code not
 * counted as success, output its parser cannot read).
 */
export function readOutput(s: Extract<LeafStep, { kind: 'ssh' }>, res: ExecResult): { ok: true; capture?: unknown } | { ok: false; error: string; parse?: boolean } {
  if (res.exitCode === null || !(s.okExitCodes ?? [0]).includes(res.exitCode)) {
    return { ok: false, error: `${res.exitCode === null ? `killed by signal ${res.signal ?? '?'}` : `exit code ${res.exitCode}`}${lastLine(res.stderr)}` };
  }
  if (!s.capture) return { ok: true };
  try {
    return { ok: true, capture: s.capture.parse(res.stdout) };
  } catch (err) {
    return { ok: false, error: `the output could not be read as ${s.capture.name}: ${errorMessage(err)}`, parse: true };
  }
}

export interface SettleOptions {
  now: number;
  timeScale: number;
  /** The run's error, if it has none yet. */
  runError(text: string): void;
  /** The run's plan drawn again, once a host's facts are known. */
  replan(facts: NonNullable<Run['facts']>): Run['plan'];
}

/** Applies what `result` means for the step `a` started. */
export function settle(tx: Transitions, a: Start, result: LeafResult, o: SettleOptions): void {
  const { path, def, step: s } = a;
  const host = a.rendered.host;
  if (result.kind === 'error' && !(s.kind === 'poll' && s.untilReachable && !(result.error instanceof CancelledError) && !(result.error instanceof HostKeyError))) {
    const err = result.error;
    const res = resultOf(err);
    if (s.kind === 'ssh' && s.keepOutput) tx.capture(path, kept(res, errorMessage(err)));
    const patch: Partial<StepState> = { error: errorMessage(err), ...(res ? { exitCode: res.exitCode, outputTail: res.tail, ...(res.signal ? { signal: res.signal } : {}) } : {}) };
    if (err instanceof CancelledError) {
      tx.step(path, def, 'cancel', patch);
      return;
    }
    tx.step(path, def, 'fail', patch);
    o.runError(`step "${def.title}" failed: ${errorMessage(err)}`);
    return;
  }
  switch (s.kind) {
    case 'ssh': {
      const { res, attached } = result as Extract<LeafResult, { kind: 'exec' }>;
      if (s.keepOutput) tx.capture(path, kept(res));
      const patch: Partial<StepState> = { exitCode: res.exitCode, outputTail: res.tail, outputTruncated: res.truncated, ...(res.signal ? { signal: res.signal } : {}) };
      const read = readOutput(s, res);
      if (!read.ok) {
        tx.step(path, def, 'fail', { ...patch, error: read.error });
        o.runError(read.parse ? `step "${def.title}": ${read.error}` : `step "${def.title}" failed on ${host} (${read.error})`);
        return;
      }
      if (s.capture) tx.capture(path, read.capture);
      if (s.detects && host) {
        const facts: KnownFacts = { ...(read.capture as HostFacts), detectedAt: new Date(o.now).toISOString(), source: 'run' };
        const all = { ...tx.run.facts, [host]: facts };
        tx.patchRun({ facts: all, plan: o.replan(all) });
      }
      if (attached && 'error' in attached) {
        tx.step(path, def, 'fail', { ...patch, error: attached.error });
        o.runError(`step "${def.title}" failed on ${host} (${attached.error})`);
        return;
      }
      tx.step(path, def, 'succeed', { ...patch, ...(attached && 'attachment' in attached ? { attachment: attached.attachment } : {}), ...(attached && 'tooLarge' in attached ? { reason: attached.tooLarge } : {}) });
      return;
    }
    case 'poll':
      return check(tx, a, s, result, o);
    case 'sql': {
      const res = (result as Extract<LeafResult, { kind: 'sql' }>).res;
      if (s.capture) tx.capture(path, res.rows);
      const tail = res.rows.length ? tailOf(formatRows(res.columns, res.rows)) : `${res.rowsAffected} row${res.rowsAffected === 1 ? '' : 's'} affected`;
      tx.step(path, def, 'succeed', { rowsAffected: res.rowsAffected, outputTail: tail });
      return;
    }
    case 'report': {
      const text = (result as Extract<LeafResult, { kind: 'report' }>).text;
      const report = text.length > REPORT_CHARS ? `${text.slice(0, REPORT_CHARS)}\n… (report cut at ${REPORT_CHARS} characters)` : text;
      tx.capture(path, report);
      tx.step(path, def, 'succeed', { outputTail: tailOf(report), outputTruncated: report.length > tailOf(report).length });
      tx.annotateFinished(path, { report });
      return;
    }
    case 'manual':
      throw new Error(`manual step ${path} has no result to settle`);
  }
}

/** One check of a poll: met, failed, out of time, or waiting for the next (the run may park meanwhile). */
function check(tx: Transitions, a: Start, s: Extract<Start['step'], { kind: 'poll' }>, result: LeafResult, o: SettleOptions): void {
  const { path, def, ctx } = a;
  const res: ExecResult =
    result.kind === 'exec' ? result.res : { exitCode: null, stdout: '', stderr: errorMessage((result as { error: unknown }).error), tail: errorMessage((result as { error: unknown }).error), truncated: false, durationMs: 0 };
  const st = tx.run.steps[path]!;
  const checks = (st.checks ?? 0) + 1;
  let met = false;
  let readError: string | undefined;
  if (res.exitCode === 0) {
    try {
      const v = s.capture.parse(res.stdout);
      tx.capture(path, v);
      met = s.until(v, ctx);
    } catch (err) {
      readError = errorMessage(err);
    }
  }
  const patch: Partial<StepState> = { exitCode: res.exitCode, outputTail: res.tail, checks };
  if (met) {
    tx.step(path, def, 'succeed', { ...patch, reason: `condition met after ${checks} check${checks > 1 ? 's' : ''}` });
    return;
  }
  if ((res.exitCode !== 0 || readError) && !s.untilReachable) {
    const error = readError ? `the output could not be read as ${s.capture.name}: ${readError}` : `check failed with exit code ${res.exitCode}${lastLine(res.stderr)}`;
    tx.step(path, def, 'fail', { ...patch, error });
    o.runError(`step "${def.title}" failed on ${a.rendered.host} (${error})`);
    return;
  }
  const interval = s.intervalMs * o.timeScale;
  if (st.deadline && o.now + interval > Date.parse(st.deadline)) {
    tx.step(path, def, 'fail', { ...patch, error: `condition not met after ${checks} checks in ${Math.round(s.timeoutMs / 1000)} s` });
    o.runError(`step "${def.title}" timed out`);
    return;
  }
  tx.step(path, def, 'wait', { ...patch, nextCheckAt: new Date(o.now + interval).toISOString() });
  tx.emit({ type: 'step.progress', path, message: s.waiting ? value(s.waiting, ctx) : `waiting ${Math.round(s.intervalMs / 1000)} s before check ${checks + 1}` });
}

/** Rows as the mysql client prints them with \G-less output: a tab-separated header and lines. */
function formatRows(columns: string[], rows: Record<string, unknown>[]): string {
  return [columns.join('\t'), ...rows.map((r) => columns.map((c) => (r[c] === null ? 'NULL' : String(r[c]))).join('\t'))].join('\n');
}

