import { webApi } from '@slack/bolt';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { mergeBodies, type SlackBody } from './block-kit.js';

/** One message (or its attached file) of a run, as the outbox will post or update it. */
export interface OutboxItem {
  runId: string;
  /** The message key of the neutral model (`plan`, `step:<path>`, `gate:<id>`, `final`, …). */
  key: string;
  channel: string;
  place: 'channel' | 'thread';
  broadcast: boolean;
  /** Never posted merged with other messages (the run's end, approval requests). */
  alone?: boolean;
  body: SlackBody;
  file?: { name: string; content: string | Buffer };
}

export interface OutboxOptions {
  client: webApi.WebClient;
  redis: Redis;
  /** Prefix of the Redis keys that remember each message's ts: `${prefix}:slack:run:<id>`. */
  prefix: string;
  log: Logger;
  /** Least time between two Web API writes to one channel. Default 1000 ms (Slack: about one message a second per channel). */
  intervalMs?: number;
  /** Thread messages posted as one when a thread is backed up. Default 20. */
  mergeMax?: number;
  /** Attempts of a write failing for another reason than a 429 before it is logged and left. Default 5. */
  attempts?: number;
  /** How long Redis remembers a run's message ts. Default 30 days. */
  ttlSeconds?: number;
  /** Web API writes in flight at once, over all channels. Default 2. */
  maxInFlight?: number;
  /** Told of every Web API call and how it went (metrics). */
  observe?: (method: string, outcome: 'ok' | 'rate_limited' | 'error') => void;
}

interface Op extends OutboxItem {
  kind: 'message' | 'file';
  /** When `body` was last set: of two ops for one message (one was in flight), the later wins. */
  version: number;
  waiters: (() => void)[];
  failures: number;
}

interface Lane {
  pending: Op[];
  running: boolean;
  nextAt: number;
}

/** What Redis remembers of a run's messages: the ts of each key, the keys sharing a merged message, their bodies. */
interface RunMemory {
  ts: Map<string, string>;
  members: Map<string, string[]>;
  bodies: Map<string, SlackBody>;
  files: Set<string>;
}

/**
 * One op per message: two ops for one key meet when a write failed while newer content was queued;
 * the newer content wins, and every waiter of both is answered when it is sent.
 */
function collapse(batch: Op[]): Op[] {
  const byKey = new Map<string, Op>();
  for (const op of batch) {
    const seen = byKey.get(op.key);
    if (!seen) {
      byKey.set(op.key, op);
      continue;
    }
    seen.waiters.push(...op.waiters);
    seen.broadcast ||= op.broadcast;
    seen.alone ||= op.alone;
    if (op.version > seen.version) {
      seen.body = op.body;
      seen.version = op.version;
      if (op.file) seen.file = op.file;
    }
  }
  return [...byKey.values()];
}

/** Answers that the same call will get again: retrying them only delays the channel's queue. */
const PERMANENT = new Set(['channel_not_found', 'not_in_channel', 'is_archived', 'invalid_auth', 'account_inactive', 'token_revoked', 'missing_scope', 'invalid_blocks', 'msg_too_long', 'message_not_found', 'cant_update_message']);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Posts a run's messages in order, per channel, within Slack's rate limits. Pending writes to one
 * message coalesce (the latest content wins, sent once); new thread messages waiting together are
 * posted as one; a 429 keeps the write at the head of its channel until Retry-After has passed, so
 * nothing is lost or reordered. Each key's ts is kept in Redis: a key already posted is updated,
 * never posted again, also after a restart.
 */
export class SlackOutbox {
  private readonly lanes = new Map<string, Lane>();
  private readonly memory = new Map<string, Promise<RunMemory>>();
  private readonly intervalMs: number;
  private readonly mergeMax: number;
  private readonly attempts: number;
  private readonly ttl: number;
  private closed = false;
  private inFlight = 0;
  private versions = 0;
  private readonly slots: (() => void)[] = [];
  private readonly maxInFlight: number;

  constructor(private readonly o: OutboxOptions) {
    this.intervalMs = o.intervalMs ?? 1_000;
    this.mergeMax = o.mergeMax ?? 20;
    this.attempts = o.attempts ?? 5;
    this.ttl = o.ttlSeconds ?? 30 * 24 * 3600;
    this.maxInFlight = o.maxInFlight ?? 2;
  }

  private async slot(): Promise<void> {
    if (this.inFlight < this.maxInFlight) {
      this.inFlight++;
      return;
    }
    await new Promise<void>((r) => this.slots.push(r));
  }

  private release(): void {
    const next = this.slots.shift();
    if (next) next();
    else this.inFlight--;
  }

  private key(runId: string): string {
    return `${this.o.prefix}:slack:run:${runId}`;
  }

