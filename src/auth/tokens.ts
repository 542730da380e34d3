import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { personSchema, type RunbookConfig, type TokenEntry } from '../config/runbook-config.js';
import { errorMessage } from '../errors.js';

/**
 * A personal token: `rbk_<id>_<secret>`. The prefix lets secret scanners (and people) recognise
 * one; the id, which is not secret, finds the one hash to check; the secret is 32 random bytes.
 */
export const TOKEN_FORMAT = /^rbk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/**
 * scrypt's cost: about 40 ms and 16 MiB per check. The tokens are random (256 bits), so no cost
 * is needed against guessing them; a slow, salted hash is chosen so that a copy of runbook.yaml
 * (it lives in configuration repositories and backups) cannot be used to test candidate tokens
 * cheaply either, whatever happens to the generator. The cost is paid once per token and process
 * (see TokenVerifier), so it never slows the console down.
 */
const COST = { N: 16_384, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
/** scrypt checks in flight at once: each holds 16 MiB, so a flood of guesses cannot exhaust memory. */
const CHECKS_AT_ONCE = 2;
/** Checks waiting for a slot; beyond this a guess is refused at once. */
const CHECKS_WAITING = 32;

function scrypt(secret: string, salt: Buffer, cost: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { ...cost, maxmem: 256 * cost.N * cost.r };
  return new Promise((resolve, reject) => scryptCb(secret, salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** `scrypt$N$r$p$<salt>$<digest>` (base64url): the form runbook.yaml keeps. */
async function hashToken(token: string): Promise<string> {
  const salt = randomBytes(16);
  const digest = await scrypt(token, salt, COST);
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64url'), digest.toString('base64url')].join('$');
}

async function matches(token: string, hash: string): Promise<boolean> {
  const [, n, r, p, salt, digest] = hash.split('$');
  const want = Buffer.from(digest ?? '', 'base64url');
  const got = await scrypt(token, Buffer.from(salt ?? '', 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A new token for a person: the token, shown once, and the entry runbook.yaml keeps. */
export async function newToken(now = new Date()): Promise<{ token: string; entry: TokenEntry }> {
  const id = randomBytes(6).toString('hex');
  const token = `rbk_${id}_${randomBytes(32).toString('base64url')}`;
  return { token, entry: { id, hash: await hashToken(token), created: now.toISOString().replace(/\.\d+Z$/, 'Z') } };
}

/** Thrown when too many token checks wait at once; the caller answers 429. */
export class TokenChecksBusyError extends Error {
  constructor() {
    super('too many sign-in attempts at once: try again in a moment');
    this.name = 'TokenChecksBusyError';
  }
}

interface TokenOwner {
  person: string;
  tokenId: string;
}

/**
 * The personal tokens of runbook.yaml, by id. When built with the file's path it reads the file
 * again after it changes (looked at no more than once a second), so `runbook token create` and
 * `revoke` take effect without a restart (the file is replaced, so its inode changes). Only tokens are taken from a changed file, and only for
 * people the bot already knows: new people and new roles need a restart.
 */
export class TokenBook {
  private byId = new Map<string, TokenOwner & { hash: string }>();
  private seen: string | undefined;
  private lookedAt = 0;

  /**
   * @param file runbook.yaml, to read again when it changes; none for a configuration given whole
   * @param recheckMs least time between two looks at the file. Default 1000 ms.
   */
  constructor(
    private readonly people: RunbookConfig['people'],
    private readonly file: string | undefined,
    private readonly log: Logger,
    private readonly recheckMs = 1_000,
  ) {
    this.take(people);
    if (file) this.seen = this.stamp(file);
  }

  get size(): number {
    this.refresh();
    return this.byId.size;
  }

  find(tokenId: string): (TokenOwner & { hash: string }) | undefined {
    this.refresh();
    return this.byId.get(tokenId);
  }

  private take(people: RunbookConfig['people']): void {
    const next = new Map<string, TokenOwner & { hash: string }>();
    for (const [person, p] of Object.entries(people)) {
      if (!(person in this.people)) continue;
      for (const t of p.tokens ?? []) next.set(t.id, { person, tokenId: t.id, hash: t.hash });
    }
    this.byId = next;
  }

  private stamp(file: string): string | undefined {
    try {
      const s = statSync(file);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return undefined;
    }
  }

  private refresh(): void {
    const now = Date.now();
    if (!this.file || now - this.lookedAt < this.recheckMs) return;
    this.lookedAt = now;
    const stamp = this.stamp(this.file);
    if (stamp === this.seen) return;
    this.seen = stamp;
    try {
      const doc = parseYaml(readFileSync(this.file, 'utf8')) as { people?: unknown } | null;
      const people = z.record(z.string(), personSchema).parse(doc?.people ?? {});
      this.take(people);
      this.log.info({ file: this.file, tokens: this.byId.size }, 'personal tokens read again from runbook.yaml');
    } catch (err) {
      this.log.error({ file: this.file, err: errorMessage(err).split('\n')[0] }, 'runbook.yaml changed but its people do not validate: the tokens read before stay in force');
    }
  }
}

/**
 * Checks personal tokens against the book. A token that checked out is remembered by its SHA-256
 * digest and the hash it matched, so each token costs one scrypt per process; revoking or
 * rotating it (its hash leaves the book) ends that at once.
 */
export class TokenVerifier {
  private readonly verified = new Map<string, { digest: Buffer; hash: string }>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly book: TokenBook) {}

  /** The token's owner, or undefined when it is not a valid token. Throws TokenChecksBusyError under a flood. */
  async verify(token: string): Promise<TokenOwner | undefined> {
    const m = TOKEN_FORMAT.exec(token);
    if (!m) return undefined;
    const entry = this.book.find(m[1]!);
    if (!entry) return undefined;
    const digest = createHash('sha256').update(token).digest();
    const known = this.verified.get(entry.tokenId);
    if (known && known.hash === entry.hash) return timingSafeEqual(known.digest, digest) ? { person: entry.person, tokenId: entry.tokenId } : undefined;
    if (!(await this.slot(() => matches(token, entry.hash)))) return undefined;
    this.verified.set(entry.tokenId, { digest, hash: entry.hash });
    return { person: entry.person, tokenId: entry.tokenId };
  }

  /** Whether a token id is still in the book (a session made with a revoked token ends). */
  stillValid(owner: TokenOwner): boolean {
    return this.book.find(owner.tokenId)?.person === owner.person;
  }

  private async slot<T>(work: () => Promise<T>): Promise<T> {
    if (this.running < CHECKS_AT_ONCE) this.running++;
    else if (this.waiting.length >= CHECKS_WAITING) throw new TokenChecksBusyError();
    // A finished check hands its slot straight to the next one waiting.
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
