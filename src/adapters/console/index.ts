import express, { type Request, type Response } from 'express';
import type { Caller } from '../../auth/caller.js';
import { ConsoleAuth, isLoopbackAddress, trustedProxies } from '../../auth/caller.js';
import { TokenBook, TokenVerifier } from '../../auth/tokens.js';
import { UsageError } from '../../errors.js';
import type { Mount } from '../../http/surface.js';
import type { Runtime } from '../../runtime.js';
import type { StartedAdapter } from '../index.js';
import { BUTTON_ACTIONS, type ButtonAction } from '../messages.js';
import { ConsoleFeed } from './feed.js';
import { CONSOLE_PAGE } from './page.js';

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
};

/**
 * A JSON object from the body. Only `application/json`: a form on another site cannot send that
 * without a CORS preflight, which this server never grants, so a page elsewhere cannot act through
 * a signed-in browser.
 */
function jsonBody(req: Request): Record<string, unknown> {
  if (!req.is('application/json')) throw new UsageError('send JSON (content-type: application/json)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(req.rawBody?.toString('utf8') || '{}');
  } catch {
    throw new UsageError('the body is not JSON');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('expected a JSON object');
  return parsed as Record<string, unknown>;
}

function text(v: unknown, what: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new UsageError(`${what} must be a string`);
  return v;
}

/**
 * The console's routes: the page and its sign-in (public), its API (signed-in people; a viewer
 * may only read), as mounts of the one HTTP surface, which checks who calls before they run.
 */
export function consoleMounts(rt: Runtime, feed: ConsoleFeed, auth: ConsoleAuth): Mount[] {
  const caller = (req: Request): Caller => req.caller!;

  const page = express.Router();
  page.get('/', (_req, res) => void res.set(PAGE_HEADERS).send(CONSOLE_PAGE));

  const session = express.Router();
  session.post('/', (req, res) => auth.signIn(req, res, jsonBody(req).token));
  session.delete('/', (req, res) => auth.signOut(req, res));

  const api = express.Router();
  api.use((_req, res, next) => {
    res.set('cache-control', 'no-store');
    next();
  });
  api.get('/me', (req, res) => {
    const c = caller(req);
    const person = c.person ? rt.policy.person(c.person) : undefined;
    res.json({
      auth: c.auth,
      canAct: c.auth !== 'viewer',
      ...(person ? { person: { id: person.id, roles: person.roles } } : {}),
      // The lab's picker: only on loopback, where the page says so.
      ...(c.auth === 'loopback' ? { people: Object.entries(rt.config.people).map(([id, p]) => ({ id, roles: p.roles })) } : {}),
    });
  });
  api.get('/history', async (_req, res) => void res.json(await feed.history()));
  api.get('/runs/:runId/files/:id', async (req, res) => {
    // A file a step attached: `attachment` makes the browser save it under its own name.
    const { runId, id } = req.params as { runId: string; id: string };
    const run = await rt.store.find(runId);
    const att = run && Object.values(run.steps).find((st) => st.attachment?.id === id)?.attachment;
    const bytes = att ? await rt.store.getFile(runId, id) : undefined;
    if (!att || !bytes) return void res.status(404).json({ error: `run ${runId.slice(0, 64)} has no attached file ${id.slice(0, 64)} (files are kept 7 days)` });
    res.set({ 'content-type': 'application/octet-stream', 'content-disposition': `attachment; filename="${att.name.replace(/["\\\r\n]/g, '_')}"` }).send(bytes);
  });
  api.get('/events', (_req, res) => {
    if (!feed.stream(res)) res.status(503).json({ error: 'too many open console pages: close some and reload' });
  });
  api.post('/command', async (req: Request, res: Response) => {
    const b = jsonBody(req);
    const { person, via } = auth.actor(caller(req), b.person);
    const typed = text(b.text, 'text').trim().replace(/^\//, '');
    // The pack is the first word; the rest goes on exactly as typed (an ad-hoc command keeps its spacing).
    const [, pack = '', rest = ''] = /^(\S*)\s*([\s\S]*)$/.exec(typed) ?? [];
    if (!pack) return void res.json({ ephemeral: true, text: `Type a command such as /ovs flush node-3. ${rt.chat.help()}` });
    const reply = await rt.chat.command('console', person, pack, rest, via);
    res.json({ ephemeral: reply.ephemeral, text: reply.text, ...(reply.run ? { runId: reply.run.id } : {}) });
  });
  api.post('/decide', async (req: Request, res: Response) => {
    const b = jsonBody(req);
    const { person, via } = auth.actor(caller(req), b.person);
    const decision = text(b.decision, 'decision');
    if (!(BUTTON_ACTIONS as readonly string[]).includes(decision)) throw new UsageError(`"${decision.slice(0, 32)}" is not a choice: ${BUTTON_ACTIONS.join(', ')}`);
    const reason = text(b.reason, 'reason');
    res.json(await rt.chat.decide('console', person, text(b.runId, 'runId'), text(b.gateId, 'gateId'), decision as ButtonAction, reason || undefined, via));
  });
  api.use((req, res) => void res.status(404).json({ error: `no console route ${req.method} ${req.baseUrl}${req.path}` }));

  return [
    { path: '/', methods: ['GET', 'HEAD'], access: 'public', summary: 'the console page (it asks for a sign-in beyond loopback)', handler: page },
    { path: '/console/api/session', methods: ['POST', 'DELETE'], access: 'public', summary: 'sign in with a personal token (or CONSOLE_TOKEN, to look); sign out', handler: session },
    // Room for a pasted page, so that an overlong command gets the same answer as in chat.
    { path: '/console/api', prefix: true, access: 'people', bodyLimit: 256 * 1024, summary: 'the console: runs, progress, commands and decisions', handler: api },
  ];
}

/**
 * The console: always on loopback (the lab's picker); beyond loopback only when someone can sign
 * in (a personal token in runbook.yaml, a trusted proxy, or CONSOLE_TOKEN to look). Also the queue
 * board, behind the same sign-in, read-only.
 */
export async function startConsole(rt: Runtime): Promise<StartedAdapter | undefined> {
  const proxies = trustedProxies(rt.env.CONSOLE_TRUSTED_PROXIES);
  const tokens = new TokenVerifier(new TokenBook(rt.config.people, rt.configPath, rt.log));
  const auth = new ConsoleAuth({ policy: rt.policy, tokens, redis: rt.redis, prefix: rt.prefix, boundToLoopback: isLoopbackAddress(rt.env.HOST), proxies, viewerToken: rt.env.CONSOLE_TOKEN });
  const hasTokens = Object.values(rt.config.people).some((p) => p.tokens?.length);
  if (!auth.loopbackLab && !proxies && !hasTokens && !rt.env.CONSOLE_TOKEN) {
    rt.log.error({ host: rt.env.HOST }, 'the console is not started: beyond loopback everyone signs in, and nobody can (give people tokens with `runbook token create <person>`, or set CONSOLE_TRUSTED_PROXIES for a sign-in proxy)');
    return undefined;
  }
  const feed = new ConsoleFeed(rt);
  const { boardMount } = await import('../../http/queues-board.js');
  return { name: feed.name, adapter: feed, mounts: [...consoleMounts(rt, feed, auth), boardMount(rt)], auth, stop: () => feed.stop() };
}
