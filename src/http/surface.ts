import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Caller } from '../auth/caller.js';
import { NotAllowedError, NotFoundError, RunbookError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { SetupError } from '../setup/services.js';

/**
 * Who may call a route:
 * - `public`: anyone (health, metrics, the console's page and its sign-in);
 * - `platform`: anyone may send, and the route itself checks the platform's signature (Slack's by
 *   Bolt, Discord's Ed25519);
 * - `people`: someone signed in (or the lab's loopback); a read-only viewer may only GET;
 * - `read`: someone signed in, and GET or HEAD only, whoever they are (the queue board).
 */
export type Access = 'public' | 'platform' | 'people' | 'read';

/** Bytes of a request body a route takes unless it says otherwise. */
const DEFAULT_BODY_LIMIT = 64 * 1024;

/** A plain Node request listener, as Bolt's HTTPReceiver exposes (`requestListener`). */
export type Listener = (req: IncomingMessage & { rawBody?: Buffer }, res: ServerResponse) => void;

interface MountBase {
  path: string;
  /** Whether the paths under `path` belong to it too. Default false: `path` only. */
  prefix?: boolean;
  /** Methods it answers; others get 405. Default: every method. */
  methods?: readonly string[];
  access: Access;
  /** Largest request body, in bytes. Default DEFAULT_BODY_LIMIT. */
  bodyLimit?: number;
  /** What it does: logged with who may call it when the server starts. */
  summary: string;
}

/**
 * One route, or a tree of routes under a path, of the bot's one HTTP server. Most are express
 * handlers. A route a platform calls, that checks the platform's own signature and must answer
 * within the platform's deadline (Slack's 3 s ack), may instead be a plain Node `listener` for one
 * exact path: the server still refuses other methods and reads the body within `bodyLimit`
 * (`req.rawBody`) before it runs, but no express middleware stands between (it cost Slack's ack
 * half again a bare Bolt app's p99 in `npm run bench`).
 */
export type Mount = MountBase & ({ handler: RequestHandler; listener?: never } | { access: 'platform'; methods: readonly string[]; prefix?: false; listener: Listener; handler?: never });

type DirectMount = Extract<Mount, { listener: Listener }>;

const isDirect = (m: Mount): m is DirectMount => m.listener !== undefined;

/** How the server learns who calls: given by the console, which owns sign-in. */
export interface Authenticator {
  /** The caller, or undefined when the request proves nobody. Never throws for bad credentials. */
  identify(req: Request): Promise<Caller | undefined>;
  /** The sentence a caller who proved nobody gets with 401 (how to sign in). */
  readonly signInHint: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Who calls, set before any `people` or `read` route runs. */
    caller?: Caller;
    /** The body as received (Slack's signature is computed over these bytes). */
    rawBody?: Buffer;
  }
}

const READ_METHODS = ['GET', 'HEAD'];

/** Sent with every answer. */
const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' } as const;

function fail(res: Response, status: number, error: string): void {
  res.status(status).set('cache-control', 'no-store').json({ error });
}

/** The request's path from the server's root, also inside a mounted router (which sees only the rest). */
function fullPath(req: Request): string {
  return new URL(req.originalUrl, 'http://localhost').pathname;
}

function covers(m: Mount, path: string): boolean {
  return path === m.path || (m.prefix === true && path.startsWith(m.path.endsWith('/') ? m.path : `${m.path}/`));
}

/**
 * The bot's HTTP surface: every route goes through one express app (a direct mount's exact path
 * and methods are served before it, by `startHttp`, with the same checks), which decides who may call
 * (the route's declared `access`), reads the body within the route's limit, and only then hands
 * over. A path no mount declares is `people`: a new route that forgets to say who may call it is
 * closed, not open. Nothing is trusted from X-Forwarded-* here (`trust proxy` off); the
 * authenticator honours a sign-in proxy's headers only from the addresses configured for it.
 */
