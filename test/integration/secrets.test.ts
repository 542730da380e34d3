import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newToken } from '../../src/auth/tokens.js';
import { startConsole } from '../../src/adapters/console/index.js';
import { startDiscord } from '../../src/adapters/discord/index.js';
import { startAdapters } from '../../src/adapters/index.js';
import { startHttp } from '../../src/http/surface.js';
import { DB_PASSWORDS } from '../../src/lab/site/openstack.js';
import { REDACT } from '../../src/log.js';
import { Catalog } from '../../src/procedures/catalog.js';
import { parse, procedure, secret, sh } from '../../src/procedures/dsl.js';
import { defaultCatalog } from '../../src/procedures/index.js';
import { discordEnv, postInteraction, slackInProcess } from '../helpers/chat.js';
import { runCli } from '../helpers/cli.js';
import { FakeDiscord, Interactions } from '../helpers/fake-discord.js';
import { FakeSlack, slackSignature, slashCommandBody } from '../helpers/fake-slack.js';
import { startTestLab } from '../helpers/lab.js';
import { finished, testRuntime, uniquePrefix } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

/**
 * Real-looking secrets in every place a deployment keeps them: database passwords behind `${NAME}`
 * in runbook.yaml's URLs, a host's API token that a procedure passes as a `secret()` argument (and
 * that the host's program echoes back), the chat platforms' tokens, the console's tokens. Every
 * way in starts runs that use them; then everything the bot wrote is searched for them.
 */
const NOVA_DB_PASSWORD = `Nv7q-${randomBytes(9).toString('base64url')}`;
const CINDER_DB_PASSWORD = `Cd4w-${randomBytes(9).toString('base64url')}`;
const HOST_TOKEN = `tok_live_${randomBytes(12).toString('hex')}`;
const SLACK_BOT_TOKEN = `xoxb-2718281828-3141592653-${randomBytes(12).toString('base64url')}`;
const SLACK_SIGNING_SECRET = randomBytes(16).toString('hex');
const CONSOLE_TOKEN = `wall-${randomBytes(12).toString('hex')}`;
const DB_USER = `rb_${randomBytes(3).toString('hex')}`;

const GUILD = '200000000000000001';
const CHANNEL = '300000000000000001';
const ALICE_DISCORD = '100000000000000001';

/**
 * A procedure as a pack author would write one around an API token kept in the inventory: the
 * token goes to the host only as a `secret()` argument, and the host's program (here `printf`)
 * echoes it back on stdout, which is captured, and on stderr as it fails.
 */
const tokenOf = (ctx: { host(name: string): { vars: Record<string, unknown> }; args: { host: string } }) => String(ctx.host(ctx.args.host).vars.apiToken);
const vaultLogin = procedure({
  pack: 'vault',
  name: 'login',
  summary: 'Log in to the host agent with its API token',
  usage: 'vault login <host>',
  examples: ['vault login c01'],
  source: 'test/integration/secrets.test.ts',
  args: z.object({ host: z.string() }),
  positional: ['host'],
  hosts: { host: {} },
  steps: [
    { kind: 'ssh', id: 'login', title: 'Log in with the host token', risk: 'read', host: (ctx) => ctx.args.host, command: (ctx) => sh`printf 'logged in with %s\n' ${secret(tokenOf(ctx))}`, capture: parse.lines() },
    { kind: 'ssh', id: 'renew', title: 'Renew the host token', risk: 'write', host: (ctx) => ctx.args.host, command: (ctx) => sh`printf 'renewing %s\n' ${secret(tokenOf(ctx))}; printf 'token %s is expired\n' ${secret(tokenOf(ctx))} >&2; exit 3` },
  ],
});

let lab: Awaited<ReturnType<typeof startTestLab>>;
let rt: ReturnType<typeof testRuntime>;
let adapters: Awaited<ReturnType<typeof startAdapters>>;
let http: Awaited<ReturnType<typeof startHttp>>;
let fakeSlack: FakeSlack;
let fakeDiscord: FakeDiscord;
let config: string;
let aliceToken: string;
const prefix = uniquePrefix();
const logs: string[] = [];
/** What the console sent: the page, API answers, and the event stream. */
const consoleSaw: string[] = [];
/** What the CLI printed. */
const cliSaw: string[] = [];
const discordKeys = generateKeyPairSync('ed25519');

async function root(sql: string, params: unknown[] = []): Promise<unknown[]> {
  const conn = await mysql.createConnection({ uri: lab.lab.mysqlUrl });
  try {
    return (await conn.query(sql, params))[0] as unknown[];
  } finally {
    await conn.end();
  }
}

