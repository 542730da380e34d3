import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import type { Policy } from '../approvals/policy.js';
import type { Origin } from '../engine/types.js';
import { ConfigError, UsageError } from '../errors.js';
import type { Authenticator } from '../http/surface.js';
import { TokenChecksBusyError, type TokenVerifier } from './tokens.js';

/** Who calls the console, and how they proved it. */
export interface Caller {
  /**
   * - `loopback`: the lab's console on loopback; each request names the person it acts as;
   * - `token`: signed in with a personal token (a session cookie, or the token as a bearer);
   * - `proxy`: a trusted sign-in proxy forwarded the person's e-mail address;
   * - `viewer`: signed in with CONSOLE_TOKEN, which may look but not act.
   */
  auth: 'loopback' | 'token' | 'proxy' | 'viewer';
  /** The person; none for a viewer, nor on loopback (where the request names one). */
  person?: string;
  /** The personal token used (its id, never the token). */
  tokenId?: string;
  /** The TCP peer's address (the proxy's, behind one). */
  address: string;
}

/** Thrown when a caller proved an identity that is not a person of runbook.yaml: 403 with the reason. */
class NotAPersonError extends Error {
  readonly status = 403;
  constructor(message: string) {
    super(message);
    this.name = 'NotAPersonError';
  }
}

/** How long a console sign-in lasts. */
const SESSION_TTL_S = 12 * 60 * 60;
const SESSION_COOKIE = 'runbook_session';

export function isLoopbackAddress(address: string): boolean {
  const a = address.replace(/^::ffff:/, '');
  return a === '::1' || a.startsWith('127.') || a === 'localhost';
}

/**
 * CONSOLE_TRUSTED_PROXIES: addresses and networks (`10.0.0.5, 10.1.0.0/16, fd00::/8`) whose
 * X-Forwarded-Email / X-Forwarded-User headers are believed.
 */
export function trustedProxies(value: string | undefined): BlockList | undefined {
  if (!value) return undefined;
  const list = new BlockList();
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr = '', bits] = item.split('/');
    const family = isIP(addr);
    if (!family || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)))) {
      throw new ConfigError('environment', [{ path: 'CONSOLE_TRUSTED_PROXIES', message: `"${item}" is not an address or a network (10.0.0.5, 10.1.0.0/16, fd00::/8)` }]);
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

export interface ConsoleAuthOptions {
  policy: Policy;
  tokens: TokenVerifier;
  redis: Redis;
  prefix: string;
  /** HOST is a loopback address: the lab's person picker may be offered to loopback callers. */
  boundToLoopback: boolean;
  /** CONSOLE_TRUSTED_PROXIES; when set, nobody is trusted for being on loopback (the proxy may be). */
  proxies?: BlockList | undefined;
  /** CONSOLE_TOKEN: a shared sign-in that may look, never act. */
  viewerToken?: string | undefined;
}

function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(digest(a)), Buffer.from(digest(b)));
}

/**
 * Who calls the console and the queue board, decided in one place for every route:
 * 1. from a trusted proxy's address, the person whose `email` it forwards (oauth2-proxy's
 *    X-Forwarded-Email, or X-Forwarded-User when that is an address); those headers from any other
 *    address mean nothing;
 * 2. a personal token as `Authorization: Bearer` (scripts), or CONSOLE_TOKEN there (a viewer);
 * 3. the session cookie of a sign-in (the page's form posts the token once);
 * 4. on a loopback-bound bot without a proxy, a loopback caller whose Host is a loopback name (a
 *    web page cannot rebind its own name to 127.0.0.1 to get in): the lab, where the page names
 *    the person.
 */
export class ConsoleAuth implements Authenticator {
  readonly signInHint = 'sign in: open the console and give your personal token (runbook token create <you>), or send it as Authorization: Bearer <token>';

  constructor(private readonly o: ConsoleAuthOptions) {}

  /** Whether this console offers the lab's person picker to callers on loopback. */
  get loopbackLab(): boolean {
    return this.o.boundToLoopback && !this.o.proxies;
  }

  private sessionKey(sid: string): string {
    return `${this.o.prefix}:console:session:${digest(sid)}`;
  }

  private peer(req: Request): string {
    return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  }

