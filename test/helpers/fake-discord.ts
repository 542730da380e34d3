/**
 * A fake Discord on 127.0.0.1 for the adapter tests, driven by the real discord.js: a REST API
 * (point discord.js's `rest.api` at `restUrl`) and a gateway (`GET /gateway/bot` hands out its URL).
 * It records every call, keeps channel messages and threads, enforces interaction tokens' 15
 * minutes (by `Date.now()`, so tests move the clock), and answers 429s when told to.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';

export const TOKEN_LIFETIME_MS = 15 * 60_000;

export interface RecordedRequest {
  method: string;
  path: string;
  auth: string | undefined;
  body: any;
  files: { name: string; content: string }[];
  status: number;
  /** Date.now() when it arrived. */
  at: number;
}

export interface FakeMessage {
  id: string;
  channel_id: string;
  content: string;
  embeds: any[];
  components: any[];
  attachments: { id: string; filename: string; content: string }[];
  nonce?: string;
  /** Every body this message had, first the post, then each edit. */
  history: any[];
}

export interface FakeInteraction {
  id: string;
  token: string;
  issuedAt: number;
  /** The callback body, when answered. */
  response?: any;
  /** The deferred answer's completion (PATCH @original). */
  original?: any;
  followups: any[];
}

interface RateRule {
  match: (method: string, path: string) => boolean;
  remaining: number;
  retryAfterS: number;
}

let nextId = 1_300_000_000_000_000_000n;
export const snowflake = (): string => String(nextId++);

export class FakeDiscord {
  readonly applicationId = '900000000000000001';
  readonly botUserId = '900000000000000002';
  readonly botToken = 'fake-bot-token';
  readonly requests: RecordedRequest[] = [];
  readonly messages = new Map<string, FakeMessage>();
  readonly threads = new Map<string, { parent: string; name: string }>();
  readonly commands = new Map<string, any[]>();
  readonly interactions = new Map<string, FakeInteraction>();
  /** Calls made with an interaction token after its 15 minutes (Discord answers 401). */
  readonly expiredTokenUses: RecordedRequest[] = [];
  /** 429s answered. */
  limited = 0;
  /** Gateway: IDENTIFY payloads and heartbeats received. */
  readonly identifies: any[] = [];
  heartbeats = 0;
  /** Channel message posts allowed per window, per channel (Discord: 5 per 5 s). */
  messageLimit = { perWindow: 5, windowMs: 1_000 };
  private readonly windows = new Map<string, { start: number; count: number }>();
  private readonly rules: RateRule[] = [];
  private readonly sockets = new Set<WebSocket>();
  private readonly waiters = new Set<() => void>();
  private seq = 0;
  private http!: Server;
  private wss!: WebSocketServer;
  private restPort = 0;
  private wsPort = 0;

