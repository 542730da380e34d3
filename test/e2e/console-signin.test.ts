import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole } from '../../src/adapters/console/index.js';
import { startAdapters } from '../../src/adapters/index.js';
import { startHttp } from '../../src/http/surface.js';
import { readHostState, type VirshState } from '../../src/lab/index.js';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { testRuntime } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

let lab: Awaited<ReturnType<typeof startTestLab>>;
let rt: ReturnType<typeof testRuntime>;
let adapters: Awaited<ReturnType<typeof startAdapters>>;
let http: Awaited<ReturnType<typeof startHttp>>;
let browser: Browser;
let config: string;
const tokens: Record<string, string> = {};
const pages: Record<string, Page> = {};
let base: string;

/** `runbook token create <person>` on this file's copy of the lab's runbook.yaml: the token it prints once. */
async function createToken(person: string): Promise<string> {
  const r = await runCli({}, 'token', 'create', person, '--file', config);
  if (r.code !== 0) throw new Error(`runbook token create ${person} failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function signIn(person: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready="signin"]');
  await page.fill('#token', tokens[person]!);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

beforeAll(async () => {
  lab = await startTestLab({ only: ['node-3', 'c01'] });
  config = join(lab.lab.dir, 'runbook.signin.yaml');
  copyFileSync(lab.lab.configPath, config);
  tokens.alice = await createToken('alice');
  tokens.bob = await createToken('bob');
  // Bound beyond loopback: nobody is trusted for where they connect from; everyone signs in.
  rt = testRuntime(config, { env: { ...process.env, PORT: '0', HOST: '0.0.0.0', CONSOLE_TOKEN: '' } });
  rt.startWorker(4);
  adapters = await startAdapters(rt, [startConsole]);
  http = await startHttp(rt, adapters.mounts, { auth: adapters.auth! });
  base = `http://127.0.0.1:${http.port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  pages.alice = await signIn('alice');
  pages.bob = await signIn('bob');
});

afterAll(async () => {
  await browser?.close();
  await http?.close();
  await adapters?.stop();
  await rt?.cleanup();
  await lab?.down();
});

function card(page: Page, procedure: string) {
  return page.locator('section.run', { has: page.locator('.plan h2', { hasText: procedure }) }).last();
}

describe('the console beyond loopback', () => {
  it('shows each person as signed in, and never offers to act as someone else', async () => {
    for (const [person, page] of Object.entries(pages)) {
      await expect(page.locator('#me').textContent()).resolves.toBe(person);
      expect(await page.locator('#person, select').count()).toBe(0);
      expect(await page.locator('#mode').isVisible()).toBe(false);
    }
  });

  it('refuses the requester’s Approve, and runs the inspection once the other person approves', async () => {
    const alice = pages.alice!;
    const bob = pages.bob!;
    await alice.fill('#command', '/nova inspect-disk instance-0000274a');
    await alice.click('#composer button[type=submit]');
    const approveOf = (page: Page) => card(page, 'nova inspect-disk instance-0000274a').locator('.thread button[data-action="approve"]');
    await approveOf(alice).waitFor();
    await approveOf(bob).waitFor();
    await approveOf(alice).click();
    await alice.locator('#ephemeral', { hasText: /^Not allowed: alice requested run r-\w+ and cannot approve its own sensitive step/ }).waitFor();
    expect(readHostState<VirshState>(lab.lab.dir, 'c01', 'virsh')!.domains.find((d) => d.id === 30)!.state).toBe('running');
    await approveOf(bob).click();
    const run = card(bob, 'nova inspect-disk instance-0000274a');
    await run.locator('.thread .msg', { hasText: /Run r-\w+ succeeded/ }).waitFor({ timeout: 60_000 });
    await expect(run.locator('.thread').textContent()).resolves.toMatch(/Approved by @bob at \d\d:\d\d UTC/);
    const id = /Run (r-\w+) succeeded/.exec((await run.locator('.thread').textContent()) ?? '')![1]!;
    const audit = (await rt.store.audit()).filter((e) => e.runId === id);
    expect(audit.find((e) => e.type === 'run.requested')).toMatchObject({ by: 'alice', origin: { adapter: 'console', auth: 'token', tokenId: tokens.alice!.slice(4, 16) } });
    expect(audit.find((e) => e.type === 'gate.refused')).toMatchObject({ by: 'alice', via: { adapter: 'console', auth: 'token' } });
    expect(audit.find((e) => e.type === 'gate.decided')).toMatchObject({ by: 'bob', decision: 'approve', via: { adapter: 'console', auth: 'token', tokenId: tokens.bob!.slice(4, 16) } });
  });

  it('a signed-in page cannot name another person to act as', async () => {
    const answer = await pages.alice!.evaluate(async () => {
      const r = await fetch('/console/api/command', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ person: 'bob', text: '/ovs flush node-3' }) });
      return { status: r.status, body: (await r.json()) as { error: string } };
    });
    expect(answer).toEqual({ status: 403, body: { error: 'you are signed in as alice and act only as yourself, not as bob' } });
  });

  it('without a sign-in the page asks for one, and the API, the event stream and the queue board answer 401', async () => {
    for (const path of ['/console/api/me', '/console/api/history', '/console/api/events', '/admin/queues', '/admin/queues/api/queues']) {
      const r = await fetch(`${base}${path}`);
      expect(r.status, path).toBe(401);
    }
    const forged = await fetch(`${base}/console/api/command`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-email': 'bob@example.com', 'x-forwarded-user': 'bob' }, body: JSON.stringify({ person: 'bob', text: '/ovs flush node-3' }) });
    expect(forged.status).toBe(401);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.waitForSelector('body[data-ready="signin"]');
    await page.fill('#token', `${tokens.bob!.slice(0, -2)}xx`);
    await page.click('#signin-form button[type=submit]');
    await page.locator('#signin-error', { hasText: 'that token is not valid here' }).waitFor();
    expect(await page.locator('section.run').count()).toBe(0);
    await context.close();
  });

  it('a revoked token ends the sessions made with it', async () => {
    const r = await runCli({}, 'token', 'revoke', 'alice', '--file', config);
    expect(r.code).toBe(0);
    await until('alice signed out by the revocation', () => pages.alice!.evaluate(async () => (await fetch('/console/api/me')).status === 401));
    expect(await pages.bob!.evaluate(async () => (await fetch('/console/api/me')).status)).toBe(200);
  });
});
