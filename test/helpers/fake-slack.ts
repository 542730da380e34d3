import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SlackCall {
  method: string;
  args: Record<string, unknown>;
  at: number;
  /** What the fake answered: 200, or 429 when rate limiting. */
  status: number;
}

export interface FakeMessage {
  ts: string;
  channel: string;
  thread_ts?: string;
  reply_broadcast?: boolean;
  text: string;
  blocks: Record<string, unknown>[];
}

const JSON_FIELDS = new Set(['blocks', 'attachments', 'view', 'file_uploads', 'files', 'metadata']);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function parseArgs(req: IncomingMessage, raw: string): Record<string, unknown> {
  if ((req.headers['content-type'] ?? '').includes('application/json')) return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
  const args: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    try {
      args[k] = JSON_FIELDS.has(k) ? JSON.parse(v) : v;
    } catch {
      args[k] = v;
    }
  }
  return args;
}

/**
 * Slack on 127.0.0.1 for tests: a Web API that records every call (and can answer 429 with
 * Retry-After), file upload URLs, and a Socket Mode server (apps.connections.open → ws URL, hello,
 * envelopes and their acks).
 */
export class FakeSlack {
  readonly calls: SlackCall[] = [];
  readonly messages = new Map<string, FakeMessage>();
  /** What was sent to each upload URL: the text, and the bytes as they came (a binary file). */
  readonly uploads: { fileId: string; content: string; bytes: Buffer }[] = [];
  private server!: Server;
  private wss!: WebSocketServer;
  private sockets = new Set<WebSocket>();
  private seq = 0;
  private limited = 0;
  private retryAfter = 1;
  private delayMs = 0;
  private acks = new Map<string, (ack: Record<string, unknown>) => void>();
  port = 0;

  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void (async () => {
        const bytes = await readBody(req);
        const raw = bytes.toString('utf8');
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        if (url.pathname.startsWith('/upload/')) {
          this.uploads.push({ fileId: url.pathname.slice('/upload/'.length), content: raw, bytes });
          res.writeHead(200).end('OK');
          return;
        }
        const method = url.pathname.replace(/^\/api\//, '');
        const args = parseArgs(req, raw);
        const delay = this.delayMs;
        if (this.limited > 0 && method !== 'auth.test' && method !== 'apps.connections.open') {
          this.limited--;
          this.calls.push({ method, args, at: Date.now(), status: 429 });
          if (delay) await new Promise((r) => setTimeout(r, delay));
          res.writeHead(429, { 'retry-after': String(this.retryAfter), 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: 'ratelimited' }));
          return;
        }
        this.calls.push({ method, args, at: Date.now(), status: 200 });
        if (delay) await new Promise((r) => setTimeout(r, delay));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.answer(method, args)));
      })();
    });
    this.wss = new WebSocketServer({ server: this.server, path: '/socket' });
    this.wss.on('connection', (ws) => {
      this.sockets.add(ws);
      ws.on('close', () => this.sockets.delete(ws));
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data)) as Record<string, unknown>;
        const id = msg.envelope_id as string | undefined;
        if (id) this.acks.get(id)?.(msg);
      });
      ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake', approximate_connection_time: 3600 }, connection_info: { app_id: 'A0FAKE' } }));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private answer(method: string, args: Record<string, unknown>): Record<string, unknown> {
    const ts = () => `1700000000.${String(++this.seq).padStart(6, '0')}`;
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.com/', team: 'Fake', user: 'runbook', team_id: 'T0FAKE', user_id: 'U0BOT', bot_id: 'B0BOT' };
      case 'apps.connections.open':
        return { ok: true, url: `ws://127.0.0.1:${this.port}/socket` };
      case 'chat.postMessage': {
        const m: FakeMessage = { ts: ts(), channel: String(args.channel), text: String(args.text ?? ''), blocks: (args.blocks as FakeMessage['blocks']) ?? [] };
        if (args.thread_ts) m.thread_ts = String(args.thread_ts);
        if (args.reply_broadcast === true || args.reply_broadcast === 'true') m.reply_broadcast = true;
        this.messages.set(m.ts, m);
        return { ok: true, channel: m.channel, ts: m.ts, message: { text: m.text } };
      }
      case 'chat.update': {
        const m = this.messages.get(String(args.ts));
        if (!m) return { ok: false, error: 'message_not_found' };
        m.text = String(args.text ?? '');
        m.blocks = (args.blocks as FakeMessage['blocks']) ?? [];
        return { ok: true, channel: m.channel, ts: m.ts };
      }
      case 'chat.postEphemeral':
        return { ok: true, message_ts: ts() };
      case 'views.open':
        return { ok: true, view: { id: `V${++this.seq}` } };
      case 'files.getUploadURLExternal': {
        const id = `F${++this.seq}`;
        return { ok: true, upload_url: `http://127.0.0.1:${this.port}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal':
        return { ok: true, files: ((args.files as { id: string }[]) ?? []).map((f) => ({ id: f.id })) };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  /** Every call is answered `ms` after it is recorded (0: at once), so a test can act while one is in flight. */
  delay(ms: number): void {
    this.delayMs = ms;
  }

  /** The next `count` calls (other than auth.test) are answered 429 with Retry-After `seconds`. */
  rateLimit(count: number, seconds = 1): void {
    this.limited = count;
    this.retryAfter = seconds;
  }

  callsOf(method: string, status = 200): SlackCall[] {
    return this.calls.filter((c) => c.method === method && c.status === status);
  }

  /** Messages of a thread (not its root), in the order they were posted. */
  thread(rootTs: string): FakeMessage[] {
    return [...this.messages.values()].filter((m) => m.thread_ts === rootTs);
  }

  /** Everything a message shows: its text and its blocks' texts. */
  static textOf(m: FakeMessage): string {
    return [m.text, JSON.stringify(m.blocks)].join('\n');
  }

  /** Sends a Socket Mode envelope; resolves with the app's ack. */
  envelope(type: 'slash_commands' | 'interactive' | 'events_api', payload: Record<string, unknown>, retryAttempt = 0): Promise<Record<string, unknown>> {
    const id = `env-${++this.seq}`;
    return new Promise((resolve) => {
      this.acks.set(id, resolve);
      const msg = JSON.stringify({ envelope_id: id, type, payload, accepts_response_payload: type !== 'events_api', retry_attempt: retryAttempt, retry_reason: retryAttempt ? 'timeout' : '' });
      for (const ws of this.sockets) ws.send(msg);
    });
  }

  socketCount(): number {
    return this.sockets.size;
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Headers of a request signed as Slack signs it: HMAC-SHA256 of `v0:<timestamp>:<body>`. */
export function slackSignature(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  const sig = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return { 'x-slack-signature': sig, 'x-slack-request-timestamp': String(timestamp) };
}

/** A slash command's form body, as Slack posts it. */
export function slashCommandBody(o: { command: string; text: string; user: string; channel?: string; triggerId?: string }): string {
  return new URLSearchParams({
    token: 'legacy',
    team_id: 'T0FAKE',
    team_domain: 'fake',
    channel_id: o.channel ?? 'C0OPS',
    channel_name: 'ops',
    user_id: o.user,
    user_name: o.user.toLowerCase(),
    command: o.command,
    text: o.text,
    api_app_id: 'A0FAKE',
    response_url: 'http://127.0.0.1:9/hooks',
    trigger_id: o.triggerId ?? `trig-${Math.random().toString(36).slice(2)}`,
  }).toString();
}

/** An interactive payload's form body (`payload=<json>`). */
export function interactionBody(payload: Record<string, unknown>): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/** A click on one of our buttons, as block_actions. */
export function buttonClick(o: { user: string; actionId: string; value: string; channel?: string; triggerId?: string; messageTs?: string }): Record<string, unknown> {
  return {
    type: 'block_actions',
    team: { id: 'T0FAKE', domain: 'fake' },
    user: { id: o.user, username: o.user.toLowerCase(), team_id: 'T0FAKE' },
    api_app_id: 'A0FAKE',
    token: 'legacy',
    trigger_id: o.triggerId ?? `trig-${Math.random().toString(36).slice(2)}`,
    channel: { id: o.channel ?? 'C0OPS', name: 'ops' },
    container: { type: 'message', message_ts: o.messageTs ?? '1700000000.000001', channel_id: o.channel ?? 'C0OPS', is_ephemeral: false },
    message: { ts: o.messageTs ?? '1700000000.000001', text: '' },
    response_url: 'http://127.0.0.1:9/hooks',
    actions: [{ type: 'button', action_id: o.actionId, block_id: 'b', value: o.value, action_ts: String(Date.now() / 1000) }],
  };
}