  get restUrl(): string {
    return `http://127.0.0.1:${this.restPort}/api`;
  }

  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.wsPort}`;
  }

  async start(): Promise<this> {
    this.http = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    this.restPort = (this.http.address() as AddressInfo).port;
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => this.wss.once('listening', r));
    this.wsPort = (this.wss.address() as AddressInfo).port;
    this.wss.on('connection', (ws) => this.gateway(ws));
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  /** The next `count` requests matching answer 429 with this Retry-After (seconds). */
  rateLimit(match: (method: string, path: string) => boolean, count: number, retryAfterS = 0.2): void {
    this.rules.push({ match, remaining: count, retryAfterS });
  }

  // ---- gateway ----

  private gateway(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 1_000 } }));
    ws.on('message', (raw) => {
      const p = JSON.parse(String(raw)) as { op: number; d: any };
      if (p.op === 1) {
        this.heartbeats++;
        ws.send(JSON.stringify({ op: 11 }));
      } else if (p.op === 2) {
        this.identifies.push(p.d);
        if (p.d.token !== this.botToken) {
          ws.close(4004, 'Authentication failed.');
          return;
        }
        this.send(ws, 'READY', {
          v: 10,
          user: { id: this.botUserId, username: 'runbook', discriminator: '0', global_name: null, avatar: null, bot: true },
          guilds: [],
          session_id: 'fake-session',
          resume_gateway_url: this.gatewayUrl,
          shard: [0, 1],
          application: { id: this.applicationId, flags: 0 },
        });
      }
    });
  }

  private send(ws: WebSocket, t: string, d: unknown): void {
    ws.send(JSON.stringify({ op: 0, t, s: ++this.seq, d }));
  }

  /** Sends INTERACTION_CREATE to the bot and waits for its answer (callback, and completion if deferred). */
  async interact(payload: any): Promise<FakeInteraction> {
    const rec: FakeInteraction = { id: payload.id, token: payload.token, issuedAt: Date.now(), followups: [] };
    this.interactions.set(payload.token, rec);
    for (const ws of this.sockets) this.send(ws, 'INTERACTION_CREATE', payload);
    await this.waitFor(() => rec.response !== undefined && (rec.response.type !== 5 || rec.original !== undefined), `an answer to interaction ${payload.id}`);
    return rec;
  }

  /** Registers an interaction delivered some other way (the HTTP endpoint), so its token is known. */
  issue(payload: any): FakeInteraction {
    const rec: FakeInteraction = { id: payload.id, token: payload.token, issuedAt: Date.now(), followups: [] };
    this.interactions.set(payload.token, rec);
    return rec;
  }

  // ---- REST ----

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/^\/api\/v\d+/, '');
    const method = req.method ?? 'GET';
    const ct = req.headers['content-type'] ?? '';
    let body: any;
    const files: RecordedRequest['files'] = [];
    if (ct.startsWith('multipart/form-data')) {
      const form = await new Response(raw, { headers: { 'content-type': ct } }).formData();
      for (const [k, v] of form.entries()) {
        if (k === 'payload_json') body = JSON.parse(String(v));
        else if (typeof v !== 'string') files.push({ name: v.name, content: await v.text() });
      }
    } else if (raw.length) body = JSON.parse(raw.toString('utf8'));
    const rec: RecordedRequest = { method, path, auth: req.headers.authorization, body, files, status: 0, at: Date.now() };
    this.requests.push(rec);
    const reply = (status: number, data?: unknown, headers: Record<string, string> = {}) => {
      rec.status = status;
      res.writeHead(status, { ...(data === undefined ? {} : { 'content-type': 'application/json' }), ...headers });
      res.end(data === undefined ? '' : JSON.stringify(data));
      this.notify();
    };
    const rule = this.rules.find((r) => r.remaining > 0 && r.match(method, path));
    if (rule) {
      rule.remaining--;
      this.limited++;
      return reply(429, { message: 'You are being rate limited.', retry_after: rule.retryAfterS, global: false }, { 'retry-after': String(rule.retryAfterS), 'x-ratelimit-scope': 'user' });
    }
    try {
      this.route(method, path, rec, reply);
    } catch (err) {
      reply(500, { message: (err as Error).message });
    }
  }

  private route(method: string, path: string, rec: RecordedRequest, reply: (status: number, data?: unknown, headers?: Record<string, string>) => void): void {
    const bot = rec.auth === `Bot ${this.botToken}`;
    const unauthorized = () => reply(401, { message: '401: Unauthorized', code: 0 });
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === '/gateway/bot') {
      if (!bot) return unauthorized();
      return reply(200, { url: this.gatewayUrl, shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 } });
    }
    if (method === 'PUT' && (m = /^\/applications\/(\d+)(?:\/guilds\/(\d+))?\/commands$/.exec(path))) {
      if (!bot) return unauthorized();
      const scope = m[2] ? `guild:${m[2]}` : 'global';
      const cmds = (rec.body as any[]).map((c) => ({ ...c, id: this.commands.get(scope)?.find((o) => o.name === c.name)?.id ?? snowflake(), application_id: m![1] }));
      this.commands.set(scope, cmds);
      return reply(200, cmds);
    }
    if ((m = /^\/interactions\/(\d+)\/([^/]+)\/callback$/.exec(path)) && method === 'POST') {
      const it = this.token(m[2]!, rec);
      if (!it) return reply(401, { message: 'Invalid Webhook Token', code: 50027 });
      if (it.response) return reply(400, { message: 'Interaction has already been acknowledged.', code: 40060 });
      it.response = rec.body;
      return reply(204);
    }
    if ((m = /^\/webhooks\/(\d+)\/([^/]+)(\/messages\/@original)?$/.exec(path))) {
      const it = this.token(m[2]!, rec);
      if (!it) return reply(401, { message: 'Invalid Webhook Token', code: 50027 });
      if (m[3] && method === 'PATCH') it.original = rec.body;
      else if (!m[3] && method === 'POST') it.followups.push(rec.body);
      else return reply(405, { message: '405: Method Not Allowed', code: 0 });
      return reply(200, { id: snowflake(), channel_id: '0', content: rec.body?.content ?? '', embeds: [], components: [], attachments: [] });
    }
    if ((m = /^\/channels\/(\d+)\/messages$/.exec(path)) && method === 'POST') {
      if (!bot) return unauthorized();
      const channel = m[1]!;
      const window = this.window(channel);
      const headers = { 'x-ratelimit-limit': String(this.messageLimit.perWindow), 'x-ratelimit-remaining': String(window.remaining), 'x-ratelimit-reset-after': String(window.resetAfterS), 'x-ratelimit-bucket': `messages-${channel}` };
      if (window.limited) {
        this.limited++;
        return reply(429, { message: 'You are being rate limited.', retry_after: window.resetAfterS, global: false }, { ...headers, 'retry-after': String(window.resetAfterS), 'x-ratelimit-scope': 'user' });
      }
      const nonce = rec.body?.enforce_nonce ? rec.body.nonce : undefined;
      const same = nonce ? [...this.messages.values()].find((x) => x.channel_id === channel && x.nonce === nonce) : undefined;
      if (same) return reply(200, this.view(same), headers);
      const msg: FakeMessage = { id: snowflake(), channel_id: channel, content: '', embeds: [], components: [], attachments: [], ...(nonce ? { nonce } : {}), history: [] };
      this.apply(msg, rec);
      this.messages.set(msg.id, msg);
      return reply(200, this.view(msg), headers);
    }
    if ((m = /^\/channels\/(\d+)\/messages\/(\d+)$/.exec(path)) && method === 'PATCH') {
      if (!bot) return unauthorized();
      const msg = this.messages.get(m[2]!);
      if (!msg || msg.channel_id !== m[1]) return reply(404, { message: 'Unknown Message', code: 10008 });
      this.apply(msg, rec);
      return reply(200, this.view(msg));
    }
    if ((m = /^\/channels\/(\d+)\/messages\/(\d+)\/threads$/.exec(path)) && method === 'POST') {
      if (!bot) return unauthorized();
      const msg = this.messages.get(m[2]!);
      if (!msg || msg.channel_id !== m[1]) return reply(404, { message: 'Unknown Message', code: 10008 });
      if (this.threads.has(msg.id)) return reply(400, { message: 'A thread has already been created for this message', code: 160004 });
      this.threads.set(msg.id, { parent: m[1]!, name: rec.body.name });
      return reply(201, { id: msg.id, type: 11, parent_id: m[1], name: rec.body.name, guild_id: '0', owner_id: this.botUserId });
    }
    reply(404, { message: `404: Not Found (${method} ${path})`, code: 0 });
  }

  /** The interaction a token belongs to, unless unknown or past its 15 minutes. */
  private token(token: string, rec: RecordedRequest): FakeInteraction | undefined {
    const it = this.interactions.get(token);
    if (!it) return undefined;
    if (Date.now() - it.issuedAt > TOKEN_LIFETIME_MS) {
      this.expiredTokenUses.push(rec);
      return undefined;
    }
    return it;
  }

  private window(channel: string): { limited: boolean; remaining: number; resetAfterS: number } {
    const now = performance.now();
    let w = this.windows.get(channel);
    if (!w || now - w.start >= this.messageLimit.windowMs) this.windows.set(channel, (w = { start: now, count: 0 }));
    const resetAfterS = Math.max(0.001, (w.start + this.messageLimit.windowMs - now) / 1000);
    if (w.count >= this.messageLimit.perWindow) return { limited: true, remaining: 0, resetAfterS };
    w.count++;
    return { limited: false, remaining: this.messageLimit.perWindow - w.count, resetAfterS };
  }

  private apply(msg: FakeMessage, rec: RecordedRequest): void {
    const b = rec.body ?? {};
    if (b.content !== undefined) msg.content = b.content;
    if (b.embeds !== undefined) msg.embeds = b.embeds;
    if (b.components !== undefined) msg.components = b.components;
    if (b.attachments !== undefined || rec.files.length) msg.attachments = rec.files.map((f) => ({ id: snowflake(), filename: f.name, content: f.content }));
    msg.history.push(b);
  }

  view(msg: FakeMessage): unknown {
    return { id: msg.id, channel_id: msg.channel_id, type: 0, content: msg.content, embeds: msg.embeds, components: msg.components, attachments: msg.attachments.map((a) => ({ id: a.id, filename: a.filename })), author: { id: this.botUserId, username: 'runbook', discriminator: '0', global_name: null, avatar: null, bot: true }, timestamp: new Date().toISOString(), edited_timestamp: null, tts: false, mention_everyone: false, mentions: [], mention_roles: [], pinned: false, ...(msg.nonce ? { nonce: msg.nonce } : {}) };
  }

  // ---- what tests look at ----

  /** Messages of a channel or thread, in the order posted. */
  messagesIn(channel: string): FakeMessage[] {
    return [...this.messages.values()].filter((m) => m.channel_id === channel);
  }

  /** The embed's text of a message: title, description and fields. */
  static text(m: FakeMessage): string {
    const e = m.embeds[0] ?? {};
    return [m.content, e.title, e.description, ...(e.fields ?? []).map((f: any) => `${f.name}: ${f.value}`)].filter(Boolean).join('\n');
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }

  /** Resolves when `cond` holds (checked after every request and every 50 ms); rejects after `timeoutMs`. */
  async waitFor(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (cond()) return;
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (cond()) {
          cleanup();
          resolve();
        } else if (performance.now() - started > timeoutMs) {
          cleanup();
          reject(new Error(`fake discord: timed out waiting for ${what}`));
        }
      };
      const timer = setInterval(check, 50);
      const cleanup = () => {
        clearInterval(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }
}

/** Interaction payloads as Discord sends them. */
export class Interactions {
  constructor(
    private readonly fake: FakeDiscord,
    readonly guildId: string,
    readonly channelId: string,
  ) {}

  private base(userId: string, type: number) {
    return {
      id: snowflake(),
      application_id: this.fake.applicationId,
      type,
      token: `itoken-${snowflake()}`,
      version: 1,
      guild_id: this.guildId,
      channel_id: this.channelId,
      channel: { id: this.channelId, type: 0, guild_id: this.guildId, name: 'incidents' },
      member: { user: { id: userId, username: `user${userId.slice(-2)}`, discriminator: '0', global_name: null, avatar: null }, roles: [], joined_at: '2026-01-01T00:00:00.000Z', deaf: false, mute: false, flags: 0, permissions: '0' },
      app_permissions: '0',
      locale: 'en-US',
      guild_locale: 'en-US',
      entitlements: [],
      authorizing_integration_owners: { '0': this.guildId },
      context: 0,
    };
  }

  /** `/<pack> <sub> name:value …` */
  slash(userId: string, pack: string, sub: string, options: Record<string, string | number | boolean> = {}) {
    const type = (v: unknown) => (typeof v === 'boolean' ? 5 : typeof v === 'number' ? 10 : 3);
    return { ...this.base(userId, 2), data: { id: snowflake(), name: pack, type: 1, options: [{ type: 1, name: sub, options: Object.entries(options).map(([name, value]) => ({ type: type(value), name, value })) }] } };
  }

  autocomplete(userId: string, pack: string, sub: string, focused: string, typed: string, others: Record<string, string> = {}) {
    const options = [...Object.entries(others).map(([name, value]) => ({ type: 3, name, value })), { type: 3, name: focused, value: typed, focused: true }];
    return { ...this.base(userId, 4), data: { id: snowflake(), name: pack, type: 1, options: [{ type: 1, name: sub, options }] } };
  }

  click(userId: string, message: FakeMessage, customId: string) {
    return { ...this.base(userId, 3), channel_id: message.channel_id, channel: { id: message.channel_id, type: 11, guild_id: this.guildId, name: 'thread', parent_id: this.channelId }, message: this.fake.view(message), data: { custom_id: customId, component_type: 2 } };
  }

  modalSubmit(userId: string, message: FakeMessage, customId: string, values: Record<string, string>) {
    return { ...this.click(userId, message, customId), type: 5, data: { custom_id: customId, components: Object.entries(values).map(([id, value]) => ({ type: 1, components: [{ type: 4, custom_id: id, value }] })) } };
  }
}
