import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import type { Worker } from 'bullmq';
import type { Logger } from 'pino';
import { ChatService } from './adapters/chat.js';
import { Decisions } from './approvals/decisions.js';
import { Policy } from './approvals/policy.js';
import { findConfigPath, loadRunbookConfig, type RunbookConfig } from './config/runbook-config.js';
import { loadEnv, type Env } from './config/env.js';
import { Engine } from './engine/engine.js';
import { Intake } from './engine/intake.js';
import { RunStore } from './engine/store.js';
import { Sweeper } from './engine/sweeper.js';
import { ConfigError } from './errors.js';
import { SshPool } from './executors/ssh/pool.js';
import { SqlExecutor } from './executors/sql/index.js';
import { Inventory } from './inventory.js';
import { Metrics } from './metrics.js';
import { createLogger } from './log.js';
import { loadCatalog, packSources, policyKeyProblems, type PackSource } from './packs/index.js';
import { defaultCatalog, type Catalog } from './procedures/index.js';
import { RunQueue, SignalWatcher, startWorker, type JobName, type RunJob } from './queue/index.js';

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  /** A parsed config; else read from `configPath`, RUNBOOK_CONFIG, ./runbook.yaml or the lab's. */
  config?: RunbookConfig;
  configPath?: string;
  /** Redis key prefix; default RUNBOOK_PREFIX. */
  prefix?: string;
  log?: Logger;
  /** The procedures; else the bot's own and the packs' (see Runtime.create). */
  catalog?: Catalog;
  /** The packs Runtime.create loads; else runbook.yaml's `packs` and RUNBOOK_PACKS. */
  packs?: PackSource[];
  /** Test knobs of the engine and worker: shorter leases and waits. */
  timeScale?: number;
  leaseTtlMs?: number;
  stalledIntervalMs?: number;
  workerId?: string;
}

/** What a worker thread needs to build a Runtime like another one, with connections of its own. */
export interface RuntimeThreadData {
  env: Record<string, string | undefined>;
  config: RunbookConfig;
  configPath: string | undefined;
  prefix: string;
  logLevel: string;
  /** The packs this process loaded, so the other loads the very same files wherever it runs. */
  packs: PackSource[];
}

/** The configuration given, or read from `configPath`, RUNBOOK_CONFIG, ./runbook.yaml or the lab's. */
function resolveConfig(opts: RuntimeOptions, env: NodeJS.ProcessEnv): { config: RunbookConfig; configPath: string | undefined } {
  if (opts.config) return { config: opts.config, configPath: opts.configPath };
  const path = opts.configPath ?? findConfigPath(env);
  if (!path) throw new ConfigError('runbook.yaml', [{ path: '(file)', message: 'no configuration: set RUNBOOK_CONFIG, write ./runbook.yaml, or run `runbook lab up` for the lab' }]);
  return { config: loadRunbookConfig(path, env), configPath: path };
}

/** A worker process that has not beaten for this long is taken for dead. */
const HEARTBEAT_TTL_MS = 15_000;

/** Everything a bot, a worker or a CLI command needs, wired once. */
export class Runtime {
  readonly env: Env;
  readonly config: RunbookConfig;
  readonly configPath: string | undefined;
  readonly log: Logger;
  readonly redis: Redis;
  readonly store: RunStore;
  readonly catalog: Catalog;
  /** The operator's packs the catalog was loaded with. */
  readonly packs: PackSource[];
  readonly inventory: Inventory;
  readonly policy: Policy;
  readonly ssh: SshPool;
  readonly sql: SqlExecutor;
  readonly queue: RunQueue;
  readonly decisions: Decisions;
  readonly intake: Intake;
  readonly engine: Engine;
  readonly chat: ChatService;
  readonly metrics: Metrics;
  readonly sweeper: Sweeper;
  private signals: SignalWatcher | undefined;
  private readonly workers: Worker<RunJob, unknown, JobName>[] = [];
  private readonly workerRedis: Redis[] = [];
  private readonly rawEnv: NodeJS.ProcessEnv;
  private readonly queueRedis: Redis;
  /**
   * The engine's connection: a command waits for Redis to come back (a restart, a network blip)
   * instead of failing, so a pass rides it out and its running commands are not abandoned.
   */
  private readonly engineRedis: Redis;
  private sweepScheduled = false;

