/**
 * The Slack adapter's work thread (see ./thread.ts): its own Runtime (Redis, queue, config) and
 * SlackBot, fed the requests the acking thread hands over, and its own progress hub delivering
 * run events to Slack. Nothing here runs on the event loop that answers Slack.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../../log.js';
import { Runtime } from '../../runtime.js';
import { ProgressHub } from '../hub.js';
import { SlackBot } from './bot.js';
import type { ChatCallOutcome, FromThread, SlackThreadData, ToThread } from './thread.js';

const port = parentPort!;
const data = workerData as SlackThreadData;
const post = (m: FromThread) => port.postMessage(m);

/**
 * What is done, and the Web API calls made, go to the acking thread in one message at most every
 * PROGRESS_MS: a message per request would wake the acking event loop as often as Slack does.
 */
const PROGRESS_MS = 100;
let done: number[] = [];
let calls = new Map<string, [string, ChatCallOutcome, number]>();
let timer: NodeJS.Timeout | undefined;
function report(): void {
  timer = undefined;
  if (!done.length && !calls.size) return;
  post({ type: 'progress', done, calls: [...calls.values()] });
  done = [];
  calls = new Map();
}
const soon = () => (timer ??= setTimeout(report, PROGRESS_MS));

// Linux keeps a nice value per thread: this lowers this thread's alone, so that when both cores
// are busy the kernel runs the thread that acks first. Elsewhere it may apply to the process, so
// it is only done where it is known to be per thread.
if (process.platform === 'linux' && data.nice) {
  try {
    setPriority(data.nice);
  } catch {
    // Not permitted here: the thread runs at the process's priority.
  }
}

const log = createLogger(data.runtime.logLevel, { thread: 'slack' });
const rt = new Runtime(Runtime.optionsFrom(data.runtime, log));
const bot = new SlackBot(rt, {
  ...data.bot,
  observe: (method, outcome) => {
    const key = `${method} ${outcome}`;
    const seen = calls.get(key);
    if (seen) seen[2]++;
    else calls.set(key, [method, outcome, 1]);
    soon();
  },
});
const hub = new ProgressHub(rt.store, rt.log);

async function stop(): Promise<void> {
  await hub.stop();
  await bot.stop();
  await rt.close();
}

try {
  await hub.start(bot);
} catch (err) {
  await rt.close().catch(() => undefined);
  throw err;
}

port.on('message', (m: ToThread) => {
  if (m.type === 'request') {
    void bot.handle(m.req, m.delivery).finally(() => {
      done.push(m.seq);
      soon();
    });
  } else if (m.type === 'stop') {
    stop()
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'stopping the slack thread failed'))
      .finally(() => {
        clearTimeout(timer);
        report();
        process.exit(0);
      });
  }
});
post({ type: 'ready' });