beforeAll(async () => {
  fakeSlack = await new FakeSlack().start();
  fakeDiscord = await new FakeDiscord().start();
  lab = await startTestLab({ only: ['controller', 'c01', 'c02'] });
  // A database user with a password, as production has: the lab's root has none.
  for (const host of ['localhost', '127.0.0.1', '%']) {
    await root(`CREATE USER '${DB_USER}'@'${host}' IDENTIFIED BY '${NOVA_DB_PASSWORD}'`);
    await root(`GRANT ALL ON \`${lab.lab.databases.nova}\`.* TO '${DB_USER}'@'${host}'`);
    await root(`GRANT ALL ON \`${lab.lab.databases.cinder}\`.* TO '${DB_USER}'@'${host}'`);
  }
  const doc = parseDocument(readFileSync(lab.lab.configPath, 'utf8'));
  const db = (name: string, variable: string) => `mysql://${DB_USER}:\${${variable}}@127.0.0.1:3306/${name}`;
  doc.setIn(['databases', 'nova', 'url'], db(lab.lab.databases.nova, 'NOVA_DB_PASSWORD'));
  // Wrong on purpose: the error a bad password gives must not show it either.
  doc.setIn(['databases', 'cinder', 'url'], db(lab.lab.databases.cinder, 'CINDER_DB_PASSWORD'));
  doc.setIn(['hosts', 'c01', 'vars', 'apiToken'], HOST_TOKEN);
  const alice = await newToken();
  aliceToken = alice.token;
  doc.setIn(['people', 'alice', 'tokens'], doc.createNode([alice.entry]));
  config = join(lab.lab.dir, 'runbook.secrets.yaml');
  writeFileSync(config, doc.toString());

  const log = pino({ level: 'debug', redact: { paths: REDACT, censor: '[redacted]' } }, { write: (line: string) => void logs.push(line) });
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', NOVA_DB_PASSWORD, CINDER_DB_PASSWORD, CONSOLE_TOKEN, ...discordEnv(fakeDiscord, discordKeys, GUILD) };
  rt = testRuntime(config, { env, log, prefix, catalog: new Catalog([...defaultCatalog().all(), vaultLogin]) });
  rt.startWorker(4);
  const slack = slackInProcess(rt, { botToken: SLACK_BOT_TOKEN, signingSecret: SLACK_SIGNING_SECRET, apiUrl: fakeSlack.apiUrl });
  adapters = await startAdapters(rt, [startConsole, slack, (r) => startDiscord(r, { planEditIntervalMs: 100 })]);
  http = await startHttp(rt, adapters.mounts, { auth: adapters.auth! });
}, 120_000);

afterAll(async () => {
  await http?.close();
  await adapters?.stop();
  await rt?.cleanup();
  for (const host of ['localhost', '127.0.0.1', '%']) await root(`DROP USER IF EXISTS '${DB_USER}'@'${host}'`).catch(() => undefined);
  await lab?.down();
  await fakeSlack?.stop();
  await fakeDiscord?.stop();
});

const base = () => `http://127.0.0.1:${http.port}`;

async function slackCommand(command: string, text: string): Promise<void> {
  const body = slashCommandBody({ command, text, user: 'U0ALICE', channel: 'CSECRETS' });
  const r = await fetch(`${base()}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...slackSignature(SLACK_SIGNING_SECRET, body) }, body });
  expect(r.status).toBe(200);
}

async function discordCommand(pack: string, sub: string, options: Record<string, string>): Promise<void> {
  const payload = new Interactions(fakeDiscord, GUILD, CHANNEL).slash(ALICE_DISCORD, pack, sub, options);
  fakeDiscord.issue(payload);
  const r = await postInteraction(base(), payload, discordKeys);
  consoleSaw.push(await r.text());
}

async function consoleCommand(text: string): Promise<string | undefined> {
  const r = await fetch(`${base()}/console/api/command`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceToken}` }, body: JSON.stringify({ text }) });
  const answer = (await r.json()) as { runId?: string };
  consoleSaw.push(JSON.stringify(answer));
  return answer.runId;
}

/** Every value under this test's Redis prefix: run documents, streams (the audit among them), chat ledgers, queues, sessions. */
async function everythingInRedis(): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await rt.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const type = await rt.redis.type(key);
      if (type === 'string') out.push((await rt.redis.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await rt.redis.hgetall(key)));
      else if (type === 'stream') out.push(JSON.stringify(await rt.redis.xrange(key, '-', '+')));
      else if (type === 'zset') out.push(JSON.stringify(await rt.redis.zrange(key, '0', '-1')));
      else if (type === 'list') out.push(JSON.stringify(await rt.redis.lrange(key, '0', '-1')));
      else if (type === 'set') out.push(JSON.stringify(await rt.redis.smembers(key)));
      out.push(key);
    }
  } while (cursor !== '0');
  return out;
}

