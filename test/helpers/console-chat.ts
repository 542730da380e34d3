import { startConsole } from '../../src/adapters/console/index.js';
import { startAdapters } from '../../src/adapters/index.js';
import type { Run } from '../../src/engine/types.js';
import { startHttp } from '../../src/http/surface.js';
import { finished, testRuntime } from './runtime.js';
import { until } from './until.js';

/**
 * The web console as a chat adapter over its HTTP API (what the page's composer and buttons send,
 * on loopback where the lab's people are picked): a command typed by a person, approvals clicked by
 * another, and the messages the run's thread got. A runtime of its own with a worker, on its own
 * Redis prefix.
 */
export async function startConsoleChat(configPath: string) {
  const rt = testRuntime(configPath, { env: { ...process.env, PORT: '0', HOST: '127.0.0.1' } });
  rt.startWorker(2);
  const adapters = await startAdapters(rt, [startConsole]);
  const http = await startHttp(rt, adapters.mounts, { auth: adapters.auth! });
  const api = async (path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${http.port}/console/api/${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return (await res.json()) as Record<string, unknown>;
  };

  /** Types `text` as `person`, approves every approval gate as `approver` when it opens, and returns the finished run and its thread's text. */
  async function run(person: string, text: string, approver?: string): Promise<{ run: Run; thread: string }> {
    const reply = await api('command', { person, text });
    const runId = reply.runId as string | undefined;
    if (!runId) throw new Error(`the console did not start "${text}": ${String(reply.text)}`);
    const decided = new Set<string>();
    const done = finished(rt, runId);
    let ended = false;
    void done.then(() => (ended = true));
    while (!ended && approver) {
      const r = await rt.store.load(runId);
      for (const g of Object.values(r.gates ?? {}).filter((x) => x.status === 'open' && x.kind === 'approval' && !decided.has(x.id))) {
        decided.add(g.id);
        await api('decide', { person: approver, runId, gateId: g.id, decision: 'approve' });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const result = await done;
    const messages = await until(`the end of ${runId} in the console`, async () => {
      const all = (await api('history')) as unknown as { runId: string }[];
      const mine = all.filter((m) => m.runId === runId);
      return JSON.stringify(mine).includes(`Run ${runId} ${result.status}`) && mine;
    });
    return { run: result, thread: JSON.stringify(messages) };
  }

  return {
    rt,
    run,
    async close() {
      await http.close();
      await adapters.stop();
      await rt.cleanup();
    },
  };
}
