/**
 * Neutral messages (../messages.ts) as Block Kit, within Slack's limits: 50 blocks a message,
 * 3,000 characters a section, 150 a header, 10 fields of 2,000.
 */
import type { types } from '@slack/bolt';
import type { Block, Button, Message, Style, Tone } from '../messages.js';

type KnownBlock = types.KnownBlock;

/** The payload of chat.postMessage / chat.update, without channel and ts. */
export interface SlackBody {
  text: string;
  blocks: KnownBlock[];
}

export const MAX_BLOCKS = 50;
const SECTION_CHARS = 3_000;
const HEADER_CHARS = 150;
const FIELD_CHARS = 2_000;
/** Notification text (`text`) beyond this is cut: the blocks carry the content. */
const TEXT_CHARS = 3_000;

/** `action_id` prefix of our buttons; the suffix is the ButtonAction. */
export const ACTION_PREFIX = 'runbook.';
/** `callback_id` of the modal that asks why a gate is rejected. */
export const REJECT_VIEW = 'runbook.reject';

/** What a button carries back when clicked. */
export interface ButtonValue {
  runId: string;
  gateId: string;
}

const TONE_MARK: Record<Tone, string> = { info: '', ok: '', warn: ':warning: ', danger: ':x: ' };

/** Slack mentions and dates are the only `<…>` sequences we let through; everything else is escaped. */
const SLACK_TOKEN = /(<@[A-Z0-9]+>|<!date\^\d+\^[^|>]*\|[^>]*>)/;

export function escapeMrkdwn(text: string): string {
  return text
    .split(SLACK_TOKEN)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')))
    .join('');
}

/** The model's light markdown (**bold**, `code`) as mrkdwn. */
function mrkdwn(text: string): string {
  return escapeMrkdwn(text).replace(/\*\*(.+?)\*\*/g, '*$1*');
}

/** Keeps the end of `text` (the last lines of output are what matter), marking the cut. */
function tail(text: string, max: number): string {
  if (text.length <= max) return text;
  const kept = text.slice(-(max - 2));
  const nl = kept.indexOf('\n');
  return `…\n${nl >= 0 && nl < 200 ? kept.slice(nl + 1) : kept}`;
}

function head(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function section(text: string): KnownBlock {
  return { type: 'section', text: { type: 'mrkdwn', text } };
}

/** Splits long mrkdwn on line boundaries into sections of at most SECTION_CHARS. */
function sections(text: string): KnownBlock[] {
  const out: KnownBlock[] = [];
  let chunk = '';
  for (const line of text.split('\n')) {
    const l = head(line, SECTION_CHARS);
    if (chunk && chunk.length + 1 + l.length > SECTION_CHARS) {
      out.push(section(chunk));
      chunk = '';
    }
    chunk = chunk ? `${chunk}\n${l}` : l;
  }
  if (chunk) out.push(section(chunk));
  return out;
}

function codeBlock(text: string): KnownBlock {
  // Triple backticks inside output would end the block early.
  return section(`\`\`\`${tail(escapeMrkdwn(text.replace(/```/g, "'''")), SECTION_CHARS - 6)}\`\`\``);
}

function table(columns: string[], rows: string[][]): string {
  const widths = columns.map((c, i) => Math.min(40, Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length))));
  const line = (cells: string[]) => cells.map((c, i) => head(c, widths[i]!).padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function button(b: Button): types.Button {
  const value: ButtonValue = { runId: b.runId, gateId: b.gateId };
  return {
    type: 'button',
    action_id: `${ACTION_PREFIX}${b.action}`,
    text: { type: 'plain_text', text: b.label },
    value: JSON.stringify(value),
    ...(b.style === 'default' ? {} : { style: b.style }),
  };
}

function blockKit(b: Block): KnownBlock[] {
  switch (b.type) {
    case 'heading':
      return [{ type: 'header', text: { type: 'plain_text', text: head(b.text, HEADER_CHARS) } }];
    case 'text':
      return sections(mrkdwn(b.text));
    case 'fields':
      return [{ type: 'section', fields: b.fields.slice(0, 10).map((f) => ({ type: 'mrkdwn' as const, text: head(`*${escapeMrkdwn(f.label)}*\n${mrkdwn(f.value)}`, FIELD_CHARS) })) }];
    case 'code':
      return [codeBlock(b.text)];
    case 'list':
      return sections(b.items.map((i) => `${'\u2003'.repeat(i.indent ?? 0)}${mrkdwn(i.text)}`).join('\n'));
    case 'table':
      return [codeBlock(table(b.columns, b.rows)), ...(b.note ? [{ type: 'context' as const, elements: [{ type: 'mrkdwn' as const, text: mrkdwn(b.note) }] }] : [])];
    case 'context':
      return [{ type: 'context', elements: [{ type: 'mrkdwn', text: head(mrkdwn(b.text), SECTION_CHARS) }] }];
    case 'buttons':
      return [{ type: 'actions', elements: b.buttons.map(button) }];
  }
}

/** One neutral message as a Slack body. */
export function toSlack(m: Message): SlackBody {
  let blocks = m.blocks.flatMap(blockKit);
  if (blocks.length > MAX_BLOCKS) blocks = [...blocks.slice(0, MAX_BLOCKS - 1), { type: 'context', elements: [{ type: 'mrkdwn', text: `${blocks.length - MAX_BLOCKS + 1} more blocks left out; see \`runbook show\`` }] }];
  return { text: head(`${TONE_MARK[m.tone]}${m.summary}`, TEXT_CHARS), blocks };
}

/**
 * Several thread messages posted as one (when a thread is backed up): each keeps its blocks when
 * they fit, else each becomes one section (its text and the end of its output).
 */
export function mergeBodies(bodies: SlackBody[]): SlackBody {
  if (bodies.length === 1) return bodies[0]!;
  const text = head(bodies.map((b) => b.text).join('\n'), TEXT_CHARS);
  const all = bodies.flatMap((b, i) => (i ? [{ type: 'divider' } as KnownBlock, ...b.blocks] : b.blocks));
  if (all.length <= MAX_BLOCKS && JSON.stringify(all).length <= 30_000) return { text, blocks: all };
  const per = Math.min(SECTION_CHARS, Math.floor(30_000 / Math.min(bodies.length, MAX_BLOCKS)));
  return { text, blocks: bodies.slice(0, MAX_BLOCKS).map((b) => section(compact(b, per))) };
}

/** A body in one section: its first line, then the end of its last code block. */
function compact(b: SlackBody, max: number): string {
  const texts = b.blocks.flatMap((x) => (x.type === 'section' && x.text ? [x.text.text] : []));
  const title = head(texts[0] ?? escapeMrkdwn(b.text), Math.min(max, 300));
  const code = texts.slice(1).reverse().find((t) => t.startsWith('```'));
  if (!code || max - title.length < 40) return title;
  return `${title}\n\`\`\`${tail(code.slice(3, -3), max - title.length - 8)}\`\`\``;
}

/** How Slack names people (`<@U…>`, from people.<id>.slack) and times (in each reader's time zone). */
export function slackStyle(slackIdOf: (personId: string) => string | undefined): Style {
  return {
    mention: (p) => {
      const id = slackIdOf(p);
      return id ? `<@${id}>` : `@${p}`;
    },
    time: (iso) => `<!date^${Math.floor(Date.parse(iso) / 1000)}^{time}|${iso.slice(11, 16)} UTC>`,
  };
}