describe('secrets never leak', () => {
  it('runs procedures that use them, from Slack, Discord, the console and the CLI', async () => {
    const stream = await fetch(`${base()}/console/api/events`, { headers: { authorization: `Bearer ${aliceToken}` } });
    const reader = stream.body!.getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        consoleSaw.push(new TextDecoder().decode(value));
      }
    })().catch(() => undefined);

    const [instance] = (await root(`SELECT uuid FROM \`${lab.lab.databases.nova}\`.instances WHERE host = 'c01' AND deleted = 0 LIMIT 1`)) as { uuid: string }[];
    await slackCommand('/cloud', 'db-connections');
    await slackCommand('/nova', `recover-instance ${instance!.uuid} --to c02`);
    await discordCommand('vault', 'login', { host: 'c01' });
    const consoleRun = await consoleCommand('/vault login c01');
    await consoleCommand('/cloud recover-volumes');
    const cli = await runCli({ RUNBOOK_CONFIG: config, RUNBOOK_PREFIX: prefix, NOVA_DB_PASSWORD, CINDER_DB_PASSWORD, LOG_LEVEL: 'debug' }, 'run', `nova recover-instance ${instance!.uuid} --to c02`, '--as', 'alice', '--dry-run');
    cliSaw.push(cli.stdout, cli.stderr);
    expect(cli.code).toBe(0);
    const check = await runCli({ NOVA_DB_PASSWORD, CINDER_DB_PASSWORD, LOG_LEVEL: 'debug' }, 'config', 'check', '--file', config);
    cliSaw.push(check.stdout, check.stderr);

    // Every run ends, or waits at its approval (recover-instance); cancel those so their finally steps run too.
    const runs = await until('the six runs', async () => {
      const all = await rt.store.list(50);
      return all.length >= 5 && all.every((r) => ['waiting', 'succeeded', 'failed', 'cancelled', 'rejected', 'expired'].includes(r.status)) && all;
    });
    for (const r of runs.filter((x) => x.status === 'waiting')) await rt.decisions.cancel(r.id, 'alice');
    for (const r of runs) await finished(rt, r.id);
    const byProcedure = (adapter: string, procedure: string) => runs.find((r) => r.origin.adapter === adapter && r.procedure === procedure)!;
    const connections = await rt.store.load(byProcedure('slack', 'cloud db-connections').id);
    expect(connections.status).toBe('succeeded');
    expect(String(connections.captures.grep)).toMatch(/mysql\+pymysql:\/\/nova:\*\*\*@cloud\.example\.com\/nova/);
    const recovered = await rt.store.load(byProcedure('slack', 'nova recover-instance').id);
    expect(recovered.status).toBe('cancelled');
    expect(recovered.steps.status!.status).toBe('succeeded');
    expect(Object.values(recovered.gates)[0]!.steps[0]!.preview!.rows.length).toBe(1);
    const volumes = await rt.store.load(byProcedure('console', 'cloud recover-volumes').id);
    expect(volumes.error).toMatch(/Access denied for user '\w+'@'[\w.]+' \(using password: YES\)/);
    expect(byProcedure('discord', 'vault login').status).toBe('failed');
    expect(cliSaw.join('\n')).toMatch(/plan:\n/);
    const vault = await rt.store.load(consoleRun!);
    expect(vault.status).toBe('failed');
    expect(vault.steps.login!.status).toBe('succeeded');
    expect(vault.steps.renew!.exitCode).toBe(3);
    const slackRuns = runs.filter((r) => r.origin.adapter === 'slack');
    await until('slack posted every final status', () => slackRuns.every((r) => fakeSlack.calls.some((c) => JSON.stringify(c.args).includes(r.id) && /succeeded|failed|cancelled/.test(JSON.stringify(c.args)))));
    await until('discord posted its run', () => fakeDiscord.requests.some((q) => JSON.stringify(q.body ?? '').includes('vault login')));
    const page = await fetch(`${base()}/`);
    consoleSaw.push(await page.text());
    const history = await fetch(`${base()}/console/api/history`, { headers: { authorization: `Bearer ${aliceToken}` } });
    consoleSaw.push(await history.text());
    await reader.cancel();
    expect(consoleSaw.join('\n')).toMatch(/logged in with \*\*\*/);
  });

  it('leaves no secret in the logs, Redis (run documents, audit, streams), Slack, Discord, the console or the CLI', async () => {
    const secrets = { NOVA_DB_PASSWORD, CINDER_DB_PASSWORD, HOST_TOKEN, SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, CONSOLE_TOKEN, aliceToken, discordBotToken: fakeDiscord.botToken, ...DB_PASSWORDS };
    const places = {
      logs: logs.join('\n'),
      redis: (await everythingInRedis()).join('\n'),
      // The bot token travels to Slack as the credential of its calls (`token`); the rest is what it posted.
      slack: JSON.stringify(fakeSlack.calls.map(({ args: { token: _credential, ...posted } }) => posted)),
      discord: JSON.stringify(fakeDiscord.requests.map((q) => ({ body: q.body, files: q.files }))),
      console: consoleSaw.join('\n'),
      cli: cliSaw.join('\n'),
    };
    expect(places.logs.length).toBeGreaterThan(10_000);
    expect(places.slack).toMatch(/db-connections/);
    const found: string[] = [];
    for (const [where, text] of Object.entries(places)) {
      for (const [name, value] of Object.entries(secrets)) if (text.includes(value)) found.push(`${name} in ${where}: …${text.slice(Math.max(0, text.indexOf(value) - 80), text.indexOf(value) + value.length + 20)}…`);
    }
    expect(found).toEqual([]);
  });
});
