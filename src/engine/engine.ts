import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Policy } from '../approvals/policy.js';
import { CancelledError, FileTooLargeError, LeaseLostError, errorMessage } from '../errors.js';
import type { SshPool } from '../executors/ssh/pool.js';
import { formatBytes, tailOf } from '../executors/ssh/output.js';
import type { SqlExecutor } from '../executors/sql/index.js';
import { PREVIEW_ROWS } from '../executors/sql/index.js';
import type { Inventory, InventoryHost } from '../inventory.js';
import type { Observer } from '../metrics.js';
import type { Catalog } from '../procedures/catalog.js';
import type { HostFacts, Procedure, StepContext } from '../procedures/dsl.js';
import { makeContext, value } from './context.js';
import { findStep, scopeOf } from './paths.js';
import { Machine, type Start } from './machine.js';
import type { Action } from './planner.js';
import { isLeaf } from './render.js';
import { readOutput, type Attached, type LeafResult } from './results.js';
import type { RunStore } from './store.js';
import type { Effect } from './transitions.js';
import { isTerminal, type LockHolder, type RenderedStep, type Run, type RunEvent, type RunStatus } from './types.js';

/** How the engine has a run advanced again later, by a job on the queue (queue/index.ts). */
export interface Waker {
  /** Advances `runId` at `at` (ms since the epoch; now when omitted). `why` names the job, so the same wake is never queued twice. */
  wake(runId: string, why: string, at?: number): Promise<void>;
  /** Expires an approval gate at `at` unless it is decided first. */
  expireAt(runId: string, gateId: string, at: number): Promise<void>;
}

/** Tells a pass that a decision or a cancellation arrived for its run. */
export interface Signals {
  watch(runId: string, onSignal: () => void): void;
  unwatch(runId: string): void;
}

export interface EngineOptions {
  store: RunStore;
  catalog: Catalog;
  inventory: Inventory;
  policy: Policy;
  ssh: SshPool;
  sql: SqlExecutor;
  log: Logger;
  waker: Waker;
  signals?: Signals;
  /** Names this worker in events and logs. Default `<HOSTNAME or hostname>:<pid>`. */
  workerId?: string;
  /** How long a run's lease lasts without renewal; a dead worker's run is taken over after it. Default 30000 ms. */
  leaseTtlMs?: number;
  /** Multiplies poll intervals and timeouts. Default 1; tests shorten waits with it. */
  timeScale?: number;
  /** Largest file a step attaches (ssh.maxAttachmentBytes). Default 8 MiB. */
  maxAttachmentBytes?: number;
  /** Told of runs ending, steps ending and gates decided (metrics). */
  observer?: Pick<Observer, 'runFinished' | 'stepFinished' | 'gateDecided'>;
}

/** How often output of a running step is sent as an event: coalesced, so a chatty command is one event per period. */
const OUTPUT_FLUSH_MS = 250;
/**
 * A poll check due sooner than this is waited for in the job: parking the run and waking it costs a
 * few round trips and a reload, more than so short a wait. Longer waits give the worker slot back.
 */
