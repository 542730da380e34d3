import { createHash, randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { LeaseBusyError, NotFoundError } from '../errors.js';
import type { KnownFacts } from '../procedures/facts.js';
import type { Changes, Effect } from './transitions.js';
import { isTerminal, type DecisionRecord, type Gate, type Run, type RunEvent, type StampedEvent } from './types.js';

/** A Lua script sent by its sha1 (EVALSHA), and in full only when Redis does not know it yet (after a restart). */
class Script {
  private readonly sha: string;
  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/** Fields HSET at once inside a script: Lua's `unpack` has a limit on arguments. */
const HSET_CHUNK = 400;

/**
 * One checkpoint: what changed in the run, and the events that change produced, written together
 * and only while holding the run's lease, so a worker that lost it (paused, partitioned) can never
 * overwrite the checkpoint of the worker that took over. Each event goes to the run's stream at
 * once (progress followers see it with the state) and onto its outbox, from which `relay` copies it
 * to the audit stream (another Cluster slot) and does the effects queued with it.
 * Outbox entries are `<seq> e<event>` or `<seq> x<effect>`, numbered by the run's outbox counter.
 * KEYS[1] lease, [2] head, [3] steps, [4] captures, [5] expansions, [6] gates, [7] events, [8] outbox,
 * [9] cancel, [10] outbox counter.
 * ARGV[1] lease token, [2] head JSON ('' when unchanged), [3] stream MAXLEN, [4..9] how many step,
 * capture, expansion and gate fields (pairs), events and effects follow, in that order.
 * Returns {0} when the lease is not held (nothing written), else {1, cancel request or nil, event ids…}.
 */
const COMMIT = new Script(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
local i = 10
for h = 3, 6 do
  local n = tonumber(ARGV[h + 1])
  while n > 0 do
    local take = math.min(n, ${HSET_CHUNK})
    redis.call('HSET', KEYS[h], unpack(ARGV, i, i + 2 * take - 1))
    i = i + 2 * take
    n = n - take
  end
end
local out = {1, redis.call('GET', KEYS[9])}
for _ = 1, tonumber(ARGV[8]) do
  local id = redis.call('XADD', KEYS[7], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[i])
  redis.call('RPUSH', KEYS[8], redis.call('INCR', KEYS[10]) .. ' e' .. ARGV[i])
  out[#out + 1] = id
  i = i + 1
end
for _ = 1, tonumber(ARGV[9]) do
  redis.call('RPUSH', KEYS[8], redis.call('INCR', KEYS[10]) .. ' x' .. ARGV[i])
  i = i + 1
end
return out`);

/**
 * Removes the outbox entries a relay did, numbered up to ARGV[1], and no later one: another relay
 * (a worker that took the run over) may have done some already, and commits may have added more.
 * KEYS[1] outbox. Returns the number removed.
 */
const TRIM_OUTBOX = `
local n = 0
while true do
  local e = redis.call('LINDEX', KEYS[1], 0)
  if not e or tonumber(string.match(e, '^(%d+) ')) > tonumber(ARGV[1]) then return n end
  redis.call('LPOP', KEYS[1])
  n = n + 1
end`;

/**
 * KEYS[1] lease key. ARGV[1] token, ARGV[2] ttl ms.
 * Returns 1 when the lease is (now) held by the token, 0 when another token holds it.
 */
const TAKE_LEASE = new Script(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`);

/** KEYS[1] lease key. ARGV[1] token. Returns 1 released, 0 not held. */
const DROP_LEASE = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`);

/**
 * All-or-nothing host locks: writers exclude everyone, readers share. A run's own locks never block
 * it. A run that cannot have them all is put on each host's waiters (a sorted set by first arrival,
 * numbered by one counter),
 * with what it wants (`want:<run>`, host → mode), to be woken when one is released.
 *
 * Fairness: a writer that waits only for readers (no other writer holds any of its hosts) is next
 * in line, and a reader that comes after it waits behind it, so a stream of short reads (status
 * checks every few seconds) never starves a flush. A writer that also waits for another writer
 * keeps no one waiting: a run waiting on a forgotten approval elsewhere does not freeze its other
 * hosts.
 *
 * KEYS[3i-2] writer key, KEYS[3i-1] reader set, KEYS[3i] waiters of host i.
 * ARGV[1] run id, ARGV[2] the lock keys' common prefix (`<prefix>:{locks}:`), ARGV[3] `take` (take
 * them or wait) or `check` (change nothing), ARGV[2+2i] host i, ARGV[3+2i] its mode.
 * Returns { runs holding what it needs, runs next in line before it }; both empty when it may run.
 */
const TAKE_LOCKS = new Script(`
local run, base, take = ARGV[1], ARGV[2], ARGV[3] == 'take'
local n = #KEYS / 3
local holders, ahead = {}, {}
local function waitsOnlyForReaders(q)
  local want = redis.call('HGETALL', base .. 'want:' .. q)
  if #want == 0 then return false end
  for j = 1, #want, 2 do
    local w = redis.call('GET', base .. 'w:' .. want[j])
    if w and w ~= q then return false end
  end
  return true
end
for i = 1, n do
  local host, mode = ARGV[2 + 2*i], ARGV[3 + 2*i]
  local held = false
  local w = redis.call('GET', KEYS[3*i-2])
  if w and w ~= run then table.insert(holders, w); held = true end
  if mode == 'write' then
    for _, r in ipairs(redis.call('SMEMBERS', KEYS[3*i-1])) do
      if r ~= run then table.insert(holders, r); held = true end
    end
  elseif not held then
    local mine = redis.call('ZSCORE', KEYS[3*i], run)
    local earlier = mine and redis.call('ZRANGEBYSCORE', KEYS[3*i], '-inf', '(' .. mine) or redis.call('ZRANGE', KEYS[3*i], 0, -1)
    for _, q in ipairs(earlier) do
      if q ~= run and redis.call('HGET', base .. 'want:' .. q, host) == 'write' and waitsOnlyForReaders(q) then table.insert(ahead, q) end
    end
  end
end
if not take then return {holders, ahead} end
if #holders > 0 or #ahead > 0 then
  -- Arrival order: one counter for every host, so two runs queued in the same millisecond stay in order.
  local seq = redis.call('ZSCORE', KEYS[3], run) or redis.call('INCR', base .. 'seq')
  for i = 1, n do
    redis.call('ZADD', KEYS[3*i], 'NX', seq, run)
    redis.call('HSET', base .. 'want:' .. run, ARGV[2 + 2*i], ARGV[3 + 2*i])
  end
  return {holders, ahead}
end
for i = 1, n do
  if ARGV[3 + 2*i] == 'write' then redis.call('SET', KEYS[3*i-2], run) else redis.call('SADD', KEYS[3*i-1], run) end
  redis.call('ZREM', KEYS[3*i], run)
end
redis.call('DEL', base .. 'want:' .. run)
return {{}, {}}`);

/**
 * Releases what a run holds or waits for on these hosts (its own at its end, or a run that is gone
 * or ended: reclaimed by whoever finds it in the way).
 * KEYS as TAKE_LOCKS. ARGV[1] run id, ARGV[2] the lock keys' common prefix. Returns the runs
 * waiting for those hosts, to be woken.
 */
const DROP_LOCKS = new Script(`
local run = ARGV[1]
local waiters = {}
local seen = {}
for i = 1, #KEYS / 3 do
  if redis.call('GET', KEYS[3*i-2]) == run then redis.call('DEL', KEYS[3*i-2]) end
  redis.call('SREM', KEYS[3*i-1], run)
  redis.call('ZREM', KEYS[3*i], run)
  for _, w in ipairs(redis.call('ZRANGE', KEYS[3*i], 0, -1)) do
    if not seen[w] then seen[w] = true; table.insert(waiters, w) end
  end
end
redis.call('DEL', ARGV[2] .. 'want:' .. run)
return waiters`);

/** How long a file a step attached is kept. */
const FILE_TTL_SECONDS = 7 * 24 * 3600;

/** Entries kept in a run's own event stream (the audit stream is never trimmed). */
const RUN_STREAM_MAX = 20_000;

/** Parts of a run kept in hashes of their own, one field per step, capture, expansion or gate. */
const PARTS = ['steps', 'captures', 'expansions', 'gates'] as const;
type Part = (typeof PARTS)[number];

/** Statuses of gates stored before gates had `decision`: the decision each stood for. */
const OLD_GATE_STATUS: Record<string, Gate['decision']> = { approved: 'approve', rejected: 'reject', expired: 'expire', done: 'done', retry: 'retry', skip: 'skip', abort: 'abort' };

export function newRunId(): string {
  const t = Date.now().toString(36).slice(-6);
  return `r-${t}${randomBytes(3).toString('hex')}`;
}

export interface CommitResult {
  /** A cancellation was requested (read in the same round trip). */
  cancel?: { by: string; at: string };
  /** Ids of the committed events in the run's stream. */
  ids: string[];
}

/**
 * Run state, events, decisions, leases and host locks in Redis. A run is a small head document and
 * one hash per part (steps, captures, forEach expansions, gates), so a checkpoint writes what
 * changed, not the whole run. Key names share a hash tag per run (`{r-…}`), so every script touches
 * a single Redis Cluster slot.
 */
export class RunStore {
  /** Runs loaded from the one-document layout of earlier versions: their first commit writes every part. */
  private readonly legacy = new WeakSet<Run>();

  constructor(
    readonly redis: Redis,
    readonly prefix = 'runbook',
  ) {}

  private k(runId: string, part?: string): string {
    return `${this.prefix}:run:{${runId}}${part ? `:${part}` : ''}`;
  }
  /** What every lock key starts with; the lock scripts build a run's `want:` key and other hosts' writer keys from it. */
  private get lockBase(): string {
    return `${this.prefix}:{locks}:`;
  }
  private lockKeys(host: string): [string, string, string] {
    return [`${this.lockBase}w:${host}`, `${this.lockBase}r:${host}`, `${this.lockBase}q:${host}`];
  }
  get auditKey(): string {
    return `${this.prefix}:audit`;
  }
  /** Runs not yet ended, or ended with effects still to do: what the sweeper looks after. */
  get activeKey(): string {
    return `${this.prefix}:active`;
  }
  get signalChannel(): string {
    return `${this.prefix}:signal`;
  }

  /** The head: the run without its parts. */
  private headJson(run: Run): string {
    const { steps: _s, captures: _c, expansions: _e, gates: _g, ...head } = run;
    return JSON.stringify(head);
  }

  /**
   * Stores a new run, its first events and, when given, `record` (what started it, e.g. a chat
   * request's dedupe key), in one transaction: a process dying midway leaves all of it or none.
   */
  async create(run: Run, firstEvents: RunEvent[], record?: { key: string; value: string; ttlSeconds: number }): Promise<void> {
    const m = this.redis.multi();
    m.set(this.k(run.id), this.headJson(run), 'NX');
    m.zadd(`${this.prefix}:runs`, Date.parse(run.createdAt), run.id);
    m.zadd(this.activeKey, Date.parse(run.createdAt), run.id);
    for (const event of firstEvents) this.append(m, run.id, event);
    if (record) m.set(record.key, record.value, 'EX', record.ttlSeconds);
    await m.exec();
  }

  private read(m: ChainableCommander, runId: string): void {
    m.get(this.k(runId));
    for (const p of PARTS) m.hgetall(this.k(runId, p));
  }

  private assemble(res: [Error | null, unknown][], at: number): Run | undefined {
    const raw = res[at]?.[1] as string | null;
    if (!raw) return undefined;
    const run = JSON.parse(raw) as Run;
    const isLegacy = 'steps' in run;
    for (const [i, p] of PARTS.entries()) {
      const fields = (res[at + 1 + i]?.[1] ?? {}) as Record<string, string>;
      const part = (run[p] ?? {}) as Record<string, unknown>;
      for (const [f, v] of Object.entries(fields)) part[f] = JSON.parse(v);
      (run as unknown as Record<Part, unknown>)[p] = part;
    }
    if (isLegacy) this.upgrade(run);
    // A hash keeps no order: steps are listed as the run reached them, gates as they opened.
    run.steps = Object.fromEntries(Object.entries(run.steps).sort(([, a], [, b]) => (a.seq ?? 0) - (b.seq ?? 0)));
    run.gates = Object.fromEntries(Object.entries(run.gates).sort(([, a], [, b]) => a.requestedAt.localeCompare(b.requestedAt)));
    return run;
  }

  /** A run stored by an earlier version: gates said their decision in their status, and phase had `done`. */
  private upgrade(run: Run): void {
    this.legacy.add(run);
    for (const g of Object.values(run.gates)) {
      const decision = OLD_GATE_STATUS[g.status];
      if (decision) Object.assign(g, { status: 'decided', decision });
    }
    if ((run.phase as string) === 'done') run.phase = 'finally';
  }

  async find(runId: string): Promise<Run | undefined> {
    const m = this.redis.multi();
    this.read(m, runId);
    return this.assemble((await m.exec()) ?? [], 0);
  }

  async load(runId: string): Promise<Run> {
    const run = await this.find(runId);
    if (!run) throw new NotFoundError(`no run ${runId}`, { runId });
    return run;
  }

  /** Newest first. */
  async list(limit = 20): Promise<Run[]> {
    const ids = await this.redis.zrevrange(`${this.prefix}:runs`, 0, limit - 1);
    return this.many(ids);
  }

  /** These runs (those that exist), in one round trip. */
  async many(ids: string[]): Promise<Run[]> {
    if (ids.length === 0) return [];
    const m = this.redis.pipeline();
    for (const id of ids) this.read(m, id);
    const res = (await m.exec()) ?? [];
    return ids.map((_, i) => this.assemble(res, i * (1 + PARTS.length))).filter((r): r is Run => !!r);
  }

  /** The heads of these runs (status, procedure, requester, what they wait for; no steps), those that exist. */
  async heads(ids: string[]): Promise<Map<string, Omit<Run, Part>>> {
    if (ids.length === 0) return new Map();
    const raws = await this.redis.mget(ids.map((id) => this.k(id)));
    const out = new Map<string, Omit<Run, Part>>();
    ids.forEach((id, i) => {
      const raw = raws[i];
      if (raw) out.set(id, JSON.parse(raw) as Omit<Run, Part>);
    });
    return out;
  }

  /**
   * Checkpoint: writes what `changes` says changed, with its events and effects, atomically, while
   * the lease is held. Returns undefined (and writes nothing) when the lease was lost.
   */
  async commit(run: Run, changes: Changes, leaseToken: string): Promise<CommitResult | undefined> {
    const now = new Date().toISOString();
    const all = this.legacy.has(run);
    if (changes.head || all) run.updatedAt = now;
    const fields = (p: Part, names: Set<string>): string[] => {
      const part = run[p] as Record<string, unknown>;
      return (all ? Object.keys(part) : [...names]).flatMap((f) => [f, JSON.stringify(part[f])]);
    };
    const steps = fields('steps', changes.steps);
    const captures = fields('captures', changes.captures);
    const expansions = fields('expansions', changes.expansions);
    const gates = fields('gates', changes.gates);
    const events = changes.events.map((e) => stamp(run.id, e, now));
    const effects = changes.effects.map((fx) => JSON.stringify(fx));
    const keys = [this.k(run.id, 'lease'), this.k(run.id), ...PARTS.map((p) => this.k(run.id, p)), this.k(run.id, 'events'), this.k(run.id, 'outbox'), this.k(run.id, 'cancel'), this.k(run.id, 'outbox-seq')];
    const args = [leaseToken, changes.head || all ? this.headJson(run) : '', RUN_STREAM_MAX, steps.length / 2, captures.length / 2, expansions.length / 2, gates.length / 2, events.length, effects.length, ...steps, ...captures, ...expansions, ...gates, ...events, ...effects];
    const res = (await COMMIT.run(this.redis, keys, args)) as [number, string | null, ...string[]];
    if (res[0] !== 1) return undefined;
    if (all) {
      this.legacy.delete(run);
      // Runs stored before the active set existed join it: the sweeper looks after them too.
      if (!isTerminal(run.status)) await this.redis.zadd(this.activeKey, Date.parse(run.createdAt), run.id);
    }
    return { ...(res[1] ? { cancel: JSON.parse(res[1]) as { by: string; at: string } } : {}), ids: res.slice(2) as string[] };
  }

  /**
   * What the run's outbox holds: events not yet in the audit stream and effects not yet done, in
   * order, and the number of the last entry.
   */
  async outbox(runId: string): Promise<{ events: string[]; effects: Effect[]; last: number }> {
    const entries = await this.redis.lrange(this.k(runId, 'outbox'), 0, -1);
    const out = { events: [] as string[], effects: [] as Effect[], last: 0 };
    for (const e of entries) {
      const sp = e.indexOf(' ');
      out.last = Number(e.slice(0, sp));
      if (e[sp + 1] === 'e') out.events.push(e.slice(sp + 2));
      else out.effects.push(JSON.parse(e.slice(sp + 2)) as Effect);
    }
    return out;
  }

  /**
   * Appends events to the audit stream and removes the outbox entries up to `last`, in one
   * transaction (the caller did their effects first: each is idempotent).
   */
  async relayed(runId: string, events: string[], last: number): Promise<void> {
    const m = this.redis.multi();
    for (const body of events) m.xadd(this.auditKey, '*', 'e', body);
    m.eval(TRIM_OUTBOX, 1, this.k(runId, 'outbox'), last);
    await m.exec();
  }

  async takeLease(runId: string, token: string, ttlMs: number): Promise<void> {
    if (!(await this.renewLease(runId, token, ttlMs))) throw new LeaseBusyError(runId);
  }

  async renewLease(runId: string, token: string, ttlMs: number): Promise<boolean> {
    return (await TAKE_LEASE.run(this.redis, [this.k(runId, 'lease')], [token, ttlMs])) === 1;
  }

  async dropLease(runId: string, token: string): Promise<void> {
    await DROP_LEASE.run(this.redis, [this.k(runId, 'lease')], [token]);
  }

  /** Which of these runs a worker holds now. */
  async leased(runIds: string[]): Promise<Set<string>> {
    if (runIds.length === 0) return new Set();
    const vals = await this.redis.mget(runIds.map((id) => this.k(id, 'lease')));
    return new Set(runIds.filter((_, i) => vals[i] !== null));
  }

  /**
   * Appends an event that changes no run state (a refused decision, a cancellation asked for) to
   * the run's progress stream and to the audit trail, in one transaction.
   */
  async emit(runId: string, event: RunEvent): Promise<string> {
    const m = this.redis.multi();
    this.append(m, runId, event);
    const res = await m.exec();
    return String(res?.[0]?.[1] ?? '');
  }

  /** A running step's output: to the run's stream only (the finished step carries its tail to the audit). */
  async output(runId: string, event: Extract<RunEvent, { type: 'step.output' }>): Promise<void> {
    await this.redis.xadd(this.k(runId, 'events'), 'MAXLEN', '~', String(RUN_STREAM_MAX), '*', 'e', stamp(runId, event, new Date().toISOString()));
  }

  /** Queues `emit`'s writes on a transaction: the run's stream entry first, then the audit entry. */
  private append(m: ChainableCommander, runId: string, event: RunEvent): void {
    const body = stamp(runId, event, new Date().toISOString());
    m.xadd(this.k(runId, 'events'), 'MAXLEN', '~', String(RUN_STREAM_MAX), '*', 'e', body);
    m.xadd(this.auditKey, '*', 'e', body);
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

  /** First decision on a gate (or on one step of it) wins; returns false when one was already recorded. */
  async decide(runId: string, record: DecisionRecord): Promise<boolean> {
    const field = record.step ? `${record.gateId}#${record.step}` : record.gateId;
    const ok = (await this.redis.hsetnx(this.k(runId, 'decisions'), field, JSON.stringify(record))) === 1;
    if (ok) await this.signal(runId);
    return ok;
  }

  async decisions(runId: string): Promise<DecisionRecord[]> {
    return Object.values(await this.redis.hgetall(this.k(runId, 'decisions'))).map((v) => JSON.parse(v) as DecisionRecord);
  }

  /** Returns false when a cancellation was already requested. */
  async requestCancel(runId: string, by: string): Promise<boolean> {
    const ok = await this.redis.set(this.k(runId, 'cancel'), JSON.stringify({ by, at: new Date().toISOString() }), 'NX');
    if (ok) await this.signal(runId);
    return ok === 'OK';
  }

  async cancelRequest(runId: string): Promise<{ by: string; at: string } | undefined> {
    const raw = await this.redis.get(this.k(runId, 'cancel'));
    return raw ? (JSON.parse(raw) as { by: string; at: string }) : undefined;
  }

  /** Tells the worker advancing the run, if any, that a decision or a cancellation arrived. */
  private async signal(runId: string): Promise<void> {
    await this.redis.publish(this.signalChannel, runId);
  }

  /**
   * Takes every lock or none. Returns the runs in the way (empty when taken): those holding a host
   * it needs, then writers next in line before it (`ahead`); a run in the way is queued as a waiter.
   */
  async takeLocks(runId: string, locks: { host: string; mode: 'read' | 'write' }[]): Promise<string[]> {
    return (await this.lockBlockers(runId, locks, 'take')).all;
  }

  /** Who is in the way of these locks now (holders, and writers next in line), changing nothing. */
  async lockBlockers(runId: string, locks: { host: string; mode: 'read' | 'write' }[], op: 'take' | 'check' = 'check'): Promise<{ all: string[]; ahead: Set<string> }> {
    if (locks.length === 0) return { all: [], ahead: new Set() };
    const keys = locks.flatMap((l) => this.lockKeys(l.host));
    const [holders, ahead] = (await TAKE_LOCKS.run(this.redis, keys, [runId, this.lockBase, op, ...locks.flatMap((l) => [l.host, l.mode])])) as [string[], string[]];
    const queued = new Set(ahead.filter((id) => !holders.includes(id)));
    return { all: [...new Set([...holders, ...queued])], ahead: queued };
  }

  /** Releases `runId`'s locks and waits on these hosts; returns the runs waiting for them. */
  async dropLocks(runId: string, hosts: string[]): Promise<string[]> {
    if (hosts.length === 0) return [];
    const keys = hosts.flatMap((h) => this.lockKeys(h));
    return (await DROP_LOCKS.run(this.redis, keys, [runId, this.lockBase])) as string[];
  }

  /** Who holds each of these hosts: its writer, and its readers. */
  async lockHolders(hosts: string[]): Promise<Map<string, { writer?: string; readers: string[] }>> {
    const m = this.redis.pipeline();
    for (const h of hosts) {
      const [w, r] = this.lockKeys(h);
      m.get(w);
      m.smembers(r);
    }
    const res = (await m.exec()) ?? [];
    return new Map(
      hosts.map((h, i) => {
        const writer = res[2 * i]?.[1] as string | null | undefined;
        return [h, { ...(writer ? { writer } : {}), readers: (res[2 * i + 1]?.[1] as string[] | undefined) ?? [] }];
      }),
    );
  }

  /** Entries in each run's outbox. */
  async outboxSizes(runIds: string[]): Promise<Map<string, number>> {
    const m = this.redis.pipeline();
    for (const id of runIds) m.llen(this.k(id, 'outbox'));
    const res = (await m.exec()) ?? [];
    return new Map(runIds.map((id, i) => [id, Number(res[i]?.[1] ?? 0)]));
  }

  /** For each run, what arrived for it: the fields of its recorded decisions (`<gate>` or `<gate>#<step>`), and `cancel`. */
  async news(runIds: string[]): Promise<Map<string, string[]>> {
    const m = this.redis.pipeline();
    for (const id of runIds) {
      m.hkeys(this.k(id, 'decisions'));
      m.exists(this.k(id, 'cancel'));
    }
    const res = (await m.exec()) ?? [];
    return new Map(runIds.map((id, i) => [id, [...((res[2 * i]?.[1] as string[] | undefined) ?? []), ...(res[2 * i + 1]?.[1] ? ['cancel'] : [])]]));
  }

  /** Runs in the active set: not ended, or ended with effects still to do. */
  async active(): Promise<string[]> {
    return this.redis.zrange(this.activeKey, '0', '-1');
  }

  async deactivate(runId: string): Promise<void> {
    await this.redis.zrem(this.activeKey, runId);
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

function stamp(runId: string, event: RunEvent, at: string): string {
  return JSON.stringify({ ...event, runId, at } satisfies StampedEvent);
}

function parseEntries(entries: [string, string[]][]): StampedEvent[] {
  return entries.map(([id, fields]) => {
    const i = fields.indexOf('e');
    return { ...(JSON.parse(fields[i + 1] ?? '{}') as StampedEvent), id };
  });
}

