import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Runtime } from '../runtime.js';

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/**
 * The bot's HTTP server on HOST:PORT (a worker's, with no routes, on HOST:WORKER_METRICS_PORT).
 * `/healthz` answers 200 when Redis answers and some worker process (here or on another machine)
 * beat recently; `/metrics` is Prometheus text. Adapters add their routes (`/slack/events`,
 * `/discord/interactions`, the console) through `routes`.
 */
export async function startHttp(rt: Runtime, routes: Route[] = [], listen: { port: number; variable: string } = { port: rt.env.PORT, variable: 'PORT' }): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (req.method === 'GET' && url.pathname === '/healthz') {
          const redis = await rt.redis.ping().then(() => true, () => false);
          const workers = redis ? (await rt.liveWorkers()).length : 0;
          const ok = redis && workers > 0;
          json(res, ok ? 200 : 503, { ok, redis, workers });
          return;
        }
        if (req.method === 'GET' && url.pathname === '/metrics') {
          const m = await rt.metrics.text();
          res.writeHead(200, { 'content-type': m.contentType });
          res.end(m.body);
          return;
        }
        for (const r of routes) if (await r(req, res)) return;
        json(res, 404, { error: `no route ${req.method} ${url.pathname}` });
      } catch (e) {
        rt.log.error({ err: e }, 'http handler failed');
        if (!res.headersSent) json(res, 500, { error: 'internal error' });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? Object.assign(new Error(`port ${listen.port} on ${rt.env.HOST} is in use: stop what holds it, or set ${listen.variable} to a free port`), { name: 'SetupError' }) : e),
    );
    server.listen(listen.port, rt.env.HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  rt.log.info({ url: `http://${rt.env.HOST}:${port}` }, 'http listening');
  return { port, close: () => new Promise<void>((r) => server.close(() => r())) };
}
