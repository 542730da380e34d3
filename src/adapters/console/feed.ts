import type { Response } from 'express';
import type { Run, StampedEvent } from '../../engine/types.js';
import type { Runtime } from '../../runtime.js';
import type { ChatAdapter } from '../hub.js';
import { messagesFor, planCard, plainStyle, type Message } from '../messages.js';

/** Console runs kept for the page: the newest ones, each with its messages. */
const KEEP_RUNS = 50;
/** Comment line that keeps an idle event stream open through proxies. */
const PING_MS = 15_000;
/** Open event streams at once: each holds a socket, and a page that leaks them must not exhaust the server. */
const MAX_STREAMS = 200;

interface ConsoleMessage {
  runId: string;
  message: Message;
}

/**
 * The console's side of progress: the same neutral messages Slack and Discord show, stored in
 * Redis (so a reload shows them) and pushed to every open page as server-sent events.
 */
export class ConsoleFeed implements ChatAdapter {
  readonly name = 'console';
  private readonly clients = new Set<Response>();
  private readonly ping: NodeJS.Timeout;

  constructor(private readonly rt: Runtime) {
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

  /** Keeps `res` open as an event stream of every message from now on; false when too many are open. */
  stream(res: Response): boolean {
    if (this.clients.size >= MAX_STREAMS) return false;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': connected\n\n');
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    return true;
  }

  async stop(): Promise<void> {
    clearInterval(this.ping);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
