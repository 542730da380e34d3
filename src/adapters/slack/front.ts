import { createHash } from 'node:crypto';
import { App, HTTPReceiver, SocketModeReceiver, type Receiver } from '@slack/bolt';
import type { Logger } from 'pino';
import { ConfigError } from '../../errors.js';
import type { Mount } from '../../http/surface.js';
import { BUTTON_ACTIONS as ACTIONS, type ButtonAction } from '../messages.js';
import { ACTION_PREFIX, REJECT_VIEW, type ButtonValue } from './block-kit.js';
import { boltLogger } from './logger.js';
import type { SlackRequest } from './requests.js';

export interface SlackFrontOptions {
  botToken: string;
  /** HTTP mode: requests to POST /slack/events are verified with it. */
  signingSecret?: string;
  /** Socket Mode, when set (an `xapp-` token); then no HTTP route is added. */
  appToken?: string;
  /** Web API base. Default https://slack.com/api/. */
  apiUrl?: string;
  log: Logger;
  /** Takes an acked request; must return at once (the work happens elsewhere). */
  forward: (req: SlackRequest) => void;
}

const BUTTON_ACTIONS: ReadonlySet<string> = new Set(ACTIONS);

const SLACK_PATH = '/slack/events';

/** Slack's requests are small; Bolt's own limit is 4 MB. */
const BODY_MAX = 1 << 20;

/**
 * The side of the Slack adapter that Slack waits on: a Bolt app (a route of the bot's HTTP server,
 * or Socket Mode) whose listeners verify, ack, and hand the request's few fields to `forward`. It
 * reads nothing and writes nothing, so that an ack costs what it costs a bare Bolt app.
 */
export class SlackFront {
  readonly app: App;
  readonly mounts: Mount[] = [];
  private readonly socket: boolean;

  constructor(private readonly o: SlackFrontOptions) {
    const logger = boltLogger(o.log);
    const slackApiUrl = o.apiUrl ?? 'https://slack.com/api/';
    let receiver: Receiver;
    this.socket = !!o.appToken;
    if (o.appToken) {
      receiver = new SocketModeReceiver({ appToken: o.appToken, logger, installerOptions: { clientOptions: { slackApiUrl } } });
    } else {
      if (!o.signingSecret) throw new ConfigError('environment', [{ path: 'SLACK_SIGNING_SECRET', message: 'required in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode)' }]);
      // Bolt's own HTTP receiving, as a direct route of the bot's server (its requestListener, never
      // started as a server of its own): its signature check (X-Slack-Signature over
      // v0:<timestamp>:<body>, 5-minute window) over the body the server read (`rawBody`), its ack
      // (answered the moment a listener acks; after 3 s if none does), Slack's retry headers. The
      // same code path as a bare Bolt app's, so an ack costs what it costs there.
      const http = new HTTPReceiver({ signingSecret: o.signingSecret, logger, endpoints: SLACK_PATH, processBeforeResponse: false, bodyLimit: BODY_MAX });
      receiver = http;
      this.mounts.push({ path: SLACK_PATH, methods: ['POST'], access: 'platform', bodyLimit: BODY_MAX, summary: 'Slack slash commands, buttons and forms, signed with the signing secret (checked by Bolt)', listener: http.requestListener });
    }
    // No conversation store: nothing here reads it, and it costs every request a lookup.
    this.app = new App({ token: o.botToken, receiver, logger, convoStore: false, clientOptions: { slackApiUrl } });
    this.listen();
  }

  /** Connects Socket Mode; over HTTP there is nothing to start (the bot's server serves the route). */
  async start(): Promise<void> {
    if (this.socket) await this.app.start();
  }

  async stop(): Promise<void> {
    if (this.socket) await this.app.stop();
  }

  private listen(): void {
    const forward = this.o.forward;
    this.app.command(/^\/[\w-]+$/, async ({ command, ack }) => {
      await ack();
      forward({
        kind: 'command',
        key: `cmd:${command.trigger_id || hash(command)}`,
        pack: command.command.slice(1),
        text: command.text ?? '',
        user: command.user_id,
        channel: command.channel_id,
        ...(command.team_id ? { team: command.team_id } : {}),
        ...(command.response_url ? { responseUrl: command.response_url } : {}),
      });
    });

    this.app.action(new RegExp(`^${ACTION_PREFIX.replace('.', '\\.')}`), async ({ action, body, ack }) => {
      await ack();
      if (action.type !== 'button' || body.type !== 'block_actions') return;
      const button = action as { action_id: string; value?: string };
      const choice = button.action_id.slice(ACTION_PREFIX.length);
      let value: Partial<ButtonValue>;
      try {
        value = JSON.parse(button.value ?? '{}') as Partial<ButtonValue>;
      } catch {
        return void this.o.log.warn({ action: button.action_id }, 'a slack button carried a value that is not ours');
      }
      if (!BUTTON_ACTIONS.has(choice) || !value.runId || !value.gateId) return;
      forward({
        kind: 'action',
        key: `act:${body.trigger_id || hash(body)}`,
        choice: choice as ButtonAction,
        runId: value.runId,
        gateId: value.gateId,
        triggerId: body.trigger_id,
        user: body.user.id,
        ...(body.channel?.id ? { channel: body.channel.id } : {}),
        ...(body.response_url ? { responseUrl: body.response_url } : {}),
      });
    });

    this.app.view(REJECT_VIEW, async ({ ack, view, body }) => {
      await ack();
      let meta: Partial<ButtonValue> & { channel?: string };
      try {
        meta = JSON.parse(view.private_metadata) as typeof meta;
      } catch {
        return void this.o.log.warn('a reject modal came back without our metadata');
      }
      if (!meta.runId || !meta.gateId) return;
      const reason = view.state.values.reason?.reason?.value ?? '';
      forward({
        kind: 'reason',
        key: `view:${view.id}:${view.hash}`,
        runId: meta.runId,
        gateId: meta.gateId,
        user: body.user.id,
        ...(meta.channel ? { channel: meta.channel } : {}),
        ...(reason.trim() ? { reason: reason.trim() } : {}),
      });
    });
  }
}

function hash(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex');
}
