/**
 * Neutral messages as Discord messages: an embed coloured by tone (title, description, fields),
 * buttons as an action row, long output as an attached file. Pure functions.
 */
import { createHash } from 'node:crypto';
import {
  ButtonStyle,
  ComponentType,
  TextInputStyle,
  type APIActionRowComponent,
  type APIButtonComponentWithCustomId,
  type APIEmbed,
  type APIEmbedField,
  type APIModalInteractionResponseCallbackData,
  type RESTPostAPIChannelMessageJSONBody,
} from 'discord.js';
import type { Policy } from '../../approvals/policy.js';
import type { Block, Button, ButtonAction, Message, Style, Tone } from '../messages.js';

/** Discord's limits on an embed and a message. */
const TITLE_MAX = 256;
const DESCRIPTION_MAX = 4096;
const FIELD_NAME_MAX = 256;
const FIELD_VALUE_MAX = 1024;
const FIELDS_MAX = 25;
const CONTENT_MAX = 2000;

const COLOUR: Record<Tone, number> = { info: 0x5865f2, ok: 0x57f287, warn: 0xfee75c, danger: 0xed4245 };

/** People as Discord mentions (`<@id>`, shown as names, never pinging from an embed) and times in the reader's zone. */
export function discordStyle(policy: Policy): Style {
  return {
    mention: (personId) => {
      const id = policy.person(personId)?.discord;
      return id ? `<@${id}>` : `@${personId}`;
    },
    time: (iso) => `<t:${Math.floor(Date.parse(iso) / 1000)}:t>`,
  };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A code block that keeps the end of what does not fit (output tails matter most). */
function codeBlock(text: string, max: number): string {
  const safe = text.replace(/```/g, '`\u200b``');
  const room = max - 8;
  return `\`\`\`\n${safe.length <= room ? safe : `…${safe.slice(-(room - 1))}`}\n\`\`\``;
}

function table(columns: string[], rows: string[][]): string {
  const widths = columns.map((c, i) => Math.min(40, Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length))));
  const line = (cells: string[]) => cells.map((c, i) => clip(c, widths[i]!).padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), ...rows.map(line)].join('\n');
}

function describe(block: Exclude<Block, { type: 'heading' | 'fields' | 'buttons' }>): string {
  switch (block.type) {
    case 'text':
      return block.text;
    case 'code':
      return codeBlock(block.text, DESCRIPTION_MAX);
    case 'list':
      return block.items.map((i) => `${'\u2003'.repeat(i.indent ?? 0)}${i.text}`).join('\n');
    case 'table':
      return `${codeBlock(table(block.columns, block.rows), DESCRIPTION_MAX)}${block.note ? `\n-# ${block.note}` : ''}`;
    case 'context':
      return `-# ${block.text}`;
  }
}

/** Parts of the description, shortened (longest first) until they fit Discord's limit. */
function fit(parts: string[]): string {
  const joined = () => parts.join('\n');
  while (joined().length > DESCRIPTION_MAX) {
    const longest = parts.reduce((best, p, i) => (p.length > parts[best]!.length ? i : best), 0);
    const over = joined().length - DESCRIPTION_MAX;
    const part = parts[longest]!;
    const target = Math.max(16, part.length - over - 1);
    parts[longest] = part.startsWith('```') ? codeBlock(part.slice(4, -4), target) : clip(part, target);
    if (target === 16) return clip(joined(), DESCRIPTION_MAX);
  }
  return joined();
}

export interface CustomId {
  action: ButtonAction;
  runId: string;
  gateId: string;
}

/** Discord's limit on a button's or modal's custom id. */
const CUSTOM_ID_MAX = 100;

/** A gate id too long for a custom id (deep forEach paths), as a digest the handler looks up in the run. */
export function gateRef(gateId: string): string {
  return `#${createHash('sha256').update(gateId).digest('base64url').slice(0, 16)}`;
}

/**
 * Button and modal ids carry what a click decides: `rb:<action>:<run>:<gate>`, or with the gate as
 * `gateRef` when that would not fit.
 */
