import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Policy } from '../approvals/policy.js';
import { CancelledError, errorMessage, FileTooLargeError, GuardError, HostKeyError, LeaseLostError, RunbookError } from '../errors.js';
import type { ExecResult, SshPool } from '../executors/ssh/pool.js';
import { formatBytes, tailOf } from '../executors/ssh/output.js';
import type { SqlExecutor } from '../executors/sql/index.js';
import { PREVIEW_ROWS } from '../executors/sql/index.js';
import type { Inventory, InventoryHost } from '../inventory.js';
import type { Observer } from '../metrics.js';
import type { Catalog } from '../procedures/catalog.js';
import type { ForEachStep, HostFacts, KeptOutput, KnownFacts, Procedure, Step, StepContext, StepStatus } from '../procedures/dsl.js';
import { ROOT, childScope, makeContext, value, type Scope } from './context.js';
import { bindingHash, buildPlan, expandItems, isLeaf, itemPrefix, renderLeaf, renderTree, type LeafStep } from './render.js';
import type { RunStore } from './store.js';
import { isTerminal, type Gate, type GateKind, type GateStatus, type RenderedStep, type Run, type RunEvent, type RunStatus, type StepState } from './types.js';

export interface EngineOptions {
  store: RunStore;
  catalog: Catalog;
  inventory: Inventory;
  policy: Policy;
  ssh: SshPool;
  sql: SqlExecutor;
  log: Logger;
  /** Names this worker in events and logs. Default `<HOSTNAME or hostname>:<pid>`. */
  workerId?: string;
  /** How long a run's lease lasts without renewal; a dead worker's run is taken over after it. Default 30000 ms. */
  leaseTtlMs?: number;
  /** Multiplies poll intervals and timeouts and lock waits. Default 1; tests shorten waits with it. */
  timeScale?: number;
  /** Called once when a gate opens (the queue schedules its expiry). */
  onGateOpened?: (run: Run, gate: Gate) => Promise<void>;
  /** Signals cancellation of a run to the worker advancing it. */
  cancels?: { watch(runId: string): AbortSignal; unwatch(runId: string): void };
  /** Largest file a step attaches (ssh.maxAttachmentBytes). Default 8 MiB. */
  maxAttachmentBytes?: number;
  /** Told of runs ending, steps ending and gates decided (metrics). */
  observer?: Pick<Observer, 'runFinished' | 'stepFinished' | 'gateDecided'>;
}

/** What a step, a list of steps or a run part came to. */
type Outcome = 'done' | 'blocked' | 'failed' | 'cancelled' | 'rejected' | 'expired';
const WORST: Outcome[] = ['failed', 'cancelled', 'rejected', 'expired', 'blocked', 'done'];
const worst = (a: Outcome, b: Outcome): Outcome => (WORST.indexOf(a) <= WORST.indexOf(b) ? a : b);

/** How often output of a running step is sent as an event: coalesced, so a chatty command is one event per period. */
const OUTPUT_FLUSH_MS = 250;
/** Characters of stdout and of stderr a `keepOutput` step keeps per host (the run document holds them). */
const KEPT_OUTPUT_CHARS = 64 * 1024;
/** Characters of a report step's text kept and sent with its event (and attached as a file in chat). */
const REPORT_CHARS = 512 * 1024;
const LOCK_RETRY_MS = 1_000;

const GATE_STATUS: Record<string, GateStatus> = { approve: 'approved', reject: 'rejected', expire: 'expired', done: 'done', retry: 'retry', skip: 'skip', abort: 'abort' };

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

/** Hosts a run holds: declared by the procedure, or every host argument (write unless the procedure only reads). */
export function locksFor(proc: Procedure, ctx: StepContext): { host: string; mode: 'read' | 'write' }[] {
  if (proc.locks) return proc.locks(ctx);
  const risks = new Set<string>();
  const collect = (steps: Step[]) => steps.forEach((s) => (risks.add(s.risk), s.kind === 'forEach' || s.kind === 'group' ? collect(s.steps) : undefined));
  collect([...proc.steps, ...(proc.finally ?? [])]);
  const mode = [...risks].every((r) => r === 'read') ? 'read' : 'write';
  const hosts = Object.keys(proc.hosts ?? {}).flatMap((arg) => {
    const v = (ctx.args as Record<string, unknown>)[arg];
    return Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)];
  });
  return [...new Set(hosts)].map((host) => ({ host, mode }));
}