  private fromProxy(req: Request): boolean {
    const address = this.peer(req);
    const family = isIP(address);
    return !!this.o.proxies && !!family && this.o.proxies.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  async identify(req: Request): Promise<Caller | undefined> {
    const address = this.peer(req);
    if (this.fromProxy(req)) {
      const forwarded = req.get('x-forwarded-email') ?? (req.get('x-forwarded-user')?.includes('@') ? req.get('x-forwarded-user') : undefined);
      if (forwarded) {
        const person = this.o.policy.byEmail(forwarded);
        if (!person) throw new NotAPersonError(`you signed in as ${forwarded.slice(0, 254)}, who is not a person of runbook.yaml: ask an admin to set people.<you>.email`);
        return { auth: 'proxy', person: person.id, address };
      }
    }
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (bearer) return this.byToken(bearer, address);
    const sid = cookie(req, SESSION_COOKIE);
    if (sid) {
      const raw = await this.o.redis.get(this.sessionKey(sid));
      const s = raw ? (JSON.parse(raw) as Pick<Caller, 'auth' | 'person' | 'tokenId'> & { viewer?: string }) : undefined;
      // A look-only session lasts only as long as the CONSOLE_TOKEN it was made with.
      if (s?.auth === 'viewer' && this.o.viewerToken && s.viewer === digest(this.o.viewerToken)) return { auth: 'viewer', address };
      if (s?.person && s.tokenId && this.o.tokens.stillValid({ person: s.person, tokenId: s.tokenId })) return { auth: 'token', person: s.person, tokenId: s.tokenId, address };
    }
    if (this.loopbackLab && isLoopbackAddress(address) && isLoopbackAddress(hostName(req.get('host') ?? ''))) return { auth: 'loopback', address };
    return undefined;
  }

  private async byToken(token: string, address: string): Promise<Caller | undefined> {
    if (this.o.viewerToken && sameSecret(token, this.o.viewerToken)) return { auth: 'viewer', address };
    const owner = await this.o.tokens.verify(token);
    return owner ? { auth: 'token', person: owner.person, tokenId: owner.tokenId, address } : undefined;
  }

  /**
   * The sign-in form's post: a personal token (or CONSOLE_TOKEN) becomes a session cookie
   * (HttpOnly, SameSite=Strict; Secure over HTTPS), so the token is typed once and never kept by
   * the page. Answers 401 for a wrong token, 429 when too many checks wait.
   */
  async signIn(req: Request, res: Response, given: unknown): Promise<void> {
    const token = typeof given === 'string' ? given.trim() : '';
    if (!token) throw new UsageError('give your personal token: { "token": "rbk_…" } (runbook token create <you> makes one)');
    let caller: Caller | undefined;
    try {
      caller = await this.byToken(token, this.peer(req));
    } catch (err) {
      if (err instanceof TokenChecksBusyError) return void res.status(429).json({ error: err.message });
      throw err;
    }
    if (!caller) return void res.status(401).json({ error: 'that token is not valid here: mistyped, revoked, or replaced by a newer one (runbook token list <you>)' });
    const sid = randomBytes(32).toString('base64url');
    const session = caller.person ? { auth: caller.auth, person: caller.person, tokenId: caller.tokenId } : { auth: caller.auth, viewer: digest(token) };
    await this.o.redis.set(this.sessionKey(sid), JSON.stringify(session), 'EX', SESSION_TTL_S);
    res.cookie(SESSION_COOKIE, sid, { httpOnly: true, sameSite: 'strict', secure: this.https(req), path: '/', maxAge: SESSION_TTL_S * 1000 });
    res.json({ auth: caller.auth, ...(caller.person ? { person: caller.person } : {}) });
  }

  async signOut(req: Request, res: Response): Promise<void> {
    const sid = cookie(req, SESSION_COOKIE);
    if (sid) await this.o.redis.del(this.sessionKey(sid));
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'strict', secure: this.https(req), path: '/' });
    res.json({ signedOut: true });
  }

  private https(req: Request): boolean {
    return req.secure || (this.fromProxy(req) && req.get('x-forwarded-proto') === 'https');
  }

  /**
   * The person a state-changing request acts as, and where it came from for the audit. Signed-in
   * callers act only as themselves; on the lab's loopback the request names the person.
   */
  actor(caller: Caller, named: unknown): { person: string; via: Origin } {
    const via: Origin = { adapter: 'console', channel: 'console', auth: caller.auth, address: caller.address, ...(caller.tokenId ? { tokenId: caller.tokenId } : {}) };
    if (caller.auth === 'loopback') {
      if (typeof named !== 'string' || !named) throw new UsageError('say who you act as: { "person": "<id>" } (on loopback the lab lets you choose)');
      return { person: this.o.policy.requirePerson(named).id, via };
    }
    if (!caller.person) throw new NotAPersonError('this sign-in may only look: sign in with your personal token to act');
    if (named !== undefined && named !== '' && named !== caller.person) throw new NotAPersonError(`you are signed in as ${caller.person} and act only as yourself, not as ${String(named).slice(0, 64)}`);
    return { person: caller.person, via };
  }
}

/** The hostname of a Host header: `127.0.0.1:3000` → 127.0.0.1, `[::1]:3000` → ::1. */
function hostName(host: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host) ?? /^([^:]+)(?::\d+)?$/.exec(host);
  return m?.[1] ?? '';
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=') || undefined;
  }
  return undefined;
}
