import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isTerminal } from './engine/types.js';
import type { Runtime } from './runtime.js';

/** What the engine, the decisions and the adapters report; the core never imports prom-client. */
export interface Observer {
  runFinished(procedure: string, status: string): void;
  stepFinished(kind: string, status: string, ms: number): void;
  gateDecided(kind: string, decision: string, ms: number): void;
  chatCall(platform: string, method: string, outcome: 'ok' | 'rate_limited' | 'error', count?: number): void;
}

export const noObserver: Observer = { runFinished() {}, stepFinished() {}, gateDecided() {}, chatCall() {} };

/** Runs looked at for the `gates waiting` gauge at each scrape. */
const SCAN_RUNS = 500;

/**
 * Prometheus metrics of this process (`GET /metrics`): counters and histograms of what happened
 * here, and gauges read at scrape time from Redis (queue depth, gates waiting) and the SSH pool.
 */
export class Metrics implements Observer {
  readonly registry = new Registry();
  private readonly runs = new Counter({ name: 'runbook_runs_total', help: 'Runs that ended, by procedure and status', labelNames: ['procedure', 'status'], registers: [this.registry] });
  private readonly steps = new Histogram({ name: 'runbook_step_duration_seconds', help: 'Step durations by kind and status', labelNames: ['kind', 'status'], buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600], registers: [this.registry] });
  private readonly gates = new Histogram({ name: 'runbook_gate_decision_seconds', help: 'Time from a gate opening to its decision (approval latency), by kind and decision', labelNames: ['kind', 'decision'], buckets: [1, 10, 30, 60, 120, 300, 600, 900, 1800, 3600], registers: [this.registry] });
  private readonly chat = new Counter({ name: 'runbook_chat_api_calls_total', help: 'Chat platform API calls, by platform, method and outcome (rate_limited: a 429)', labelNames: ['platform', 'method', 'outcome'], registers: [this.registry] });

  constructor(rt: Pick<Runtime, 'queue' | 'ssh' | 'store'>) {
    // prom-client's own names (process_*, nodejs_*), as every Node.js dashboard and alert expects them.
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'runbook_queue_jobs',
      help: 'Jobs in the runs queue, by state',
      labelNames: ['state'],
      registers: [this.registry],
      async collect() {
        const depth = await rt.queue.depth();
        for (const [state, n] of Object.entries(depth)) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'runbook_gates_waiting',
      help: 'Open gates (approvals, manual steps, interrupted steps) of recent runs, by kind',
      labelNames: ['kind'],
      registers: [this.registry],
      async collect() {
        const counts: Record<string, number> = { approval: 0, manual: 0, interrupted: 0 };
        for (const run of await rt.store.list(SCAN_RUNS)) {
          if (isTerminal(run.status)) continue;
          for (const g of Object.values(run.gates)) if (g.status === 'open') counts[g.kind] = (counts[g.kind] ?? 0) + 1;
        }
        for (const [kind, n] of Object.entries(counts)) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: 'runbook_ssh_pool',
      help: 'SSH pool of this process: open connections, channels in use, commands queued for a channel',
      labelNames: ['what'],
      registers: [this.registry],
      collect() {
        const s = rt.ssh.stats();
        this.set({ what: 'connections' }, s.connections);
        this.set({ what: 'channels' }, s.channels);
        this.set({ what: 'queued' }, s.queued);
      },
    });
  }

  runFinished(procedure: string, status: string): void {
    this.runs.inc({ procedure, status });
  }
  stepFinished(kind: string, status: string, ms: number): void {
    this.steps.observe({ kind, status }, ms / 1000);
  }
  gateDecided(kind: string, decision: string, ms: number): void {
    this.gates.observe({ kind, decision }, ms / 1000);
  }
  chatCall(platform: string, method: string, outcome: 'ok' | 'rate_limited' | 'error', count = 1): void {
    this.chat.inc({ platform, method, outcome }, count);
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
