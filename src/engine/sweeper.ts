/**
 * Nothing stranded: every run that has not ended is either held by a live worker (its lease), queued
 * (a job waits for it), or waiting for something named that will wake it (a decision, a lock, a
 * timer). The sweeper runs every lease period on one worker (a BullMQ job scheduler) and mends what
 * a crash or a lost job left: it relays outboxes nobody relayed (so an ended run frees its hosts and
 * its final messages reach chat), and queues a run that nothing would advance: its job was lost or
 * given up by the queue, a decision or a cancellation arrived but its job did not, its timer or its
 * approval's expiry passed, or the lock it waits for is free or held by a run that ended or is gone.
 */
import type { Logger } from 'pino';
import { LeaseBusyError, errorMessage } from '../errors.js';
import type { Engine, Waker } from './engine.js';
import type { RunStore } from './store.js';
import { isTerminal, type Run } from './types.js';

export interface SweeperOptions {
  store: RunStore;
  engine: Pick<Engine, 'flush'>;
  waker: Waker;
  /** Runs with a job waiting for a worker or being worked on (`now`), and runs with a delayed job (`later`). */
  queuedRuns(): Promise<{ now: Set<string>; later: Set<string> }>;
  log: Logger;
  /** How often it sweeps: names the jobs it queues, one per run per sweep at most. */
  everyMs: number;
}

/** What one sweep found and did. */
export interface SweepReport {
  active: number;
  flushed: string[];
  woken: { run: string; why: string }[];
  forgotten: string[];
}

export class Sweeper {
  constructor(private readonly o: SweeperOptions) {}

  async sweep(now = Date.now()): Promise<SweepReport> {
    const { store } = this.o;
    const report: SweepReport = { active: 0, flushed: [], woken: [], forgotten: [] };
    const ids = await store.active();
    report.active = ids.length;
    if (!ids.length) return report;
    const [heads, leased, queued, outboxes] = await Promise.all([store.heads(ids), store.leased(ids), this.o.queuedRuns(), store.outboxSizes(ids)]);
    const waiting: string[] = [];
    for (const id of ids) {
      const head = heads.get(id);
      if (!head) {
        await store.deactivate(id);
        report.forgotten.push(id);
        continue;
      }
      if (leased.has(id)) continue;
      if (outboxes.get(id)) {
        try {
          await this.o.engine.flush(id);
          report.flushed.push(id);
        } catch (err) {
          if (!(err instanceof LeaseBusyError)) this.o.log.warn({ runId: id, err: errorMessage(err) }, 'sweeper: relaying the outbox failed');
          continue;
        }
      }
      if (isTerminal(head.status)) {
        // Ended before this version kept effects in the outbox, or its last relay was lost midway.
        await store.dropLocks(id, head.locks.map((l) => l.host));
        await store.deactivate(id);
        continue;
      }
      if (queued.now.has(id)) continue;
      if (head.status === 'waiting') waiting.push(id);
      else if (!queued.later.has(id)) await this.wake(id, `nothing advances it (${head.status}, no job)`, now, report);
    }
    // A waiting run's delayed job (an expiry, a timer) may be far off: what arrived meanwhile wakes it now.
    if (waiting.length) await this.checkWaiting(waiting, now, report);
    if (report.woken.length || report.flushed.length || report.forgotten.length) this.o.log.warn(report, 'sweeper mended runs');
    return report;
  }

  private async wake(runId: string, why: string, now: number, report: SweepReport): Promise<void> {
    await this.o.waker.wake(runId, `sweep.${Math.floor(now / this.o.everyMs)}`);
    report.woken.push({ run: runId, why });
  }

  /** Waiting runs: is what they wait for still to come? */
  private async checkWaiting(ids: string[], now: number, report: SweepReport): Promise<void> {
    const { store } = this.o;
    const runs = await store.many(ids);
    const news = await store.news(ids);
    for (const run of runs) {
      const why = await this.stale(run, news.get(run.id) ?? [], now);
      if (why) await this.wake(run.id, why, now, report);
    }
  }

  private async stale(run: Run, news: string[], now: number): Promise<string | undefined> {
    const w = run.waitingFor;
    if (!w) return 'waiting for nothing named';
    if (news.includes('cancel')) return 'a cancellation arrived';
    for (const id of w.gates ?? []) {
      const g = run.gates[id];
      if (!g || g.status !== 'open') return `gate ${id} is no longer open`;
      if (news.some((n) => n === id || n.startsWith(`${id}#`))) return `a decision on ${id} arrived`;
      if (g.expiresAt && Date.parse(g.expiresAt) <= now) return `gate ${id} expired`;
    }
    if (w.timer && Date.parse(w.timer.at) <= now) return 'its timer is due';
    if (w.locks) {
      // As the run itself would find them (holders, and a writer next in line), changing nothing.
      const { all: blockers } = await this.o.store.lockBlockers(run.id, run.locks);
      if (!blockers.length) return `${w.locks.hosts.join(', ')} free`;
      const heads = await this.o.store.heads(blockers);
      const gone = blockers.filter((id) => !heads.has(id) || isTerminal(heads.get(id)!.status));
      if (gone.length) return `held by ${gone.join(', ')}, which ended or is gone`;
    }
    return undefined;
  }
}