/**
 * Advances runs: walks a procedure's steps, checkpoints each one in Redis before and after it runs,
 * stops at gates, honours cancellation, always runs `finally` steps, and resumes after a crash
 * without repeating a completed step. Decides; executors act.
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
   * Runs `runId` until it ends or waits at a gate. Throws LeaseBusyError when another worker holds it.
   * @returns the run's status afterwards
   */
  async advance(runId: string): Promise<RunStatus> {
    const token = `${this.workerId}:${randomUUID()}`;
    await this.opts.store.takeLease(runId, token, this.leaseTtlMs);
    const lost = new AbortController();
    const renew = setInterval(() => {
      this.opts.store.renewLease(runId, token, this.leaseTtlMs).then(
        (ok) => ok || lost.abort(),
        () => undefined,
      );
    }, Math.max(100, Math.floor(this.leaseTtlMs / 3)));
    const cancel = this.opts.cancels?.watch(runId);
    try {
      const run = await this.opts.store.load(runId);
      if (isTerminal(run.status)) return run.status;
      const proc = this.opts.catalog.require(run.procedure);
      return await new Advance(this, run, proc, token, lost.signal, cancel).go();
    } finally {
      clearInterval(renew);
      this.opts.cancels?.unwatch(runId);
      await this.opts.store.dropLease(runId, token).catch(() => undefined);
    }
  }
}

/** One pass of a worker over one run. */
class Advance {
  private readonly o: EngineOptions;
  private readonly log: Logger;
  private saving: Promise<void> = Promise.resolve();
  private queuedSave: Promise<void> | undefined;
  private readonly cancelAbort = new AbortController();
  private finallyFailed = false;
  private readonly started = performance.now();

  constructor(
    private readonly engine: Engine,
    private readonly run: Run,
    private readonly proc: Procedure,
    private readonly token: string,
    private readonly lost: AbortSignal,
    cancelSignal?: AbortSignal,
  ) {
    this.o = engine.opts;
    this.log = engine.opts.log.child({ runId: run.id, procedure: run.procedure });
    // Every running command of a fan-out listens on these signals.
    setMaxListeners(0, this.cancelAbort.signal, lost);
    const relay = () => this.cancelAbort.abort();
    cancelSignal?.addEventListener('abort', relay, { once: true });
    lost.addEventListener('abort', relay, { once: true });
    if (cancelSignal?.aborted || lost.aborted) relay();
  }

  /**
   * Checkpoints the run. Saves are serialised; a save asked for while another waits to start joins
   * it: the waiting one writes the document as it is when it starts, which includes every change
   * made before it was asked for. Fan-out over many hosts then writes once per burst, not per step.
   */
  private save(): Promise<void> {
    if (this.queuedSave) return this.queuedSave;
    const p = this.saving.then(async () => {
      this.queuedSave = undefined;
      if (!(await this.o.store.save(this.run, this.token))) throw new LeaseLostError(this.run.id);
    });
    this.queuedSave = p;
    this.saving = p.catch(() => undefined);
    return p;
  }

  private emit(e: RunEvent): Promise<string> {
    return this.o.store.emit(this.run.id, e);
  }

  private async cancelled(): Promise<boolean> {
    if (this.lost.aborted) throw new LeaseLostError(this.run.id);
    if (!this.run.cancelRequested) {
      const req = await this.o.store.cancelRequest(this.run.id);
      if (req) this.run.cancelRequested = req;
    }
    if (this.run.cancelRequested) this.cancelAbort.abort();
    return !!this.run.cancelRequested;
  }

  async go(): Promise<RunStatus> {
    const run = this.run;
    // `running` at the start of a pass means the last worker stopped mid-run: this one takes over.
    const resumed = run.status === 'running';
    await this.applyDecisions();
    await this.markInterrupted();
    await this.cancelled();

    if (run.phase === 'main') {
      if (!(await this.takeLocks())) {
        run.outcome = 'cancelled';
      } else {
        if (run.status !== 'running') {
          run.status = 'running';
          await this.save();
        }
        await this.emit({ type: 'run.started', worker: this.engine.workerId, resumed });
        const outcome = run.cancelRequested ? 'cancelled' : await this.list(this.proc.steps, ROOT, false, false);
        if (outcome === 'blocked') return this.wait();
        run.outcome = outcome === 'done' ? 'succeeded' : outcome;
      }
      if (run.outcome === 'cancelled') {
        await this.cancelled();
        run.error ??= `cancelled by ${run.cancelRequested?.by ?? 'a person'}`;
        await this.closeOpenGates();
      }
      run.phase = 'finally';
      await this.save();
    }

    if (run.phase === 'finally') {
      if ((await this.list(this.proc.finally ?? [], ROOT, true, false)) === 'blocked') return this.wait();
      if (this.finallyFailed) {
        if (run.outcome === 'succeeded') {
          run.outcome = 'failed';
          run.error = 'a finally step failed';
        } else run.error = `${run.error ?? run.outcome}; a finally step also failed`;
      }
      run.status = run.outcome ?? 'failed';
      run.phase = 'done';
      run.finishedAt = new Date().toISOString();
      await this.save();
      await this.o.store.dropLocks(run.id, run.locks.map((l) => l.host));
      await this.emit({ type: 'run.finished', status: run.status, ...(run.error ? { error: run.error } : {}), durationMs: Date.parse(run.finishedAt) - Date.parse(run.createdAt) });
      this.o.observer?.runFinished(run.procedure, run.status);
      this.log.info({ status: run.status, ms: Math.round(performance.now() - this.started) }, 'run finished');
    }
    return run.status;
  }