const SLEEP_IN_JOB_MS = 100;
/** Audit events of commits made close together are relayed together, at most this long after the first. */
const RELAY_DELAY_MS = 20;
/** Runs found holding a lock although they ended or are gone: the most reclaimed before waiting. */
const RECLAIM_ROUNDS = 3;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Advances runs: a pass takes a run's lease, applies what arrived (decisions, a cancellation),
 * asks the planner what to do, does it through the executors, and checkpoints each transition with
 * its events; it ends when the run ends or waits (a gate, a lock, a poll's interval), giving the
 * worker slot back. Completed steps never run again.
 */
export class Engine {
  readonly workerId: string;
  readonly leaseTtlMs: number;
  readonly timeScale: number;

  constructor(readonly opts: EngineOptions) {
    this.workerId = opts.workerId ?? `${process.env.HOSTNAME ?? hostname()}:${process.pid}`;
    this.leaseTtlMs = opts.leaseTtlMs ?? 30_000;
    this.timeScale = opts.timeScale ?? 1;
  }

  /**
   * Runs `runId` until it ends or waits. Throws LeaseBusyError when another worker holds it.
   * @returns the run's status afterwards
   */
  async advance(runId: string): Promise<RunStatus> {
    return this.leased(runId, async (token, lost) => {
      const run = await this.opts.store.load(runId);
      await this.relay(runId);
      if (isTerminal(run.status)) return run.status;
      const proc = this.opts.catalog.require(run.procedure);
      return new Pass(this, run, proc, token, lost).go();
    });
  }

  /** Does what a run's outbox still holds (a worker died between a commit and its relay), under the lease. */
  async flush(runId: string): Promise<void> {
    await this.leased(runId, () => this.relay(runId));
  }

  private async leased<T>(runId: string, fn: (token: string, lost: AbortSignal) => Promise<T>): Promise<T> {
    const { store } = this.opts;
    const token = `${this.workerId}:${randomUUID()}`;
    await store.takeLease(runId, token, this.leaseTtlMs);
    const lost = new AbortController();
    const renew = setInterval(() => {
      store.renewLease(runId, token, this.leaseTtlMs).then(
        (ok) => ok || lost.abort(),
        () => undefined,
      );
    }, Math.max(100, Math.floor(this.leaseTtlMs / 3)));
    try {
      return await fn(token, lost.signal);
    } finally {
      clearInterval(renew);
      await store.dropLease(runId, token).catch(() => undefined);
    }
  }

  /**
   * The outbox's effects, then its events to the audit stream. Each effect is idempotent, so a crash
   * midway does them again at the next relay, and the events reach the audit trail once.
   */
  async relay(runId: string): Promise<void> {
    const { store } = this.opts;
    const box = await store.outbox(runId);
    if (box.last === 0) return;
    for (const fx of box.effects) await this.effect(runId, fx);
    await store.relayed(runId, box.events, box.last);
  }

  private async effect(runId: string, fx: Effect): Promise<void> {
    const { store, waker } = this.opts;
    switch (fx.do) {
      case 'release-locks':
        for (const waiter of await store.dropLocks(runId, fx.hosts)) await waker.wake(waiter, `lock.${runId}`);
        return;
      case 'expire-at':
        return waker.expireAt(runId, fx.gate, fx.at);
      case 'wake-at':
        return waker.wake(runId, `timer.${fx.at}`, fx.at);
      case 'deactivate':
        return store.deactivate(runId);
    }
  }
}

interface Completion {
  action: Start;
  result: LeafResult;
}

/** One pass of a worker over one run: the machine decides and records, this does the effects. */
class Pass {
  private readonly o: EngineOptions;
  private readonly log: Logger;
  private readonly m: Machine;
  /** Aborted on cancellation (main steps stop) or on a lost lease (every step stops). */
  private readonly cancelAbort = new AbortController();
  private readonly inFlight = new Set<string>();
  private readonly done: Completion[] = [];
  private wakeLoop: (() => void) | undefined;
  private signalled = false;
  private committing: Promise<void> = Promise.resolve();
  private relaying: Promise<void> | undefined;
  private relayTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly run: Run,
    private readonly proc: Procedure,
    private readonly token: string,
    private readonly lost: AbortSignal,
  ) {
    this.o = engine.opts;
    this.log = engine.opts.log.child({ runId: run.id, procedure: run.procedure });
    this.m = new Machine(run, { proc, inventory: this.o.inventory, policy: this.o.policy, worker: engine.workerId, timeScale: engine.timeScale });
    // Every running command of a fan-out listens on these signals.
    setMaxListeners(0, this.cancelAbort.signal, lost);
    lost.addEventListener('abort', () => this.cancelAbort.abort(), { once: true });
  }

  async go(): Promise<RunStatus> {
    this.o.signals?.watch(this.run.id, () => {
      this.signalled = true;
      this.wakeLoop?.();
    });
    try {
      return await this.loop();
    } catch (err) {
      this.cancelAbort.abort();
      throw err;
    } finally {
      this.o.signals?.unwatch(this.run.id);
      if (this.relayTimer) clearTimeout(this.relayTimer);
    }
  }

  private async loop(): Promise<RunStatus> {
    const { m, run } = this;
    await this.arrivals();
    m.resume();
    for (;;) {
      if (this.lost.aborted) throw new LeaseLostError(run.id);
      if (this.signalled) await this.arrivals();
      for (const c of this.done.splice(0)) this.settle(c);
      const p = m.plan();
      if (p.actions.some((a) => a.type === 'take-locks')) {
        if (!(await this.takeLocks())) return run.status;
        continue;
      }
      const end = p.actions.find((a) => a.type === 'end');
      if (end) return this.end(end);
      if (p.actions.length) m.take();
      const starts: Start[] = [];
      for (const a of p.actions) {
        if (a.type === 'start') starts.push(a);
        else if (a.type === 'open-gate') m.openGate(a, a.kind === 'approval' ? await this.withPreviews(a.rendered) : a.rendered);
        else if (a.type !== 'take-locks' && a.type !== 'end') m.apply(a);
      }
      if (p.actions.length && !starts.length) continue;
      for (const a of starts) m.start(a);
      if (starts.length) await this.commit();
      for (const a of starts) this.launch(a);
      // Before waiting, what changed is committed (a step that ended while others run); a run
      // that parks commits it with its waiting.
      if (this.inFlight.size || this.done.length) {
        await this.commit();
        await this.next();
        continue;
      }
      if (this.signalled) continue;
      if (p.timer && p.timer.at - Date.now() <= SLEEP_IN_JOB_MS) {
        await this.commit();
        await this.sleepUntil(p.timer.at);
        continue;
      }
      m.park(Machine.waitingFor(p));
      await this.checkpoint();
      return run.status;
    }
  }

  /** Decisions recorded and a cancellation requested since the last look. */
  private async arrivals(): Promise<void> {
    this.signalled = false;
    const [decisions, cancel] = await Promise.all([this.o.store.decisions(this.run.id), this.o.store.cancelRequest(this.run.id)]);
    this.m.arrive(decisions, cancel);
    this.cancelled();
  }

  /** A cancelled run's main steps stop (finally steps are not cancelled). */
  private cancelled(): void {
    if (this.run.cancelRequested && this.run.phase === 'main') this.cancelAbort.abort();
  }

  /** Adds the preview rows of SQL steps (what an UPDATE will touch) to what an approver sees. */
  private async withPreviews(rendered: RenderedStep[]): Promise<RenderedStep[]> {
    return Promise.all(
      rendered.map(async (r) => {
        const def = findStep(this.proc, r.path);
        if (def?.kind !== 'sql' || !def.preview || !r.database) return r;
        const ctx = makeContext(this.run, this.o.inventory, scopeOf(this.run, r.path));
        try {
          const res = await this.o.sql.query(r.database, value(def.preview.statement, ctx), def.preview.params ? value(def.preview.params, ctx) : (r.params ?? []));
          return { ...r, preview: { columns: res.columns, rows: res.rows.slice(0, PREVIEW_ROWS).map((row) => res.columns.map((c) => row[c])), total: res.rows.length } };
        } catch (err) {
          return { ...r, preview: { columns: ['error'], rows: [[`preview failed: ${errorMessage(err)}`]], total: 0 } };
        }
      }),
    );
  }

  private launch(a: Start): void {
    this.inFlight.add(a.path);
    const signal = a.fin ? this.lost : this.cancelAbort.signal;
    void this.execute(a, signal).then((result) => {
      this.inFlight.delete(a.path);
      this.done.push({ action: a, result });
      this.wakeLoop?.();
    });
  }

  /** Side effects of a leaf step, through the executors; never throws (an error is a result). */
  private async execute(a: Start, signal: AbortSignal): Promise<LeafResult> {
    const { step: s, ctx } = a;
    try {
      if (signal.aborted) throw new CancelledError('cancelled before it started');
      switch (s.kind) {
        case 'ssh':
        case 'poll': {
          const host = ctx.host(value(s.host, ctx));
          const command = value(s.command, ctx);
          const stdin = s.stdin === undefined ? undefined : value(s.stdin, ctx);
          const timeoutMs = s.kind === 'ssh' && s.timeoutMs !== undefined ? value(s.timeoutMs, ctx) : undefined;
          const out = this.outputSink(a.path);
          const res = await this.o.ssh.exec(host, command.text, { ...(timeoutMs ? { timeoutMs } : {}), ...(stdin !== undefined ? { stdin } : {}), signal, onOutput: out.push, secrets: command.secrets }).finally(out.flush);
          if (s.kind === 'poll') return { kind: 'exec', res };
          const read = readOutput(s, res);
          // What a host is made of is worth keeping even if this run stops here: the next plans read it.
          if (read.ok && s.detects) await this.o.store.saveFacts(host.name, { ...(read.capture as HostFacts), detectedAt: new Date().toISOString(), source: 'run' });
          // `attach` may name the file by what this very step printed (the archive's path): its
          // capture is not stored until the result is settled, so the step sees it here.
          const attached = read.ok && s.attach !== undefined ? await this.attach(host, value(s.attach, read.capture === undefined ? ctx : withOwnCapture(ctx, s.id, read.capture)), a.path, signal) : undefined;
          return { kind: 'exec', res, ...(attached ? { attached } : {}) };
        }
        case 'sql': {
          const r = a.rendered;
          const res = await this.o.sql.execute(r.database!, { statement: r.statement!, params: r.params ?? [], ...(r.expect ? { expect: r.expect } : {}) });
          return { kind: 'sql', res };
        }
        case 'report':
          return { kind: 'report', text: s.text(ctx) };
        case 'manual':
          throw new Error('a manual step has nothing to run');
      }
    } catch (error) {
      return { kind: 'error', error };
    }
  }

  /**
   * Fetches the file a step attaches and keeps it with the run. A file over the configured bound
   * stays on the host and the step says where (it still succeeded: the command did its work).
   */
  private async attach(host: InventoryHost, path: string, stepPath: string, signal: AbortSignal): Promise<Attached> {
    const maxBytes = this.o.maxAttachmentBytes ?? 8 * 1024 * 1024;
    try {
      const bytes = await this.o.ssh.fetch(host, path, { maxBytes, signal });
      const id = await this.o.store.putFile(this.run.id, stepPath, bytes);
      return { attachment: { name: path.split('/').at(-1) || 'file', path, bytes: bytes.length, id } };
    } catch (err) {
      if (err instanceof FileTooLargeError) {
        return { tooLarge: `${path} is larger than ${formatBytes(maxBytes)}, the most a step attaches (ssh.maxAttachmentBytes): it stays on ${host.name}; copy it with scp ${host.user}@${host.address}:${path} .` };
      }
      if (err instanceof CancelledError) throw err;
      return { error: `the file to attach: ${errorMessage(err)}` };
    }
  }

  private settle(c: Completion): void {
    this.m.settle(c.action, c.result);
    if (c.result.kind === 'error' && !(c.result.error instanceof CancelledError)) this.log.warn({ stepId: c.action.path, err: errorMessage(c.result.error) }, 'step failed');
  }

  private outputSink(path: string): { push: (stream: 'stdout' | 'stderr', text: string) => void; flush: () => Promise<void> } {
    let buf: { stream: 'stdout' | 'stderr'; text: string } | undefined;
    let timer: NodeJS.Timeout | undefined;
    let sending: Promise<unknown> = Promise.resolve();
    const flush = async () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (buf) {
        const b = buf;
        buf = undefined;
        sending = sending.then(() => this.o.store.output(this.run.id, { type: 'step.output', path, stream: b.stream, text: tailOf(b.text, 8_000) })).catch(() => undefined);
      }
      await sending;
    };
    return {
      push: (stream, text) => {
        if (buf && buf.stream !== stream) void flush();
        buf = buf ? { stream, text: buf.text + text } : { stream, text };
        timer ??= setTimeout(() => void flush(), OUTPUT_FLUSH_MS);
      },
      flush,
    };
  }

  // ── waiting ──────────────────────────────────────────────────────────

  /** Until a step finishes or a signal arrives. */
  private next(): Promise<void> {
    if (this.done.length || this.signalled) return Promise.resolve();
    return new Promise((resolve) => {
      this.wakeLoop = () => {
        this.wakeLoop = undefined;
        resolve();
      };
    });
  }

  private async sleepUntil(at: number): Promise<void> {
    const stop = new AbortController();
    this.wakeLoop = () => stop.abort();
    await sleep(at - Date.now(), AbortSignal.any([stop.signal, this.cancelAbort.signal]));
    this.wakeLoop = undefined;
  }

  /**
   * Takes the run's host locks, or parks it on their waiters. A holder that ended or is gone (its
   * release lost in a crash) is reclaimed first.
   */
  private async takeLocks(): Promise<boolean> {
    const { store } = this.o;
    const run = this.run;
    for (let round = 0; ; round++) {
      const { all: blockers, ahead } = await store.lockBlockers(run.id, run.locks, 'take');
      if (!blockers.length) {
        this.m.locked();
        return true;
      }
      const found = await store.heads(blockers);
      const stale = blockers.filter((id) => !found.has(id) || isTerminal(found.get(id)!.status));
      if (stale.length && round < RECLAIM_ROUNDS) {
        for (const id of stale) {
          this.log.warn({ holder: id }, 'reclaiming the locks of a run that ended or is gone');
          for (const waiter of await store.dropLocks(id, run.locks.map((l) => l.host))) if (waiter !== run.id) await this.o.waker.wake(waiter, `lock.${id}`);
        }
        continue;
      }
      const heldBy: LockHolder[] = blockers.map((id) => {
        const h = found.get(id);
        return { run: id, ...(h ? { procedure: h.procedure, requester: h.requester, status: h.status } : {}), ...(ahead.has(id) ? { ahead: true } : {}) };
      });
      this.m.waitForLocks(blockers, heldBy);
      await this.checkpoint();
      return false;
    }
  }

  private async end(a: Extract<Action, { type: 'end' }>): Promise<RunStatus> {
    this.m.end(a);
    await this.checkpoint();
    this.log.info({ status: this.run.status }, 'run finished');
    return this.run.status;
  }

  // ── checkpoints ──────────────────────────────────────────────────────

  /** Commits, and relays the outbox now: the pass is about to give the run up. */
  private async checkpoint(): Promise<void> {
    await this.commit();
    await this.relayNow();
  }

  /** Commits what changed since the last commit, with its events; commits are serialised. */
  private commit(): Promise<void> {
    const p = this.committing.then(async () => {
      const changes = this.m.tx.take();
      if (changes.empty) return;
      const res = await this.o.store.commit(this.run, changes, this.token);
      if (!res) throw new LeaseLostError(this.run.id);
      if (res.cancel) {
        this.m.cancelled(res.cancel);
        this.cancelled();
      }
      this.observe(changes.events);
      this.relaySoon();
    });
    this.committing = p.catch(() => undefined);
    return p;
  }

  private observe(events: RunEvent[]): void {
    const obs = this.o.observer;
    if (!obs) return;
    for (const e of events) {
      if (e.type === 'step.finished' && isLeaf(e) && e.durationMs !== undefined) obs.stepFinished(e.kind, e.status, e.durationMs);
      else if (e.type === 'gate.decided' && !e.step) obs.gateDecided(e.gate.kind, e.decision, Date.parse(e.gate.decidedAt ?? '') - Date.parse(e.gate.requestedAt));
      else if (e.type === 'run.finished') obs.runFinished(this.run.procedure, e.status);
    }
  }

  private relaySoon(): void {
    this.relayTimer ??= setTimeout(() => {
      this.relayTimer = undefined;
      void this.relayNow().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'relaying the outbox failed; the next pass or the sweeper relays it'));
    }, RELAY_DELAY_MS);
  }

  /** Relays the outbox now (after any relay in flight). */
  private async relayNow(): Promise<void> {
    if (this.relayTimer) {
      clearTimeout(this.relayTimer);
      this.relayTimer = undefined;
    }
    const prev = this.relaying ?? Promise.resolve();
    const p = prev.catch(() => undefined).then(() => this.engine.relay(this.run.id));
    this.relaying = p;
    await p;
  }
}

/** A step's context that already sees the step's own capture (looked up by its id, innermost first). */
function withOwnCapture(ctx: StepContext, id: string, capture: unknown): StepContext {
  return { ...ctx, capture: <T>(stepId: string): T => (stepId === id ? (capture as T) : ctx.capture<T>(stepId)) };
}
