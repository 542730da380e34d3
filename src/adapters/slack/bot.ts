import { createHash } from 'node:crypto';
import { App, LogLevel, SocketModeReceiver, webApi, type Logger as BoltLogger, type Receiver, type RespondArguments } from '@slack/bolt';
import type { Logger } from 'pino';
import type { Run, StampedEvent } from '../../engine/types.js';
import { ConfigError } from '../../errors.js';
import type { Route } from '../../http/server.js';
import type { Runtime } from '../../runtime.js';
import type { Reply } from '../chat.js';
import type { ChatAdapter } from '../hub.js';
import { messagesFor, planCard, type ButtonAction, type Message, type Style } from '../messages.js';
import { ACTION_PREFIX, REJECT_VIEW, slackStyle, toSlack, type ButtonValue } from './block-kit.js';
import { SlackOutbox } from './outbox.js';
import { RouteReceiver } from './receiver.js';

export interface SlackOptions {
  botToken: string;
  /** HTTP mode: requests to POST /slack/events are verified with it. */
  signingSecret?: string;
  /** Socket Mode, when set (an `xapp-` token); then no HTTP route is added. */
  appToken?: string;
  /** Web API base. Default https://slack.com/api/. */
  apiUrl?: string;
  /** Least time between two writes to one channel. Default 1000 ms. */
  intervalMs?: number;
}

/** How long a request id is remembered so that a retry or a double submit does nothing. */
const DEDUPE_SECONDS = 3_600;
/**
 * Commands and clicks handled at once after their ack: one. Measured at 200 commands/s, a
 * second one in parallel doubles the p99 of the acks (`npm run bench`).
 */
const AFTER_ACK_CONCURRENCY = 1;
/** A job running longer than this (a slow database look-up) stops holding up the ones behind it. */
const SLOW_JOB_MS = 250;

/**
 * Work that follows an ack (starting a run, recording a decision), one at a time: every await in
 * it lets the event loop read and ack the next request, so a burst of commands delays plan cards,
 * never acks. Work queued here when the process dies is lost; the person saw no plan card and types
 * the command again.
 */
class AfterAck {
  private counted = 0;
  private active = 0;
  private readonly queue: (() => Promise<void>)[] = [];

  constructor(private readonly log: Logger) {}

  push(job: () => Promise<void>): void {
    this.queue.push(job);
    this.next();
  }

  private next(): void {
    while (this.counted < AFTER_ACK_CONCURRENCY && this.queue.length) {
      const job = this.queue.shift()!;
      this.counted++;
      this.active++;
      let holding = true;
      const release = () => {
        if (!holding) return;
        holding = false;
        this.counted--;
        this.next();
      };
      const slow = setTimeout(release, SLOW_JOB_MS);
      // setImmediate: the job starts after pending I/O, i.e. after the requests already waiting are acked.
      setImmediate(() => {
        job()
          .catch((err: unknown) => this.log.error({ err: (err as Error).message }, 'slack request failed after its ack'))
          .finally(() => {
            clearTimeout(slow);
            this.active--;
            release();
          });
      });
    }
  }

  async idle(): Promise<void> {
    while (this.active || this.queue.length) await new Promise((r) => setTimeout(r, 20));
  }
}

function boltLogger(log: Logger): BoltLogger {
  const child = log.child({ adapter: 'slack' });
  // Bolt logs at debug on every request: build nothing unless the level is on.
  const say = (level: 'debug' | 'info' | 'warn' | 'error') => (...msg: unknown[]) => {
    if (child.isLevelEnabled(level)) child[level](msg.map(String).join(' '));
  };
  return { debug: say('debug'), info: say('info'), warn: say('warn'), error: say('error'), setLevel: () => undefined, getLevel: () => LogLevel.INFO, setName: () => undefined };
}

const BUTTON_ACTIONS: ReadonlySet<string> = new Set<ButtonAction>(['approve', 'reject', 'retry', 'skip', 'abort', 'done']);

/**
 * The Slack adapter: a Bolt app whose listeners ack first and then hand the command or click to
 * the ChatService, and a ChatAdapter that turns run events into Block Kit through the outbox.
 */
export class SlackBot implements ChatAdapter {
  readonly name = 'slack';
  readonly app: App;
  readonly routes: Route[] = [];
  readonly outbox: SlackOutbox;
  private readonly style: Style;
  private readonly log: Logger;
  private readonly afterAck: AfterAck;

  constructor(
    private readonly rt: Runtime,
    o: SlackOptions,
  ) {
    this.log = rt.log.child({ adapter: 'slack' });
    this.afterAck = new AfterAck(this.log);
    const logger = boltLogger(rt.log);
    const slackApiUrl = o.apiUrl ?? 'https://slack.com/api/';
    let receiver: Receiver;
    if (o.appToken) {
      receiver = new SocketModeReceiver({ appToken: o.appToken, logger, installerOptions: { clientOptions: { slackApiUrl } } });
    } else {
      if (!o.signingSecret) throw new ConfigError('environment', [{ path: 'SLACK_SIGNING_SECRET', message: 'required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)' }]);
      const http = new RouteReceiver({ signingSecret: o.signingSecret, logger });
      this.routes.push(http.route);
      receiver = http;
    }
    // No conversation store: nothing here reads it, and it costs every request a lookup.
    this.app = new App({ token: o.botToken, receiver, logger, convoStore: false, clientOptions: { slackApiUrl } });
    // The outbox retries rate-limited calls itself, at the head of its channel, so order holds.
    const client = new webApi.WebClient(o.botToken, { slackApiUrl, logger, rejectRateLimitedCalls: true, retryConfig: { retries: 2, minTimeout: 200, maxTimeout: 2_000 } });
    this.outbox = new SlackOutbox({ client, redis: rt.redis, prefix: rt.prefix, log: this.log, observe: (method, outcome) => rt.metrics.chatCall('slack', method, outcome), ...(o.intervalMs !== undefined ? { intervalMs: o.intervalMs } : {}) });
    this.style = slackStyle((p) => rt.config.people[p]?.slack);
    this.listen();
  }