export function encodeCustomId(b: Pick<Button, 'action' | 'runId' | 'gateId'>, prefix = 'rb'): string {
  const full = `${prefix}:${b.action}:${b.runId}:${b.gateId}`;
  return full.length <= CUSTOM_ID_MAX ? full : `${prefix}:${b.action}:${b.runId}:${b.gateId.startsWith('#') ? b.gateId : gateRef(b.gateId)}`;
}

export function decodeCustomId(id: string, prefix = 'rb'): CustomId | undefined {
  const m = new RegExp(`^${prefix}:(approve|reject|retry|skip|abort|done):([^:]+):(.+)$`).exec(id);
  return m ? { action: m[1] as ButtonAction, runId: m[2]!, gateId: m[3]! } : undefined;
}

/** The modal of a Reject (or any decision that needs a reason). */
export function reasonModal(c: CustomId): APIModalInteractionResponseCallbackData {
  return {
    custom_id: encodeCustomId(c, 'rbm'),
    title: 'Reject: say why',
    components: [{ type: ComponentType.ActionRow, components: [{ type: ComponentType.TextInput, custom_id: 'reason', label: 'Reason (shown in the thread)', style: TextInputStyle.Paragraph, required: true, max_length: 500 }] }],
  };
}

const BUTTON_STYLE: Record<Button['style'], ButtonStyle.Primary | ButtonStyle.Danger | ButtonStyle.Secondary> = { primary: ButtonStyle.Primary, danger: ButtonStyle.Danger, default: ButtonStyle.Secondary };

export interface DiscordMessage {
  body: RESTPostAPIChannelMessageJSONBody & { attachments?: { id: number; filename: string }[] };
  files?: { name: string; data: Buffer }[];
}

/**
 * A neutral message as a Discord message. Buttons always travel as `components` (empty when there
 * are none), so an edit removes the buttons of a decided gate. A message that asks people for
 * something (`broadcast`) mentions them in its content: mentions inside an embed do not notify.
 */
export function toDiscord(m: Message): DiscordMessage {
  const embed: APIEmbed = { color: COLOUR[m.tone] };
  const parts: string[] = [];
  const fields: APIEmbedField[] = [];
  const components: APIActionRowComponent<APIButtonComponentWithCustomId>[] = [];
  for (const b of m.blocks) {
    if (b.type === 'heading') {
      if (embed.title) parts.push(`**${b.text}**`);
      else embed.title = clip(b.text, TITLE_MAX);
    } else if (b.type === 'fields') {
      for (const f of b.fields) fields.push({ name: clip(f.label, FIELD_NAME_MAX), value: clip(f.value || '—', FIELD_VALUE_MAX), inline: f.value.length <= 60 });
    } else if (b.type === 'buttons') {
      components.push({ type: ComponentType.ActionRow, components: b.buttons.slice(0, 5).map((btn) => ({ type: ComponentType.Button, style: BUTTON_STYLE[btn.style], label: btn.label, custom_id: encodeCustomId(btn) })) });
    } else {
      parts.push(describe(b));
    }
  }
  if (parts.length) embed.description = fit(parts);
  if (fields.length) embed.fields = fields.slice(0, FIELDS_MAX);
  const mentions = m.broadcast ? [...new Set(JSON.stringify(m.blocks).match(/<@\d+>/g) ?? [])] : [];
  const content = m.broadcast ? clip(`${m.summary}${mentions.length ? ` · ${mentions.join(' ')}` : ''}`, CONTENT_MAX) : '';
  const body: DiscordMessage['body'] = {
    content,
    embeds: [embed],
    components,
    allowed_mentions: { parse: [], users: mentions.map((x) => x.slice(2, -1)) },
  };
  // A stored file not loaded (loadFiles) has no bytes to send.
  if (!m.file || !('content' in m.file)) return { body };
  return { body: { ...body, attachments: [{ id: 0, filename: m.file.name }] }, files: [{ name: m.file.name, data: Buffer.from(m.file.content) }] };
}
