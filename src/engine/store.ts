import { createHash, randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { LeaseBusyError, NotFoundError } from '../errors.js';
import type { KnownFacts } from '../procedures/facts.js';
import type { DecisionRecord, Run, RunEvent, StampedEvent } from './types.js';

/**
 * Save a run only while holding its lease, so a worker that lost its lease (paused, partitioned)
 * can never overwrite the checkpoint of the worker that took over.
 * KEYS[1] run key, KEYS[2] lease key. ARGV[1] lease token, ARGV[2] run JSON.
 * Returns 1 saved, 0 lease not held.
 */
const SAVE_RUN = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`;

/**
 * KEYS[1] lease key. ARGV[1] token, ARGV[2] ttl ms.
 * Returns 1 when the lease is (now) held by the token, 0 when another token holds it.
 */
const TAKE_LEASE = `
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/** KEYS[1] lease key. ARGV[1] token. Returns 1 released, 0 not held. */
const DROP_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * All-or-nothing host locks: writers exclude everyone, readers share. A run's own locks never block it.
 * KEYS[2i-1] writer key of host i, KEYS[2i] reader set of host i. ARGV[1] run id, ARGV[1+i] mode of host i.
 * Returns {} when every lock is held, else the ids of the runs in the way.
 */
const TAKE_LOCKS = `
local run = ARGV[1]
local blockers = {}
local n = #KEYS / 2
for i = 1, n do
  local w = redis.call('GET', KEYS[2*i-1])
  if w and w ~= run then table.insert(blockers, w) end
  if ARGV[1+i] == 'write' then
    for _, r in ipairs(redis.call('SMEMBERS', KEYS[2*i])) do
      if r ~= run then table.insert(blockers, r) end
    end
  end
end
if #blockers > 0 then return blockers end
for i = 1, n do
  if ARGV[1+i] == 'write' then redis.call('SET', KEYS[2*i-1], run) else redis.call('SADD', KEYS[2*i], run) end
end
return {}`;

/** KEYS as TAKE_LOCKS. ARGV[1] run id. Returns the number of locks released. */
const DROP_LOCKS = `
local run = ARGV[1]
local n = 0
for i = 1, #KEYS / 2 do
  if redis.call('GET', KEYS[2*i-1]) == run then redis.call('DEL', KEYS[2*i-1]); n = n + 1 end
  n = n + redis.call('SREM', KEYS[2*i], run)
end
return n`;

/** How long a file a step attached is kept. */
const FILE_TTL_SECONDS = 7 * 24 * 3600;

/** Entries kept in a run's own event stream (the audit stream is never trimmed). */
const RUN_STREAM_MAX = 20_000;

export function newRunId(): string {
  const t = Date.now().toString(36).slice(-6);
  return `r-${t}${randomBytes(3).toString('hex')}`;
}

/**
 * Run state, events, decisions, leases and host locks in Redis. Key names share a hash tag per run
 * (`{r-…}`) so every script touches a single Redis Cluster slot.
 */
export class RunStore {
  constructor(
    readonly redis: Redis,
    readonly prefix = 'runbook',
  ) {}

  private k(runId: string, part?: string): string {
    return `${this.prefix}:run:{${runId}}${part ? `:${part}` : ''}`;
  }
  private lockKeys(host: string): [string, string] {
    return [`${this.prefix}:{locks}:w:${host}`, `${this.prefix}:{locks}:r:${host}`];
  }
  get auditKey(): string {
    return `${this.prefix}:audit`;
  }

  /**
   * Stores a new run, its first events and, when given, `record` (what started it, e.g. a chat
   * request's dedupe key), in one transaction: a process dying midway leaves all of it or none.
   */
  async create(run: Run, firstEvents: RunEvent[], record?: { key: string; value: string; ttlSeconds: number }): Promise<void> {
    const m = this.redis.multi();
    m.set(this.k(run.id), JSON.stringify(run), 'NX');
    m.zadd(`${this.prefix}:runs`, Date.parse(run.createdAt), run.id);
    for (const event of firstEvents) this.append(m, run.id, event);
    if (record) m.set(record.key, record.value, 'EX', record.ttlSeconds);
    await m.exec();
  }

  async load(runId: string): Promise<Run> {
    const raw = await this.redis.get(this.k(runId));
    if (!raw) throw new NotFoundError(`no run ${runId}`, { runId });
    return JSON.parse(raw) as Run;
  }

  async find(runId: string): Promise<Run | undefined> {
    const raw = await this.redis.get(this.k(runId));
    return raw ? (JSON.parse(raw) as Run) : undefined;
  }

  /** Newest first. */
  async list(limit = 20): Promise<Run[]> {
    const ids = await this.redis.zrevrange(`${this.prefix}:runs`, 0, limit - 1);
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.k(id)));
    return raws.filter((r): r is string => !!r).map((r) => JSON.parse(r) as Run);
  }

  /** Checkpoint: returns false (and saves nothing) when the lease was lost. */
  async save(run: Run, leaseToken: string): Promise<boolean> {
    run.updatedAt = new Date().toISOString();
    const ok = await this.redis.eval(SAVE_RUN, 2, this.k(run.id), this.k(run.id, 'lease'), leaseToken, JSON.stringify(run));
    return ok === 1;
  }

  async takeLease(runId: string, token: string, ttlMs: number): Promise<void> {
    const ok = await this.redis.eval(TAKE_LEASE, 1, this.k(runId, 'lease'), token, String(ttlMs));
    if (ok !== 1) throw new LeaseBusyError(runId);
  }

  async renewLease(runId: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(TAKE_LEASE, 1, this.k(runId, 'lease'), token, String(ttlMs))) === 1;
  }

  async dropLease(runId: string, token: string): Promise<void> {
    await this.redis.eval(DROP_LEASE, 1, this.k(runId, 'lease'), token);
  }

  /** Appends to the run's progress stream and to the audit trail. Output chunks stay out of the audit. */
  async emit(runId: string, event: RunEvent): Promise<string> {
    const m = this.redis.multi();
    this.append(m, runId, event);
    const res = await m.exec();
    return String(res?.[0]?.[1] ?? '');
  }

  /** Queues `emit`'s writes on a transaction: the run's stream entry first, then the audit entry. */
  private append(m: ChainableCommander, runId: string, event: RunEvent): void {
    const body = JSON.stringify({ ...event, runId, at: new Date().toISOString() } satisfies StampedEvent);
    m.xadd(this.k(runId, 'events'), 'MAXLEN', '~', String(RUN_STREAM_MAX), '*', 'e', body);
    if (event.type !== 'step.output') m.xadd(this.auditKey, '*', 'e', body);
  }

  /** Events after `afterId` ('0' for all); waits up to `blockMs` for new ones when given. */
  async events(runId: string, afterId = '0', blockMs?: number, redis: Redis = this.redis): Promise<StampedEvent[]> {
    const args: (string | number)[] = ['COUNT', 1000];
    if (blockMs !== undefined) args.push('BLOCK', blockMs);
    const res = (await (redis.xread as (...a: unknown[]) => Promise<unknown>)(...args, 'STREAMS', this.k(runId, 'events'), afterId)) as [string, [string, string[]][]][] | null;
    return parseEntries(res?.[0]?.[1] ?? []);
  }

  /** The audit trail, oldest first, from `fromId` (exclusive) on. */
  async audit(fromId = '-', count = 10_000): Promise<StampedEvent[]> {
    const start = fromId === '-' ? '-' : `(${fromId}`;
    const entries = (await this.redis.xrange(this.auditKey, start, '+', 'COUNT', count)) as [string, string[]][];
    return parseEntries(entries);
  }

  /** First decision on a gate wins; returns false when one was already recorded. */
  async decide(runId: string, record: DecisionRecord): Promise<boolean> {
    return (await this.redis.hsetnx(this.k(runId, 'decisions'), record.gateId, JSON.stringify(record))) === 1;
  }

  async decisions(runId: string): Promise<Record<string, DecisionRecord>> {
    const all = await this.redis.hgetall(this.k(runId, 'decisions'));
    return Object.fromEntries(Object.entries(all).map(([k, v]) => [k, JSON.parse(v) as DecisionRecord]));
  }

  /** Returns false when a cancellation was already requested. */
  async requestCancel(runId: string, by: string): Promise<boolean> {
    const ok = await this.redis.set(this.k(runId, 'cancel'), JSON.stringify({ by, at: new Date().toISOString() }), 'NX');
    if (ok) await this.redis.publish(`${this.prefix}:cancel`, runId);
    return ok === 'OK';
  }

  async cancelRequest(runId: string): Promise<{ by: string; at: string } | undefined> {
    const raw = await this.redis.get(this.k(runId, 'cancel'));
    return raw ? (JSON.parse(raw) as { by: string; at: string }) : undefined;
  }

  get cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }

  /** Takes every lock or none; returns the runs in the way (empty when taken). */
  async takeLocks(runId: string, locks: { host: string; mode: 'read' | 'write' }[]): Promise<string[]> {
    if (locks.length === 0) return [];
    const keys = locks.flatMap((l) => this.lockKeys(l.host));
    const res = (await this.redis.eval(TAKE_LOCKS, keys.length, ...keys, runId, ...locks.map((l) => l.mode))) as string[];
    return [...new Set(res)];
  }

  async dropLocks(runId: string, hosts: string[]): Promise<void> {
    if (hosts.length === 0) return;
    const keys = hosts.flatMap((h) => this.lockKeys(h));
    await this.redis.eval(DROP_LOCKS, keys.length, ...keys, runId);
  }

  /**
   * Keeps a file a step fetched from a host (for 7 days: chat adapters upload it, the CLI and the
   * console hand it out); returns the id that names it within the run.
   */
  async putFile(runId: string, stepPath: string, bytes: Buffer): Promise<string> {
    const id = createHash('sha256').update(stepPath).digest('hex').slice(0, 16);
    await this.redis.set(this.k(runId, `file:${id}`), bytes, 'EX', FILE_TTL_SECONDS);
    return id;
  }

  /** The file's bytes, or undefined once it expired (or never was). */
  async getFile(runId: string, id: string): Promise<Buffer | undefined> {
    if (!/^[0-9a-f]{16}$/.test(id)) return undefined;
    return (await this.redis.getBuffer(this.k(runId, `file:${id}`))) ?? undefined;
  }

  /**
   * What was last detected on each host (service manager, Python), for plans made before a run
   * asks the host again. One hash for all hosts: a plan reads its hosts in one HMGET.
   */
  async saveFacts(host: string, facts: KnownFacts): Promise<void> {
    await this.redis.hset(`${this.prefix}:facts`, host, JSON.stringify({ ...facts, source: 'cache' }));
  }

  /** The cached facts of those hosts that have any, marked as coming from the cache. */
  async cachedFacts(hosts: string[]): Promise<Record<string, KnownFacts>> {
    if (hosts.length === 0) return {};
    const raws = await this.redis.hmget(`${this.prefix}:facts`, ...hosts);
    const out: Record<string, KnownFacts> = {};
    hosts.forEach((h, i) => {
      const raw = raws[i];
      if (raw) out[h] = { ...(JSON.parse(raw) as KnownFacts), source: 'cache' };
    });
    return out;
  }

  /** Removes everything under this prefix (tests). */
  async purge(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await this.redis.del(...keys);
    } while (cursor !== '0');
  }
}

function parseEntries(entries: [string, string[]][]): StampedEvent[] {
  return entries.map(([id, fields]) => {
    const i = fields.indexOf('e');
    return { ...(JSON.parse(fields[i + 1] ?? '{}') as StampedEvent), id };
  });
}
