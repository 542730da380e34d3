import { randomUUID } from 'node:crypto';
import { webApi } from '@slack/bolt';
import type { Logger } from 'pino';
import type { Run, StampedEvent } from '../../engine/types.js';
import type { Runtime } from '../../runtime.js';
import type { Reply } from '../chat.js';
import type { ChatAdapter } from '../hub.js';
import { loadFiles, messagesFor, planCard, type Message, type Style } from '../messages.js';
import { REJECT_VIEW, slackStyle, toSlack, type ButtonValue } from './block-kit.js';
import { boltLogger } from './logger.js';
import { SlackOutbox } from './outbox.js';
import type { SlackRequest } from './requests.js';

export interface SlackBotOptions {
  botToken: string;
  /** Web API base. Default https://slack.com/api/. */
  apiUrl?: string;
  /** Least time between two writes to one channel. Default 1000 ms. */
  intervalMs?: number;
  /** Told of every Web API call of the outbox and how it went. Default: this runtime's metrics. */
  observe?: (method: string, outcome: 'ok' | 'rate_limited' | 'error') => void;
}

/** How long a request key is remembered so that a retry or a double submit does nothing. */
const DEDUPE_SECONDS = 3_600;
/**
 * Requests worked on at once. Work here never holds up an ack (acks are answered by another
 * process), so this only bounds the Redis and database load a burst of commands makes.
 */
const CONCURRENCY = 8;

/** Runs jobs `limit` at a time, in arrival order, and knows when it has nothing left. */
class Lanes {
  private active = 0;
  private readonly queue: (() => Promise<void>)[] = [];
  private readonly idlers: (() => void)[] = [];

  constructor(
    private readonly limit: number,
    private readonly log: Logger,
  ) {}

  run(job: () => Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(() =>
        job()
          .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'a slack request failed after its ack'))
          .finally(resolve),
      );
      this.next();
    });
  }

  private next(): void {
    while (this.active < this.limit && this.queue.length) {
      const job = this.queue.shift()!;
      this.active++;
      void job().finally(() => {
        this.active--;
        this.next();
        if (!this.active && !this.queue.length) for (const f of this.idlers.splice(0)) f();
      });
    }
  }

  idle(): Promise<void> {
    return !this.active && !this.queue.length ? Promise.resolve() : new Promise((r) => this.idlers.push(r));
  }
}

/**
 * The Slack adapter's work, after Slack has its ack: it starts runs and records decisions for
 * the requests the acking side (./front.ts) hands over, answers the person, and is the
 * ChatAdapter that turns run events into Block Kit through the outbox. In `runbook start` it runs
 * in a process of its own (./work.ts, ./worker.ts), away from the event loop that acks.
 */
export class SlackBot implements ChatAdapter {
  readonly name = 'slack';
  readonly outbox: SlackOutbox;
  /** For answers to one person: retries a 429 itself, unlike the outbox's client. */
  private readonly client: webApi.WebClient;
  private readonly style: Style;
  private readonly log: Logger;
  private readonly lanes: Lanes;

