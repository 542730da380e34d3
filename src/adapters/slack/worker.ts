/**
 * The Slack adapter's work process (see ./work.ts): its own Runtime (Redis, queue, config) and
 * SlackBot, fed the requests the acking process hands over, and its own progress hub delivering
 * run events to Slack. Nothing here runs in the process that answers Slack.
 *
 * It is started by that process with an IPC channel, and ends when told to stop or when the
 * channel closes (the acking process has gone). Signals sent to the whole process group (Ctrl-C,
 * a service manager's SIGTERM) are left to the acking process, which stops this one in order; with
 * that process gone, a signal stops this one.
 */
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createLogger, type Logger } from '../../log.js';
import { Runtime } from '../../runtime.js';
import { ProgressHub } from '../hub.js';
import { SlackBot } from './bot.js';
import type { ChatCallOutcome, FromWork, SlackWorkData, ToWork } from './work.js';

if (!process.send) {
  process.stderr.write('this is the Slack work process: the bot starts it (npm start)\n');
  process.exit(2);
}
/** Sends `m` to the acking process; `then` runs once it has left (or could not). */
const post = (m: FromWork, then?: () => void) => {
  if (process.connected) process.send!(m, undefined, {}, () => then?.());
  else then?.();
};

// While the acking process is there, it stops this one in order (it sends 'stop' once it has
// stopped handing requests over); on its own, this process stops at once.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void (process.connected || stop()));

/**
 * What is done, and the Web API calls made, go to the acking process in one message at most every
 * PROGRESS_MS: a message per request would wake the acking event loop as often as Slack does.
 */
const PROGRESS_MS = 100;
let done: number[] = [];
let calls = new Map<string, [string, ChatCallOutcome, number]>();
let timer: NodeJS.Timeout | undefined;
function report(then?: () => void): void {
  timer = undefined;
  if (!done.length && !calls.size) return then?.();
  post({ type: 'progress', done, calls: [...calls.values()] }, then);
  done = [];
  calls = new Map();
}
const soon = () => (timer ??= setTimeout(report, PROGRESS_MS));

let started: { bot: SlackBot; log: Logger; stop(): Promise<void> } | undefined;
let stopping: Promise<void> | undefined;

async function start(data: SlackWorkData): Promise<void> {
  // Started without chrt or nice (a system without them): lower this thread at least.
  if (data.nice) {
    try {
      setPriority(data.nice);
    } catch {
      // Not permitted here: the process runs at its parent's priority.
    }
  }
  const log = createLogger(data.runtime.logLevel, { process: 'slack-work' });
  const rt = await Runtime.create(Runtime.optionsFrom(data.runtime, log));
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
  try {
    await hub.start(bot);
  } catch (err) {
    await bot.stop().catch(() => undefined);
    await rt.close().catch(() => undefined);
    throw err;
  }
  started = {
    bot,
    log,
    async stop() {
      await hub.stop();
      await bot.stop();
      await rt.close();
    },
  };
}

function handle(m: Extract<ToWork, { type: 'request' }>): void {
  void started!.bot.handle(m.req, m.delivery).finally(() => {
    done.push(m.seq);
    soon();
  });
}

function stop(): Promise<void> {
  return (stopping ??= (started?.stop() ?? Promise.resolve())
    .catch((err: unknown) => {
      started?.log.error({ err: (err as Error).message }, 'stopping the slack work process failed');
    })
    .finally(() => {
      clearTimeout(timer);
      // Exit once the last progress message has left.
      report(() => process.exit(0));
    }));
}

process.on('message', (m: ToWork) => {
  if (m.type === 'init') {
    start(m.data).then(
      () => post({ type: 'ready' }),
      (err: unknown) => post({ type: 'failed', error: err instanceof Error ? err.message : String(err) }, () => process.exit(1)),
    );
  } else if (m.type === 'request') {
    // The acking process sends requests only once this process has said it is ready.
    if (started) handle(m);
  } else if (m.type === 'usage') {
    post({ type: 'usage', id: m.id, usage: { elu: performance.eventLoopUtilization(), cpu: process.cpuUsage() } });
  } else if (m.type === 'stop') {
    void stop();
  }
});
// The acking process has gone (or closed the channel): finish what is in hand, then end.
process.on('disconnect', () => void stop());
