import { createHash } from 'node:crypto';
import { DiscordAPIError, RESTJSONErrorCodes, Routes, ThreadAutoArchiveDuration, type APIMessage, type APIThreadChannel, type REST } from 'discord.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Run, StampedEvent } from '../../engine/types.js';
import type { ChatAdapter } from '../hub.js';
import { loadFiles, messagesFor, planCard, type Message, type Style } from '../messages.js';
import { toDiscord } from './render.js';

/** How long the message ids of a finished run are kept (a late redelivery still edits, never reposts). */
const STATE_TTL_S = 30 * 24 * 3600;

export interface DiscordProgressOptions {
  rest: REST;
  redis: Redis;
  /** Redis key prefix of the deployment (`rt.prefix`); ids live under `<prefix>:discord:run:<id>`. */
  prefix: string;
  style: Style;
  log: Logger;
  /** The bytes of a file a step attached (RunStore.getFile). */
  getFile(runId: string, id: string): Promise<Buffer | undefined>;
  /** Least time between two edits of one plan card's status: edits in between are coalesced. Default 1000 ms. */
  planEditIntervalMs?: number;
}

interface PendingPlan {
  latest: Run;
  timer?: NodeJS.Timeout;
  editing?: Promise<void>;
  dirty: boolean;
  lastEditAt: number;
}

/**
 * Progress in Discord, with the bot token only: the plan card as a channel message, a thread
 * started from it, a message per key in the thread (posted once, then edited), and the plan card's
 * status edited as the run advances. Everything posted is remembered in Redis, so a redelivered
 * event or a restarted bot edits the same messages.
 */
export class DiscordProgress implements ChatAdapter {
  readonly name = 'discord';
  private readonly plans = new Map<string, PendingPlan>();
  private readonly interval: number;

  constructor(private readonly o: DiscordProgressOptions) {
    this.interval = o.planEditIntervalMs ?? 1_000;
  }

  private key(runId: string): string {
    return `${this.o.prefix}:discord:run:${runId}`;
  }

  async deliver(run: Run, event: StampedEvent): Promise<void> {
    const { messages, refreshPlan } = messagesFor(event, run, this.o.style);
    for (const m of await loadFiles(messages, this.o.getFile)) await this.put(run, m);
    // The thread opens with the plan, so people can follow it before the first step starts.
    if (event.type === 'run.planned') await this.thread(run);
    if (event.type === 'run.finished') {
      await this.flushPlan(run);
      await this.o.redis.expire(this.key(run.id), STATE_TTL_S);
    } else if (refreshPlan) {
      this.requestPlanEdit(run);
    }
  }

  /** Sends the pending plan edits now: a stopping bot leaves every card as current as it can. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.plans.values()].map((p) => this.flushPlan(p.latest)));
  }

  /** Posts a message, or edits it when its key was posted before. */
  private async put(run: Run, m: Message): Promise<void> {
    const channel = m.place === 'channel' ? this.channelOf(run) : await this.thread(run);
    const field = `m:${m.key}`;
    const known = await this.o.redis.hget(this.key(run.id), field);
    const { body, files } = toDiscord(m);
    if (known) {
      await this.o.rest.patch(Routes.channelMessage(channel, known), { body, ...(files ? { files } : {}) });
      return;
    }
    // enforce_nonce: if this post went through before a crash kept us from noting its id, Discord returns that message instead of posting again.
    const nonce = createHash('sha256').update(`${run.id}\0${m.key}`).digest('base64url').slice(0, 25);
    const posted = (await this.o.rest.post(Routes.channelMessages(channel), { body: { ...body, nonce, enforce_nonce: true }, ...(files ? { files } : {}) })) as APIMessage;
    await this.o.redis.hset(this.key(run.id), field, posted.id);
  }

  private channelOf(run: Run): string {
    const c = run.origin.thread ?? run.origin.channel;
    if (!c) throw new Error(`run ${run.id} has no Discord channel in its origin`);
    return c;
  }

  /**
   * The run's thread: started from the plan card (posted first if it is not yet). A command typed
   * inside a thread, or in a channel that has no threads (a DM), reports where it was typed.
   */
  private async thread(run: Run): Promise<string> {
    if (run.origin.thread) return run.origin.thread;
    const key = this.key(run.id);
    const known = await this.o.redis.hget(key, 'thread');
    if (known) return known;
    if (!(await this.o.redis.hget(key, 'm:plan'))) await this.put(run, planCard(run, this.o.style));
    const channel = this.channelOf(run);
    const plan = (await this.o.redis.hget(key, 'm:plan'))!;
    let thread: string;
    try {
      const created = (await this.o.rest.post(Routes.threads(channel, plan), { body: { name: threadName(run), auto_archive_duration: ThreadAutoArchiveDuration.OneDay } })) as APIThreadChannel;
      thread = created.id;
    } catch (err) {
      if (!(err instanceof DiscordAPIError)) throw err;
      // A thread started from a message has the message's id.
      if (err.code === RESTJSONErrorCodes.ThreadAlreadyCreatedForMessage) thread = plan;
      else if (err.status === 400 || err.status === 403) {
        this.o.log.warn({ runId: run.id, channel, err: err.message }, 'cannot start a thread here; reporting in the channel');
        thread = channel;
      } else throw err;
    }
    await this.o.redis.hset(key, 'thread', thread);
    return thread;
  }

  private requestPlanEdit(run: Run): void {
    const p = this.plans.get(run.id);
    if (!p) {
      const fresh: PendingPlan = { latest: run, dirty: true, lastEditAt: 0 };
      this.plans.set(run.id, fresh);
      this.schedule(fresh);
      return;
    }
    p.latest = run;
    p.dirty = true;
    if (!p.timer && !p.editing) this.schedule(p);
  }

  private schedule(p: PendingPlan): void {
    const wait = Math.max(0, p.lastEditAt + this.interval - Date.now());
    p.timer = setTimeout(() => {
      p.timer = undefined;
      p.editing = this.editPlan(p)
        .catch((err: unknown) => this.o.log.warn({ runId: p.latest.id, err: (err as Error).message }, 'plan card edit failed; the next one carries the status'))
        .finally(() => {
          p.editing = undefined;
          if (p.dirty && this.plans.get(p.latest.id) === p) this.schedule(p);
        });
    }, wait);
  }

  private async editPlan(p: PendingPlan): Promise<void> {
    p.dirty = false;
    p.lastEditAt = Date.now();
    await this.put(p.latest, planCard(p.latest, this.o.style));
  }

  /** The plan card's last edit, awaited: the final status must arrive, so a failure here is retried by the hub. */
  private async flushPlan(run: Run): Promise<void> {
    const p = this.plans.get(run.id);
    if (p) {
      this.plans.delete(run.id);
      clearTimeout(p.timer);
      await p.editing;
    }
    await this.put(run, planCard(run, this.o.style));
  }
}

function threadName(run: Run): string {
  const args = Object.values(run.args).map(String).join(' ');
  return `${run.procedure}${args ? ` ${args}` : ''} · ${run.id}`.slice(0, 100);
}