  /** Queues a post or update; resolves once it (or newer content for the same message) is sent or given up. */
  send(item: OutboxItem): Promise<void> {
    return new Promise<void>((resolve) => {
      const lane = this.lane(item.channel);
      const same = lane.pending.find((p) => p.kind === 'message' && p.runId === item.runId && p.key === item.key);
      if (same) {
        same.body = item.body;
        same.version = ++this.versions;
        same.broadcast ||= item.broadcast;
        same.alone ||= item.alone;
        if (item.file) same.file = item.file;
        same.waiters.push(resolve);
      } else {
        lane.pending.push({ ...item, kind: 'message', version: ++this.versions, waiters: [resolve], failures: 0 });
      }
      this.kick(item.channel, lane);
    });
  }

  /** Resolves when nothing is queued any more. */
  async drain(): Promise<void> {
    while ([...this.lanes.values()].some((l) => l.running || l.pending.length)) await sleep(20);
  }

  close(): void {
    this.closed = true;
    for (const lane of this.lanes.values()) for (const op of lane.pending.splice(0)) op.waiters.forEach((w) => w());
  }

  private lane(channel: string): Lane {
    let lane = this.lanes.get(channel);
    if (!lane) this.lanes.set(channel, (lane = { pending: [], running: false, nextAt: 0 }));
    return lane;
  }

  private kick(channel: string, lane: Lane): void {
    if (lane.running || this.closed) return;
    lane.running = true;
    void this.run(channel, lane).finally(() => {
      lane.running = false;
      if (lane.pending.length && !this.closed) this.kick(channel, lane);
      else this.retire(channel, lane);
    });
  }

  /**
   * Forgets an idle channel once its pacing no longer matters (a bot in many incident channels
   * over months would otherwise keep one lane per channel it ever wrote to).
   */
  private retire(channel: string, lane: Lane): void {
    setTimeout(
      () => {
        if (!lane.running && !lane.pending.length && this.lanes.get(channel) === lane) this.lanes.delete(channel);
      },
      Math.max(0, lane.nextAt - Date.now()),
    ).unref();
  }

  /** Channels with a lane in memory (for tests). */
  get channelCount(): number {
    return this.lanes.size;
  }

  private async run(channel: string, lane: Lane): Promise<void> {
    while (lane.pending.length && !this.closed) {
      const wait = lane.nextAt - Date.now();
      if (wait > 0) await sleep(wait);
      await this.slot();
      let batch: Op[];
      try {
        batch = await this.take(lane);
      } catch (err) {
        this.release();
        this.o.log.warn({ channel, err: (err as Error).message }, 'reading slack message ids from redis failed; retrying');
        lane.nextAt = Date.now() + 1_000;
        continue;
      }
      try {
        const followUps = await this.write(batch).finally(() => this.release());
        lane.pending.unshift(...followUps);
        lane.nextAt = Date.now() + this.intervalMs;
        for (const op of batch) op.waiters.forEach((w) => w());
      } catch (err) {
        const e = err as { code?: string; retryAfter?: number; message?: string };
        if (e.code === webApi.ErrorCode.RateLimitedError) {
          const ms = Math.max(1, e.retryAfter ?? 1) * 1_000;
          this.o.log.warn({ channel, retryAfterMs: ms }, 'slack rate limited; waiting for Retry-After');
          lane.pending.unshift(...batch);
          lane.nextAt = Date.now() + ms;
          continue;
        }
        const head = batch[0]!;
        const platform = e.code === webApi.ErrorCode.PlatformError ? String((err as { data?: { error?: string } }).data?.error) : undefined;
        if (platform === 'invalid_blocks' && batch.some((op) => op.body.blocks.length)) {
          // Blocks Slack refuses must not cost the message: its text still says what happened.
          this.o.log.error({ channel, runId: head.runId, key: head.key }, 'slack refused the blocks; sending the text alone');
          for (const op of batch) op.body = { text: op.body.text, blocks: [] };
          lane.pending.unshift(...batch);
          continue;
        }
        head.failures++;
        const permanent = platform !== undefined && PERMANENT.has(platform);
        if (permanent || head.failures >= this.attempts) {
          this.o.log.error({ channel, runId: head.runId, key: head.key, err: e.message }, 'giving up a slack message');
          for (const op of batch) op.waiters.forEach((w) => w());
        } else {
          this.o.log.warn({ channel, runId: head.runId, key: head.key, err: e.message }, 'slack write failed; retrying');
          lane.pending.unshift(...batch);
          lane.nextAt = Date.now() + 250 * 2 ** head.failures;
        }
      }
    }
  }

  /** The ops one Web API call will carry, taken off the lane: the head, plus what merges with it. */
  private async take(lane: Lane): Promise<Op[]> {
    // Read before taking: if Redis fails, the op stays at the head.
    const mem = await this.remember(lane.pending[0]!.runId);
    const head = lane.pending.shift()!;
    if (head.kind === 'file') return [head];
    const ts = mem.ts.get(head.key);
    // An update takes every pending op of the same Slack message; a new post takes the other ops
    // of its own key (queued while it was in flight and failed), and, in a thread, the new thread
    // messages waiting behind it, in their order, up to one that stands alone (an approval
    // request, the run's end), which is never overtaken.
    const group = new Set(ts ? (mem.members.get(ts) ?? [head.key]) : [head.key]);
    const merging = !ts && head.place === 'thread' && !head.broadcast && !head.alone;
    const batch = [head];
    let open = merging;
    for (let i = 0; i < lane.pending.length; ) {
      const p = lane.pending[i]!;
      const mine = p.kind === 'message' && p.runId === head.runId;
      if (mine && group.has(p.key)) {
        batch.push(...lane.pending.splice(i, 1));
        continue;
      }
      if (open && mine && p.place === 'thread') {
        if (p.broadcast || p.alone) open = false;
        else if (!mem.ts.has(p.key) && group.size < this.mergeMax) {
          group.add(p.key);
          batch.push(...lane.pending.splice(i, 1));
          continue;
        }
      }
      i++;
    }
    return collapse(batch);
  }

