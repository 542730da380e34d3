import type { Decision, Gate, LockHolder, Origin, PlanStep, StampedEvent, WaitingFor } from '../../engine/types.js';
import { formatBytes } from '../../executors/ssh/output.js';

const RISK_MARK: Record<string, string> = { read: 'read', write: 'write', destructive: 'DESTRUCTIVE', sensitive: 'SENSITIVE' };

function indent(text: string, by = '    '): string {
  return text.replace(/\n$/, '').split('\n').map((l) => by + l).join('\n');
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const DECIDED: Record<Decision, string> = { approve: 'approved', reject: 'rejected', done: 'done', retry: 'retried', skip: 'skipped', abort: 'aborted', expire: 'expired' };

/** "approved", "done", "retried": what a decision did, said of a gate or a step. */
export function decidedWord(d: Decision, capital = false): string {
  const w = DECIDED[d];
  return capital ? w[0]!.toUpperCase() + w.slice(1) : w;
}

/** What a waiting run waits for: "approval (gate …)", "node-3, held by run r-… (ovs flush, alice)" (or "after run r-… (…), next in line"), "the next check at 12:00:05". */
export function waitingText(w: WaitingFor): string {
  const parts: string[] = [];
  if (w.gates?.length) parts.push(w.gates.length === 1 ? `a decision (gate ${w.gates[0]})` : `decisions (gates ${w.gates.join(', ')})`);
  if (w.locks) {
    const name = (h: LockHolder) => `run ${h.run}${h.procedure ? ` (${h.procedure}${h.requester ? `, ${h.requester}` : ''})` : ''}`;
    const held = w.locks.heldBy.filter((h) => !h.ahead).map(name);
    const ahead = w.locks.heldBy.filter((h) => h.ahead).map(name);
    const why = [...(held.length || !ahead.length ? [`held by ${held.join(', ') || 'another run'}`] : []), ...(ahead.length ? [`after ${ahead.join(', ')}, next in line`] : [])];
    parts.push(`${w.locks.hosts.join(', ')}, ${why.join('; ')}`);
  }
  if (w.timer) parts.push(`the next check at ${w.timer.at.slice(11, 19)} UTC (${w.timer.steps.length} step${w.timer.steps.length === 1 ? '' : 's'})`);
  return parts.join(' and ') || 'nothing named';
}

export function planText(plan: PlanStep[], depth = 0): string[] {
  return plan.flatMap((p, i) => {
    const num = depth === 0 ? `${p.finally ? 'finally' : `${i + 1}.`}` : '-';
    const where = p.host ? ` on ${p.host}` : p.database ? ` on database ${p.database}` : '';
    const what = p.command ? `: ${p.command.split('\n')[0]}${p.stdin !== undefined ? ' <<script' : ''}` : p.after ? ` (${p.after})` : '';
    const pad = '  '.repeat(depth + 2);
    const line = `${'  '.repeat(depth + 1)}${num} ${p.title} [${RISK_MARK[p.risk]}${p.gated ? ', needs approval' : ''}]${where}${what}`;
    const more = [p.variant ? `${pad}  variant: ${p.variant}` : '', p.reference !== undefined ? `${pad}  page: ${p.reference}` : ''].filter(Boolean);
    return [line, ...more, ...(p.children ? planText(p.children, depth + 1) : [])];
  });
}

/** The script on stdin, the variant and the page's command, under a command. */
function runsText(s: { stdin?: string | undefined; reference?: string; variant?: string }): string[] {
  return [
    ...(s.stdin !== undefined ? ['    <<script', indent(s.stdin, '      '), '    script'] : []),
    ...(s.variant ? [`    variant: ${s.variant}`] : []),
    ...(s.reference !== undefined ? [`    page: ${s.reference}`] : []),
  ];
}

const GATE_HEAD: Record<Gate['kind'], string> = { approval: 'APPROVAL NEEDED', manual: 'A PERSON MUST ACT', interrupted: 'STEP INTERRUPTED: retry, skip or abort?', definition: 'THE PROCEDURE CHANGED since the run started: continue (approve) or abort?' };

export function gateText(gate: Gate): string {
  const kind = gate.kind === 'approval' ? `${GATE_HEAD.approval} (${gate.risk})` : gate.kind === 'interrupted' && gate.steps.length > 1 ? `${gate.steps.length} STEPS INTERRUPTED: retry, skip or abort them all? (one at a time: runbook decide … --step <path>)` : GATE_HEAD[gate.kind];
  const lines = [`⏸ ${kind}${gate.steps.length ? `: ${gate.steps.length === 1 ? gate.steps[0]!.title : `${gate.steps.length} steps`}` : ''}`];
  for (const s of gate.steps) {
    if (gate.steps.length > 1) lines.push(`  - ${s.path}: ${s.title}${gate.stepDecisions?.[s.path] ? ` (${decidedWord(gate.stepDecisions[s.path]!.decision)} by ${gate.stepDecisions[s.path]!.by})` : ''}`);
    if (s.command) lines.push(`    ${s.host}$ ${s.command}`, ...runsText(s));
    if (s.statement) lines.push(`    ${s.database}> ${s.statement}${s.params?.length ? `   -- params ${JSON.stringify(s.params)}` : ''}${s.expect ? `   -- expect ${s.expect.min ?? 0}…${s.expect.max ?? '∞'} rows` : ''}`, ...runsText({ ...s, stdin: undefined }));
    if (s.preview) lines.push(`    rows it touches (${s.preview.total}):`, indent([s.preview.columns.join('\t'), ...s.preview.rows.map((r) => r.map(String).join('\t'))].join('\n'), '      '));
    if (s.instructions) lines.push(indent(s.instructions));
  }
  lines.push(`    may decide: ${gate.deciders.join(', ') || 'nobody (fix policy)'}${gate.expiresAt ? ` · expires ${gate.expiresAt}` : ''} · gate ${gate.id}`);
  return lines.join('\n');
}

const GATE_NAME: Record<Gate['kind'], string> = { approval: 'approval', manual: 'manual step', interrupted: 'interrupted step', definition: 'changed procedure' };

/**
 * Who typed it and where, for the audit's lines: " · via cli root@ops-1", " · via console token",
 * " · via slack user U0ALICE"; an admin acting for the person named says so.
 */
export function viaText(o: Origin | undefined): string {
  if (!o) return '';
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const who = o.osUser ? `${str(o.osUser)}@${str(o.host)}` : str(o.auth) ?? (str(o.user) ? `user ${str(o.user)}` : undefined);
  const actor = str(o.actor);
  return ` · via ${o.adapter}${who ? ` ${who}` : ''}${actor ? ` (${actor}, acting for them)` : ''}`;
}

/** One terminal line (or a few) per event: what `runbook run` prints while it follows a run. */
export function eventText(e: StampedEvent): string | undefined {
  switch (e.type) {
    case 'run.requested':
      return `run ${e.runId} · "${e.command}" requested by ${e.by}${viaText(e.origin)}`;
    case 'run.planned':
      return ['plan:', ...planText(e.plan), ...e.notes.map((n) => `  note: ${n}`)].join('\n');
    case 'run.started':
      return e.resumed ? `↻ resumed by worker ${e.worker}` : undefined;
    case 'lock.waiting':
      return `… waiting for ${waitingText({ locks: { hosts: e.hosts, heldBy: e.holders ?? e.heldBy.map((run) => ({ run })) } })} (no worker is held meanwhile)`;
    case 'step.started':
      return [`▶ ${e.title}${e.host ? ` · ${e.host}` : ''}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}${e.command ? `\n    $ ${e.command}` : ''}${e.statement ? `\n    ${e.database}> ${e.statement}` : ''}`, ...runsText(e)].join('\n');
    case 'step.output':
      return undefined;
    case 'step.progress':
      return `  … ${e.message}`;
    case 'step.interrupted':
      return `⚠ "${e.title}" was interrupted (its worker stopped)${e.idempotent ? '; it is safe to run again' : ''}`;
    case 'step.finished': {
      const mark = e.status === 'succeeded' ? '✓' : e.status === 'skipped' ? '↷' : e.status === 'cancelled' ? '■' : '✗';
      const facts = [e.exitCode !== undefined && e.exitCode !== null ? `exit ${e.exitCode}` : '', e.signal ? `signal ${e.signal}` : '', e.rowsAffected !== undefined ? `${e.rowsAffected} rows` : '', formatDuration(e.durationMs), e.reason ?? ''].filter(Boolean).join(' · ');
      const out = e.outputTail?.trim() && e.kind !== 'forEach' && e.kind !== 'group' ? `\n${indent(e.outputTail.trim().split('\n').slice(-10).join('\n'))}` : '';
      const file = e.attachment ? `\n    📎 attached ${e.attachment.path} (${formatBytes(e.attachment.bytes)}): runbook attachment ${e.runId} ${e.path} --out ${e.attachment.name}` : '';
      return `${mark} ${e.title} ${e.status}${facts ? ` · ${facts}` : ''}${e.error ? `\n    error: ${e.error}` : ''}${out}${file}`;
    }
    case 'gate.opened':
      return gateText(e.gate);
    case 'gate.decided':
      return `${e.decision === 'approve' || e.decision === 'done' || e.decision === 'retry' ? '✔' : '✘'} ${GATE_NAME[e.gate.kind]}${e.step ? ` ${e.step}` : ''} ${decidedWord(e.decision)} by ${e.by}${viaText(e.via)}${e.reason ? `: ${e.reason}` : ''}`;
    case 'gate.voided':
      return `✘ ${GATE_NAME[e.gate.kind]} ${e.gate.id} no longer counts: ${e.reason}`;
    case 'gate.refused':
      return `✘ ${e.by}${viaText(e.via)} was refused: ${e.reason}`;
    case 'run.waiting':
      // Locks and timers were said by their own events; a decision needs someone.
      return e.gates.length ? `⏸ run waits for a decision (runbook approve|reject|decide ${e.runId} --as <person>)` : undefined;
    case 'run.cancel-requested':
      return `■ cancellation requested by ${e.by}${viaText(e.via)}`;
    case 'run.finished':
      return `${e.status === 'succeeded' ? '✓' : '✗'} run ${e.runId} ${e.status}${e.error ? `: ${e.error}` : ''} · ${formatDuration(e.durationMs)}`;
  }
}