  /**
   * A Runtime with the operator's packs loaded (runbook.yaml `packs`, RUNBOOK_PACKS, or
   * `opts.packs`): what every process of the bot starts with. Throws a PackError when a pack is bad.
   */
  static async create(opts: RuntimeOptions = {}): Promise<Runtime> {
    if (opts.catalog) return new Runtime(opts);
    const env = opts.env ?? process.env;
    const { config, configPath } = resolveConfig(opts, env);
    const packs = opts.packs ?? packSources(config, configPath, env);
    return new Runtime({ ...opts, config, ...(configPath ? { configPath } : {}), packs, catalog: await loadCatalog(packs) });
  }

  /** Without `opts.catalog`, the bot's own procedures only: a configuration with packs needs Runtime.create. */
  constructor(private readonly opts: RuntimeOptions = {}) {
    const rawEnv = opts.env ?? process.env;
    this.rawEnv = rawEnv;
    this.env = loadEnv(rawEnv);
    this.log = opts.log ?? createLogger(this.env.LOG_LEVEL);
    ({ config: this.config, configPath: this.configPath } = resolveConfig(opts, rawEnv));
    this.packs = opts.packs ?? packSources(this.config, this.configPath, rawEnv);
    if (!opts.catalog && this.packs.length) throw new Error('packs are loaded by Runtime.create, not the constructor');
    const prefix = opts.prefix ?? this.env.RUNBOOK_PREFIX;
    this.redis = new Redis(this.env.REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: false });
    this.redis.on('error', (err) => this.log.warn({ err: err.message }, 'redis error'));
    this.store = new RunStore(this.redis, prefix);
    this.catalog = opts.catalog ?? defaultCatalog();
    const policyProblems = policyKeyProblems(this.config.policy, this.catalog);
    if (policyProblems.length) throw new ConfigError(this.configPath ?? 'runbook.yaml', policyProblems);
    this.inventory = new Inventory(this.config.hosts, this.config.databases);
    this.policy = new Policy(this.config);
    this.ssh = new SshPool(this.config.ssh, this.log);
    this.sql = new SqlExecutor(this.config.databases, rawEnv);
    // BullMQ defines its ~40 Lua scripts on the connection it is given, and ioredis copies every
    // defined script onto each MULTI and pipeline: on a connection of its own, the store's
    // transactions do not pay for that (about 0.25 ms a command start, measured).
    this.queueRedis = this.redis.duplicate();
    this.queueRedis.on('error', (err) => this.log.warn({ err: err.message }, 'redis error'));
    this.queue = new RunQueue({ connection: this.queueRedis, prefix, log: this.log });
    this.decisions = new Decisions(this.store, this.policy, this.queue);
    this.intake = new Intake({ catalog: this.catalog, inventory: this.inventory, policy: this.policy, store: this.store, queue: this.queue, sql: this.sql });
    this.metrics = new Metrics(this);
    this.chat = new ChatService({ intake: this.intake, decisions: this.decisions, store: this.store, policy: this.policy, catalog: this.catalog });
    this.engineRedis = new Redis(this.env.REDIS_URL, { maxRetriesPerRequest: null, lazyConnect: true });
    this.engineRedis.on('error', (err) => this.log.warn({ err: err.message }, 'redis error (engine)'));
    const engineStore = new RunStore(this.engineRedis, prefix);
    this.engine = new Engine({
      store: engineStore,
      catalog: this.catalog,
      inventory: this.inventory,
      policy: this.policy,
      ssh: this.ssh,
      sql: this.sql,
      log: this.log,
      ...(opts.workerId ? { workerId: opts.workerId } : {}),
      leaseTtlMs: opts.leaseTtlMs ?? this.env.RUNBOOK_LEASE_MS,
      maxAttachmentBytes: this.config.ssh.maxAttachmentBytes,
      ...(opts.timeScale ? { timeScale: opts.timeScale } : {}),
      observer: this.metrics,
      waker: this.queue,
      signals: {
        watch: (id, onSignal) => this.signalWatcher().watch(id, onSignal),
        unwatch: (id) => this.signals?.unwatch(id),
      },
    });
    this.sweeper = new Sweeper({ store: engineStore, engine: this.engine, waker: this.queue, queuedRuns: () => this.queue.queuedRuns(), log: this.log, everyMs: this.sweepEveryMs });
  }

  /** A sweep every lease period: a run left with nothing to advance it waits at most about that long. */
  private get sweepEveryMs(): number {
    return Math.max(1_000, this.engine?.leaseTtlMs ?? this.env.RUNBOOK_LEASE_MS);
  }

  private signalWatcher(): SignalWatcher {
    return (this.signals ??= new SignalWatcher(this.engineRedis, this.store.signalChannel, this.log));
  }

  get prefix(): string {
    return this.store.prefix;
  }

  /**
   * The same environment, configuration, Redis prefix and log level, for a worker thread that
   * builds its own Runtime (`new Runtime(Runtime.optionsFrom(data, log))`). It stays in memory.
   */
  threadData(): RuntimeThreadData {
    return { env: { ...this.rawEnv }, config: this.config, configPath: this.configPath, prefix: this.prefix, logLevel: this.log.level, packs: this.packs };
  }

  static optionsFrom(data: RuntimeThreadData, log: Logger): RuntimeOptions {
    return { env: data.env, config: data.config, ...(data.configPath ? { configPath: data.configPath } : {}), prefix: data.prefix, log, packs: data.packs };
  }

  /** Starts a BullMQ worker in this process. */
  startWorker(concurrency = this.env.WORKER_CONCURRENCY): Worker<RunJob, unknown, JobName> {
    const connection = new Redis(this.env.REDIS_URL, { maxRetriesPerRequest: null });
    connection.on('error', (err) => this.log.warn({ err: err.message }, 'redis error (worker)'));
    this.workerRedis.push(connection);
    this.signalWatcher();
    const lease = this.engine.leaseTtlMs;
    const worker = startWorker({
      connection,
      prefix: this.prefix,
      concurrency,
      lockDuration: lease,
      stalledInterval: this.opts.stalledIntervalMs ?? Math.max(500, Math.floor(lease / 2)),
      log: this.log,
      advance: (runId) => this.engine.advance(runId),
      expire: (runId, gateId) => this.decisions.expire(runId, gateId),
      sweep: () => this.sweeper.sweep(),
    });
    this.workers.push(worker);
    this.heartbeat(concurrency);
    return worker;
  }

  /** Asks for the sweeps; tried again at each heartbeat until Redis takes it. */
  private scheduleSweep(): void {
    if (this.sweepScheduled) return;
    this.sweepScheduled = true;
    this.queue.scheduleSweep(this.sweepEveryMs).catch((err: Error) => {
      this.sweepScheduled = false;
      this.log.warn({ err: err.message }, 'scheduling the sweeper failed; trying again');
    });
  }

  private heartbeatTimer: NodeJS.Timeout | undefined;

  /** Each process with workers says so in Redis every few seconds: `/healthz` and `runbook health` read it. */
  private heartbeat(concurrency: number): void {
    if (this.heartbeatTimer) return;
    const key = `${this.prefix}:worker:${this.engine.workerId}`;
    const beat = () => {
      this.scheduleSweep();
      return this.redis
        .set(key, JSON.stringify({ host: hostname(), pid: process.pid, concurrency, at: new Date().toISOString() }), 'PX', HEARTBEAT_TTL_MS)
        .catch((err: Error) => this.log.warn({ err: err.message }, 'worker heartbeat failed'));
    };
    void beat();
    this.heartbeatTimer = setInterval(beat, HEARTBEAT_TTL_MS / 3);
    this.heartbeatTimer.unref();
  }

  /** Processes whose workers beat within the last HEARTBEAT_TTL_MS, across every machine on this Redis. */
  async liveWorkers(): Promise<{ host: string; pid: number; concurrency: number; at: string }[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.prefix}:worker:*`, 'COUNT', 500);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    if (found.length === 0) return [];
    return (await this.redis.mget(found)).filter((v): v is string => !!v).map((v) => JSON.parse(v) as { host: string; pid: number; concurrency: number; at: string });
  }

  async close(): Promise<void> {
    if (this.heartbeatTimer) {
      clearInterval(this.heartbeatTimer);
      await this.redis.del(`${this.prefix}:worker:${this.engine.workerId}`).catch(() => undefined);
    }
    await Promise.all(this.workers.map((w) => w.close()));
    await this.queue.close();
    await this.signals?.close();
    await this.ssh.close();
    await this.sql.close();
    await Promise.all(this.workerRedis.map((r) => r.quit().catch(() => undefined)));
    await this.queueRedis.quit().catch(() => undefined);
    await this.engineRedis.quit().catch(() => undefined);
    await this.redis.quit().catch(() => undefined);
  }
}
