import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RunStore } from '../engine/store.js';
import type { Run, StampedEvent } from '../engine/types.js';

/**
 * What every chat adapter implements for progress: given a run it started and one of its events,
 * post or update what changes. Events arrive in order per run and at least once, so `deliver`
 * must be idempotent (messages have stable keys: a second delivery updates, never posts again).
 */
export interface ChatAdapter {
  readonly name: string;
  deliver(run: Run, event: StampedEvent): Promise<void>;
}

/** How long a delivery that keeps failing is retried before it is logged and left. */
const DELIVERY_ATTEMPTS = 5;
/** Entries a dead bot process had read but not delivered are taken over after this long. */
const CLAIM_IDLE_MS = 60_000;

/**
 * Feeds chat adapters from the audit stream, through one Redis consumer group per adapter:
 * progress survives a bot restart (what was not acknowledged is delivered again) and events of
 * runs started elsewhere are skipped. One bot process per adapter delivers; workers scale freely.
 */
export class ProgressHub {
  private readonly stops: AbortController[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly consumer = `${hostname()}:${process.pid}`;

  constructor(
    private readonly store: RunStore,
    private readonly log: Logger,
  ) {}

  private group(adapter: ChatAdapter): string {
    return `chat-${adapter.name}`;
  }

  async start(adapter: ChatAdapter): Promise<void> {
    const key = this.store.auditKey;
    try {
      await this.store.redis.xgroup('CREATE', key, this.group(adapter), '$', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
    const stop = new AbortController();
    this.stops.push(stop);
    const conn = this.store.redis.duplicate();
    // While Redis restarts the loop's reads fail and are retried; the connection comes back by itself.
    conn.on('error', () => undefined);
    this.loops.push(this.loop(adapter, conn, stop.signal).finally(() => conn.disconnect()));
  }

  private async loop(adapter: ChatAdapter, conn: Redis, signal: AbortSignal): Promise<void> {
    const key = this.store.auditKey;
    const group = this.group(adapter);
    // First what this consumer, or a dead one, read and never acknowledged.
    const claimed = (await conn.xautoclaim(key, group, this.consumer, CLAIM_IDLE_MS, '0', 'COUNT', 1000)) as [string, [string, string[]][]];
    await this.handle(adapter, conn, claimed[1] ?? []);
    let pending = true;
    while (!signal.aborted) {
      try {
        const res = (await (conn.xreadgroup as (...a: unknown[]) => Promise<unknown>)('GROUP', group, this.consumer, 'COUNT', 200, 'BLOCK', 1000, 'STREAMS', key, pending ? '0' : '>')) as [string, [string, string[]][]][] | null;
        const entries = res?.[0]?.[1] ?? [];
        if (pending && entries.length === 0) pending = false;
        await this.handle(adapter, conn, entries);
      } catch (err) {
        if (signal.aborted) break;
        this.log.warn({ adapter: adapter.name, err: (err as Error).message }, 'reading progress failed; retrying');
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
  }

  /** Delivers a batch of entries in order, then acknowledges them with one XACK. */
  private async handle(adapter: ChatAdapter, conn: Redis, entries: [string, string[]][]): Promise<void> {
    if (entries.length === 0) return;
    const runs = new Map<string, Run | undefined>();
    for (const [id, fields] of entries) {
      const i = fields.indexOf('e');
      const event = { ...(JSON.parse(fields[i + 1] ?? '{}') as StampedEvent), id };
      if (!runs.has(event.runId)) runs.set(event.runId, await this.store.find(event.runId));
      const run = runs.get(event.runId);
      if (run?.origin.adapter === adapter.name) {
        for (let attempt = 1; ; attempt++) {
          try {
            await adapter.deliver(run, event);
            break;
          } catch (err) {
            if (attempt >= DELIVERY_ATTEMPTS) {
              this.log.error({ adapter: adapter.name, runId: run.id, event: event.type, err: (err as Error).message }, 'giving up delivering an event');
              break;
            }
            await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
          }
        }
      }
    }
    // A crash before this delivers the batch again: deliveries are idempotent (stable message keys).
    await conn.xack(this.store.auditKey, this.group(adapter), ...entries.map(([id]) => id));
  }

  async stop(): Promise<void> {
    for (const s of this.stops) s.abort();
    await Promise.allSettled(this.loops);
  }
}