export function buildApp(rt: Pick<Runtime, 'log'>, mounts: readonly Mount[], auth?: Authenticator): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('etag', false);
  // Longest path first, so /console/api/session is found before /console.
  const ordered = [...mounts].sort((a, b) => b.path.length - a.path.length);

  app.use((req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  });

  app.use((req: Request, res: Response, next: NextFunction) => {
    void (async () => {
      const mount = ordered.find((m) => covers(m, fullPath(req)));
      if (mount?.methods && !mount.methods.includes(req.method)) return fail(res, 405, `${req.method} is not answered at ${mount.path}: use ${mount.methods.join(' or ')}`);
      const access: Access = mount?.access ?? 'people';
      if (access === 'people' || access === 'read') {
        if (!auth) return fail(res, 404, `no route ${req.method} ${req.path}`);
        const caller = await auth.identify(req);
        if (!caller) return fail(res, 401, auth.signInHint);
        req.caller = caller;
        if (access === 'read' && !READ_METHODS.includes(req.method)) return fail(res, 405, `${mount?.path ?? req.path} is read-only: a run changes only through the console, chat or the CLI, where the policy and the audit see it`);
        if (caller.auth === 'viewer' && !READ_METHODS.includes(req.method)) return fail(res, 403, 'this sign-in may only look: sign in with your personal token to act');
      }
      if (!mount) return fail(res, 404, `no route ${req.method} ${req.path}`);
      next();
    })().catch(next);
  });

  // A direct mount's path and methods never reach express (startHttp serves them first); express only
  // answers its other methods, 405, in the check above.
  for (const m of ordered) {
    if (isDirect(m)) continue;
    const chain = express.Router();
    chain.use(express.raw({ type: () => true, limit: m.bodyLimit ?? DEFAULT_BODY_LIMIT }), (req, _res, next) => {
      if (Buffer.isBuffer(req.body)) req.rawBody = req.body;
      next();
    });
    chain.use(m.handler);
    // app.use matches a prefix; an exact mount passes on everything longer.
    app.use(m.path, (req, res, next) => (covers(m, fullPath(req)) ? chain(req, res, next) : next()));
  }

  app.use((req: Request, res: Response) => fail(res, 404, `no route ${req.method} ${req.path}`));
  app.use((err: { status?: number; type?: string; limit?: number } & Error, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return void res.end();
    if (err.type === 'entity.too.large') return fail(res, 413, `the request body is larger than ${Math.round((err.limit ?? 0) / 1024)} KiB, the most this route takes`);
    if (err instanceof RunbookError) return fail(res, err instanceof NotAllowedError ? 403 : err instanceof NotFoundError ? 404 : 400, err.message);
    if (err.status && err.status >= 400 && err.status < 500) return fail(res, err.status, err.message);
    rt.log.error({ err: err.message, path: req.path }, 'http handler failed');
    fail(res, 500, 'internal error');
  });
  return app;
}

/** The mounts every server has: health and metrics. */
function baseMounts(rt: Runtime): Mount[] {
  return [
    {
      path: '/healthz',
      methods: ['GET'],
      access: 'public',
      summary: 'whether Redis answers and a worker beats',
      handler: async (_req, res) => {
        const redis = await rt.redis.ping().then(() => true, () => false);
        const workers = redis ? (await rt.liveWorkers()).length : 0;
        const ok = redis && workers > 0;
        res.status(ok ? 200 : 503).json({ ok, redis, workers });
      },
    },
    {
      path: '/metrics',
      methods: ['GET'],
      access: 'public',
      summary: 'Prometheus metrics',
      handler: async (_req, res) => {
        const m = await rt.metrics.text();
        res.status(200).type(m.contentType).send(m.body);
      },
    },
  ];
}

/** The path of a request's target, without its query. */
function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

/** Answers a JSON error outside express, as `fail` does inside it. */
function failDirect(res: ServerResponse, status: number, error: string): void {
  const body = JSON.stringify({ error });
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Reads a request's body, refusing one over `limit` bytes (by its length header, or as it arrives). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too large'> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve('too large');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        resolve('too large');
      } else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

/** A direct mount's request: body read within its limit, then its listener. */
function serveDirect(rt: Pick<Runtime, 'log'>, m: DirectMount, req: IncomingMessage & { rawBody?: Buffer }, res: ServerResponse): void {
  const limit = m.bodyLimit ?? DEFAULT_BODY_LIMIT;
  readBody(req, limit).then(
    (body) => {
      if (body === 'too large') return failDirect(res, 413, `the request body is larger than ${Math.round(limit / 1024)} KiB, the most this route takes`);
      req.rawBody = body;
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
      m.listener(req, res);
    },
    (err: Error) => {
      rt.log.warn({ err: err.message, path: m.path }, 'a request body could not be read');
      if (!res.headersSent) failDirect(res, 400, 'the request body could not be read');
    },
  );
}

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

/** A request still running this long after close() is cut off (event streams never end by themselves). */
const CLOSE_GRACE_MS = 2_000;

/**
 * The bot's HTTP server on HOST:PORT with health, metrics and `mounts` (a worker's, with none, on
 * HOST:WORKER_METRICS_PORT).
 */
export async function startHttp(rt: Runtime, mounts: readonly Mount[] = [], opts: { auth?: Authenticator; port?: number; variable?: string } = {}): Promise<HttpServer> {
  const all = [...baseMounts(rt), ...mounts];
  const app = buildApp(rt, all, opts.auth);
  const direct = new Map(all.filter(isDirect).map((m) => [m.path, m]));
  const port = opts.port ?? rt.env.PORT;
  const server: Server = await new Promise((resolve, reject) => {
    const s = createServer((req, res) => {
      const m = direct.size > 0 ? direct.get(pathOf(req.url)) : undefined;
      if (m && m.methods.includes(req.method ?? '')) serveDirect(rt, m, req, res);
      else void app(req, res);
    });
    s.listen(port, rt.env.HOST);
    s.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new SetupError(`port ${port} on ${rt.env.HOST} is in use: stop what holds it, or set ${opts.variable ?? 'PORT'} to a free port`) : e));
    s.once('listening', () => resolve(s));
  });
  const bound = (server.address() as AddressInfo).port;
  rt.log.info({ url: `http://${rt.env.HOST}:${bound}`, routes: all.map((m) => `${(m.methods ?? ['*']).join(',')} ${m.path}${m.prefix ? '/…' : ''} (${m.access}): ${m.summary}`) }, 'http listening');
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
