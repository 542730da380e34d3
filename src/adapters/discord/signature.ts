import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ConfigError } from '../../errors.js';

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
