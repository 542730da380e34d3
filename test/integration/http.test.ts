import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Router } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole } from '../../src/adapters/console/index.js';
import { interactionsMount } from '../../src/adapters/discord/index.js';
import type { InteractionHandler } from '../../src/adapters/discord/interactions.js';
import { startAdapters } from '../../src/adapters/index.js';
import { SlackFront } from '../../src/adapters/slack/front.js';
import { startHttp, type Mount } from '../../src/http/surface.js';
import type { SlackRequest } from '../../src/adapters/slack/requests.js';
import { FakeSlack, slackSignature, slashCommandBody } from '../helpers/fake-slack.js';
import { silent, testRuntime } from '../helpers/runtime.js';

const PROXY = '127.0.0.2';
const ELSEWHERE = '127.0.0.3';
const VIEWER = 'wall-screen-7f3a9c';

const dir = mkdtempSync(join(tmpdir(), 'runbook-http-'));
const configPath = join(dir, 'runbook.yaml');
writeFileSync(
  configPath,
  `hosts:
  node-3: { address: 127.0.0.13, user: lab, groups: [ovs, ovs-master] }
ssh: { privateKeyPath: /nonexistent/id, knownHostsPath: /nonexistent/known_hosts }
people:
  alice: { roles: [operator], email: alice@example.com }
  bob: { roles: [operator, approver], email: Bob@Example.com }
  dave: { roles: [viewer], email: dave@example.com }
`,
);

let rt: ReturnType<typeof testRuntime>;
let adapters: Awaited<ReturnType<typeof startAdapters>>;
let http: Awaited<ReturnType<typeof startHttp>>;

beforeAll(async () => {
  // On loopback, with a sign-in proxy at 127.0.0.2: nobody else is trusted for being on loopback.
  rt = testRuntime(configPath, { env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CONSOLE_TRUSTED_PROXIES: `${PROXY}, 10.9.0.0/16`, CONSOLE_TOKEN: VIEWER } });
  adapters = await startAdapters(rt, [startConsole]);
  http = await startHttp(rt, adapters.mounts, { auth: adapters.auth! });
});

