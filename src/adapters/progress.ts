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
/** How long to wait before reading again when Redis did not answer (it restarts, the network blipped). */
const RETRY_MS = 1_000;

/**
 * Reads a run's events from its Redis stream, from the start (or `from`), and hands them to `sink`
 * until the run finishes or `signal` aborts. Works across processes: the worker may be anywhere.
 * @returns the id of the last event read, to go on from later
 */
export async function followRun(store: RunStore, runId: string, sink: ProgressSink, opts: { signal?: AbortSignal; from?: string; until?: (e: StampedEvent) => boolean } = {}): Promise<string> {
  const conn: Redis = store.redis.duplicate();
  conn.on('error', () => undefined);
  let last = opts.from ?? '0';
  try {
    while (!opts.signal?.aborted) {
      let events: StampedEvent[];
      try {
        events = await store.events(runId, last, BLOCK_MS, conn);
      } catch {
        await new Promise((r) => setTimeout(r, RETRY_MS));
        continue;
      }
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
