import { Client, Events, GatewayDispatchEvents, GatewayIntentBits, Routes, type APIInteraction } from 'discord.js';
import type { Runtime } from '../../runtime.js';
import type { StartedAdapter } from '../index.js';
import { commandsFor } from './commands.js';
import { interactionsRoute } from './http.js';
import { InteractionHandler } from './interactions.js';
import { DiscordProgress } from './progress.js';
import { discordStyle } from './render.js';

export { commandsFor, commandText, hostChoices } from './commands.js';
export { discordPublicKey, interactionsRoute, isSignedByDiscord, INTERACTIONS_PATH } from './http.js';
export { ACK_DEADLINE_MS, InteractionHandler } from './interactions.js';
export { DiscordProgress } from './progress.js';
export { discordStyle, toDiscord } from './render.js';

export interface DiscordOptions {
  /** Least time between two edits of a plan card's status. Default 1000 ms. */
  planEditIntervalMs?: number;
  /** See ACK_DEADLINE_MS. */
  ackDeadlineMs?: number;
}

/**
 * The Discord adapter, when DISCORD_TOKEN and DISCORD_APPLICATION_ID are set: registers the slash
 * commands (in DISCORD_GUILD_ID, else globally), connects to the gateway for interactions, and
 * serves POST /discord/interactions when DISCORD_PUBLIC_KEY is set.
 */
export async function startDiscord(rt: Runtime, opts: DiscordOptions = {}): Promise<StartedAdapter | undefined> {
  const { DISCORD_TOKEN: token, DISCORD_APPLICATION_ID: applicationId, DISCORD_GUILD_ID: guildId, DISCORD_PUBLIC_KEY: publicKey, DISCORD_API_URL: api } = rt.env;
  if (!token || !applicationId) return undefined;
  const log = rt.log.child({ adapter: 'discord' });
  // Interactions need no privileged intent; Guilds keeps the gateway session minimal.
  const client = new Client({ intents: [GatewayIntentBits.Guilds], ...(api ? { rest: { api } } : {}) });
  client.rest.setToken(token);
  client.on(Events.Error, (err) => log.warn({ err: err.message }, 'discord client error'));
  client.rest.on('rateLimited', (info) => log.debug({ route: info.route, retryAfter: info.retryAfter, global: info.global }, 'discord rate limit: waiting'));
  client.rest.on('response', (req, res) => rt.metrics.chatCall('discord', `${req.method} ${req.route}`, res.status === 429 ? 'rate_limited' : res.ok ? 'ok' : 'error'));

  const handler = new InteractionHandler({ chat: rt.chat, catalog: rt.catalog, inventory: rt.inventory, policy: rt.policy, store: rt.store, rest: client.rest, applicationId, ...(opts.ackDeadlineMs !== undefined ? { ackDeadlineMs: opts.ackDeadlineMs } : {}) });
  client.ws.on(GatewayDispatchEvents.InteractionCreate, (i: APIInteraction) => {
    void handler
      .handle(i, async (response) => {
        await client.rest.post(Routes.interactionCallback(i.id, i.token), { body: response, auth: false });
      })
      .catch((err: unknown) => log.error({ err: (err as Error).message, interaction: i.id }, 'discord interaction failed'));
  });
  const routes = publicKey ? [interactionsRoute(publicKey, handler, log)] : [];
  try {
    // A bulk overwrite: registering the same commands again changes nothing.
    await client.rest.put(guildId ? Routes.applicationGuildCommands(applicationId, guildId) : Routes.applicationCommands(applicationId), { body: commandsFor(rt.catalog) });
    await client.login(token);
  } catch (err) {
    await client.destroy();
    throw err;
  }

  const adapter = new DiscordProgress({ rest: client.rest, redis: rt.store.redis, prefix: rt.prefix, style: discordStyle(rt.policy), log, getFile: (runId, id) => rt.store.getFile(runId, id), ...(opts.planEditIntervalMs !== undefined ? { planEditIntervalMs: opts.planEditIntervalMs } : {}) });
  log.info({ guild: guildId ?? '(global)', commands: rt.catalog.packs(), http: Boolean(publicKey) }, 'discord adapter started');
  return {
    name: adapter.name,
    adapter,
    routes,
    async stop() {
      await adapter.flush();
      await client.destroy();
    },
  };
}
