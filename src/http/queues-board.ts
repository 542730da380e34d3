import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Runtime } from '../runtime.js';
import type { Mount } from './surface.js';

export const BOARD_PATH = '/admin/queues';

/**
 * Bull Board (the queue's jobs, retries, failures) at /admin/queues, for people signed in to the
 * console, read-only twice over: Bull Board's own read-only mode hides and refuses its actions,
 * and the mount answers nothing but GET and HEAD. Retrying, promoting or removing a job would
 * change a run (promote an approval's expiry, drop a step) without the policy or the audit seeing
 * it; a run changes only through a decision or a cancellation, from the console, chat or the CLI.
 */
export function boardMount(rt: Runtime): Mount {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({ queues: [new BullMQAdapter(rt.queue.queue, { readOnlyMode: true })], serverAdapter, options: { uiConfig: { boardTitle: 'runbook queues' } } });
  return { path: BOARD_PATH, prefix: true, access: 'read', summary: 'Bull Board, read-only', handler: serverAdapter.getRouter() };
}