  constructor(
    private readonly rt: Runtime,
    o: SlackBotOptions,
  ) {
    this.log = rt.log.child({ adapter: 'slack' });
    this.lanes = new Lanes(CONCURRENCY, this.log);
    const logger = boltLogger(rt.log);
    const slackApiUrl = o.apiUrl ?? 'https://slack.com/api/';
    this.client = new webApi.WebClient(o.botToken, { slackApiUrl, logger });
    // The outbox retries rate-limited calls itself, at the head of its channel, so order holds.
    const outboxClient = new webApi.WebClient(o.botToken, { slackApiUrl, logger, rejectRateLimitedCalls: true, retryConfig: { retries: 2, minTimeout: 200, maxTimeout: 2_000 } });
    const observe = o.observe ?? ((method: string, outcome: 'ok' | 'rate_limited' | 'error') => rt.metrics.chatCall('slack', method, outcome));
    this.outbox = new SlackOutbox({ client: outboxClient, redis: rt.redis, prefix: rt.prefix, log: this.log, observe, ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}) });
    this.style = slackStyle((p) => rt.config.people[p]?.slack);
  }

  /** Waits for the requests in hand and the messages queued, then stops posting. */
  async stop(): Promise<void> {
    await this.lanes.idle();
    await this.outbox.drain();
    this.outbox.close();
  }

  /**
   * Works on one acked request; resolves when it is done. `delivery` names this hand-over: the
   * same request handed over again under the same delivery (its process died midway) is worked on,
   * while a retry from Slack or a double submit, handed over under a new one, does nothing.
   */
  handle(req: SlackRequest, delivery: string = randomUUID()): Promise<void> {
    // The reject modal opens at once, while the click's trigger_id is valid (3 s): not queued.
    if (req.kind === 'action' && req.choice === 'reject') return this.reject(req, delivery).catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'opening the reject modal failed'));
    return this.work(req, delivery);
  }

  /** The request's work, queued behind the others: start a run, or record a decision, and answer. */
  private work(req: SlackRequest, delivery: string): Promise<void> {
    return this.lanes.run(async () => {
      const claim = await this.claim(req.key, delivery);
      if (claim === 'seen') return;
      if (typeof claim === 'object') {
        // This delivery started a run before its process died: make sure it is queued, nothing more.
        await this.rt.queue.advance(claim.runId, 'start');
      } else if (req.kind === 'command') {
        const origin = { adapter: this.name, channel: req.channel, user: req.user, ...(req.team ? { team: req.team } : {}) };
        const record = { key: this.seenKey(req.key), ttlSeconds: DEDUPE_SECONDS, value: (runId: string) => `run:${runId}:${delivery}` };
        const reply = await this.rt.chat.command('slack', req.user, req.pack, req.text, origin, record);
        // A started run answers with its plan card in the channel; anything else only to the person.
        if (!reply.run) await this.answer(req, reply);
      } else if (req.kind === 'action') {
        await this.answer(req, await this.rt.chat.decide('slack', req.user, req.runId, req.gateId, req.choice));
      } else {
        await this.answer(req, await this.rt.chat.decide('slack', req.user, req.runId, req.gateId, 'reject', req.reason?.trim() || undefined));
      }
      await this.done(req.key);
    });
  }

  private async reject(req: Extract<SlackRequest, { kind: 'action' }>, delivery: string): Promise<void> {
    // Someone who may not reject gets the refusal from the decision itself, which audits it.
    if (!(await this.mayDecide(req.user, req.runId, req.gateId))) return this.work(req, delivery);
    if ((await this.claim(req.key, delivery)) !== 'mine') return;
    await this.client.views.open({ trigger_id: req.triggerId, view: rejectView({ runId: req.runId, gateId: req.gateId, channel: req.channel }) });
    await this.done(req.key);
  }

  private seenKey(key: string): string {
    return `${this.rt.prefix}:slack:seen:${key}`;
  }

  /**
   * Whether this delivery may work on the request: `mine` the first time its key is seen, or when
   * the same delivery took it and did not finish; `{ runId }` when the same delivery already
   * started that run (recorded with the run, atomically); `seen` for a retry by Slack, a double
   * submit, or a request done.
   */
  private async claim(key: string, delivery: string): Promise<'mine' | 'seen' | { runId: string }> {
    const k = this.seenKey(key);
    if ((await this.rt.redis.set(k, delivery, 'EX', DEDUPE_SECONDS, 'NX')) === 'OK') return 'mine';
    const value = (await this.rt.redis.get(k)) ?? '';
    if (value === delivery) return 'mine';
    const started = /^run:([^:]+):(.+)$/.exec(value);
    return started && started[2] === delivery ? { runId: started[1]! } : 'seen';
  }

  /** The request is done: handing it over again, under any delivery, does nothing. */
  private async done(key: string): Promise<void> {
    await this.rt.redis.set(this.seenKey(key), 'done', 'EX', DEDUPE_SECONDS, 'XX');
  }

  /** Whether the Slack user may decide the gate now; the decision itself checks again, and audits a refusal. */
  private async mayDecide(userId: string, runId: string, gateId: string): Promise<boolean> {
    const person = this.rt.chat.person('slack', userId);
    const run = person ? await this.rt.store.find(runId) : undefined;
    const gate = run?.gates[gateId];
    return !!person && !!gate && gate.status === 'open' && gate.deciders.includes(person.id) && (gate.kind === 'manual' || person.id !== run!.requester);
  }

  /**
   * What only the person sees goes by chat.postEphemeral; where the bot cannot post (a private
   * channel it was not invited to, a DM), by the request's response_url.
   */
  private async answer(req: SlackRequest, reply: Reply): Promise<void> {
    const { channel, user } = req;
    try {
      if (!channel) throw new Error('no channel');
      if (reply.ephemeral) await this.client.chat.postEphemeral({ channel, user, text: reply.text });
      else await this.client.chat.postMessage({ channel, text: reply.text });
    } catch (err) {
      if (!req.responseUrl) return void this.log.warn({ err: (err as Error).message, user }, 'could not answer in slack');
      try {
        const res = await fetch(req.responseUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ response_type: reply.ephemeral ? 'ephemeral' : 'in_channel', text: reply.text }) });
        if (!res.ok) throw new Error(`response_url answered ${res.status}`);
      } catch (e) {
        this.log.warn({ err: (e as Error).message, user }, 'could not answer in slack');
      }
    }
  }

  /**
   * Queues what the event changes. Only `run.finished` waits until everything queued for its channel
   * up to the final message is posted: the hub acknowledges an audit entry when `deliver` returns, so
   * a crash can lose the few messages still queued for a running run (at most a few seconds of them),
   * never the end of a run, whose entry is then delivered again after the restart.
   */
  async deliver(run: Run, event: StampedEvent): Promise<void> {
    const channel = typeof run.origin.channel === 'string' ? run.origin.channel : undefined;
    if (!channel) return;
    const { messages, refreshPlan } = messagesFor(event, run, this.style);
    const all: Message[] = await loadFiles(messages, (r, id) => this.rt.store.getFile(r, id));
    if (refreshPlan && !all.some((m) => m.key === 'plan')) all.unshift(planCard(run, this.style));
    const sent = all.map((m) => this.outbox.send({ runId: run.id, key: m.key, channel, place: m.place, broadcast: m.broadcast ?? false, alone: m.key === 'final' || m.key.startsWith('gate:'), body: toSlack(m), ...(m.file && 'content' in m.file ? { file: m.file } : {}) }));
    if (event.type === 'run.finished') {
      await Promise.all(sent);
      this.outbox.forget(run.id);
    }
  }
}

function rejectView(meta: ButtonValue & { channel: string | undefined }) {
  return {
    type: 'modal' as const,
    callback_id: REJECT_VIEW,
    private_metadata: JSON.stringify(meta),
    title: { type: 'plain_text' as const, text: 'Reject' },
    submit: { type: 'plain_text' as const, text: 'Reject' },
    close: { type: 'plain_text' as const, text: 'Cancel' },
    blocks: [
      {
        type: 'input' as const,
        block_id: 'reason',
        label: { type: 'plain_text' as const, text: `Why reject run ${meta.runId}?` },
        element: { type: 'plain_text_input' as const, action_id: 'reason', multiline: true },
      },
    ],
  };
}