  private async call<T>(method: string, fn: () => Promise<T>): Promise<T> {
    try {
      const r = await fn();
      this.o.observe?.(method, 'ok');
      return r;
    } catch (err) {
      this.o.observe?.(method, (err as { code?: string }).code === webApi.ErrorCode.RateLimitedError ? 'rate_limited' : 'error');
      throw err;
    }
  }

  /** Sends one batch; returns the file uploads that must follow it. */
  private async write(batch: Op[]): Promise<Op[]> {
    const head = batch[0]!;
    const mem = await this.remember(head.runId);
    const rkey = this.key(head.runId);
    if (head.kind === 'file') {
      if (mem.files.has(head.key)) return [];
      const thread = mem.ts.get('plan');
      await this.call('files.uploadV2', () =>
        this.o.client.filesUploadV2({
          channel_id: head.channel,
          ...(thread ? { thread_ts: thread } : {}),
          filename: head.file!.name,
          // Text goes as `content`; bytes (an archive fetched from a host) as `file`.
          ...(typeof head.file!.content === 'string' ? { content: head.file!.content } : { file: head.file!.content }),
          title: head.file!.name,
        } as Parameters<webApi.WebClient['filesUploadV2']>[0]),
      );
      mem.files.add(head.key);
      await this.o.redis.hset(rkey, `f:${head.key}`, '1');
      return [];
    }
    const ts = mem.ts.get(head.key);
    if (ts) {
      const members = mem.members.get(ts);
      for (const op of batch) mem.bodies.set(op.key, op.body);
      const body = members ? mergeBodies(members.flatMap((k) => mem.bodies.get(k) ?? [])) : head.body;
      await this.call('chat.update', () => this.o.client.chat.update({ channel: head.channel, ts, text: body.text, blocks: body.blocks }));
      if (members) await this.o.redis.hset(rkey, ...batch.flatMap((op) => [`b:${op.key}`, JSON.stringify(op.body)]));
      return this.files(batch, mem);
    }
    const root = head.place === 'thread' ? mem.ts.get('plan') : undefined;
    const body = mergeBodies(batch.map((op) => op.body));
    const where = root ? { thread_ts: root, reply_broadcast: head.broadcast } : {};
    const res = await this.call('chat.postMessage', () => this.o.client.chat.postMessage({ channel: head.channel, text: body.text, blocks: body.blocks, ...where, unfurl_links: false, unfurl_media: false }));
    const posted = String(res.ts);
    const fields: string[] = [];
    for (const op of batch) {
      mem.ts.set(op.key, posted);
      fields.push(`t:${op.key}`, posted);
    }
    if (batch.length > 1) {
      const keys = batch.map((op) => op.key);
      mem.members.set(posted, keys);
      fields.push(`m:${posted}`, JSON.stringify(keys));
      for (const op of batch) {
        mem.bodies.set(op.key, op.body);
        fields.push(`b:${op.key}`, JSON.stringify(op.body));
      }
    }
    await this.o.redis.multi().hset(rkey, ...fields).expire(rkey, this.ttl).exec();
    return this.files(batch, mem);
  }

  private files(batch: Op[], mem: RunMemory): Op[] {
    return batch.filter((op) => op.file && !mem.files.has(op.key)).map((op) => ({ ...op, kind: 'file' as const, waiters: [], failures: 0 }));
  }

  private remember(runId: string): Promise<RunMemory> {
    let m = this.memory.get(runId);
    if (!m) {
      m = this.o.redis.hgetall(this.key(runId)).then((h) => {
        const mem: RunMemory = { ts: new Map(), members: new Map(), bodies: new Map(), files: new Set() };
        for (const [f, v] of Object.entries(h)) {
          const [kind, name] = [f.slice(0, 2), f.slice(2)];
          if (kind === 't:') mem.ts.set(name, v);
          else if (kind === 'm:') mem.members.set(name, JSON.parse(v) as string[]);
          else if (kind === 'b:') mem.bodies.set(name, JSON.parse(v) as SlackBody);
          else if (kind === 'f:') mem.files.add(name);
        }
        return mem;
      });
      m.catch(() => this.memory.delete(runId));
      this.memory.set(runId, m);
    }
    return m;
  }

  /** Forgets a finished run's memory in this process (Redis keeps it until its TTL). */
  forget(runId: string): void {
    this.memory.delete(runId);
  }
}
