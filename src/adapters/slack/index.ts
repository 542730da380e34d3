import type { Runtime } from '../../runtime.js';
import type { StartedAdapter } from '../index.js';
import type { SlackBotOptions } from './bot.js';
import { SlackFront } from './front.js';
import { SlackWork } from './work.js';

export { SlackBot, type SlackBotOptions } from './bot.js';
export { SlackFront } from './front.js';
export { SlackWork } from './work.js';
export { SlackOutbox } from './outbox.js';
export type { SlackRequest } from './requests.js';

export interface SlackOptions extends Omit<SlackBotOptions, 'observe'> {
  signingSecret?: string;
  appToken?: string;
}

/**
 * Starts the Slack adapter when SLACK_BOT_TOKEN and either SLACK_SIGNING_SECRET (HTTP mode on
 * POST /slack/events) or SLACK_APP_TOKEN (Socket Mode) are set; else returns undefined.
 *
 * Two halves: the Bolt app that verifies and acks runs here, on the event loop of the HTTP server;
 * everything after the ack (runs, decisions, answers, progress messages) runs in a child process
 * started at the lowest priority (./work.ts).
 */
export async function startSlack(rt: Runtime, overrides: Partial<SlackOptions> = {}): Promise<(StartedAdapter & { work: SlackWork }) | undefined> {
  const e = rt.env;
  const botToken = overrides.botToken ?? e.SLACK_BOT_TOKEN;
  const signingSecret = overrides.signingSecret ?? e.SLACK_SIGNING_SECRET;
  const appToken = overrides.appToken ?? e.SLACK_APP_TOKEN;
  if (!botToken) return undefined;
  if (!signingSecret && !appToken) {
    rt.log.warn('SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode): Slack is not started');
    return undefined;
  }
  const apiUrl = overrides.apiUrl ?? e.SLACK_API_URL;
  const work = new SlackWork(rt, { botToken, ...(apiUrl ? { apiUrl } : {}), ...(overrides.intervalMs !== undefined ? { intervalMs: overrides.intervalMs } : {}) });
  await work.start();
  let front: SlackFront;
  try {
    front = new SlackFront({ botToken, ...(signingSecret ? { signingSecret } : {}), ...(appToken ? { appToken } : {}), ...(apiUrl ? { apiUrl } : {}), log: rt.log, forward: work.forward });
    await front.start();
  } catch (err) {
    await work.stop();
    throw err;
  }
  rt.log.info({ mode: appToken ? 'socket' : 'http' }, 'slack adapter started');
  return {
    name: 'slack',
    mounts: front.mounts,
    work,
    async stop() {
      await front.stop();
      await work.stop();
    },
  };
}
