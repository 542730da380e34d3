import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Run, StampedEvent } from '../../engine/types.js';
import type { Route } from '../../http/server.js';
import type { Runtime } from '../../runtime.js';
import type { ChatAdapter } from '../hub.js';
import type { StartedAdapter } from '../index.js';
import { messagesFor, planCard, plainStyle, type Message } from '../messages.js';
import { CONSOLE_PAGE } from './page.js';

/** Console runs kept for the page: the newest ones, each with its messages. */
const KEEP_RUNS = 50;
/** Bytes of a request body the console accepts. */
const MAX_BODY = 64 * 1024;
/** Comment line that keeps an idle event stream open through proxies. */
const PING_MS = 15_000;

export interface ConsoleMessage {
  runId: string;
  message: Message;
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
}

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(c as Buffer);
  }
  const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('expected a JSON object');
  return parsed as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, data: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(data));
}

/**
 * The web console: a chat-like page at `/` where you act as a person of runbook.yaml, type
 * `/ovs flush node-3`, and watch the plan card and its thread fill live (server-sent events).
 * It shows the same neutral messages Slack and Discord show, and decisions follow the same policy.
 * Bound to loopback it is open; bound elsewhere it requires CONSOLE_TOKEN.
 */
export class ConsoleAdapter implements ChatAdapter {
  readonly name = 'console';
  private readonly clients = new Set<ServerResponse>();
  private readonly ping: NodeJS.Timeout;

  constructor(
    private readonly rt: Runtime,
    private readonly token: string | undefined,
  ) {
    this.ping = setInterval(() => {
      for (const c of this.clients) c.write(': ping\n\n');
    }, PING_MS);
    this.ping.unref();
  }

  private key(runId: string): string {
    return `${this.rt.prefix}:console:run:{${runId}}`;
  }
  private get runsKey(): string {
    return `${this.rt.prefix}:console:runs`;
  }

  /** Stores what the event changes (so a reload shows it) and pushes it to every open page. */
  async deliver(run: Run, event: StampedEvent): Promise<void> {
    const { messages, refreshPlan } = messagesFor(event, run, plainStyle);
    const all = refreshPlan && !messages.some((m) => m.key === 'plan') ? [...messages, planCard(run, plainStyle)] : messages;
    if (all.length === 0) return;
    const m = this.rt.redis.multi();
    for (const msg of all) m.hset(this.key(run.id), msg.key, JSON.stringify(msg));
    m.zadd(this.runsKey, Date.parse(run.createdAt), run.id);
    await m.exec();
    const old = await this.rt.redis.zrange(this.runsKey, '0', String(-KEEP_RUNS - 1));
    if (old.length) await this.rt.redis.multi().zrem(this.runsKey, ...old).del(...old.map((id) => this.key(id))).exec();
    for (const msg of all) this.broadcast({ runId: run.id, message: msg });
  }

  private broadcast(m: ConsoleMessage): void {
    const line = `data: ${JSON.stringify(m)}\n\n`;
    for (const c of this.clients) c.write(line);
  }

  /** Every kept run's messages, oldest run first, in the order they were first posted. */
  async history(): Promise<ConsoleMessage[]> {
    const ids = await this.rt.redis.zrange(this.runsKey, '0', '-1');
    const out: ConsoleMessage[] = [];
    for (const id of ids) {
      const all = await this.rt.redis.hgetall(this.key(id));
      for (const raw of Object.values(all)) out.push({ runId: id, message: JSON.parse(raw) as Message });
    }
    return out;
  }

  authorized(req: IncomingMessage, url: URL): boolean {
    if (!this.token) return true;
    const given = (req.headers.authorization?.replace(/^Bearer /i, '') ?? url.searchParams.get('token') ?? '').trim();
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  route(): Route {
    return async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      if (path !== '/' && !path.startsWith('/console/')) return false;
      if (!this.authorized(req, url)) {
        send(res, 401, { error: 'this console needs its token: open it as /?token=<CONSOLE_TOKEN>' });
        return true;
      }
      try {
        if (req.method === 'GET' && path === '/') {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'" });
          res.end(CONSOLE_PAGE);
        } else if (req.method === 'GET' && path === '/console/api/people') {
          send(res, 200, Object.entries(this.rt.config.people).map(([id, p]) => ({ id, roles: p.roles })));
        } else if (req.method === 'GET' && path === '/console/api/history') {
          send(res, 200, await this.history());
        } else if (req.method === 'GET' && /^\/console\/api\/runs\/[^/]+\/files\/[^/]+$/.test(path)) {
          // A file a step attached: `attachment` makes the browser save it under its own name.
          const [, , , , runId, , id] = path.split('/');
          const run = await this.rt.store.find(runId!);
          const att = run && Object.values(run.steps).find((st) => st.attachment?.id === id)?.attachment;
          const bytes = att ? await this.rt.store.getFile(runId!, id!) : undefined;
          if (!att || !bytes) {
            send(res, 404, { error: `run ${runId} has no attached file ${id} (files are kept 7 days)` });
          } else {
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length, 'content-disposition': `attachment; filename="${att.name.replace(/["\\\r\n]/g, '_')}"`, 'cache-control': 'no-store' });
            res.end(bytes);
          }
        } else if (req.method === 'GET' && path === '/console/api/events') {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
          res.write(': connected\n\n');
          this.clients.add(res);
          req.on('close', () => this.clients.delete(res));
        } else if (req.method === 'POST' && path === '/console/api/command') {
          const b = await body(req);
          const person = String(b.person ?? '');
          const text = String(b.text ?? '').trim().replace(/^\//, '');
          const [pack = '', ...rest] = text.split(/\s+/);
          if (!pack) {
            send(res, 200, { ephemeral: true, text: `Type a command such as /ovs flush node-3. ${this.rt.chat.help()}` });
            return true;
          }
          const reply = await this.rt.chat.command('console', person, pack, rest.join(' '), { adapter: 'console', channel: 'console' });
          send(res, 200, { ephemeral: reply.ephemeral, text: reply.text, ...(reply.run ? { runId: reply.run.id } : {}) });
        } else if (req.method === 'POST' && path === '/console/api/decide') {
          const b = await body(req);
          const reply = await this.rt.chat.decide('console', String(b.person ?? ''), String(b.runId ?? ''), String(b.gateId ?? ''), String(b.decision ?? '') as never, b.reason ? String(b.reason) : undefined);
          send(res, 200, reply);
        } else {
          send(res, 404, { error: `no console route ${req.method} ${path}` });
        }
      } catch (err) {
        send(res, 400, { error: (err as Error).message });
      }
      return true;
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.ping);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}

/** The console always starts; bound beyond loopback it refuses to start without CONSOLE_TOKEN. */
export async function startConsole(rt: Runtime): Promise<StartedAdapter | undefined> {
  const token = rt.env.CONSOLE_TOKEN;
  if (!isLoopback(rt.env.HOST) && !token) {
    rt.log.error({ host: rt.env.HOST }, 'the console is not started: bound beyond loopback it needs CONSOLE_TOKEN');
    return undefined;
  }
  const adapter = new ConsoleAdapter(rt, token);
  const { queuesBoard } = await import('../../http/queues-board.js');
  return { name: adapter.name, adapter, routes: [adapter.route(), queuesBoard(rt, (req, url) => adapter.authorized(req, url))], stop: () => adapter.stop() };
}
