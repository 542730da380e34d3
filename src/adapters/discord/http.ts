import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { APIInteraction } from 'discord.js';
import type { Logger } from 'pino';
import { ConfigError } from '../../errors.js';
import type { Route } from '../../http/server.js';
import type { InteractionHandler } from './interactions.js';

export const INTERACTIONS_PATH = '/discord/interactions';

/** An interaction is small; anything larger is not Discord. */
const BODY_MAX = 1 << 20;

/** The DER header of an Ed25519 SubjectPublicKeyInfo, followed by the 32 raw key bytes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** DISCORD_PUBLIC_KEY (64 hex characters) as a key node:crypto verifies with. */
export function discordPublicKey(hex: string): KeyObject {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new ConfigError('environment', [{ path: 'DISCORD_PUBLIC_KEY', message: 'must be the 64 hex characters of "Public Key" on the application\'s General Information page' }]);
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(hex, 'hex')]), format: 'der', type: 'spki' });
}

/** Discord signs `timestamp + body` with Ed25519; the signature travels hex-encoded. */
export function isSignedByDiscord(key: KeyObject, signature: string | undefined, timestamp: string | undefined, body: Buffer): boolean {
  if (!signature || !timestamp || !/^[0-9a-fA-F]{128}$/.test(signature)) return false;
  return verify(null, Buffer.concat([Buffer.from(timestamp), body]), key, Buffer.from(signature, 'hex'));
}

/**
 * How far a request's signed timestamp may be from this server's clock, either way: a signed
 * request captured on its way is refused once this has passed (as Slack's requests are, by Bolt).
 */
export const TIMESTAMP_WINDOW_S = 300;

/** Seconds between the signed timestamp (unix seconds) and now, or undefined when it is not one. */
export function timestampSkew(timestamp: string, now = Date.now()): number | undefined {
  if (!/^\d{1,12}$/.test(timestamp)) return undefined;
  return Math.round(now / 1000 - Number(timestamp));
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > BODY_MAX) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * `POST /discord/interactions`: the interactions endpoint for deployments that prefer HTTP to the
 * gateway. 401 unless signed with the application's key (Discord checks this when the URL is set)
 * within TIMESTAMP_WINDOW_S of this server's clock;
 * PONG to PING; everything else goes to the same handler as gateway interactions.
 */
export function interactionsRoute(publicKeyHex: string, handler: InteractionHandler, log: Logger): Route {
  const key = discordPublicKey(publicKeyHex);
  return async (req, res) => {
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://localhost').pathname !== INTERACTIONS_PATH) return false;
    const body = await readBody(req);
    const signature = req.headers['x-signature-ed25519'];
    const timestamp = req.headers['x-signature-timestamp'];
    if (!body || !isSignedByDiscord(key, typeof signature === 'string' ? signature : undefined, typeof timestamp === 'string' ? timestamp : undefined, body)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'invalid request signature' }));
      return true;
    }
    const skew = timestampSkew(timestamp as string);
    if (skew === undefined || Math.abs(skew) > TIMESTAMP_WINDOW_S) {
      log.warn({ skewSeconds: skew, timestamp }, `refused a signed discord interaction whose timestamp is more than ${TIMESTAMP_WINDOW_S} s from this server's clock (a replay, or this clock is wrong)`);
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `request timestamp is more than ${TIMESTAMP_WINDOW_S / 60} minutes from the server's clock` }));
      return true;
    }
    let interaction: APIInteraction;
    try {
      interaction = JSON.parse(body.toString('utf8')) as APIInteraction;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'body is not JSON' }));
      return true;
    }
    try {
      await handler.handle(interaction, async (response) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(response));
      });
    } catch (err) {
      log.error({ err: (err as Error).message, interaction: interaction.id }, 'discord interaction failed');
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal error' }));
      }
    }
    return true;
  };
}