  async start(): Promise<void> {
    await this.app.start();
  }

  async stop(): Promise<void> {
    await this.afterAck.idle();
    await this.outbox.drain();
    this.outbox.close();
    await this.app.stop();
  }

  /** True the first time `id` is seen: a retried request or a second submit finds it taken. */
  private async first(id: string): Promise<boolean> {
    return (await this.rt.redis.set(`${this.rt.prefix}:slack:seen:${id}`, '1', 'EX', DEDUPE_SECONDS, 'NX')) === 'OK';
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
   * channel it was not invited to, a DM), by the command's response_url.
   */
  private async answer(channel: string | undefined, user: string, reply: Reply, respond?: (m: RespondArguments) => Promise<unknown>): Promise<void> {
    try {
      if (!channel) throw new Error('no channel');
      if (reply.ephemeral) await this.app.client.chat.postEphemeral({ channel, user, text: reply.text });
      else await this.app.client.chat.postMessage({ channel, text: reply.text });
    } catch (err) {
      if (respond) await respond({ response_type: reply.ephemeral ? 'ephemeral' : 'in_channel', text: reply.text }).catch((e: unknown) => this.log.warn({ err: (e as Error).message, user }, 'could not answer in slack'));
      else this.log.warn({ err: (err as Error).message, user }, 'could not answer in slack');
    }
  }

  private listen(): void {
    this.app.command(/^\/[\w-]+$/, async ({ command, ack, respond }) => {
      await ack();
      this.afterAck.push(async () => {
        if (!(await this.first(`cmd:${command.trigger_id || hash(command)}`))) return;
        const pack = command.command.slice(1);
        const origin = { adapter: this.name, channel: command.channel_id, user: command.user_id, team: command.team_id };
        const reply = await this.rt.chat.command('slack', command.user_id, pack, command.text ?? '', origin);
        // A started run answers with its plan card in the channel; anything else only to the person.
        if (!reply.run) await this.answer(command.channel_id, command.user_id, reply, respond);
      });
    });

    this.app.action(new RegExp(`^${ACTION_PREFIX.replace('.', '\\.')}`), async ({ action, body, ack, client }) => {
      await ack();
      if (action.type !== 'button' || body.type !== 'block_actions') return;
      const button = action as { action_id: string; value?: string };
      const choice = button.action_id.slice(ACTION_PREFIX.length) as ButtonAction;
      const { runId, gateId } = JSON.parse(button.value ?? '{}') as ButtonValue;
      const channel = body.channel?.id;
      if (!BUTTON_ACTIONS.has(choice) || !runId) return;
      const user = body.user.id;
      // The reason modal opens only for someone who may reject (others get the refusal at once),
      // and within 3 s of the click, while its trigger_id is valid: not queued.
      if (choice === 'reject' && (await this.mayDecide(user, runId, gateId))) {
        if (await this.first(`act:${body.trigger_id || hash(body)}`)) await client.views.open({ trigger_id: body.trigger_id, view: rejectView({ runId, gateId, channel }) });
        return;
      }
      this.afterAck.push(async () => {
        if (!(await this.first(`act:${body.trigger_id || hash(body)}`))) return;
        await this.answer(channel, user, await this.rt.chat.decide('slack', user, runId, gateId, choice));
      });
    });

    this.app.view(REJECT_VIEW, async ({ ack, view, body }) => {
      await ack();
      this.afterAck.push(async () => {
        if (!(await this.first(`view:${view.id}:${view.hash}`))) return;
        const meta = JSON.parse(view.private_metadata) as ButtonValue & { channel?: string };
        const reason = view.state.values.reason?.reason?.value ?? '';
        await this.answer(meta.channel, body.user.id, await this.rt.chat.decide('slack', body.user.id, meta.runId, meta.gateId, 'reject', reason.trim() || undefined));
      });
    });
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
    const all: Message[] = [...messages];
    if (refreshPlan && !all.some((m) => m.key === 'plan')) all.unshift(planCard(run, this.style));
    const sent = all.map((m) => this.outbox.send({ runId: run.id, key: m.key, channel, place: m.place, broadcast: m.broadcast ?? false, alone: m.key === 'final' || m.key.startsWith('gate:'), body: toSlack(m), ...(m.file ? { file: m.file } : {}) }));
    if (event.type === 'run.finished') {
      await Promise.all(sent);
      this.outbox.forget(run.id);
    }
  }
}

function hash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex');
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
