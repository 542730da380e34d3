import type { Redis } from 'ioredis';
import type { RunStore } from '../engine/store.js';
import type { StampedEvent } from '../engine/types.js';

/**
 * The progress interface every adapter implements: run events in, messages out (a thread in Slack
 * or Discord, lines in a terminal, HTML in the console). Events arrive in order, each once.
 */
export interface ProgressSink {
  onEvent(event: StampedEvent): Promise<void> | void;
}

/** How long one blocking read waits before checking `signal` again. */
const BLOCK_MS = 1_000;

/**
 * Reads a run's events from its Redis stream, from the start (or `from`), and hands them to `sink`
 * until the run finishes or `signal` aborts. Works across processes: the worker may be anywhere.
 * @returns the id of the last event read, to go on from later
 */
export async function followRun(store: RunStore, runId: string, sink: ProgressSink, opts: { signal?: AbortSignal; from?: string; until?: (e: StampedEvent) => boolean } = {}): Promise<string> {
  const conn: Redis = store.redis.duplicate();
  let last = opts.from ?? '0';
  try {
    while (!opts.signal?.aborted) {
      const events = await store.events(runId, last, BLOCK_MS, conn);
      for (const e of events) {
        last = e.id ?? last;
        await sink.onEvent(e);
        if (e.type === 'run.finished' || opts.until?.(e)) return last;
      }
    }
    return last;
  } finally {
    conn.disconnect();
  }
}
