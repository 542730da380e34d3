/**
 * The neutral message model: what every chat adapter shows, before it becomes Block Kit (Slack),
 * embeds and components (Discord) or HTML (the console). Renderers here are pure functions of the
 * run and its events, so every platform shows the same thing.
 */
import type { Gate, PlanStep, Run, StampedEvent, StepState, WaitingFor } from '../engine/types.js';
import { formatBytes } from '../executors/ssh/output.js';
import { decidedWord, formatDuration, waitingText } from './console/text.js';

export type Tone = 'info' | 'ok' | 'warn' | 'danger';
/** Every choice a person can click; `expire` is the clock's alone. */
export const BUTTON_ACTIONS = ['approve', 'reject', 'retry', 'skip', 'abort', 'done'] as const;
export type ButtonAction = (typeof BUTTON_ACTIONS)[number];

export interface Button {
  action: ButtonAction;
  label: string;
  style: 'primary' | 'danger' | 'default';
  runId: string;
  gateId: string;
  /** Reject asks for a reason (a modal). */
  needsReason?: boolean;
}

export type Block =
  | { type: 'heading'; text: string }
  /** Light markdown: **bold**, `code`. Mentions are already rendered by the adapter's `mention`. */
  | { type: 'text'; text: string }
  | { type: 'fields'; fields: { label: string; value: string }[] }
  | { type: 'code'; text: string }
  | { type: 'list'; items: { text: string; tone?: Tone; indent?: number }[] }
  | { type: 'table'; columns: string[]; rows: string[][]; note?: string }
  | { type: 'context'; text: string }
  | { type: 'buttons'; buttons: Button[] };

export interface Message {
  /**
   * Stable identity within a run: posting a message with a key already posted updates it
   * (`plan`, `step:<path>`, `gate:<id>`), so a redelivered event never posts twice.
   */
  key: string;
  /** `channel`: top level (the plan card); `thread`: under the plan card. */
  place: 'channel' | 'thread';
  /** Also show it in the channel (Slack's reply_broadcast): approval requests and the final status. */
  broadcast?: boolean;
  tone: Tone;
  /** Plain text: notification text, fallback, and screen readers. */
  summary: string;
  blocks: Block[];
  /**
   * A file for the thread: output longer than a message allows (never cut silently), or a file a
   * step fetched from its host, kept in the run's store until an adapter loads it (`loadFiles`).
   */
  file?: MessageFile;
}

export type MessageFile = { name: string; content: string | Buffer } | { name: string; stored: { runId: string; id: string; bytes: number } };

/**
 * Messages with every stored file's bytes loaded, for adapters that upload them (Slack, Discord).
 * A file that expired from the store is left out and the message says so.
 */
export async function loadFiles(messages: Message[], getFile: (runId: string, id: string) => Promise<Buffer | undefined>): Promise<Message[]> {
  return Promise.all(
    messages.map(async (m) => {
      if (!m.file || !('stored' in m.file)) return m;
      const bytes = await getFile(m.file.stored.runId, m.file.stored.id);
      if (bytes) return { ...m, file: { name: m.file.name, content: bytes } };
      const { file: _gone, ...rest } = m;
      return { ...rest, blocks: [...m.blocks, { type: 'context' as const, text: `${m.file.name} is no longer kept (files are kept 7 days)` }] };
    }),
  );
}

/** How an adapter names people and times. */
export interface Style {
  mention(personId: string): string;
  time(iso: string): string;
}

export const plainStyle: Style = {
  mention: (p) => `@${p}`,
  time: (iso) => iso.slice(11, 16) + ' UTC',
};

const RISK: Record<string, string> = { read: 'read', write: 'write', destructive: '⚠ destructive', sensitive: '🔒 sensitive' };
const STATUS_MARK: Record<string, string> = { succeeded: '✅', failed: '❌', skipped: '⏭', cancelled: '⏹', running: '▶️', waiting: '⏸', interrupted: '⚠️', pending: '·' };

/** Characters of output shown inline; longer output also goes to a file. */
export const INLINE_OUTPUT = 2_500;

function clipLine(text: string): string {
  const line = text.split('\n')[0]!;
  return line.length > 120 || line !== text ? `${line.slice(0, 117)}…` : line;
}

const lineCount = (text: string) => text.replace(/\n$/, '').split('\n').length;

/**
 * What a step runs as people see it: the command (with its host or database), the script it reads
 * on stdin, the variant, and the page's own command when the one that runs differs from it.
 */
