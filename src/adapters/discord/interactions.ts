import {
  ApplicationCommandType,
  ChannelType,
  InteractionResponseType,
  InteractionType,
  MessageFlags,
  Routes,
  type APIChatInputApplicationCommandInteraction,
  type APIInteraction,
  type APIInteractionResponse,
  type APIMessageComponentInteraction,
  type APIModalSubmitInteraction,
  type REST,
} from 'discord.js';
import type { Policy } from '../../approvals/policy.js';
import type { RunStore } from '../../engine/store.js';
import type { Decision, Origin } from '../../engine/types.js';
import type { Inventory } from '../../inventory.js';
import type { Catalog } from '../../procedures/catalog.js';
import type { ChatService, Reply } from '../chat.js';
import { commandText, hostChoices, subcommandOf } from './commands.js';
import { decodeCustomId, gateRef, reasonModal, type CustomId } from './render.js';

/**
 * Discord closes an interaction that is not answered within 3 s. Work that is not done by this
 * deadline is acknowledged with a deferred (ephemeral) answer, completed when the work ends.
 */
export const ACK_DEADLINE_MS = 2_000;

const CONTENT_MAX = 2000;
const THREAD_TYPES: readonly ChannelType[] = [ChannelType.PublicThread, ChannelType.PrivateThread, ChannelType.AnnouncementThread];

/** How an interaction's answer goes back: a REST callback (gateway) or the HTTP response (interactions endpoint). */
export type Respond = (response: APIInteractionResponse) => Promise<void>;

export interface InteractionDeps {
  chat: ChatService;
  catalog: Catalog;
  inventory: Inventory;
  policy: Policy;
  store: RunStore;
  rest: REST;
  applicationId: string;
  /** Default ACK_DEADLINE_MS. */
  ackDeadlineMs?: number;
}

interface Answer {
  ephemeral: boolean;
  text: string;
}

/**
 * What a slash command, an autocomplete request, a button click or a modal means, the same for the
 * gateway and the HTTP endpoint. The interaction token is used for the first answer only (and, when
 * deferred, to complete it); progress goes through the bot token.
 */
export class InteractionHandler {
  constructor(private readonly d: InteractionDeps) {}

  async handle(i: APIInteraction, respond: Respond): Promise<void> {
    switch (i.type) {
      case InteractionType.Ping:
        return respond({ type: InteractionResponseType.Pong });
      case InteractionType.ApplicationCommandAutocomplete:
        return respond({ type: InteractionResponseType.ApplicationCommandAutocompleteResult, data: { choices: hostChoices(this.d.catalog, this.d.inventory, i) } });
      case InteractionType.ApplicationCommand:
        if (i.data.type !== ApplicationCommandType.ChatInput) return this.answer(i, respond, Promise.resolve({ ephemeral: true, text: 'This bot only has slash commands.' }));
        return this.answer(i, respond, this.command(i as APIChatInputApplicationCommandInteraction));
      case InteractionType.MessageComponent:
        return this.click(i, respond);
      case InteractionType.ModalSubmit:
        return this.modal(i, respond);
    }
  }

  private userId(i: APIInteraction): string {
    return i.member?.user.id ?? i.user?.id ?? '';
  }

  private async command(i: APIChatInputApplicationCommandInteraction): Promise<Answer> {
    const pack = i.data.name;
    const found = subcommandOf(i.data.options);
    const text = found ? commandText(this.d.catalog, pack, found.sub, found.options) : '';
    const channel = i.channel?.id ?? i.channel_id ?? '';
    const inThread = i.channel !== undefined && THREAD_TYPES.includes(i.channel.type);
    const origin: Origin = { adapter: 'discord', channel, ...(inThread ? { thread: channel } : {}), ...(i.guild_id ? { guild: i.guild_id } : {}) };
    return this.d.chat.command('discord', this.userId(i), pack, text, origin);
  }

  /** The gate a custom id names, looked up in the run when it carries a `gateRef`. */
  private async gateOf(c: CustomId): Promise<string> {
    if (!c.gateId.startsWith('#')) return c.gateId;
    const run = await this.d.store.find(c.runId);
    return Object.keys(run?.gates ?? {}).find((id) => gateRef(id) === c.gateId) ?? c.gateId;
  }

