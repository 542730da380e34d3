import { request } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole } from '../../src/adapters/console/index.js';
import { startAdapters } from '../../src/adapters/index.js';
import { startHttp } from '../../src/http/surface.js';
import { readHostState, type VirshState } from '../../src/lab/index.js';
import { startTestLab } from '../helpers/lab.js';
import { testRuntime } from '../helpers/runtime.js';

let lab: Awaited<ReturnType<typeof startTestLab>>;
let rt: ReturnType<typeof testRuntime>;
let adapters: Awaited<ReturnType<typeof startAdapters>>;
let http: Awaited<ReturnType<typeof startHttp>>;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  lab = await startTestLab({ only: ['node-3', 'c01'] });
  rt = testRuntime(lab.lab.configPath, { env: { ...process.env, PORT: '0', HOST: '127.0.0.1' } });
  rt.startWorker(4);
  adapters = await startAdapters(rt, [startConsole]);
  http = await startHttp(rt, adapters.mounts, { auth: adapters.auth! });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(`http://127.0.0.1:${http.port}/`);
  await page.waitForSelector('body[data-ready="true"]');
});

afterAll(async () => {
  await browser?.close();
  await http?.close();
  await adapters?.stop();
  await rt?.cleanup();
  await lab?.down();
});

async function send(as: string, command: string): Promise<void> {
  await page.selectOption('#person', as);
  await page.fill('#command', command);
  await page.click('#composer button[type=submit]');
}

/** The card of the newest run whose plan heading starts with `procedure`. */
function card(procedure: string) {
  return page.locator('section.run', { has: page.locator('.plan h2', { hasText: procedure }) }).last();
}

describe('web console in Chromium', () => {
  it('runs /ovs flush node-3 and shows the plan card, the thread filling, and the final status', async () => {
    await send('alice', '/ovs flush node-3');
    const run = card('ovs flush node-3');
    await run.locator('.thread .msg', { hasText: /Run r-\w+ succeeded/ }).waitFor({ timeout: 60_000 });
    await expect(run.locator('.plan').textContent()).resolves.toMatch(/Requested by@aliceTargetsnode-3Runr-\w+Statussucceeded · 19\/19 steps/);
    const thread = (await run.locator('.thread').textContent()) ?? '';
    expect(thread).toMatch(/Fetch the vDisks on the Storage Router succeeded · node-3 · exit 0/);
    expect(thread).toMatch(/Commencing flush to backend for volume 'vd-3-01' succeeded/);
    await expect(page.locator('#ephemeral').textContent()).resolves.toMatch(/^Run r-\w+ started: ovs flush/);
  });

  it('answers bad input with a specific message and starts nothing', async () => {
    const before = await page.locator('section.run').count();
    await send('alice', '/ovs flush node-33');
    await page.locator('#ephemeral', { hasText: 'unknown host "node-33"; did you mean "node-3"' }).waitFor();
    expect(await page.locator('section.run').count()).toBe(before);
  });

  it('refuses the requester’s own approval, then runs the inspection once another person approves', async () => {
    await send('alice', '/nova inspect-disk instance-0000274a');
    const run = card('nova inspect-disk instance-0000274a');
    const approve = run.locator('.thread button[data-action="approve"]');
    await approve.waitFor();
    await expect(run.locator('.thread').textContent()).resolves.toContain('c01$ virsh suspend 30');
    await approve.click();
    await page.locator('#ephemeral', { hasText: /^Not allowed: alice requested run r-\w+ and cannot approve its own sensitive step/ }).waitFor();
    expect(readHostState<VirshState>(lab.lab.dir, 'c01', 'virsh')!.domains.find((d) => d.id === 30)!.state).toBe('running');
    await page.selectOption('#person', 'bob');
    await approve.click();
    await run.locator('.thread .msg', { hasText: /Run r-\w+ succeeded/ }).waitFor({ timeout: 60_000 });
    await expect(run.locator('.thread').textContent()).resolves.toMatch(/Approved by @bob at \d\d:\d\d UTC/);
    expect(await run.locator('.thread button[data-action="approve"]').count()).toBe(0);
    if (process.env.CONSOLE_SCREENSHOT) {
      await page.addStyleTag({ content: 'footer { display: none }' });
      await run.screenshot({ path: process.env.CONSOLE_SCREENSHOT });
      await page.addStyleTag({ content: 'footer { display: block }' });
    }
  });

  it('says on the page that choosing who you act as is the lab on loopback only', async () => {
    await expect(page.locator('#mode').textContent()).resolves.toBe('Lab mode: on loopback you choose who you act as. Beyond loopback everyone signs in and acts only as themselves.');
  });

  it('gives the lab\'s loopback trust only to a loopback name: a web page that rebinds its own name to 127.0.0.1 gets nothing', async () => {
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: http.port, path: '/console/api/history', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await status(`127.0.0.1:${http.port}`)).toBe(200);
    expect(await status(`localhost:${http.port}`)).toBe(200);
    expect(await status(`attacker.example:${http.port}`)).toBe(401);
  });

  it('serves Bull Board at /admin/queues, read-only', async () => {
    const r = await fetch(`http://127.0.0.1:${http.port}/admin/queues`);
    expect(r.status).toBe(200);
    expect(await r.text()).toMatch(/runbook queues/);
    const queues = (await (await fetch(`http://127.0.0.1:${http.port}/admin/queues/api/queues`)).json()) as { queues: { readOnlyMode: boolean }[] };
    expect(queues.queues.map((q) => q.readOnlyMode)).toEqual([true]);
  });

  it('shows the same runs after a reload', async () => {
    const before = await page.locator('section.run').count();
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    expect(await page.locator('section.run').count()).toBe(before);
  });
});