  private async wait(): Promise<RunStatus> {
    this.run.status = 'waiting';
    await this.save();
    const open = Object.values(this.run.gates).filter((g) => g.status === 'open').map((g) => g.id);
    await this.emit({ type: 'run.waiting', gates: open });
    return 'waiting';
  }

  /** Decisions recorded since the last pass become gate outcomes; open approvals past their expiry expire. */
  private async applyDecisions(): Promise<void> {
    const decisions = await this.o.store.decisions(this.run.id);
    for (const d of Object.values(decisions)) {
      const g = this.run.gates[d.gateId];
      if (!g || g.status !== 'open') continue;
      g.status = GATE_STATUS[d.decision] ?? 'open';
      g.decidedBy = d.by;
      g.decidedAt = d.at;
      if (d.reason) g.reason = d.reason;
      if (d.decision === 'reject') this.run.error = `rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}`;
      if (d.decision === 'expire') this.run.error = `approval of "${g.steps[0]?.title ?? g.stepPath}" expired at ${g.expiresAt}`;
      await this.save();
      await this.emit({ type: 'gate.decided', gate: g, decision: d.decision, by: d.by, ...(d.reason ? { reason: d.reason } : {}), ...(d.via ? { via: d.via } : {}) });
      this.o.observer?.gateDecided(g.kind, d.decision, Date.parse(d.at) - Date.parse(g.requestedAt));
    }
  }

  /** Steps left `running` by a worker that died are interrupted: we cannot know whether they finished. */
  private async markInterrupted(): Promise<void> {
    for (const s of Object.values(this.run.steps)) {
      if (s.status !== 'running' || s.kind === 'forEach' || s.kind === 'group') continue;
      s.status = 'interrupted';
      const def = this.findStep(s.path);
      const idempotent = def && isLeaf(def) ? (def.idempotent ?? def.risk === 'read') : false;
      await this.save();
      await this.emit({ type: 'step.interrupted', path: s.path, title: s.title, idempotent });
    }
  }

