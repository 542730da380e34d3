import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Runtime, RuntimeThreadData } from '../../runtime.js';
import type { SlackBotOptions } from './bot.js';
import type { SlackRequest } from './requests.js';

/** What the acking process tells the work process. */
export type ToWork =
  | { type: 'init'; data: SlackWorkData }
  | { type: 'request'; seq: number; delivery: string; req: SlackRequest }
  | { type: 'usage'; id: number }
  | { type: 'stop' };
/** What the work process tells the acking process. */
export type FromWork =
  | { type: 'ready' }
  | { type: 'failed'; error: string }
  | { type: 'progress'; done: number[]; calls: [method: string, outcome: ChatCallOutcome, count: number][] }
  | { type: 'usage'; id: number; usage: WorkUsage };

export type ChatCallOutcome = 'ok' | 'rate_limited' | 'error';

/** What the work process has used since it started. */
export interface WorkUsage {
  /** Its event loop's active and idle time, ms. */
  elu: EventLoopUtilization;
  /** CPU time of all its threads (JavaScript, GC, I/O), µs. */
  cpu: NodeJS.CpuUsage;
}

export interface SlackWorkData {
  runtime: RuntimeThreadData;
  bot: Omit<SlackBotOptions, 'observe'>;
  /** The nice value it should run at, where it could not be started under `nice`. */
  nice: number;
}

/** The work process's nice value where it is not started under SCHED_IDLE: above the acking process's, so acks win the CPU when both want it. */
const WORK_NICE = 19;
/** Waits before starting a process that died again: doubling from the first to the last. */
const RESTART_MS = [500, 30_000] as const;
/** A process that does not stop within this is killed. */
const STOP_MS = 15_000;
/** A process that has not said it is ready within this is killed and started again. */
const START_MS = 30_000;

/** This module runs from src/ as TypeScript under vitest; the process then runs the build in dist/. */
function entry(): string {
  return fileURLToPath(import.meta.url.endsWith('.ts') ? new URL('../../../dist/adapters/slack/worker.js', import.meta.url) : new URL('./worker.js', import.meta.url));
}

/**
 * How the work process is started below the acking one, best first:
 * - `idle`: Linux's SCHED_IDLE (`chrt --idle 0`, util-linux). A thread that wakes preempts an idle
 *   one at once; under a nice value the woken thread may wait for the running one's time slice.
 *   Measured at 200 commands/s: p99 ack 0.99× and 1.01× the bare app, against 1.12× to 1.34×
 *   under `nice -n 19` on the same machine.
 * - `nice`: `nice -n 19` (Linux without chrt, macOS, the BSDs).
 * - `self`: started as is, lowering its own main thread (Windows, or neither tool present).
 * Every thread of a process started under chrt or nice (its garbage collector's too) inherits the
 * setting; neither needs a privilege.
 */
export type WorkPriority = { how: 'idle' | 'nice'; prefix: string[] } | { how: 'self'; prefix: [] };

let priority: WorkPriority | undefined;
export function workPriority(): WorkPriority {
  if (priority) return priority;
  const find = (name: string) => (process.platform === 'win32' ? undefined : [`/usr/bin/${name}`, `/bin/${name}`].find((p) => existsSync(p)));
  const chrt = process.platform === 'linux' ? find('chrt') : undefined;
  // A container may forbid changing the scheduling policy: try it once.
  if (chrt && spawnSync(chrt, ['--idle', '0', 'true'], { stdio: 'ignore' }).status === 0) priority = { how: 'idle', prefix: [chrt, '--idle', '0'] };
  else {
    const nice = find('nice');
    priority = nice ? { how: 'nice', prefix: [nice, '-n', String(WORK_NICE)] } : { how: 'self', prefix: [] };
  }
  return priority;
}

/**
 * The Slack adapter's work (./worker.ts: starting runs, decisions, answers, progress messages) in
 * a child process of its own, so that the event loop answering Slack does nothing but verify and
 * ack, and nothing the work does (its CPU, its garbage collector's threads, a crash) can hold an
 * ack up. The process runs at the lowest priority (see workPriority): when the cores are busy the
 * kernel serves the acks first. Measured at 200 commands/s (`npm run bench`): the same work on
 * the acking event loop made the p99 ack 2.4× a bare Bolt app's; in a worker thread of the same
 * process, 1.5×; in this process, about 1×.
 *
 * Nothing handed over is lost when the process dies: each request stays here until the process
 * says it is done, and is handed to the next process under the same delivery id, which the work
 * side uses to tell it from a retry by Slack (see SlackBot.handle).
 */
export class SlackWork {
  /** The process that is ready for requests. */
  private child: ChildProcess | undefined;
  /** The last process started, ready or not yet. */
  private latest: ChildProcess | undefined;
  private seq = 0;
  private readonly inflight = new Map<number, { req: SlackRequest; delivery: string }>();
  /** Delivery ids are `<this>:<seq>`: unique across processes and restarts of this one. */
  private readonly id = randomBytes(6).toString('hex');
  private stopping = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private usageIds = 0;
  private readonly usageAnswers = new Map<number, (u: WorkUsage) => void>();
  private readonly log: Logger;