afterAll(async () => {
  await http?.close();
  await adapters?.stop();
  await rt?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** One request from `from` (a loopback address of this machine), as a proxy or a client there would send it. */
function call(from: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: http.port, localAddress: from, method, path, headers: { ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text.startsWith('{') || text.startsWith('[') ? (JSON.parse(text) as Record<string, unknown>) : { text } }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const asBob = { 'x-forwarded-email': 'bob@example.com', 'x-forwarded-user': '10734' };

/** A POST to a server of its own, with the answer's headers. */
function post(port: number, path: string, headers: Record<string, string>, body: string, method = 'POST'): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Slack's route is a direct listener (Bolt's HTTPReceiver.requestListener, node_modules/@slack/bolt
// receivers/HTTPReceiver.js), not an express handler: the surface still refuses other methods, reads
// the body within the route's limit, and sets its headers; Bolt checks the signature over that body.
describe("Slack's route, served without express", () => {
  const SECRET = 'http-test-signing-secret';
  const forwarded: SlackRequest[] = [];
  const platform = new FakeSlack();
  let slack: Awaited<ReturnType<typeof startHttp>>;
  const signed = (body: string, ts?: number) => ({ 'content-type': 'application/x-www-form-urlencoded', ...slackSignature(SECRET, body, ts) });

  beforeAll(async () => {
    await platform.start();
    const front = new SlackFront({ botToken: 'xoxb-x', signingSecret: SECRET, apiUrl: platform.apiUrl, log: silent, forward: (r) => forwarded.push(r) });
    slack = await startHttp(rt, front.mounts, { auth: adapters.auth!, port: 0 });
  });
  afterAll(async () => {
    await slack?.close();
    await platform.stop();
  });

  it('acks a signed command and hands it on, with the security headers', async () => {
    const body = slashCommandBody({ command: '/ovs', text: 'flush node-3', user: 'U1', triggerId: 'trig-1' });
    const r = await post(slack.port, '/slack/events', signed(body), body);
    expect(r.status).toBe(200);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(forwarded).toContainEqual(expect.objectContaining({ kind: 'command', pack: 'ovs', text: 'flush node-3', user: 'U1', key: 'cmd:trig-1' }));
  });

  it('refuses a signature over other bytes, and one too old (Bolt, 5 minutes)', async () => {
    const body = slashCommandBody({ command: '/ovs', text: 'flush node-4', user: 'U1' });
    expect((await post(slack.port, '/slack/events', signed(body), body.replace('node-4', 'node-5'))).status).toBe(401);
    expect((await post(slack.port, '/slack/events', signed(body, Math.floor(Date.now() / 1000) - 600), body)).status).toBe(401);
    expect(forwarded.some((f) => f.kind === 'command' && /node-[45]/.test(f.text))).toBe(false);
  });

  it('answers 405 to another method and 413 to a body over 1 MiB, before Bolt reads anything', async () => {
    const get = await post(slack.port, '/slack/events', {}, '', 'GET');
    expect(get.status).toBe(405);
    expect(JSON.parse(get.text)).toEqual({ error: 'GET is not answered at /slack/events: use POST' });
    const big = `text=${'x'.repeat(1100 * 1024)}`;
    const r = await post(slack.port, '/slack/events', signed(big), big);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text)).toEqual({ error: 'the request body is larger than 1024 KiB, the most this route takes' });
    expect(r.headers['x-content-type-options']).toBe('nosniff');
  });

  it('another path under it is not Slack’s: closed to anyone not signed in', async () => {
    expect((await post(slack.port, '/slack/events/x', {}, '')).status).toBe(401);
  });
});

describe('a sign-in proxy', () => {
  it('its X-Forwarded-Email names the person (people.<id>.email, in any case), who acts as themselves', async () => {
    expect((await call(PROXY, 'GET', '/console/api/me', asBob)).json).toEqual({ auth: 'proxy', canAct: true, person: { id: 'bob', roles: ['operator', 'approver'] } });
    const started = await call(PROXY, 'POST', '/console/api/command', asBob, JSON.stringify({ text: '/ovs flush node-3' }));
    expect(started.json).toMatchObject({ text: expect.stringMatching(/^Run r-\w+ started: ovs flush/), runId: expect.any(String) });
    const run = await rt.store.load(started.json.runId as string);
    expect(run.requester).toBe('bob');
    expect(run.origin).toEqual({ adapter: 'console', channel: 'console', auth: 'proxy', address: PROXY });
  });

  it('X-Forwarded-User counts when it is the address (oauth2-proxy --prefer-email-to-user)', async () => {
    expect((await call(PROXY, 'GET', '/console/api/me', { 'x-forwarded-user': 'alice@example.com' })).json).toMatchObject({ auth: 'proxy', person: { id: 'alice' } });
  });

  it('someone it signed in who is not in runbook.yaml is told so, with 403', async () => {
    expect(await call(PROXY, 'GET', '/console/api/me', { 'x-forwarded-email': 'mallory@example.com' })).toEqual({ status: 403, json: { error: 'you signed in as mallory@example.com, who is not a person of runbook.yaml: ask an admin to set people.<you>.email' } });
  });

  it('the same headers from an address that is not the proxy are ignored', async () => {
    expect((await call(ELSEWHERE, 'GET', '/console/api/me', asBob)).status).toBe(401);
    const forged = await call(ELSEWHERE, 'POST', '/console/api/command', asBob, JSON.stringify({ person: 'bob', text: '/ovs flush node-3' }));
    expect(forged.status).toBe(401);
    expect((await call('127.0.0.1', 'POST', '/console/api/decide', asBob, JSON.stringify({ person: 'bob', runId: 'r-x', gateId: 'g', decision: 'approve' }))).status).toBe(401);
  });
});

describe('CONSOLE_TOKEN', () => {
  it('lets its holder look, never act', async () => {
    const viewer = { authorization: `Bearer ${VIEWER}` };
    expect((await call(ELSEWHERE, 'GET', '/console/api/me', viewer)).json).toEqual({ auth: 'viewer', canAct: false });
    expect((await call(ELSEWHERE, 'GET', '/console/api/history', viewer)).status).toBe(200);
    expect(await call(ELSEWHERE, 'POST', '/console/api/command', viewer, JSON.stringify({ person: 'bob', text: '/ovs flush node-3' }))).toEqual({ status: 403, json: { error: 'this sign-in may only look: sign in with your personal token to act' } });
    expect((await call(ELSEWHERE, 'GET', '/console/api/me', { authorization: `Bearer ${VIEWER}x` })).status).toBe(401);
  });

  it('signs in to a look-only session, which no personal token or person is behind', async () => {
    const signIn = await fetch(`http://127.0.0.1:${http.port}/console/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: VIEWER }) });
    expect(await signIn.json()).toEqual({ auth: 'viewer' });
    const cookie = signIn.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^runbook_session=[\w-]{43}; Max-Age=43200; Path=\/; Expires=.*; HttpOnly; SameSite=Strict$/);
    const session = { cookie: cookie.split(';')[0]! };
    expect((await call(ELSEWHERE, 'GET', '/console/api/me', session)).json).toEqual({ auth: 'viewer', canAct: false });
    expect((await call(ELSEWHERE, 'POST', '/console/api/decide', session, JSON.stringify({ runId: 'r-1', gateId: 'g', decision: 'approve' }))).status).toBe(403);
    await call(ELSEWHERE, 'DELETE', '/console/api/session', session);
    expect((await call(ELSEWHERE, 'GET', '/console/api/me', session)).status).toBe(401);
  });
});

describe('Bull Board', () => {
  it('shows the queue to people signed in, and answers 405 to every action, so no job changes behind the policy', async () => {
    await rt.queue.expireAt('r-board', 'g1', Date.now() + 3_600_000);
    const job = (await rt.queue.queue.getJobs(['delayed'])).find((j) => j.data.runId === 'r-board')!;
    const board = await call(PROXY, 'GET', '/admin/queues/api/queues?activeQueue=runs&status=delayed', asBob);
    expect(board.status).toBe(200);
    expect((board.json.queues as { name: string; readOnlyMode: boolean }[]).map((q) => [q.name, q.readOnlyMode])).toEqual([['runs', true]]);
    for (const [method, path] of [['PUT', `/admin/queues/api/queues/runs/${job.id}/promote`], ['PUT', '/admin/queues/api/queues/runs/retry/failed'], ['PUT', '/admin/queues/api/queues/runs/clean/delayed'], ['DELETE', '/admin/queues/api/queues/runs/empty'], ['POST', '/admin/queues/api/queues/runs/add']] as const) {
      const r = await call(PROXY, method, path, asBob, '{}');
      expect(r, `${method} ${path}`).toEqual({ status: 405, json: { error: "/admin/queues is read-only: a run changes only through the console, chat or the CLI, where the policy and the audit see it" } });
    }
    expect(await job.getState()).toBe('delayed');
    expect((await call(ELSEWHERE, 'GET', '/admin/queues', {})).status).toBe(401);
  });
});

describe('the HTTP surface', () => {
  it('a path no route declares is closed to anyone not signed in, and 404 to those who are', async () => {
    for (const path of ['/console', '/console/api', '/admin', '/anything', '/CONSOLE/API/HISTORY']) {
      expect((await call(ELSEWHERE, 'POST', path, {}, '{}')).status, path).toBe(401);
      expect((await call(PROXY, 'POST', path, asBob, '{}')).status, path).toBe(404);
    }
    expect((await call(ELSEWHERE, 'GET', '/healthz')).status).toBe(503);
    expect((await call(ELSEWHERE, 'GET', '/metrics')).status).toBe(200);
  });

  it('a body over the route’s limit is refused with 413 before anything reads it', async () => {
    const r = await call(PROXY, 'POST', '/console/api/command', asBob, JSON.stringify({ text: `/ovs flush ${'n'.repeat(300_000)}` }));
    expect(r).toEqual({ status: 413, json: { error: 'the request body is larger than 256 KiB, the most this route takes' } });
    const signIn = await call(ELSEWHERE, 'POST', '/console/api/session', {}, JSON.stringify({ token: 'x'.repeat(100_000) }));
    expect(signIn).toEqual({ status: 413, json: { error: 'the request body is larger than 64 KiB, the most this route takes' } });
  });

  it('answers a command with control characters or too long for a command with what is wrong, and starts nothing', async () => {
    const before = (await rt.store.list(100)).length;
    const long = await call(PROXY, 'POST', '/console/api/command', asBob, JSON.stringify({ text: `/ops exec node-3 -- echo ${'x'.repeat(20_000)}` }));
    expect(long.json).toEqual({ ephemeral: true, text: 'the command is 20,025 characters long; at most 8,192 are accepted' });
    const escape = await call(PROXY, 'POST', '/console/api/command', asBob, JSON.stringify({ text: '/ops exec node-3 -- echo \u001b]0;pwned\u0007' }));
    expect(escape.json.text).toBe('the command holds a control character (U+001B at position 26): type it again without it');
    const notJson = await call(PROXY, 'POST', '/console/api/command', { ...asBob, 'content-type': 'text/plain' }, 'text=/ovs flush node-3');
    expect(notJson).toEqual({ status: 400, json: { error: 'send JSON (content-type: application/json)' } });
    const choice = await call(PROXY, 'POST', '/console/api/decide', asBob, JSON.stringify({ runId: 'r-1', gateId: 'g', decision: 'expire' }));
    expect(choice).toEqual({ status: 400, json: { error: '"expire" is not a choice: approve, reject, retry, skip, abort, done' } });
    expect((await rt.store.list(100)).length).toBe(before);
  });

  it('every route that changes state is in the README, with who may call it', () => {
    const readme = readFileSync('README.md', 'utf8');
    const front = new SlackFront({ botToken: 'xoxb-x', signingSecret: 'x', log: silent, forward: () => undefined });
    const key = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('hex');
    const mounts: Mount[] = [...adapters.mounts, ...front.mounts, interactionsMount(key, {} as InteractionHandler, silent)];
    const changing = mounts.flatMap((m) => {
      if (m.access === 'read') return [];
      // express keeps a router's routes in `stack`, each with its path and methods.
      const stack = (m.handler as Partial<Router> | undefined)?.stack as { route?: { path: string; methods: Record<string, boolean> } }[] | undefined;
      const routes = stack?.flatMap((l) => (l.route ? Object.keys(l.route.methods).map((method) => `${method.toUpperCase()} ${m.path}${l.route!.path === '/' ? '' : l.route!.path}`) : [])) ?? [];
      const declared = m.methods?.map((method) => `${method} ${m.path}`) ?? [];
      return [...(routes.length ? routes : declared)].filter((r) => !/^(GET|HEAD) /.test(r));
    });
    expect(changing.sort()).toEqual(['DELETE /console/api/session', 'POST /console/api/command', 'POST /console/api/decide', 'POST /console/api/session', 'POST /discord/interactions', 'POST /slack/events']);
    for (const route of changing) expect(readme, route).toMatch(new RegExp(`^\\| \`${route}\` \\| [^|]+ \\| [^|]+ \\|$`, 'm'));
  });
});
