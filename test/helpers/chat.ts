import { sign, type KeyPairKeyObjectResult } from 'node:crypto';
import type { AdapterStarter } from '../../src/adapters/index.js';
import { SlackBot } from '../../src/adapters/slack/bot.js';
import { SlackFront } from '../../src/adapters/slack/front.js';
import type { Runtime } from '../../src/runtime.js';
import type { FakeDiscord } from './fake-discord.js';

/**
 * Slack's two halves in the test's process, on its runtime (its catalog, its log): in `runbook
 * start` the work half is a child process running the same SlackBot.
 */
export function slackInProcess(rt: Runtime, o: { botToken: string; signingSecret: string; apiUrl: string }): AdapterStarter {
  return async () => {
    const bot = new SlackBot(rt, { botToken: o.botToken, apiUrl: o.apiUrl, intervalMs: 50 });
    const front = new SlackFront({ botToken: o.botToken, signingSecret: o.signingSecret, apiUrl: o.apiUrl, log: rt.log, forward: (req) => void bot.handle(req) });
    return { name: 'slack', adapter: bot, mounts: front.mounts, stop: () => bot.stop() };
  };
}

/** The Discord adapter's environment against `fake`, with HTTP interactions signed by `keys`. */
export function discordEnv(fake: FakeDiscord, keys: KeyPairKeyObjectResult, guild: string): Record<string, string> {
  return {
    DISCORD_TOKEN: fake.botToken,
    DISCORD_APPLICATION_ID: fake.applicationId,
    DISCORD_PUBLIC_KEY: keys.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex'),
    DISCORD_GUILD_ID: guild,
    DISCORD_API_URL: fake.restUrl,
  };
}

/** POST /discord/interactions as Discord sends it: signed with the application's key, dated now. */
export function postInteraction(base: string, payload: unknown, keys: KeyPairKeyObjectResult): Promise<Response> {
  const body = JSON.stringify(payload);
  const timestamp = String(Math.floor(Date.now() / 1000));
  return fetch(`${base}/discord/interactions`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-signature-ed25519': sign(null, Buffer.from(timestamp + body), keys.privateKey).toString('hex'), 'x-signature-timestamp': timestamp }, body });
}
