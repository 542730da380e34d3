/**
 * The plumbing of the OpenStack API double: requests matched by method and path pattern, JSON in
 * and out, and errors in the shape each service gives them, so the real clients print the real
 * messages.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * An error answered as OpenStack does: nova and cinder wrap the message in a fault named after the
 * status (nova/api/openstack/wsgi.py Fault: `{"badRequest": {"code": 400, "message": …}}`); keystone
 * as `{"error": {"code", "title", "message"}}` (keystone/server/flask/common.py).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'notAcceptable',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  500: 'computeFault',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};
const TITLES: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict' };

export function faultBody(service: string, status: number, message: string): unknown {
  if (service === 'identity') return { error: { code: status, title: TITLES[status] ?? 'Error', message } };
  return { [FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } };
}

export interface Request {
  method: string;
  /** Path below the service's prefix, without the query: `/v2.1/servers/detail`. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
  /** The URL the client used to reach the double, for links: `http://127.0.0.1:<port>`. */
  base: string;
  params: Record<string, string>;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (req: Request) => Promise<Reply> | Reply;

export interface Route {
  method: string;
  /** `/v2.1/servers/:id/action`: `:name` matches one path segment. */
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

export function route(method: string, path: string, handler: Handler): Route {
  const names: string[] = [];
  const source = path.replace(/:([a-z_]+)/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { method, pattern: new RegExp(`^${source}/?$`), names, handler };
}

export function match(routes: Route[], method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
  let wrongMethod = false;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) {
      wrongMethod = true;
      continue;
    }
    return { route: r, params: Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])) };
  }
  return wrongMethod ? 'method' : undefined;
}

export async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'Malformed request body');
  }
}

/** Writes a reply; `idHeaders` name the request (nova adds x-compute-request-id to x-openstack-request-id). */
export function send(res: ServerResponse, reply: Reply, idHeaders: Record<string, string>): void {
  const headers: Record<string, string> = { ...idHeaders, ...reply.headers };
  if (reply.body === undefined) {
    res.writeHead(reply.status, { 'content-length': '0', ...headers });
    res.end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** The object under `key` of a request body, or a 400 as the services' JSON schema validation gives it. */
export function bodyOf(req: Request, key: string): Record<string, unknown> {
  const b = req.body as Record<string, unknown> | undefined;
  const v = b?.[key];
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ApiError(400, `Invalid input for field/attribute ${key}. Value: ${JSON.stringify(b ?? null)}. '${key}' is a required property`);
  return v as Record<string, unknown>;
}
