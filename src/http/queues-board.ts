import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express from 'express';
import type { Runtime } from '../runtime.js';
import type { Route } from './server.js';

export const BOARD_PATH = '/admin/queues';

/**
 * Bull Board (the queue's jobs, retries, failures) at /admin/queues, behind the console's token:
 * `authorized` is the console's check (open on loopback, CONSOLE_TOKEN beyond it).
 */
export function queuesBoard(rt: Runtime, authorized: (req: IncomingMessage, url: URL) => boolean): Route {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(rt.queue.queue, { readOnlyMode: false })], serverAdapter, options: { uiConfig: { boardTitle: 'runbook queues' } } });
  const app = express();
  app.use(BOARD_PATH, serverAdapter.getRouter());
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== BOARD_PATH && !url.pathname.startsWith(`${BOARD_PATH}/`)) return false;
    if (!authorized(req, url)) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'the queue board needs the console token: open it as /admin/queues?token=<CONSOLE_TOKEN>' }));
      return true;
    }
    app(req as never, res as never);
    return true;
  };
}