function runsBlocks(s: { host?: string; command?: string; stdin?: string; reference?: string; variant?: string; database?: string; statement?: string }): Block[] {
  const blocks: Block[] = [];
  if (s.command) blocks.push({ type: 'code', text: `${s.host ? `${s.host}$ ` : ''}${s.command}` });
  if (s.stdin !== undefined) blocks.push({ type: 'context', text: 'with this script on its standard input:' }, { type: 'code', text: s.stdin.replace(/\n$/, '') });
  const notes = [s.variant ? `variant: ${s.variant}` : '', s.reference !== undefined ? `the page's command: \`${s.reference}\`` : ''].filter(Boolean);
  if (notes.length) blocks.push({ type: 'context', text: notes.join(' · ') });
  return blocks;
}

function planLines(plan: PlanStep[], run: Run | undefined, indent = 0): { text: string; tone?: Tone; indent?: number }[] {
  return plan.flatMap((p) => {
    const st = run?.steps[p.path];
    const mark = st ? (STATUS_MARK[st.status] ?? '·') : '·';
    const where = p.host ? ` · ${p.host}` : p.database ? ` · ${p.database}` : '';
    const what = p.command ? ` · \`${clipLine(p.command)}\`${p.stdin !== undefined ? ` with a ${lineCount(p.stdin)}-line script on stdin` : ''}` : p.after ? ` · (${p.after})` : '';
    const variant = `${p.variant ? ` · ${p.variant}` : ''}${p.reference !== undefined ? ` · page: \`${clipLine(p.reference)}\`` : ''}`;
    const progress = st?.progress ? ` · ${st.progress.done}/${st.progress.total}${st.progress.failed ? `, ${st.progress.failed} failed` : ''}` : '';
    const line = { text: `${mark} ${p.finally ? 'finally: ' : ''}${p.title} [${RISK[p.risk]}${p.gated ? ', needs approval' : ''}]${where}${what}${variant}${progress}`, indent, ...(p.gated || p.risk === 'destructive' ? { tone: 'warn' as const } : {}) };
    return [line, ...(p.children ? planLines(p.children, run, indent + 1) : [])];
  });
}

/** Leaf steps the run will have: a forEach counts its items once known, else once. */
function countLeaves(plan: PlanStep[], run: Run): number {
  return plan.reduce((n, p) => {
    if (!p.children) return n + 1;
    const inner = countLeaves(p.children, run);
    return n + (p.kind === 'forEach' ? (run.expansions[p.path]?.length ?? 1) * inner : inner);
  }, 0);
}

/** "running 4/9 · Flush each vDisk to the backend 12/40", kept up to date on the plan card. */
export function statusLine(run: Run): string {
  const done = Object.values(run.steps).filter((s) => s.kind !== 'forEach' && s.kind !== 'group' && (s.status === 'succeeded' || s.status === 'skipped')).length;
  const total = countLeaves(run.plan, run);
  const active = Object.values(run.steps).filter((s) => s.status === 'running' || s.status === 'waiting');
  const fe = active.find((s) => s.kind === 'forEach' && s.progress);
  const detail = fe ? ` · ${fe.title} ${fe.progress!.done}/${fe.progress!.total}` : active[0] ? ` · ${active[0].title}` : '';
  switch (run.status) {
    case 'queued':
      return 'queued';
    case 'running':
      return `running ${done}/${total}${detail}`;
    case 'waiting':
      return `${waitingLine(run.waitingFor)} ${done}/${total}${detail}`;
    default:
      return `${run.status} · ${done}/${total} steps${run.finishedAt ? ` · ${formatDuration(Date.parse(run.finishedAt) - Date.parse(run.createdAt))}` : ''}${run.error ? ` · ${run.error}` : ''}`;
  }
}

/** What a waiting run waits for, as the plan card's status says it. */
function waitingLine(w: WaitingFor | undefined): string {
  return w ? `waiting for ${waitingText(w)}` : 'waiting';
}

function toneOf(run: Run): Tone {
  if (run.status === 'succeeded') return 'ok';
  if (run.status === 'waiting') return 'warn';
  if (run.status === 'failed' || run.status === 'rejected' || run.status === 'expired' || run.status === 'cancelled') return 'danger';
  return 'info';
}

function targets(run: Run): string {
  const hosts = run.locks.map((l) => l.host);
  return hosts.length ? hosts.join(', ') : Object.values(run.args).map(String).join(' ') || '—';
}

/** The plan card: procedure, requester, targets, every step with its risk, run id, live status. */
export function planCard(run: Run, style: Style = plainStyle): Message {
  const command = `${run.procedure} ${Object.entries(run.args).map(([k, v]) => (k === Object.keys(run.args)[0] ? String(v) : `--${k} ${String(v)}`)).join(' ')}`.trim();
  return {
    key: 'plan',
    place: 'channel',
    tone: toneOf(run),
    summary: `${command} · requested by ${run.requester} · ${statusLine(run)}`,
    blocks: [
      { type: 'heading', text: command },
      { type: 'fields', fields: [{ label: 'Requested by', value: style.mention(run.requester) }, { label: 'Targets', value: targets(run) }, { label: 'Run', value: run.id }, { label: 'Status', value: statusLine(run) }] },
      { type: 'list', items: planLines(run.plan, run) },
      ...run.notes.map((n) => ({ type: 'context' as const, text: `note: ${n}` })),
    ],
  };
}

function outputBlocks(tail: string | undefined, truncated: boolean | undefined, name: string): Pick<Message, 'blocks' | 'file'> {
  const text = tail?.trimEnd() ?? '';
  if (!text) return { blocks: [] };
  if (text.length <= INLINE_OUTPUT && !truncated) return { blocks: [{ type: 'code', text }] };
  const shown = text.slice(-INLINE_OUTPUT);
  const cut = shown.indexOf('\n');
  return {
    blocks: [{ type: 'code', text: cut >= 0 && cut < 200 ? shown.slice(cut + 1) : shown }, { type: 'context', text: `last lines shown; the ${truncated ? 'kept tail of the' : 'full'} output is attached as ${name}` }],
    file: { name, content: text },
  };
}

/** One message per step: posted when it starts, updated when it finishes. */
export function stepMessage(e: Extract<StampedEvent, { type: 'step.started' | 'step.finished' }>, state?: StepState): Message {
  const key = `step:${e.path}`;
  if (e.type === 'step.started') {
    const what = e.command ? runsBlocks(e) : e.statement ? [{ type: 'code' as const, text: `${e.database}> ${e.statement}` }, ...runsBlocks({ ...(e.reference !== undefined ? { reference: e.reference } : {}), ...(e.variant ? { variant: e.variant } : {}) })] : [];
    return { key, place: 'thread', tone: 'info', summary: `▶ ${e.title}${e.host ? ` · ${e.host}` : ''}`, blocks: [{ type: 'text', text: `▶ **${e.title}**${e.host ? ` · ${e.host}` : ''}${e.attempt > 1 ? ` · attempt ${e.attempt}` : ''}` }, ...what] };
  }
  const facts = [e.host, e.exitCode !== undefined && e.exitCode !== null ? `exit ${e.exitCode}` : '', e.signal ? `signal ${e.signal}` : '', e.rowsAffected !== undefined ? `${e.rowsAffected} rows` : '', formatDuration(e.durationMs), e.reason ?? ''].filter(Boolean).join(' · ');
  const tone: Tone = e.status === 'succeeded' ? 'ok' : e.status === 'skipped' ? 'info' : 'danger';
  const command = state?.command ? [{ type: 'context' as const, text: `$ ${state.command}` }] : state?.statement ? [{ type: 'context' as const, text: `${state.database}> ${state.statement}` }] : [];
  const out: Pick<Message, 'blocks' | 'file'> = e.kind === 'forEach' || e.kind === 'group' ? { blocks: [] } : outputBlocks(e.report ?? e.outputTail, e.report ? false : e.outputTruncated, `${e.path.replace(/[^A-Za-z0-9._-]/g, '_')}.${e.report ? 'txt' : 'log'}`);
  if (e.attachment) {
    // The fetched file takes the message's one file; output that would have been attached stays shown as its tail.
    out.blocks.push({ type: 'context', text: `📎 ${e.attachment.path} from ${e.host ?? 'the host'} (${formatBytes(e.attachment.bytes)}) is attached` });
    out.file = { name: e.attachment.name, stored: { runId: e.runId, id: e.attachment.id, bytes: e.attachment.bytes } };
  }
  return {
    key,
    place: 'thread',
    tone,
    summary: `${STATUS_MARK[e.status] ?? ''} ${e.title} ${e.status}${facts ? ` · ${facts}` : ''}`,
    blocks: [{ type: 'text', text: `${STATUS_MARK[e.status] ?? ''} **${e.title}** ${e.status}${facts ? ` · ${facts}` : ''}` }, ...command, ...(e.error ? [{ type: 'text' as const, text: `error: ${e.error}` }] : []), ...out.blocks],
    ...(out.file ? { file: out.file } : {}),
  };
}

const GATE_TITLE: Record<Gate['kind'], string> = { approval: 'Approval needed', manual: 'A person must act', interrupted: 'Step interrupted: its worker stopped', definition: 'The procedure changed since this run started' };

function gateTitle(gate: Gate): string {
  if (gate.kind === 'interrupted' && gate.steps.length > 1) return `${gate.steps.length} steps interrupted: their worker stopped`;
  return GATE_TITLE[gate.kind];
}

function gateButtons(gate: Gate, runId: string): Button[] {
  const b = (action: ButtonAction, label: string, style: Button['style'], needsReason = false): Button => ({ action, label, style, runId, gateId: gate.id, ...(needsReason ? { needsReason } : {}) });
  if (gate.kind === 'approval') return [b('approve', 'Approve', 'primary'), b('reject', 'Reject', 'danger', true)];
  if (gate.kind === 'manual') return [b('done', 'Done', 'primary'), b('abort', 'Abort', 'danger')];
  if (gate.kind === 'definition') return [b('approve', 'Continue', 'primary'), b('abort', 'Abort', 'danger')];
  const all = gate.steps.length > 1 ? ' all' : '';
  return [b('retry', `Retry${all}`, 'primary'), b('skip', `Skip${all}`, 'default'), b('abort', 'Abort', 'danger')];
}

/** An approval request (or manual step, interrupted steps, changed procedure) with its buttons. */
export function gateMessage(gate: Gate, run: Pick<Run, 'id' | 'requester' | 'procedure'>, style: Style = plainStyle): Message {
  const blocks: Block[] = [{ type: 'heading', text: `${gateTitle(gate)}${gate.kind === 'approval' ? ` (${RISK[gate.risk]})` : ''}: ${run.procedure}` }];
  if (gate.kind === 'interrupted') blocks.push({ type: 'text', text: `Nobody knows whether ${gate.steps.length > 1 ? 'these steps' : 'this step'} finished, and running ${gate.steps.length > 1 ? 'them' : 'it'} twice may not be safe. Retry, skip, or abort the run (its finally steps still run).` });
  if (gate.kind === 'definition') blocks.push({ type: 'text', text: `"${run.procedure}" was deployed anew while run ${run.id} was under way: the steps still to run may differ from those planned. Continue with the new definition, or abort (its finally steps still run).` });
  for (const s of gate.steps) {
    const decided = gate.stepDecisions?.[s.path];
    blocks.push({ type: 'text', text: `**${s.title}** [${RISK[s.risk]}]${s.host ? ` on ${s.host}` : s.database ? ` on database ${s.database}` : ''}${decided ? ` · ${decidedWord(decided.decision)} by ${style.mention(decided.by)}` : ''}` });
    if (s.command) blocks.push(...runsBlocks(s));
    if (s.statement) blocks.push({ type: 'code', text: `${s.database}> ${s.statement}${s.params?.length ? `\n-- parameters: ${JSON.stringify(s.params)}` : ''}${s.expect ? `\n-- expects ${s.expect.min ?? 0} to ${s.expect.max ?? 'any number of'} rows changed` : ''}` });
    if (s.statement && (s.reference !== undefined || s.variant)) blocks.push(...runsBlocks({ ...(s.reference !== undefined ? { reference: s.reference } : {}), ...(s.variant ? { variant: s.variant } : {}) }));
    if (s.preview) blocks.push({ type: 'table', columns: s.preview.columns, rows: s.preview.rows.map((r) => r.map((v) => (v === null ? 'NULL' : String(v)))), note: `${s.preview.total} row${s.preview.total === 1 ? '' : 's'} this statement touches${s.preview.total > s.preview.rows.length ? ` (first ${s.preview.rows.length} shown)` : ''}` });
    if (s.instructions) blocks.push({ type: 'text', text: s.instructions });
  }
  blocks.push({ type: 'fields', fields: [{ label: 'Requested by', value: style.mention(run.requester) }, { label: gate.kind === 'manual' ? 'May confirm' : 'May decide', value: gate.deciders.map((d) => style.mention(d)).join(', ') || 'nobody: fix policy.approve' }, ...(gate.expiresAt ? [{ label: 'Expires', value: style.time(gate.expiresAt) }] : [])] });
  if (gate.status === 'open') {
    blocks.push({ type: 'buttons', buttons: gateButtons(gate, run.id) });
  } else {
    blocks.push({ type: 'context', text: decidedText(gate, style) });
  }
  const first = gate.steps[0];
  const good = gate.decision === 'approve' || gate.decision === 'done' || gate.decision === 'retry';
  return {
    key: `gate:${gate.id}`,
    place: 'thread',
    broadcast: gate.status === 'open',
    tone: gate.status === 'open' ? 'warn' : gate.status === 'decided' && good ? 'ok' : 'danger',
    summary: `${gateTitle(gate)}: ${first ? `${first.title}${first.command ? ` (${first.command})` : ''}${gate.steps.length > 1 ? ` and ${gate.steps.length - 1} more` : ''}` : run.procedure} · run ${run.id}`,
    blocks,
  };
}

export function decidedText(gate: Gate, style: Style = plainStyle): string {
  const who = gate.decidedBy && gate.decidedBy !== 'system' ? ` by ${style.mention(gate.decidedBy)}` : '';
  const when = gate.decidedAt ? ` at ${style.time(gate.decidedAt)}` : '';
  const what = gate.status === 'void' ? 'No longer valid' : gate.decision ? decidedWord(gate.decision, true) : gate.status;
  return `${what}${gate.status === 'void' ? '' : `${who}${when}`}${gate.reason ? `: ${gate.reason}` : ''}`;
}

/** A line in the thread that is not a step: lock waits, interruptions, refusals, cancellation. */
export function noticeMessage(e: StampedEvent, style: Style = plainStyle): Message | undefined {
  const m = (key: string, tone: Tone, text: string): Message => ({ key, place: 'thread', tone, summary: text, blocks: [{ type: 'text', text }] });
  switch (e.type) {
    case 'lock.waiting':
      return m(`lock:${e.id ?? e.at}`, 'warn', `⏳ Waiting for ${waitingText({ locks: { hosts: e.hosts, heldBy: e.holders ?? e.heldBy.map((run) => ({ run })) } })}. No worker is held meanwhile.`);
    case 'step.interrupted':
      return m(`interrupted:${e.path}:${e.id ?? e.at}`, 'warn', `⚠️ **${e.title}** was interrupted: its worker stopped.${e.idempotent ? ' It is safe to run again, and runs again now.' : ''}`);
    case 'run.cancel-requested':
      return m('cancel', 'warn', `⏹ Cancellation requested by ${style.mention(e.by)}: the running step is stopped, then the finally steps run.`);
    case 'run.started':
      return e.resumed ? m(`resumed:${e.id ?? e.at}`, 'info', `↻ Resumed by worker ${e.worker}.`) : undefined;
    case 'step.progress':
      return undefined;
    default:
      return undefined;
  }
}

/** The run's end, in the thread and (broadcast) in the channel. */
export function finalMessage(run: Run, style: Style = plainStyle): Message {
  const mark = run.status === 'succeeded' ? '✅' : '❌';
  const text = `${mark} Run ${run.id} ${run.status}${run.error ? `: ${run.error}` : ''} · ${formatDuration(run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(run.createdAt) : undefined)} · requested by ${style.mention(run.requester)}`;
  return { key: 'final', place: 'thread', broadcast: run.status !== 'succeeded', tone: toneOf(run), summary: text, blocks: [{ type: 'text', text }] };
}

/**
 * What an event changes in chat: a message to post or update, and whether the plan card's status
 * should be refreshed. Step output chunks change nothing (the finished step carries its tail).
 */
export function messagesFor(e: StampedEvent, run: Run, style: Style = plainStyle): { messages: Message[]; refreshPlan: boolean } {
  switch (e.type) {
    case 'run.requested':
      return { messages: [], refreshPlan: false };
    case 'run.planned':
      return { messages: [planCard(run, style)], refreshPlan: false };
    case 'step.started':
      return { messages: e.kind === 'forEach' || e.kind === 'group' ? [] : [stepMessage(e)], refreshPlan: true };
    case 'step.finished':
      return { messages: [stepMessage(e, run.steps[e.path])], refreshPlan: true };
    case 'step.progress':
      return { messages: [], refreshPlan: e.total !== undefined };
    case 'gate.opened':
    case 'gate.decided':
    case 'gate.voided':
      return { messages: [gateMessage(run.gates[e.gate.id] ?? e.gate, run, style)], refreshPlan: true };
    case 'run.finished':
      return { messages: [finalMessage(run, style)], refreshPlan: true };
    case 'run.waiting':
      return { messages: [], refreshPlan: true };
    default: {
      const n = noticeMessage(e, style);
      return { messages: n ? [n] : [], refreshPlan: e.type === 'run.started' };
    }
  }
}