  private async click(i: APIMessageComponentInteraction, respond: Respond): Promise<void> {
    const decoded = decodeCustomId(i.data.custom_id);
    const c = decoded && { ...decoded, gateId: await this.gateOf(decoded) };
    if (!c) return this.answer(i, respond, Promise.resolve({ ephemeral: true, text: 'This button belongs to an older version of the bot; use /<pack> status.' }));
    if (c.action === 'reject') {
      const refusal = await this.refusal(this.userId(i), c.runId, c.gateId, 'reject');
      if (refusal) return this.answer(i, respond, Promise.resolve({ ephemeral: true, text: refusal }));
      return respond({ type: InteractionResponseType.Modal, data: reasonModal(c) });
    }
    return this.answer(i, respond, this.d.chat.decide('discord', this.userId(i), c.runId, c.gateId, c.action as Decision));
  }

  private async modal(i: APIModalSubmitInteraction, respond: Respond): Promise<void> {
    const decoded = decodeCustomId(i.data.custom_id, 'rbm');
    const c = decoded && { ...decoded, gateId: await this.gateOf(decoded) };
    if (!c) return this.answer(i, respond, Promise.resolve({ ephemeral: true, text: 'This form belongs to an older version of the bot.' }));
    const reason = findValue(i.data.components, 'reason')?.trim();
    return this.answer(i, respond, this.d.chat.decide('discord', this.userId(i), c.runId, c.gateId, c.action as Decision, reason || undefined));
  }

  /** Why this person may not decide (so the modal is not shown to someone who cannot reject), or nothing. */
  private async refusal(userId: string, runId: string, gateId: string, decision: Decision): Promise<string | undefined> {
    const person = this.d.chat.person('discord', userId);
    const run = await this.d.store.find(runId);
    const gate = run?.gates[gateId];
    if (!person || !run || !gate || gate.status !== 'open') return undefined;
    try {
      this.d.policy.assertCanDecide(run, gate, person.id, decision);
      return undefined;
    } catch (err) {
      return this.d.chat.explain(err);
    }
  }

  /** Answers within the deadline: at once when the work is done by then, else deferred and completed. */
  private async answer(i: APIInteraction, respond: Respond, work: Promise<Reply | Answer>): Promise<void> {
    const safe = work.catch((err: unknown) => ({ ephemeral: true, text: this.d.chat.explain(err) }));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), this.d.ackDeadlineMs ?? ACK_DEADLINE_MS)));
    const early = await Promise.race([safe, late]);
    clearTimeout(timer);
    if (early) {
      await respond({ type: InteractionResponseType.ChannelMessageWithSource, data: { content: clip(early.text), allowed_mentions: { parse: [] }, ...(early.ephemeral ? { flags: MessageFlags.Ephemeral } : {}) } });
      return;
    }
    await respond({ type: InteractionResponseType.DeferredChannelMessageWithSource, data: { flags: MessageFlags.Ephemeral } });
    const done = await safe;
    await this.d.rest.patch(Routes.webhookMessage(this.d.applicationId, i.token), { body: { content: clip(done.text), allowed_mentions: { parse: [] } }, auth: false });
  }
}

function clip(text: string): string {
  return text.length <= CONTENT_MAX ? text : `${text.slice(0, CONTENT_MAX - 1)}…`;
}

/** A text input's value in a modal submission, wherever its row or label put it. */
function findValue(components: unknown, customId: string): string | undefined {
  if (!components || typeof components !== 'object') return undefined;
  if (Array.isArray(components)) {
    for (const c of components) {
      const v = findValue(c, customId);
      if (v !== undefined) return v;
    }
    return undefined;
  }
  const c = components as { custom_id?: string; value?: unknown; components?: unknown; component?: unknown };
  if (c.custom_id === customId && typeof c.value === 'string') return c.value;
  return findValue(c.components, customId) ?? findValue(c.component, customId);
}
