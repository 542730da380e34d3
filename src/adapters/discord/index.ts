import { Client, Events, GatewayDispatchEvents, GatewayIntentBits, Routes, type APIInteraction } from 'discord.js';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Mount } from '../../http/surface.js';
import type { Runtime } from '../../runtime.js';
import type { StartedAdapter } from '../index.js';
import { commandsFor } from './commands.js';
import { InteractionHandler } from './interactions.js';
import { discordPublicKey, isSignedByDiscord, TIMESTAMP_WINDOW_S, timestampSkew } from './signature.js';
import { DiscordProgress } from './progress.js';
import { discordStyle } from './render.js';

export { commandsFor, commandText, hostChoices } from './commands.js';
export { discordPublicKey, isSignedByDiscord } from './signature.js';

export const INTERACTIONS_PATH = '/discord/interactions';

/** An interaction is small; anything larger is not Discord. */
const BODY_MAX = 1 << 20;

/**
 * `POST /discord/interactions`: the interactions endpoint for deployments that prefer HTTP to the
 * gateway. 401 unless signed with the application's key (Discord checks this when the URL is set)
 * within TIMESTAMP_WINDOW_S of this server's clock; PONG to PING; everything else goes to the same
 * handler as gateway interactions.
 */
export function interactionsMount(publicKeyHex: string, handler: InteractionHandler, log: Logger): Mount {
  const key = discordPublicKey(publicKeyHex);
  return {
    path: INTERACTIONS_PATH,
    methods: ['POST'],
    access: 'platform',
    bodyLimit: BODY_MAX,
    summary: 'Discord interactions (commands, clicks, forms), signed with the application\'s Ed25519 key',
    handler: async (req: Request, res: Response) => {
      const body = req.rawBody ?? Buffer.alloc(0);
      const signature = req.get('x-signature-ed25519');
      const timestamp = req.get('x-signature-timestamp');
      if (!isSignedByDiscord(key, signature, timestamp, body)) return void res.status(401).json({ error: 'invalid request signature' });
      const skew = timestampSkew(timestamp!);
      if (skew === undefined || Math.abs(skew) > TIMESTAMP_WINDOW_S) {
        log.warn({ skewSeconds: skew, timestamp }, `refused a signed discord interaction whose timestamp is more than ${TIMESTAMP_WINDOW_S} s from this server's clock (a replay, or this clock is wrong)`);
        return void res.status(401).json({ error: `request timestamp is more than ${TIMESTAMP_WINDOW_S / 60} minutes from the server's clock` });
      }
      let interaction: APIInteraction;
      try {
        interaction = JSON.parse(body.toString('utf8')) as APIInteraction;
      } catch {
        return void res.status(400).json({ error: 'body is not JSON' });
      }
      try {
        await handler.handle(interaction, async (response) => void res.status(200).json(response));
      } catch (err) {
        log.error({ err: (err as Error).message, interaction: interaction.id }, 'discord interaction failed');
        if (!res.headersSent) res.status(500).json({ error: 'internal error' });
      }
    },
  };
}
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
  const mounts = publicKey ? [interactionsMount(publicKey, handler, log)] : [];
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
    mounts,
    async stop() {
      await adapter.flush();
      await client.destroy();
    },
  };
}
