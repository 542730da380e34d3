import { startConsole } from '../../src/adapters/console/index.js';
import { startAdapters } from '../../src/adapters/index.js';
import { isTerminal, type Run } from '../../src/engine/types.js';
import { startHttp } from '../../src/http/surface.js';
import { testRuntime } from './runtime.js';

export interface ConsoleFollow {
  as?: string;
  /** Who approves each approval gate (through the console's Approve). */
  approver?: string;
  /** Who presses Done on each manual step, after `onManual` (the person acts in the lab). */
  done?: string;
  onManual?: (stepPath: string) => void | Promise<void>;
}

/**
 * The web console of a runtime of its own with a worker, on loopback as the lab serves it (each
 * request names the person, the lab's picker): `follow` types a command as a person would and
 * presses the buttons of its gates until the run ends, through the console's HTTP API only.
 */
export async function startTestConsole(configPath: string, prefix?: string) {
  const rt = testRuntime(configPath, { ...(prefix ? { prefix } : {}), env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CONSOLE_TRUSTED_PROXIES: '', CONSOLE_TOKEN: '' } });
  rt.startWorker(4);
  const adapters = await startAdapters(rt, [startConsole]);
  const http = await startHttp(rt, adapters.mounts, adapters.auth ? { auth: adapters.auth } : {});

  async function api<T>(method: 'GET' | 'POST', path: string, body?: Record<string, unknown>): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${http.port}/console/api/${path}`, { method, headers: { 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const json = (await res.json()) as T & { error?: string };
    if (!res.ok) throw new Error(`console ${method} ${path}: ${res.status} ${json.error ?? ''}`);
    return json;
  }

  async function follow(text: string, opts: ConsoleFollow = {}): Promise<{ run: Run; history: string }> {
    const started = await api<{ runId?: string; text: string }>('POST', 'command', { person: opts.as ?? 'alice', text });
    if (!started.runId) throw new Error(`the console started no run for "${text}": ${started.text}`);
    const decided = new Set<string>();
    let run: Run;
    for (;;) {
      run = await rt.store.load(started.runId);
      if (isTerminal(run.status)) break;
      for (const g of Object.values(run.gates).filter((x) => x.status === 'open' && !decided.has(x.id))) {
        if (g.kind === 'manual' && opts.done) {
          decided.add(g.id);
          await opts.onManual?.(g.stepPath);
          await api('POST', 'decide', { person: opts.done, runId: run.id, gateId: g.id, decision: 'done' });
        } else if (g.kind === 'approval' && opts.approver) {
          decided.add(g.id);
          await api('POST', 'decide', { person: opts.approver, runId: run.id, gateId: g.id, decision: 'approve' });
        }
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    // What the console's page shows: its messages, once the run's end reached them.
    let history = '';
    for (let i = 0; i < 100 && !history.includes(`Run ${run.id} ${run.status}`); i++) {
      history = JSON.stringify(await api('GET', 'history'));
      await new Promise((r) => setTimeout(r, 100));
    }
    return { run, history };
  }

  return {
    rt,
    follow,
    async stop() {
      await http.close();
      await adapters.stop();
      await rt.cleanup();
    },
  };
}
