import type { Runtime } from '../../runtime.js';
import type { StartedAdapter } from '../index.js';
import { SlackBot, type SlackOptions } from './bot.js';

export { SlackBot, type SlackOptions } from './bot.js';
export { RouteReceiver } from './receiver.js';
export { SlackOutbox } from './outbox.js';

/**
 * Starts the Slack adapter when SLACK_BOT_TOKEN and either SLACK_SIGNING_SECRET (HTTP mode on
 * POST /slack/events) or SLACK_APP_TOKEN (Socket Mode) are set; else returns undefined.
 */
export async function startSlack(rt: Runtime, overrides: Partial<SlackOptions> = {}): Promise<StartedAdapter | undefined> {
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
  const bot = new SlackBot(rt, { ...overrides, botToken, ...(signingSecret ? { signingSecret } : {}), ...(appToken ? { appToken } : {}), ...(apiUrl ? { apiUrl } : {}) });
  await bot.start();
  rt.log.info({ mode: appToken ? 'socket' : 'http' }, 'slack adapter started');
  return { adapter: bot, routes: bot.routes, stop: () => bot.stop() };
}
