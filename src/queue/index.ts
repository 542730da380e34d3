import { DelayedError, Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { LeaseBusyError, LeaseLostError } from '../errors.js';

/** Job data: only ids, never secrets (BullMQ stores job data in clear text). */
export interface RunJob {
  runId: string;
  /** For `expire` jobs: the gate whose approval runs out. */
  gateId?: string;
}

export type JobName = 'advance' | 'expire';

/** Job ids allow neither ":" nor bare integers. */
export function jobKey(...parts: string[]): string {
  return parts.map((p) => p.replace(/[^A-Za-z0-9._@-]/g, '_')).join('.');
}

/** How long a job waits before trying a run again that another worker still holds. */
const LEASE_RETRY_MS = 500;

export interface QueueOptions {
  connection: Redis;
  /** Key prefix in Redis (BullMQ's `prefix`). */
  prefix: string;
}

/**
 * The runs queue. Each job advances one run until it ends or waits at a gate. Job ids are
 * deterministic (`<run>.start`, `<run>.gate.<gate>`), so a double click or a retried request adds nothing.
 */
export class RunQueue {
  readonly queue: Queue<RunJob, unknown, JobName>;
  static readonly NAME = 'runs';

  constructor(readonly opts: QueueOptions) {
    this.queue = new Queue<RunJob, unknown, JobName>(RunQueue.NAME, { connection: opts.connection, prefix: opts.prefix });
  }

  /** Adds an `advance` job unless one with the same id exists. */
  async advance(runId: string, why: string): Promise<void> {
    await this.queue.add('advance', { runId }, {
      jobId: jobKey(runId, why),
      attempts: 25,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }

  /** A delayed job that expires an approval gate if nobody decided it in time. */
  async expireAt(runId: string, gateId: string, at: number): Promise<void> {
    await this.queue.add('expire', { runId, gateId }, {
      jobId: jobKey(runId, 'expire', gateId),
      delay: Math.max(0, at - Date.now()),
      attempts: 25,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
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
}

/** A BullMQ worker over the runs queue. A job whose run is held elsewhere is put back, not failed. */
export function startWorker(o: WorkerOptions): Worker<RunJob, unknown, JobName> {
  const worker = new Worker<RunJob, unknown, JobName>(
    RunQueue.NAME,
    async (job: Job<RunJob, unknown, JobName>, token?: string) => {
      if (job.name === 'expire' && job.data.gateId) await o.expire(job.data.runId, job.data.gateId);
      try {
        return await o.advance(job.data.runId);
      } catch (err) {
        if (err instanceof LeaseBusyError && token) {
          await job.moveToDelayed(Date.now() + LEASE_RETRY_MS, token);
          throw new DelayedError();
        }
        if (err instanceof LeaseLostError) return 'lease lost';
        o.log.error({ runId: job.data.runId, err }, 'advancing the run failed');
        throw err;
      }
    },
    {
      connection: o.connection,
      prefix: o.prefix,
      concurrency: o.concurrency,
      lockDuration: o.lockDuration ?? 30_000,
      stalledInterval: o.stalledInterval ?? 15_000,
      // A run whose worker died is picked up again however often that happens; the engine never repeats a finished step.
      maxStalledCount: 1_000,
    },
  );
  worker.on('error', (err) => o.log.error({ err }, 'worker error'));
  return worker;
}

/** One subscriber connection per process relays "cancel run X" to the pass advancing X. */
export class CancelWatcher {
  private readonly sub: Redis;
  private readonly controllers = new Map<string, AbortController>();

  constructor(redis: Redis, channel: string) {
    this.sub = redis.duplicate();
    void this.sub.subscribe(channel);
    this.sub.on('message', (_ch: string, runId: string) => this.controllers.get(runId)?.abort());
  }

  watch(runId: string): AbortSignal {
    let c = this.controllers.get(runId);
    if (!c || c.signal.aborted) {
      c = new AbortController();
      this.controllers.set(runId, c);
    }
    return c.signal;
  }

  unwatch(runId: string): void {
    this.controllers.delete(runId);
  }

  async close(): Promise<void> {
    await this.sub.quit().catch(() => undefined);
  }
}