  private findStep(path: string): Step | undefined {
    const parts = path.replace(/\[[^\]]*\]/g, '').split('.');
    let list: Step[] = [...this.proc.steps, ...(this.proc.finally ?? [])];
    let found: Step | undefined;
    for (const id of parts) {
      found = list.find((s) => s.id === id);
      if (!found) return undefined;
      list = found.kind === 'forEach' || found.kind === 'group' ? found.steps : [];
    }
    return found;
  }

  private async closeOpenGates(): Promise<void> {
    for (const g of Object.values(this.run.gates)) {
      if (g.status !== 'open') continue;
      g.status = 'void';
      g.reason = 'the run was cancelled';
      await this.emit({ type: 'gate.decided', gate: g, decision: 'abort', by: this.run.cancelRequested?.by ?? 'system', reason: 'the run was cancelled' });
    }
    for (const s of Object.values(this.run.steps)) if (s.status === 'waiting' || s.status === 'interrupted') s.status = 'cancelled';
  }

  private async takeLocks(): Promise<boolean> {
    const wanted = locksFor(this.proc, makeContext(this.run, this.o.inventory, ROOT));
    let reported = '';
    for (;;) {
      const blockers = await this.o.store.takeLocks(this.run.id, wanted);
      if (blockers.length === 0) {
        if (JSON.stringify(this.run.locks) !== JSON.stringify(wanted)) {
          this.run.locks = wanted;
          await this.save();
        }
        return true;
      }
      if (blockers.join() !== reported) {
        reported = blockers.join();
        await this.emit({ type: 'lock.waiting', hosts: wanted.map((l) => l.host), heldBy: blockers });
      }
      if (await this.cancelled()) return false;
      await sleep(LOCK_RETRY_MS * this.engine.timeScale, this.cancelAbort.signal);
    }
  }

  private ctx(scope: Scope): StepContext {
    return makeContext(this.run, this.o.inventory, scope);
  }

  private async list(steps: Step[], scope: Scope, isFinally: boolean, covered: boolean): Promise<Outcome> {
    let result: Outcome = 'done';
    for (const s of steps) {
      const o = await this.step(s, scope, `${scope.prefix}${s.id}`, isFinally, covered);
      if (isFinally) {
        if (o === 'failed') this.finallyFailed = true;
        if (o === 'blocked') result = 'blocked';
        continue;
      }
      if (o !== 'done') return o;
    }
    return result;
  }

  private record(path: string, def: Step, title: string, patch: Partial<StepState>): StepState {
    const prev = this.run.steps[path];
    const st: StepState = { path, title, kind: def.kind, risk: def.risk, status: 'pending', attempts: 0, ...prev, ...patch };
    this.run.steps[path] = st;
    return st;
  }

  private async finish(st: StepState, status: StepStatus, extra: Partial<StepState> = {}, eventExtra: { report?: string } = {}): Promise<void> {
    Object.assign(st, extra, { status, finishedAt: new Date().toISOString() });
    if (st.startedAt) st.durationMs = Date.parse(st.finishedAt!) - Date.parse(st.startedAt);
    await this.save();
    const e: RunEvent = { type: 'step.finished', path: st.path, title: st.title, status, kind: st.kind, risk: st.risk };
    for (const k of ['host', 'exitCode', 'signal', 'rowsAffected', 'durationMs', 'outputTail', 'outputTruncated', 'error', 'reason', 'attachment'] as const) {
      if (st[k] !== undefined) (e as Record<string, unknown>)[k] = st[k];
    }
    await this.emit({ ...e, ...eventExtra });
    if (st.kind !== 'forEach' && st.kind !== 'group' && st.durationMs !== undefined) this.o.observer?.stepFinished(st.kind, status, st.durationMs);
  }

  private async step(s: Step, scope: Scope, path: string, isFinally: boolean, covered: boolean): Promise<Outcome> {
    const prev = this.run.steps[path];
    if (prev?.status === 'succeeded' || prev?.status === 'skipped') return 'done';
    if (prev?.status === 'failed') return 'failed';
    if (prev?.status === 'cancelled') return 'cancelled';
    if (!isFinally && (await this.cancelled())) return 'cancelled';
    const ctx = this.ctx(scope);
    let title: string;
    try {
      title = value(s.title, ctx);
      if (s.when && !s.when(ctx)) {
        await this.finish(this.record(path, s, title, {}), 'skipped', { reason: 'condition not met' });
        return 'done';
      }
      const refusal = s.guard?.(ctx);
      if (refusal) throw new GuardError(refusal, { runId: this.run.id, stepId: path });
    } catch (err) {
      const st = this.record(path, s, typeof s.title === 'string' ? s.title : s.id, {});
      await this.finish(st, 'failed', { error: err instanceof GuardError ? `refused: ${err.message}` : `cannot prepare the step: ${errorMessage(err)}` });
      this.run.error ??= st.error;
      return 'failed';
    }

    if (!isFinally && !covered && this.o.policy.isGated(this.run.procedure, s.risk)) {
      let rendered: RenderedStep[];
      try {
        if (s.kind === 'forEach' && !this.run.expansions[path]) this.run.expansions[path] = expandItems(s, ctx);
        rendered = renderTree(s, this.run, this.o.inventory, scope, path);
      } catch (err) {
        const st = this.record(path, s, title, {});
        await this.finish(st, 'failed', { error: `cannot prepare the step: ${errorMessage(err)}` });
        return 'failed';
      }
      const g = await this.gate('approval', path, s, title, rendered);
      if (g !== 'pass') return g === 'rejected' || g === 'expired' || g === 'blocked' ? g : 'failed';
      covered = true;
    }

    if (s.kind === 'group') return this.group(s, scope, path, title, isFinally, covered);
    if (s.kind === 'forEach') return this.forEach(s, scope, path, title, isFinally, covered);
    return this.leaf(s, ctx, path, title, isFinally);
  }

  private async group(s: Extract<Step, { kind: 'group' }>, scope: Scope, path: string, title: string, isFinally: boolean, covered: boolean): Promise<Outcome> {
    const st = this.record(path, s, title, {});
    if (st.status === 'pending') {
      Object.assign(st, { status: 'running', startedAt: new Date().toISOString(), attempts: 1 });
      await this.save();
      await this.emit({ type: 'step.started', path, title, kind: s.kind, risk: s.risk, attempt: 1 });
    }
    const o = await this.list(s.steps, childScope(scope, `${path}.`), isFinally, covered);
    if (o === 'blocked') return o;
    await this.finish(st, o === 'done' ? 'succeeded' : o === 'cancelled' ? 'cancelled' : 'failed');
    return o;
  }

  private async forEach(s: ForEachStep, scope: Scope, path: string, title: string, isFinally: boolean, covered: boolean): Promise<Outcome> {
    let items = this.run.expansions[path];
    if (!items) {
      try {
        items = expandItems(s, this.ctx(scope));
      } catch (err) {
        await this.finish(this.record(path, s, title, {}), 'failed', { error: `cannot list the items: ${errorMessage(err)}` });
        return 'failed';
      }
      this.run.expansions[path] = items;
    }
    const total = items.length;
    const st = this.record(path, s, title, {});
    const countDone = () => {
      let done = 0;
      let failed = 0;
      for (const it of items!) {
        const leaves = s.steps.map((c) => this.run.steps[`${itemPrefix(path, it.key)}${c.id}`]?.status);
        if (leaves.some((x) => x === 'failed' || x === 'cancelled')) failed++;
        else if (leaves.every((x) => x === 'succeeded' || x === 'skipped')) done++;
      }
      return { done, failed, total };
    };
    if (st.status === 'pending') {
      Object.assign(st, { status: 'running', startedAt: new Date().toISOString(), attempts: 1, progress: countDone() });
      await this.save();
      await this.emit({ type: 'step.started', path, title, kind: s.kind, risk: s.risk, attempt: 1 });
    }
    let next = 0;
    let stop = false;
    let said = '';
    let outcome = 'done' as Outcome;
    const lane = async () => {
      while (!stop && next < items!.length) {
        const it = items![next++]!;
        const o = await this.list(s.steps, childScope(scope, itemPrefix(path, it.key), it.item), isFinally, covered);
        outcome = worst(outcome, o);
        if (o === 'cancelled' || (o === 'failed' && !isFinally && !s.continueOnError)) stop = true;
        if (o === 'rejected' || o === 'expired') stop = true;
        const p = countDone();
        st.progress = p;
        const message = `${title}: ${p.done}/${p.total} done${p.failed ? ` · ${p.failed} failed` : ''}`;
        if (message !== said) {
          said = message;
          await this.emit({ type: 'step.progress', path, message, ...p });
        }
      }
    };
    const concurrency = value(s.concurrency ?? 1, this.ctx(scope));
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, total)) }, lane));
    if (outcome === 'blocked') {
      st.status = 'waiting';
      await this.save();
      return 'blocked';
    }
    if (outcome === 'done' && isFinally) outcome = countDone().failed ? 'failed' : 'done';
    await this.finish(st, outcome === 'done' ? 'succeeded' : outcome === 'cancelled' ? 'cancelled' : 'failed', { progress: countDone() });
    return outcome;
  }

  /**
   * Opens or consults a gate. An approval is bound to the hash of the rendered steps: if what would run
   * changed since it was approved, the approval is void and a new gate opens.
   */
  private async gate(kind: GateKind, path: string, s: Step, title: string, rendered: RenderedStep[]): Promise<'pass' | Outcome | 'retry' | 'skip' | 'abort'> {
    const hash = bindingHash(rendered);
    const st = this.run.steps[path];
    const id = kind === 'approval' ? `${path}@${hash.slice(0, 12)}` : kind === 'manual' ? `${path}@manual` : `${path}@interrupted-${st?.attempts ?? 0}`;
    let g = this.run.gates[id];
    if (!g) {
      for (const other of Object.values(this.run.gates)) {
        if (other.kind === kind && other.stepPath === path && (other.status === 'open' || other.status === 'approved')) {
          const was = other.status;
          other.status = 'void';
          other.reason = 'what this step would run changed; a new decision is needed';
          await this.emit({ type: 'step.progress', path, message: `${was === 'approved' ? `The approval by ${other.decidedBy}` : 'The open approval request'} no longer counts: what "${title}" would run has changed since. A new approval is requested.` });
        }
      }
      const now = Date.now();
      g = {
        id,
        kind,
        stepPath: path,
        risk: s.risk,
        hash,
        steps: await this.withPreviews(rendered),
        requestedAt: new Date(now).toISOString(),
        ...(kind === 'approval' ? { expiresAt: new Date(now + this.o.policy.expiryMs).toISOString() } : {}),
        deciders: this.o.policy.deciders(kind, this.run),
        status: 'open',
      };
      this.run.gates[id] = g;
      this.record(path, s, title, { status: 'waiting' });
      await this.save();
      await this.emit({ type: 'gate.opened', gate: g });
      await this.o.onGateOpened?.(this.run, g);
      return 'blocked';
    }
    if (g.status === 'open' && g.expiresAt && Date.now() >= Date.parse(g.expiresAt)) {
      g.status = 'expired';
      g.decidedBy = 'system';
      g.decidedAt = new Date().toISOString();
      this.run.error = `approval of "${title}" expired at ${g.expiresAt}`;
      await this.save();
      await this.emit({ type: 'gate.decided', gate: g, decision: 'expire', by: 'system' });
    }
    switch (g.status) {
      case 'open':
      case 'void':
        return 'blocked';
      case 'approved':
        return 'pass';
      case 'rejected':
      case 'expired': {
        const stx = this.record(path, s, title, {});
        if (stx.status === 'waiting') await this.finish(stx, 'cancelled', { reason: g.status === 'rejected' ? `rejected by ${g.decidedBy}${g.reason ? `: ${g.reason}` : ''}` : 'approval expired' });
        return g.status;
      }
      case 'done':
        return 'done';
      default:
        return g.status;
    }
  }

  /** Adds the preview rows of SQL steps (what an UPDATE will touch) to what an approver sees. */
  private async withPreviews(rendered: RenderedStep[]): Promise<RenderedStep[]> {
    return Promise.all(
      rendered.map(async (r) => {
        const def = this.findStep(r.path);
        if (def?.kind !== 'sql' || !def.preview || !r.database) return r;
        const scopeCtx = this.ctxForPath(r.path);
        try {
          const res = await this.o.sql.query(r.database, value(def.preview.statement, scopeCtx), def.preview.params ? value(def.preview.params, scopeCtx) : r.params ?? []);
          return { ...r, preview: { columns: res.columns, rows: res.rows.slice(0, PREVIEW_ROWS).map((row) => res.columns.map((c) => row[c])), total: res.rows.length } };
        } catch (err) {
          return { ...r, preview: { columns: ['error'], rows: [[`preview failed: ${errorMessage(err)}`]], total: 0 } };
        }
      }),
    );
  }

  /** The context a step at `path` sees (its forEach items' scopes rebuilt from the stored expansions). */
  private ctxForPath(path: string): StepContext {
    let scope: Scope = ROOT;
    const re = /([a-z0-9-]+)(?:\[([^\]]+)\])?\.?/g;
    let consumed = '';
    for (const m of path.matchAll(re)) {
      const [whole, id, key] = m;
      if (key !== undefined) {
        const fePath = `${consumed}${id}`;
        const it = this.run.expansions[fePath]?.find((x) => x.key === key);
        scope = childScope(scope, itemPrefix(fePath, key), it?.item);
      } else if (whole.endsWith('.')) {
        scope = childScope(scope, `${consumed}${id}.`);
      }
      consumed += whole;
    }
    return this.ctx(scope);
  }

  private async leaf(s: LeafStep, ctx: StepContext, path: string, title: string, isFinally: boolean): Promise<Outcome> {
    let st = this.run.steps[path];
    if (st?.status === 'interrupted' && !(s.idempotent ?? s.risk === 'read')) {
      let rendered: RenderedStep;
      try {
        rendered = renderLeaf(s, ctx, path);
      } catch (err) {
        await this.finish(st, 'failed', { error: `cannot prepare the step: ${errorMessage(err)}` });
        return 'failed';
      }
      const d = await this.gate('interrupted', path, s, title, [rendered]);
      if (d === 'blocked') {
        st.status = 'interrupted';
        await this.save();
        return 'blocked';
      }
      const g = Object.values(this.run.gates).find((x) => x.kind === 'interrupted' && x.stepPath === path && x.status === d);
      if (d === 'skip') {
        await this.finish(st, 'skipped', { reason: `interrupted, then skipped by ${g?.decidedBy ?? 'a person'}` });
        return 'done';
      }
      if (d === 'abort') {
        await this.finish(st, 'failed', { error: `interrupted, then aborted by ${g?.decidedBy ?? 'a person'}` });
        this.run.error ??= `aborted by ${g?.decidedBy ?? 'a person'} after "${title}" was interrupted`;
        return 'failed';
      }
    }
    if (s.kind === 'manual') return this.manual(s, ctx, path, title);

    let rendered: RenderedStep;
    try {
      rendered = renderLeaf(s, ctx, path);
    } catch (err) {
      await this.finish(this.record(path, s, title, {}), 'failed', { error: `cannot prepare the step: ${errorMessage(err)}` });
      this.run.error ??= `step "${title}" could not be prepared`;
      return 'failed';
    }
    st = this.record(path, s, title, {
      status: 'running',
      attempts: (this.run.steps[path]?.attempts ?? 0) + 1,
      startedAt: new Date().toISOString(),
      ...(rendered.host ? { host: rendered.host } : {}),
      ...(rendered.command ? { command: rendered.command } : {}),
      ...(rendered.database ? { database: rendered.database, statement: rendered.statement } : {}),
    });
    delete st.finishedAt;
    delete st.error;
    // Checkpoint before acting: a crash from here on leaves the step `running`, i.e. interrupted.
    await this.save();
    await this.emit({
      type: 'step.started',
      path,
      title,
      kind: s.kind,
      risk: s.risk,
      attempt: st.attempts,
      ...(rendered.host ? { host: rendered.host } : {}),
      ...(rendered.command ? { command: rendered.command } : {}),
      ...(rendered.stdin !== undefined ? { stdin: rendered.stdin } : {}),
      ...(rendered.reference !== undefined ? { reference: rendered.reference } : {}),
      ...(rendered.variant !== undefined ? { variant: rendered.variant } : {}),
      ...(rendered.database ? { database: rendered.database, statement: rendered.statement } : {}),
    });
    const log = this.log.child({ stepId: path });
    log.debug({ host: rendered.host, database: rendered.database }, 'step started');
    const signal = isFinally ? this.lost : this.cancelAbort.signal;
    try {
      if (s.kind === 'sql') return await this.sqlStep(s, st, rendered);
      if (s.kind === 'report') return await this.reportStep(s, ctx, st);
      return await this.sshStep(s, ctx, st, signal);
    } catch (err) {
      if (err instanceof LeaseLostError) throw err;
      const result = (err as { result?: ExecResult }).result;
      if (s.kind === 'ssh' && s.keepOutput) this.keep(st.path, result, errorMessage(err));
      const extra: Partial<StepState> = { error: errorMessage(err) };
      if (result) Object.assign(extra, { exitCode: result.exitCode, outputTail: result.tail, ...(result.signal ? { signal: result.signal } : {}) });
      if (err instanceof CancelledError) {
        await this.finish(st, 'cancelled', extra);
        return 'cancelled';
      }
      await this.finish(st, 'failed', extra);
      this.run.error ??= `step "${title}" failed: ${errorMessage(err)}`;
      log.warn({ err: errorMessage(err), code: err instanceof RunbookError ? err.code : undefined }, 'step failed');
      return 'failed';
    }
  }

  private async manual(s: Extract<LeafStep, { kind: 'manual' }>, ctx: StepContext, path: string, title: string): Promise<Outcome> {
    const rendered = renderLeaf(s, ctx, path);
    const d = await this.gate('manual', path, s, title, [rendered]);
    if (d === 'blocked') return 'blocked';
    const g = this.run.gates[`${path}@manual`];
    const st = this.record(path, s, title, {});
    if (d === 'abort') {
      await this.finish(st, 'failed', { error: `aborted by ${g?.decidedBy ?? 'a person'}` });
      this.run.error ??= `"${title}" was aborted by ${g?.decidedBy ?? 'a person'}`;
      return 'failed';
    }
    await this.finish(st, 'succeeded', { reason: `done, confirmed by ${g?.decidedBy ?? 'a person'}` });
    return 'done';
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
        sending = sending.then(() => this.emit({ type: 'step.output', path, stream: b.stream, text: tailOf(b.text, 8_000) })).catch(() => undefined);
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

  private async sshStep(s: Extract<LeafStep, { kind: 'ssh' | 'poll' }>, ctx: StepContext, st: StepState, signal: AbortSignal): Promise<Outcome> {
    const host = ctx.host(value(s.host, ctx));
    const command = value(s.command, ctx);
    const stdin = s.stdin === undefined ? undefined : value(s.stdin, ctx);
    const out = this.outputSink(st.path);
    const timeoutMs = s.kind === 'ssh' && s.timeoutMs !== undefined ? value(s.timeoutMs, ctx) : undefined;
    const exec = () => this.o.ssh.exec(host, command.text, { ...(timeoutMs ? { timeoutMs } : {}), ...(stdin !== undefined ? { stdin } : {}), signal, onOutput: out.push, secrets: command.secrets });
    const okCodes = (s.kind === 'ssh' ? s.okExitCodes : undefined) ?? [0];

    if (s.kind === 'ssh') {
      const res = await exec().finally(out.flush);
      const ok = res.exitCode !== null && okCodes.includes(res.exitCode);
      if (s.keepOutput) this.keep(st.path, res);
      const extra: Partial<StepState> = { exitCode: res.exitCode, outputTail: res.tail, outputTruncated: res.truncated, ...(res.signal ? { signal: res.signal } : {}) };
      if (!ok) {
        const why = res.exitCode === null ? `killed by signal ${res.signal ?? '?'}` : `exit code ${res.exitCode}`;
        extra.error = `${why}${res.stderr.trim() ? `: ${res.stderr.trim().split('\n').slice(-1)[0]}` : ''}`;
        await this.finish(st, 'failed', extra);
        this.run.error ??= `step "${st.title}" failed on ${host.name} (${extra.error})`;
        return 'failed';
      }
      if (s.capture) {
        try {
          this.run.captures[st.path] = s.capture.parse(res.stdout);
          if (s.detects) await this.learnFacts(host.name, this.run.captures[st.path] as HostFacts);
        } catch (err) {
          extra.error = `the output could not be read as ${s.capture.name}: ${errorMessage(err)}`;
          await this.finish(st, 'failed', extra);
          this.run.error ??= `step "${st.title}": ${extra.error}`;
          return 'failed';
        }
      }
      if (s.attach !== undefined) {
        const why = await this.attach(host, value(s.attach, ctx), st, extra, signal);
        if (why) {
          await this.finish(st, 'failed', { ...extra, error: why });
          this.run.error ??= `step "${st.title}" failed on ${host.name} (${why})`;
          return 'failed';
        }
      }
      await this.finish(st, 'succeeded', extra);
      return 'done';
    }

    const deadline = Date.now() + s.timeoutMs * this.engine.timeScale;
    for (let attempt = 1; ; attempt++) {
      let res: Awaited<ReturnType<typeof exec>>;
      try {
        res = await exec().finally(out.flush);
      } catch (err) {
        if (!s.untilReachable || err instanceof CancelledError || err instanceof HostKeyError) throw err;
        res = { exitCode: null, stdout: '', stderr: errorMessage(err), tail: errorMessage(err), truncated: false, durationMs: 0 };
      }
      let met = false;
      let readError: string | undefined;
      if (res.exitCode === 0) {
        try {
          const v = s.capture.parse(res.stdout);
          this.run.captures[st.path] = v;
          met = s.until(v, ctx);
        } catch (err) {
          readError = errorMessage(err);
        }
      }
      const extra: Partial<StepState> = { exitCode: res.exitCode, outputTail: res.tail };
      if (met) {
        await this.finish(st, 'succeeded', { ...extra, reason: `condition met after ${attempt} check${attempt > 1 ? 's' : ''}` });
        return 'done';
      }
      if ((res.exitCode !== 0 || readError) && !s.untilReachable) {
        extra.error = readError ? `the output could not be read as ${s.capture.name}: ${readError}` : `check failed with exit code ${res.exitCode}${res.stderr.trim() ? `: ${res.stderr.trim().split('\n').slice(-1)[0]}` : ''}`;
        await this.finish(st, 'failed', extra);
        this.run.error ??= `step "${st.title}" failed on ${host.name} (${extra.error})`;
        return 'failed';
      }
      if (Date.now() + s.intervalMs * this.engine.timeScale > deadline) {
        await this.finish(st, 'failed', { ...extra, error: `condition not met after ${attempt} checks in ${Math.round(s.timeoutMs / 1000)} s` });
        this.run.error ??= `step "${st.title}" timed out`;
        return 'failed';
      }
      await this.emit({ type: 'step.progress', path: st.path, message: s.waiting ? value(s.waiting, ctx) : `waiting ${Math.round(s.intervalMs / 1000)} s before check ${attempt + 1}` });
      await sleep(s.intervalMs * this.engine.timeScale, signal);
      if (signal.aborted) {
        if (this.lost.aborted) throw new LeaseLostError(this.run.id);
        await this.finish(st, 'cancelled', { ...extra, error: 'the run was cancelled while waiting' });
        return 'cancelled';
      }
    }
  }

  /**
   * Fetches the file a step attaches and keeps it with the run. A file over the configured bound
   * stays on the host and the step says where (it still succeeded: the command did its work).
   * @returns why the step fails, when the file cannot be read
   */
  private async attach(host: InventoryHost, path: string, st: StepState, extra: Partial<StepState>, signal: AbortSignal): Promise<string | undefined> {
    const maxBytes = this.o.maxAttachmentBytes ?? 8 * 1024 * 1024;
    try {
      const bytes = await this.o.ssh.fetch(host, path, { maxBytes, signal });
      const id = await this.o.store.putFile(this.run.id, st.path, bytes);
      extra.attachment = { name: path.split('/').at(-1) || 'file', path, bytes: bytes.length, id };
      return undefined;
    } catch (err) {
      if (err instanceof FileTooLargeError) {
        extra.reason = `${path} is larger than ${formatBytes(maxBytes)}, the most a step attaches (ssh.maxAttachmentBytes): it stays on ${host.name}; copy it with scp ${host.user}@${host.address}:${path} .`;
        return undefined;
      }
      if (err instanceof CancelledError || err instanceof LeaseLostError) throw err;
      return `the file to attach: ${errorMessage(err)}`;
    }
  }

  /**
   * A host's facts, detected by this run: later steps read them, the cache gives them to the next
   * plans, and this run's plan is drawn again so it names the variants that will run.
   */
  private async learnFacts(host: string, facts: HostFacts): Promise<void> {
    const known: KnownFacts = { ...facts, detectedAt: new Date().toISOString(), source: 'run' };
    this.run.facts = { ...this.run.facts, [host]: known };
    await this.o.store.saveFacts(host, known);
    this.run.plan = buildPlan(this.proc, this.run.args, this.o.inventory, (risk) => this.o.policy.isGated(this.run.procedure, risk), this.run.facts);
  }

  /** `keepOutput`: the step's result as its capture, bounded, whatever the outcome. */
  private keep(path: string, res: ExecResult | undefined, error?: string): void {
    const cut = (t: string) => (t.length > KEPT_OUTPUT_CHARS ? t.slice(-KEPT_OUTPUT_CHARS) : t);
    const kept: KeptOutput = {
      exitCode: res?.exitCode ?? null,
      ...(res?.signal ? { signal: res.signal } : {}),
      stdout: cut(res?.stdout ?? ''),
      stderr: cut(res?.stderr ?? ''),
      ...(error ? { error } : {}),
      truncated: !!res?.truncated || (res?.stdout.length ?? 0) > KEPT_OUTPUT_CHARS || (res?.stderr.length ?? 0) > KEPT_OUTPUT_CHARS,
    };
    this.run.captures[path] = kept;
  }

  private async reportStep(s: Extract<LeafStep, { kind: 'report' }>, ctx: StepContext, st: StepState): Promise<Outcome> {
    const text = s.text(ctx);
    const report = text.length > REPORT_CHARS ? `${text.slice(0, REPORT_CHARS)}\n… (report cut at ${REPORT_CHARS} characters)` : text;
    this.run.captures[st.path] = report;
    await this.finish(st, 'succeeded', { outputTail: tailOf(report), outputTruncated: report.length > tailOf(report).length }, { report });
    return 'done';
  }

  private async sqlStep(s: Extract<LeafStep, { kind: 'sql' }>, st: StepState, rendered: RenderedStep): Promise<Outcome> {
    const res = await this.o.sql.execute(rendered.database!, { statement: rendered.statement!, params: rendered.params ?? [], ...(rendered.expect ? { expect: rendered.expect } : {}) });
    if (s.capture) this.run.captures[st.path] = res.rows;
    const tail = res.rows.length ? tailOf(formatRows(res.columns, res.rows)) : `${res.rowsAffected} row${res.rowsAffected === 1 ? '' : 's'} affected`;
    await this.finish(st, 'succeeded', { rowsAffected: res.rowsAffected, outputTail: tail });
    return 'done';
  }
}

/** Rows as the mysql client prints them with \G-less output: a tab-separated header and lines. */
export function formatRows(columns: string[], rows: Record<string, unknown>[]): string {
  return [columns.join('\t'), ...rows.map((r) => columns.map((c) => (r[c] === null ? 'NULL' : String(r[c]))).join('\t'))].join('\n');
}
