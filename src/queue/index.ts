import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Signals, Waker } from '../engine/engine.js';
import { LeaseBusyError, LeaseLostError } from '../errors.js';

/** Job data: only ids, never secrets (BullMQ stores job data in clear text). */
export interface RunJob {
  /** Absent on `sweep` jobs. */
  runId?: string;
  /** For `expire` jobs: the gate whose approval runs out. */
  gateId?: string;
}

/** `advance` a run; `expire` an approval, then advance; `sweep` for runs that nothing would advance (sweeper.ts). */
export type JobName = 'advance' | 'expire' | 'sweep';

/** Job ids allow neither ":" nor bare integers. */
export function jobKey(...parts: string[]): string {
  return parts.map((p) => p.replace(/[^A-Za-z0-9._@-]/g, '_')).join('.');
}

/** How long a job waits before trying a run again that another worker still holds. */
const LEASE_RETRY_MS = 500;

const RETRIES = { attempts: 25, backoff: { type: 'exponential', delay: 1_000 } } as const;

export interface QueueOptions {
  connection: Redis;
  /** Key prefix in Redis (BullMQ's `prefix`). */
  prefix: string;
  log: Logger;
}

/**
 * The runs queue. Each job advances one run until it ends or waits. Job ids are deterministic
 * (`<run>.start`, `<run>.gate.<gate>`, `<run>.timer.<ms>`, `<run>.lock.<run that released>`), so a
 * double click, a retried request or a wake asked twice adds nothing.
 */
export class RunQueue implements Waker {
  readonly queue: Queue<RunJob, unknown, JobName>;
  static readonly NAME = 'runs';

  constructor(readonly opts: QueueOptions) {
    this.queue = new Queue<RunJob, unknown, JobName>(RunQueue.NAME, { connection: opts.connection, prefix: opts.prefix });
    // Connection errors while Redis restarts are expected: BullMQ and ioredis reconnect by themselves.
    this.queue.on('error', (err) => opts.log.warn({ err: err.message }, 'queue error'));
  }

  /** Adds an `advance` job unless one with the same id exists. */
  async advance(runId: string, why: string): Promise<void> {
    await this.wake(runId, why);
  }

  async wake(runId: string, why: string, at?: number): Promise<void> {
    await this.queue.add('advance', { runId }, {
      jobId: jobKey(runId, why),
      ...(at !== undefined ? { delay: Math.max(0, at - Date.now()) } : {}),
      ...RETRIES,
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /** A delayed job that expires an approval gate if nobody decided it in time. */
  async expireAt(runId: string, gateId: string, at: number): Promise<void> {
    await this.queue.add('expire', { runId, gateId }, {
      jobId: jobKey(runId, 'expire', gateId),
      delay: Math.max(0, at - Date.now()),
      ...RETRIES,
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /** One `sweep` job every `everyMs`, however many workers ask (a BullMQ job scheduler). */
  async scheduleSweep(everyMs: number): Promise<void> {
    await this.queue.upsertJobScheduler('sweep', { every: everyMs }, { name: 'sweep', data: {}, opts: { removeOnComplete: true, removeOnFail: { count: 100 } } });
  }

  /** Runs with a job waiting for a worker or being worked on (`now`), and runs with a delayed job (`later`). */
  async queuedRuns(): Promise<{ now: Set<string>; later: Set<string> }> {
    const ids = async (states: ('waiting' | 'active' | 'prioritized' | 'delayed')[]) =>
      new Set((await this.queue.getJobs(states)).map((j) => (j?.data as RunJob | undefined)?.runId).filter((id): id is string => !!id));
    const [now, later] = await Promise.all([ids(['waiting', 'active', 'prioritized']), ids(['delayed'])]);
    return { now, later };
  }

  /** Waiting, active and delayed jobs. */
  async depth(): Promise<Record<string, number>> {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'failed');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export interface WorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  /** Runs advanced at once. */
  concurrency: number;
  /** BullMQ's job lock; a killed worker's job is picked up after it. Default 30000 ms. */
  lockDuration?: number;
  /** How often stalled jobs are looked for. Default 15000 ms. */
  stalledInterval?: number;
  log: Logger;
  advance(runId: string): Promise<unknown>;
  expire(runId: string, gateId: string): Promise<void>;
  sweep(): Promise<unknown>;
}

/** A BullMQ worker over the runs queue. A job whose run is held elsewhere is put back, not failed. */
export function startWorker(o: WorkerOptions): Worker<RunJob, unknown, JobName> {
  const worker = new Worker<RunJob, unknown, JobName>(
    RunQueue.NAME,
    async (job: Job<RunJob, unknown, JobName>, token?: string) => {
      if (job.name === 'sweep') return o.sweep();
      const runId = job.data.runId;
      if (!runId) return 'no run';
      if (job.name === 'expire' && job.data.gateId) await o.expire(runId, job.data.gateId);
      try {
        return await o.advance(runId);
      } catch (err) {
        if (err instanceof LeaseBusyError && token) {
          await job.moveToDelayed(Date.now() + LEASE_RETRY_MS, token);
          throw new DelayedError();
        }
        if (err instanceof LeaseLostError) return 'lease lost';
        o.log.error({ runId, err }, 'advancing the run failed');
        throw err;
      }
    },
    {
      connection: o.connection,
      prefix: o.prefix,
      concurrency: o.concurrency,
      lockDuration: o.lockDuration ?? 30_000,
      stalledInterval: o.stalledInterval ?? 15_000,
      // A run whose worker died is picked up again however often that happens; the engine never
      // repeats a finished step. A job given up anyway is found by the sweeper.
      maxStalledCount: 1_000,
    },
  );
  // Connection errors while Redis restarts are expected: BullMQ and ioredis reconnect by themselves.
  worker.on('error', (err) => o.log.warn({ err: err.message }, 'worker error'));
  return worker;
}

/** One subscriber connection per process relays "run X has news" (a decision, a cancellation) to the pass advancing X. */
export class SignalWatcher implements Signals {
  private readonly sub: Redis;
  private readonly listeners = new Map<string, () => void>();

  constructor(redis: Redis, channel: string, log: Logger) {
    this.sub = redis.duplicate();
    this.sub.on('error', (err: Error) => log.warn({ err: err.message }, 'redis error (signals)'));
    // ioredis subscribes again after a reconnection.
    this.sub.subscribe(channel).catch((err: Error) => log.warn({ err: err.message }, 'subscribing to run signals failed; passes see decisions at their next start'));
    this.sub.on('message', (_ch: string, runId: string) => this.listeners.get(runId)?.());
  }

  watch(runId: string, onSignal: () => void): void {
    this.listeners.set(runId, onSignal);
  }

  unwatch(runId: string): void {
    this.listeners.delete(runId);
  }

  async close(): Promise<void> {
    await this.sub.quit().catch(() => undefined);
  }
}