  constructor(
    private readonly rt: Runtime,
    private readonly bot: Omit<SlackBotOptions, 'observe'>,
  ) {
    this.log = rt.log.child({ adapter: 'slack' });
  }

  /** Starts the work process; rejects when it cannot start (the error says why). */
  async start(): Promise<void> {
    await this.spawn();
  }

  /** Hands an acked request to the work process; returns at once. */
  readonly forward = (req: SlackRequest): void => {
    const seq = ++this.seq;
    const delivery = `${this.id}:${seq}`;
    this.inflight.set(seq, { req, delivery });
    if (this.child) this.send(this.child, { type: 'request', seq, delivery, req });
  };

  /** Requests handed over and not yet done. */
  get pending(): number {
    return this.inflight.size;
  }

  /** The running work process, for tests that kill it. */
  get current(): ChildProcess | undefined {
    return this.child;
  }

  /** What the running work process has used since it started (for the benchmark). */
  usage(): Promise<WorkUsage> {
    const child = this.child;
    if (!child) return Promise.reject(new Error('the Slack work process is not running'));
    const id = ++this.usageIds;
    return new Promise((resolve) => {
      this.usageAnswers.set(id, resolve);
      this.send(child, { type: 'usage', id });
    });
  }

  private send(child: ChildProcess, m: ToWork): void {
    // A process that has just died is noticed by 'exit', which hands the request to the next one.
    if (child.connected) child.send(m, (err) => err && this.log.debug({ err: err.message }, 'the slack work process did not take a message'));
  }

  private spawn(): Promise<void> {
    const how = workPriority();
    const data: SlackWorkData = { runtime: this.rt.threadData(), bot: this.bot, nice: how.how === 'self' ? WORK_NICE : 0 };
    const file = entry();
    if (!existsSync(file)) return Promise.reject(new Error(`the Slack work process's code is missing (${file}): run \`npm run build\``));
    // Flags of this process that matter to the work too (readable stacks, its heap limit); not
    // the rest (a test runner's loaders, an inspector port).
    const flags = process.execArgv.filter((a) => a === '--enable-source-maps' || a.startsWith('--max-old-space-size='));
    const node = [process.execPath, ...flags, file];
    const [cmd, ...args] = [...how.prefix, ...node];
    const child = spawn(cmd!, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', env: process.env });
    this.latest = child;
    return new Promise((resolve, reject) => {
      let ready = false;
      let failure: string | undefined;
      const startTimer = setTimeout(() => {
        failure = `not ready within ${START_MS / 1000} s`;
        child.kill('SIGKILL');
      }, START_MS);
      child.on('message', (m: FromWork) => {
        if (m.type === 'progress') {
          for (const seq of m.done) this.inflight.delete(seq);
          for (const [method, outcome, count] of m.calls) this.rt.metrics.chatCall('slack', method, outcome, count);
        } else if (m.type === 'usage') {
          this.usageAnswers.get(m.id)?.(m.usage);
          this.usageAnswers.delete(m.id);
        } else if (m.type === 'ready') {
          clearTimeout(startTimer);
          ready = true;
          this.failures = 0;
          this.child = child;
          // What an earlier process was handed and did not finish, in the order it came.
          for (const [seq, { req, delivery }] of this.inflight) this.send(child, { type: 'request', seq, delivery, req });
          resolve();
        } else if (m.type === 'failed') {
          failure = m.error;
        }
      });
      let ended = false;
      const end = (why: string) => {
        if (ended) return;
        ended = true;
        clearTimeout(startTimer);
        if (this.child === child) this.child = undefined;
        if (!ready) {
          reject(new Error(`the Slack work process did not start: ${why}`));
          return;
        }
        if (this.stopping) return;
        this.log.error({ err: why, pending: this.inflight.size }, 'the slack work process died; starting another (requests in hand are handed to it)');
        this.restart();
      };
      child.on('error', (err) => {
        failure ??= err.message;
        // It could not be started at all: no 'exit' follows.
        if (child.pid === undefined) end(failure);
      });
      child.on('exit', (code, signal) => end(failure ?? (signal ? `killed by ${signal}` : `exit code ${code}`)));
      this.send(child, { type: 'init', data });
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
        this.log.error({ err: (err as Error).message, pending: this.inflight.size, retryInMs: this.backoffMs() }, 'the slack work process could not start again');
        this.restart();
      });
    }, wait);
  }

  /** Lets the process finish what it was handed and deliver what it queued, then ends it. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    const child = this.latest;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    this.send(child, { type: 'stop' });
    const timer = setTimeout(() => {
      this.log.warn('the slack work process did not stop in time; killing it');
      child.kill('SIGKILL');
    }, STOP_MS);
    await exited;
    clearTimeout(timer);
    if (this.inflight.size) this.log.warn({ pending: this.inflight.size }, 'slack requests left undone at shutdown');
  }
}
