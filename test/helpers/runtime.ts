import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { followRun } from '../../src/adapters/progress.js';
import type { RunbookConfig } from '../../src/config/runbook-config.js';
import type { Run, StampedEvent } from '../../src/engine/types.js';
import { Runtime, type RuntimeOptions } from '../../src/runtime.js';

export const silent = pino({ level: 'silent' });

export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}`;
}

/**
 * A Runtime on its own Redis prefix, with short leases and waits (timeScale) so tests do not sit
 * through a runbook's 5-second polls. `cleanup` removes every key it made and closes it.
 */
export function testRuntime(configPath: string, opts: Partial<RuntimeOptions> & { config?: RunbookConfig } = {}): Runtime & { cleanup(): Promise<void> } {
  const rt = new Runtime({ configPath, prefix: uniquePrefix(), log: silent, timeScale: 0.01, leaseTtlMs: 2_000, ...opts });
  return Object.assign(rt, {
    async cleanup() {
      await rt.store.purge();
      await rt.close();
    },
  });
}

/** Follows a run until `until` holds for an event (or it finishes); returns the events seen. */
export async function watch(rt: Runtime, runId: string, until?: (e: StampedEvent) => boolean, from = '0'): Promise<StampedEvent[]> {
  const seen: StampedEvent[] = [];
  await followRun(rt.store, runId, { onEvent: (e) => void seen.push(e) }, { from, ...(until ? { until } : {}) });
  return seen;
}

/** Follows a run to its end and returns its final state. */
export async function finished(rt: Runtime, runId: string): Promise<Run> {
  await watch(rt, runId);
  return rt.store.load(runId);
}

export async function waitForEvent(rt: Runtime, runId: string, pred: (e: StampedEvent) => boolean): Promise<StampedEvent> {
  const seen = await watch(rt, runId, pred);
  const hit = seen.find(pred);
  if (!hit) throw new Error(`run ${runId} finished without the awaited event; saw ${seen.map((e) => e.type).join(', ')}`);
  return hit;
}
