import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Runtime, RuntimeThreadData } from '../../runtime.js';
import type { SlackBotOptions } from './bot.js';
import type { SlackRequest } from './requests.js';

/** What the acking side tells the work thread. */
export type ToThread = { type: 'request'; seq: number; delivery: string; req: SlackRequest } | { type: 'stop' };
/** What the work thread tells the acking side. */
export type FromThread = { type: 'ready' } | { type: 'progress'; done: number[]; calls: [method: string, outcome: ChatCallOutcome, count: number][] };

export type ChatCallOutcome = 'ok' | 'rate_limited' | 'error';

export interface SlackThreadData {
  runtime: RuntimeThreadData;
  bot: Omit<SlackBotOptions, 'observe'>;
  /** Nice value of the work thread (Linux), above the acking thread's. */
  nice: number;
}

/** The work thread's nice value: below the thread that acks, so acks win the CPU when both want it. */
const WORK_NICE = 19;
/** Waits before starting a thread that died again: doubling from the first to the last. */
const RESTART_MS = [500, 30_000] as const;
/** A thread that does not stop within this is ended. */
const STOP_MS = 15_000;

/** This module runs from src/ as TypeScript under vitest; the thread then runs the build in dist/. */
function workerUrl(): URL {
  return import.meta.url.endsWith('.ts') ? new URL('../../../dist/adapters/slack/worker.js', import.meta.url) : new URL('./worker.js', import.meta.url);
}

/**
 * The Slack adapter's work (./worker.ts: starting runs, decisions, progress messages) in a worker
 * thread of its own, so that the event loop answering Slack does nothing but verify and ack.
 * Measured at 200 commands/s, the same work on the acking loop made the p99 ack 2.4× a bare Bolt
 * app's (`npm run bench`).
 *
 * Nothing handed over is lost when the thread dies: each request stays here until the thread says
 * it is done, and is handed to the next thread under the same delivery id, which the work side
 * uses to tell it from a retry by Slack (see SlackBot.handle).
 */
export class SlackThread {
  private worker: Worker | undefined;
  private seq = 0;
  private readonly inflight = new Map<number, { req: SlackRequest; delivery: string }>();
  /** Delivery ids are `<this>:<seq>`: unique across processes and restarts of this one. */
  private readonly id = randomBytes(6).toString('hex');
  private stopping = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(
    private readonly rt: Runtime,
    private readonly bot: Omit<SlackBotOptions, 'observe'>,
  ) {
    this.log = rt.log.child({ adapter: 'slack' });
  }

  /** Starts the thread; rejects when it cannot start (the error says why). */
  async start(): Promise<void> {
    await this.spawn();
  }

  /** Hands an acked request to the thread; returns at once. */
  readonly forward = (req: SlackRequest): void => {
    const seq = ++this.seq;
    const delivery = `${this.id}:${seq}`;
    this.inflight.set(seq, { req, delivery });
    this.worker?.postMessage({ type: 'request', seq, delivery, req } satisfies ToThread);
  };

  /** Requests handed over and not yet done. */
  get pending(): number {
    return this.inflight.size;
  }

  /** The running thread, for tests that end it. */
  get current(): Worker | undefined {
    return this.worker;
  }

  private spawn(): Promise<void> {
    const data: SlackThreadData = { runtime: this.rt.threadData(), bot: this.bot, nice: WORK_NICE };
    const worker = new Worker(workerUrl(), { workerData: data, name: 'slack' });
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (m: FromThread) => {
        if (m.type === 'progress') {
          for (const seq of m.done) this.inflight.delete(seq);
          for (const [method, outcome, count] of m.calls) this.rt.metrics.chatCall('slack', method, outcome, count);
        } else if (m.type === 'ready') {
          ready = true;
          this.failures = 0;
          this.worker = worker;
          // What an earlier thread was handed and did not finish, in the order it came.
          for (const [seq, { req, delivery }] of this.inflight) worker.postMessage({ type: 'request', seq, delivery, req } satisfies ToThread);
          resolve();
        }
      });
      let failure: Error | undefined;
      worker.on('error', (err) => {
        failure = err;
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = undefined;
        if (!ready) {
          const why = failure?.message ?? `exit code ${code}`;
          reject(new Error(`the Slack work thread did not start: ${why}${/Cannot find module|ERR_MODULE_NOT_FOUND/.test(why) ? ' (run `npm run build`)' : ''}`));
          return;
        }
        if (this.stopping) return;
        this.log.error({ err: failure?.message ?? `exit code ${code}`, pending: this.inflight.size }, 'the slack work thread died; starting another (requests in hand are handed to it)');
        this.restart();
      });
    });
  }

  /** The wait before the next start: doubling with each failure in a row, up to RESTART_MS[1]. */
  private backoffMs(): number {
    return Math.min(RESTART_MS[1], RESTART_MS[0] * 2 ** this.failures);
  }

  private restart(): void {
    const wait = this.backoffMs();
    this.failures++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawn().catch((err: unknown) => {
        this.log.error({ err: (err as Error).message, pending: this.inflight.size, retryInMs: this.backoffMs() }, 'the slack work thread could not start again');
        this.restart();
      });
    }, wait);
  }

  /** Lets the thread finish what it was handed and deliver what it queued, then ends it. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((r) => worker.once('exit', () => r()));
    worker.postMessage({ type: 'stop' } satisfies ToThread);
    const timer = setTimeout(() => {
      this.log.warn('the slack work thread did not stop in time; ending it');
      void worker.terminate();
    }, STOP_MS);
    await exited;
    clearTimeout(timer);
    if (this.inflight.size) this.log.warn({ pending: this.inflight.size }, 'slack requests left undone at shutdown');
  }
}
