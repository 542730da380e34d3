import { webApi } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdapters } from '../../src/adapters/index.js';
import { SlackBot } from '../../src/adapters/slack/bot.js';
import { startSlack } from '../../src/adapters/slack/index.js';
import { SlackOutbox } from '../../src/adapters/slack/outbox.js';
import type { Run, StampedEvent } from '../../src/engine/types.js';
import { startHttp } from '../../src/http/surface.js';
import { buttonClick, FakeSlack, interactionBody, slackSignature, slashCommandBody, type FakeMessage } from '../helpers/fake-slack.js';
import { startTestLab } from '../helpers/lab.js';
import { finished, silent, testRuntime } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

const SECRET = 'test-signing-secret';
const env = (fake: FakeSlack, extra: Record<string, string> = {}) => ({ ...process.env, PORT: '0', HOST: '127.0.0.1', SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: SECRET, SLACK_APP_TOKEN: '', SLACK_API_URL: fake.apiUrl, ...extra });

let fake: FakeSlack;
let lab: Awaited<ReturnType<typeof startTestLab>>;
let rt: ReturnType<typeof testRuntime>;
let adapters: Awaited<ReturnType<typeof startAdapters>>;
/** A second Slack adapter on the test's runtime, for the tests that feed it events directly. */
let bot: SlackBot;
let slack: NonNullable<Awaited<ReturnType<typeof startSlack>>>;
let http: { port: number; close(): Promise<void> };

beforeAll(async () => {
  fake = await new FakeSlack().start();
  lab = await startTestLab({ only: ['node-3', 'c01'] });
  rt = testRuntime(lab.lab.configPath, { env: env(fake) });
  rt.startWorker(4);
  adapters = await startAdapters(rt, [
    async (r) => {
      slack = (await startSlack(r))!;
      return slack;
    },
  ]);
  bot = new SlackBot(rt, { botToken: 'xoxb-test', apiUrl: fake.apiUrl });
  http = await startHttp(rt, adapters.mounts);
}, 120_000);

afterAll(async () => {
  await http?.close();
  await adapters?.stop();
  await bot?.stop();
  await rt?.cleanup();
  await lab?.down();
  await fake?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function post(body: string, headers: Record<string, string> = slackSignature(SECRET, body), contentType = 'application/x-www-form-urlencoded'): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${http.port}/slack/events`, { method: 'POST', headers: { 'content-type': contentType, ...headers }, body });
  return { status: res.status, text: await res.text() };
}

const command = (command: string, text: string, user: string, channel: string, triggerId?: string) => slashCommandBody({ command, text, user, channel, ...(triggerId ? { triggerId } : {}) });
const click = (o: Parameters<typeof buttonClick>[0]) => post(interactionBody(buttonClick(o)));

async function runsIn(channel: string): Promise<Run[]> {
  return (await rt.store.list(200)).filter((r) => r.origin.channel === channel);
}

const runIn = (channel: string) => until(`a run in ${channel}`, async () => (await runsIn(channel))[0]);
const text = (m: FakeMessage) => FakeSlack.textOf(m);
const root = (runId: string) => [...fake.messages.values()].find((m) => !m.thread_ts && text(m).includes(runId));
const ephemerals = (channel: string, user: string) => fake.callsOf('chat.postEphemeral').filter((c) => c.args.channel === channel && c.args.user === user).map((c) => String(c.args.text));

/** Waits until the run's plan card and final message show its end; returns the card and its thread. */
async function delivered(run: Run): Promise<{ card: FakeMessage; thread: FakeMessage[] }> {
  return until(`the end of ${run.id} in slack`, () => {
    const card = root(run.id);
    if (!card || !text(card).includes(run.status)) return undefined;
    const thread = fake.thread(card.ts);
    return thread.some((m) => m.text.includes(`Run ${run.id} ${run.status}`)) ? { card, thread } : undefined;
  });
}

function gateButtons(m: FakeMessage): { actionId: string; value: string }[] {
  return m.blocks.flatMap((b) => (b.type === 'actions' ? (b.elements as { action_id: string; value: string }[]).map((e) => ({ actionId: e.action_id, value: e.value })) : []));
}

const gateMessage = (runId: string) =>
  until(`the approval request of ${runId}`, () => {
    const card = root(runId);
    return card && fake.thread(card.ts).find((m) => gateButtons(m).length > 0);
  });

function leafTitles(run: Run): string[] {
  return Object.values(run.steps).filter((s) => s.kind !== 'forEach' && s.kind !== 'group' && s.status !== 'pending').map((s) => s.title);
}

describe('slack: /ovs flush from the channel', () => {
  it('acks at once, posts the plan card, every step in its thread, the live status, and the final status', async () => {
    const res = await post(command('/ovs', 'flush node-3', 'U0ALICE', 'C0FLUSH'));
    expect(res.status).toBe(200);
    const started = await runIn('C0FLUSH');
    expect(started.requester).toBe('alice');
    const run = await finished(rt, started.id);
    expect(run.status).toBe('succeeded');
    const { card, thread } = await delivered(run);
    expect(card.channel).toBe('C0FLUSH');
    const cardText = text(card);
    for (const s of ['ovs flush node-3', '<@U0ALICE>', 'node-3', run.id, 'Fetch the vDisks on the Storage Router', 'succeeded']) expect(cardText).toContain(s);
    expect(fake.callsOf('chat.update').some((c) => c.args.ts === card.ts)).toBe(true);
    const threadText = thread.map(text).join('\n');
    for (const title of leafTitles(run)) expect(threadText).toContain(title);
    expect(thread.at(-1)!.text).toContain(`Run ${run.id} succeeded`);
    expect(ephemerals('C0FLUSH', 'U0ALICE')).toEqual([]);
  }, 120_000);

  it('answers status from the channel, and help and every mistake only to the person', async () => {
    const done = (await runsIn('C0FLUSH'))[0]!;
    const ask = async (text: string, user: string) => {
      const seen = ephemerals('C0ASK', user).length;
      expect((await post(command('/ovs', text, user, 'C0ASK'))).status).toBe(200);
      return until(`the answer to ${text}`, () => ephemerals('C0ASK', user)[seen]);
    };
    expect(await ask(`status ${done.id}`, 'U0BOB')).toContain(`${done.id} · ovs flush · requested by alice · succeeded`);
    expect(await ask('help', 'U0BOB')).toContain('flush');
    expect(await ask('help flush', 'U0BOB')).toContain('ovs flush <node>');
    expect(await ask('flsh node-3', 'U0BOB')).toMatch(/did you mean "ovs flush"/);
    expect(await ask('flush', 'U0BOB')).toMatch(/node/);
    expect(await ask('flush node-9', 'U0BOB')).toMatch(/unknown host "node-9".*node-3/);
    expect(await ask('flush node-3', 'U0DAVE')).toMatch(/^Not allowed/);
    expect(await ask('flush node-3', 'U0NOBODY')).toMatch(/not in runbook.yaml's people.*slack: U0NOBODY/);
    expect(await ask('help', 'U0NOBODY')).toContain('flush');
    expect(await runsIn('C0ASK')).toEqual([]);
  }, 60_000);
});

describe('slack: approvals', () => {
  it('posts an approval request in the thread and the channel, and an allowed person approves it', async () => {
    await post(command('/nova', 'inspect-disk instance-0000274a', 'U0ALICE', 'C0APPROVE'));
    const req = await runIn('C0APPROVE');
    const gate = await gateMessage(req.id);
    expect(gate.reply_broadcast).toBe(true);
    const gateText = text(gate);
    for (const s of ['virsh suspend', 'c01', 'sensitive', '<@U0BOB>', '<@U0CAROL>', 'Expires']) expect(gateText).toContain(s);
    expect(gateText).not.toContain('May decide*\\n<@U0ALICE>');
    const approve = gateButtons(gate).find((b) => b.actionId === 'runbook.approve')!;
    expect((await click({ user: 'U0BOB', channel: 'C0APPROVE', ...approve })).status).toBe(200);
    const run = await finished(rt, req.id);
    expect(run.status).toBe('succeeded');
    await delivered(run);
    const after = fake.messages.get(gate.ts)!;
    expect(gateButtons(after)).toEqual([]);
    expect(text(after)).toMatch(/Approved by <@U0BOB> at <!date\^\d+\^\{time\}\|\d\d:\d\d UTC>/);
  }, 120_000);

  it('refuses the requester and non-approvers with an ephemeral explanation, and a rejection asks an approver for a reason', async () => {
    await post(command('/nova', 'inspect-disk instance-0000274a', 'U0BOB', 'C0REFUSE'));
    const req = await runIn('C0REFUSE');
    const gate = await gateMessage(req.id);
    const approve = gateButtons(gate).find((b) => b.actionId === 'runbook.approve')!;
    await click({ user: 'U0BOB', channel: 'C0REFUSE', ...approve });
    await click({ user: 'U0ALICE', channel: 'C0REFUSE', ...approve });
    expect(await until('an answer to bob', () => ephemerals('C0REFUSE', 'U0BOB')[0])).toMatch(/^Not allowed/);
    expect(await until('an answer to alice', () => ephemerals('C0REFUSE', 'U0ALICE')[0])).toMatch(/^Not allowed.*alice may not approve/);
    let run = await rt.store.load(req.id);
    expect(run.status).toBe('waiting');
    expect(Object.values(run.gates)[0]!.status).toBe('open');
    expect(gateButtons(fake.messages.get(gate.ts)!)).toHaveLength(2);

    const reject = gateButtons(gate).find((b) => b.actionId === 'runbook.reject')!;
    await click({ user: 'U0DAVE', channel: 'C0REFUSE', triggerId: 'trig-dave-reject', ...reject });
    expect(await until('an answer to dave', () => ephemerals('C0REFUSE', 'U0DAVE')[0])).toMatch(/^Not allowed/);
    expect(fake.callsOf('views.open').filter((c) => c.args.trigger_id === 'trig-dave-reject')).toEqual([]);
    await click({ user: 'U0CAROL', channel: 'C0REFUSE', triggerId: 'trig-reject', ...reject });
    const opened = await until('the reason modal', () => fake.callsOf('views.open').find((c) => c.args.trigger_id === 'trig-reject'));
    const view = opened.args.view as { callback_id: string; private_metadata: string };
    expect((await waitForNothing(req.id)).status).toBe('waiting');
    const submit = { type: 'view_submission', team: { id: 'T0FAKE' }, user: { id: 'U0CAROL', team_id: 'T0FAKE' }, api_app_id: 'A0FAKE', token: 'legacy', trigger_id: 'trig-submit', view: { id: 'V1', hash: 'h1', type: 'modal', callback_id: view.callback_id, private_metadata: view.private_metadata, state: { values: { reason: { reason: { type: 'plain_text_input', value: 'not during business hours' } } } } } };
    expect((await post(interactionBody(submit))).status).toBe(200);
    run = await finished(rt, req.id);
    expect(run.status).toBe('rejected');
    expect(run.error).toBe('rejected by carol: not during business hours');
    await delivered(run);
    expect(text(fake.messages.get(gate.ts)!)).toMatch(/Rejected by <@U0CAROL> at .*: not during business hours/);
  }, 120_000);

  it('a double click and a retried request decide the gate once, and a retried command starts one run', async () => {
    const body = command('/nova', 'inspect-disk instance-0000274a', 'U0ALICE', 'C0TWICE', 'trig-cmd-twice');
    expect((await post(body)).status).toBe(200);
    expect((await post(body, { ...slackSignature(SECRET, body), 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' })).status).toBe(200);
    const req = await runIn('C0TWICE');
    const gate = await gateMessage(req.id);
    const approve = gateButtons(gate).find((b) => b.actionId === 'runbook.approve')!;
    const first = interactionBody(buttonClick({ user: 'U0CAROL', channel: 'C0TWICE', triggerId: 'trig-click-1', ...approve }));
    const [a, b, c] = await Promise.all([
      post(first),
      post(first, { ...slackSignature(SECRET, first), 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' }),
      click({ user: 'U0CAROL', channel: 'C0TWICE', triggerId: 'trig-click-2', ...approve }),
    ]);
    expect([a.status, b.status, c.status]).toEqual([200, 200, 200]);
    const run = await finished(rt, req.id);
    expect(run.status).toBe('succeeded');
    const answers = await until('two answers to carol', () => (ephemerals('C0TWICE', 'U0CAROL').length >= 2 ? ephemerals('C0TWICE', 'U0CAROL') : undefined));
    expect(answers.filter((t) => t.startsWith('Recorded: approve by carol'))).toHaveLength(1);
    expect(answers.filter((t) => /already decided/.test(t))).toHaveLength(1);
    await sleep(300);
    expect(await runsIn('C0TWICE')).toHaveLength(1);
    const audit = await rt.store.audit();
    expect(audit.filter((e) => e.runId === req.id && e.type === 'gate.decided')).toHaveLength(1);
  }, 120_000);

  it('cancels a waiting run from the channel', async () => {
    await post(command('/nova', 'inspect-disk instance-0000274a', 'U0ALICE', 'C0CANCEL'));
    const req = await runIn('C0CANCEL');
    await gateMessage(req.id);
    await post(command('/nova', `cancel ${req.id}`, 'U0BOB', 'C0CANCEL'));
    const run = await finished(rt, req.id);
    expect(run.status).toBe('cancelled');
    const { thread } = await delivered(run);
    expect(thread.map(text).join('\n')).toContain('Cancellation requested by <@U0BOB>');
  }, 120_000);
});

/** The run after a moment in which nothing should have happened to it. */
async function waitForNothing(runId: string): Promise<Run> {
  await sleep(200);
  return rt.store.load(runId);
}

describe('slack: request verification', () => {
  it('answers forged, unsigned and stale requests 401 and starts nothing', async () => {
    const body = command('/ovs', 'flush node-3', 'U0ALICE', 'C0FORGED');
    const now = Math.floor(Date.now() / 1000);
    expect((await post(body, slackSignature('not-the-secret', body))).status).toBe(401);
    expect((await post(body, {})).status).toBe(401);
    expect((await post(body, slackSignature(SECRET, body, now - 301))).status).toBe(401);
    const tampered = body.replace('flush', 'flash');
    expect((await post(tampered, slackSignature(SECRET, body))).status).toBe(401);
    await sleep(300);
    expect(await runsIn('C0FORGED')).toEqual([]);
    expect(fake.calls.filter((c) => c.args.channel === 'C0FORGED')).toEqual([]);
  });
});

describe('slack: rate limits', () => {
  it('loses no final status in a 429 storm, and keeps the thread in order', async () => {
    await post(command('/ovs', 'flush node-3', 'U0BOB', 'C0STORM'));
    const started = await runIn('C0STORM');
    fake.rateLimit(6, 1);
    const run = await finished(rt, started.id);
    expect(run.status).toBe('succeeded');
    const { card, thread } = await delivered(run);
    expect(fake.calls.filter((c) => c.status === 429).length).toBeGreaterThan(0);
    expect((await rt.metrics.text()).body).toMatch(/^runbook_chat_api_calls_total\{platform="slack",method="chat\.(postMessage|update)",outcome="rate_limited"\} [1-9]\d*$/m);
    const threadText = thread.map(text).join('\n');
    for (const s of Object.values(run.steps).filter((s) => s.kind !== 'forEach' && s.kind !== 'group' && s.status !== 'pending')) {
      expect(threadText).toContain(`${s.title}* succeeded`);
    }
    expect(thread.at(-1)!.text).toContain(`Run ${run.id} succeeded`);
    expect(text(card)).toContain('succeeded');
  }, 120_000);

  it('content queued while a write to the same message is rate limited wins over the older content', async () => {
    const outbox = new SlackOutbox({ client: new webApi.WebClient('xoxb-test', { slackApiUrl: fake.apiUrl, rejectRateLimitedCalls: true, retryConfig: { retries: 0 } }), redis: rt.redis, prefix: rt.prefix, log: silent, intervalMs: 50 });
    const item = (text: string) => ({ runId: 'r-race', key: 'plan', channel: 'C0RACE', place: 'channel' as const, broadcast: false, body: { text, blocks: [] } });
    const inFlight = async (n: number) => until(`call ${n} to C0RACE`, () => fake.calls.filter((c) => c.args.channel === 'C0RACE').length >= n);
    try {
      fake.delay(300);
      fake.rateLimit(1, 1);
      const posted = outbox.send(item('v1'));
      await inFlight(1);
      const newer = outbox.send(item('v2'));
      await Promise.all([posted, newer]);
      fake.rateLimit(1, 1);
      const updated = outbox.send(item('v3'));
      await inFlight(3);
      const newest = outbox.send(item('v4'));
      await Promise.all([updated, newest]);
      await outbox.drain();
      // An idle channel is forgotten once its pacing interval has passed.
      await until('the idle channel to be forgotten', () => outbox.channelCount === 0, 5_000);
    } finally {
      fake.delay(0);
      outbox.close();
    }
    const calls = fake.calls.filter((c) => c.args.channel === 'C0RACE').map((c) => `${c.method} ${c.status} ${String(c.args.text)}`);
    expect(calls[0]).toBe('chat.postMessage 429 v1');
    expect(calls.at(-1)).toBe('chat.update 200 v4');
    expect(calls.filter((c) => c.endsWith(' 200 v1') || c.endsWith(' 200 v3'))).toEqual([]);
    expect([...fake.messages.values()].filter((m) => m.channel === 'C0RACE').map((m) => m.text)).toEqual(['v4']);
  }, 60_000);

  it('posts 100 steps finishing at once in one thread at most about once a second', async () => {
    const base = (await runsIn('C0FLUSH'))[0]!;
    const run: Run = { ...base, id: `${base.id}-many`, origin: { adapter: 'slack', channel: 'C0MANY' } };
    const at = new Date().toISOString();
    const ev = (e: Record<string, unknown>) => ({ runId: run.id, at, ...e }) as StampedEvent;
    await bot.deliver(run, ev({ type: 'run.planned', plan: run.plan, notes: [] }));
    const paths = Array.from({ length: 100 }, (_, i) => `many[${i}]`);
    for (const p of paths) await bot.deliver(run, ev({ type: 'step.started', path: p, title: `Step ${p}`, kind: 'ssh', risk: 'write', host: 'node-3', command: 'true', attempt: 1 }));
    for (const p of paths) await bot.deliver(run, ev({ type: 'step.finished', path: p, title: `Step ${p}`, kind: 'ssh', risk: 'write', host: 'node-3', status: 'succeeded', exitCode: 0, durationMs: 5, outputTail: `done ${p}\n` }));
    await bot.deliver(run, ev({ type: 'run.finished', status: 'succeeded', durationMs: 1000 }));
    const card = root(run.id)!;
    const thread = fake.thread(card.ts);
    const threadText = thread.map(text).join('\n');
    for (const p of paths) expect(threadText).toContain(`Step ${p}* succeeded`);
    expect(thread.at(-1)!.text).toContain(`Run ${run.id} succeeded`);
    const writes = fake.calls.filter((c) => c.args.channel === 'C0MANY' && c.method.startsWith('chat.')).map((c) => c.at);
    expect(writes.length).toBeLessThan(20);
    for (let i = 1; i < writes.length; i++) expect(writes[i]! - writes[i - 1]!).toBeGreaterThanOrEqual(900);
  }, 120_000);
});

describe('slack: long output and restarts', () => {
  it('attaches output longer than a message as a file in the thread, and a restarted bot updates what it posted', async () => {
    const base = (await runsIn('C0FLUSH'))[0]!;
    const run: Run = { ...base, id: `${base.id}-file`, origin: { adapter: 'slack', channel: 'C0FILE' } };
    const at = new Date().toISOString();
    const ev = (e: Record<string, unknown>) => ({ runId: run.id, at, ...e }) as StampedEvent;
    const output = Array.from({ length: 2_000 }, (_, i) => `vdisk-${i} in_backend=true`).join('\n');
    const step = { path: 'big', title: 'List every vDisk', kind: 'ssh', risk: 'read', host: 'node-3' };
    const done = ev({ type: 'step.finished', ...step, status: 'succeeded', exitCode: 0, durationMs: 40, outputTail: output });
    await bot.deliver(run, ev({ type: 'run.planned', plan: run.plan, notes: [] }));
    await bot.deliver(run, ev({ type: 'step.started', ...step, command: 'ovs vdisk list', attempt: 1 }));
    await bot.deliver(run, done);
    await bot.outbox.drain();
    const card = root(run.id)!;
    const completed = await until('the file upload', () => fake.callsOf('files.completeUploadExternal').find((c) => c.args.channel_id === 'C0FILE'));
    expect(completed.args.thread_ts).toBe(card.ts);
    expect(fake.uploads.some((u) => u.content.includes('vdisk-0 in_backend=true') && u.content.includes('vdisk-1999 in_backend=true'))).toBe(true);
    const [stepMsg] = fake.thread(card.ts);
    expect(text(stepMsg!)).toContain('attached as big.log');

    const posts = () => fake.callsOf('chat.postMessage').filter((c) => c.args.channel === 'C0FILE').length;
    const before = { posts: posts(), uploads: fake.callsOf('files.completeUploadExternal').length };
    const restarted = new SlackBot(rt, { botToken: 'xoxb-test', apiUrl: fake.apiUrl });
    try {
      await restarted.deliver(run, done);
      await restarted.deliver(run, ev({ type: 'run.finished', status: 'succeeded', durationMs: 1000 }));
    } finally {
      await restarted.stop();
    }
    expect(posts()).toBe(before.posts + 1);
    expect(fake.callsOf('files.completeUploadExternal')).toHaveLength(before.uploads);
    expect(fake.callsOf('chat.update').some((c) => c.args.ts === stepMsg!.ts)).toBe(true);
    expect(fake.thread(card.ts).at(-1)!.text).toContain(`Run ${run.id} succeeded`);
  }, 60_000);

  it('uploads the bytes of a file a step fetched from its host unchanged, in the thread', async () => {
    const base = (await runsIn('C0FLUSH'))[0]!;
    const run: Run = { ...base, id: `${base.id}-archive`, origin: { adapter: 'slack', channel: 'C0ARCHIVE' } };
    const at = new Date().toISOString();
    const ev = (e: Record<string, unknown>) => ({ runId: run.id, at, ...e }) as StampedEvent;
    const bytes = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0xff, 0xfe, 0x80, 0x0a, 0x00]);
    const id = await rt.store.putFile(run.id, 'collect', bytes);
    await bot.deliver(run, ev({ type: 'run.planned', plan: run.plan, notes: [] }));
    const attachment = { name: 'ovs-node-3-20261130-logs.tar.gz', path: '/tmp/ovs-node-3-20261130-logs.tar.gz', bytes: bytes.length, id };
    await bot.deliver(run, ev({ type: 'step.finished', path: 'collect', title: 'Collect the logs', kind: 'ssh', risk: 'read', host: 'node-3', status: 'succeeded', exitCode: 0, attachment }));
    await bot.outbox.drain();
    const completed = await until('the archive upload', () => fake.callsOf('files.completeUploadExternal').find((c) => c.args.channel_id === 'C0ARCHIVE'));
    expect(completed.args.thread_ts).toBe(root(run.id)!.ts);
    // @slack/web-api posts the file to the upload URL as a multipart form: the bytes must be in it whole (0xff 0xfe 0x80 would not survive a text round trip).
    expect(fake.uploads.some((u) => u.bytes.includes(bytes))).toBe(true);
    expect(text(fake.thread(root(run.id)!.ts)[0]!)).toContain('/tmp/ovs-node-3-20261130-logs.tar.gz from node-3 (10 bytes) is attached');
  }, 60_000);
});

describe('slack: the work process', () => {
  it('keeps acking while its work process is down, and hands what came meanwhile to the next one', async () => {
    const old = slack.work.current!;
    const gone = new Promise((r) => old.once('exit', r));
    // A crash: no chance to finish anything.
    old.kill('SIGKILL');
    await gone;
    expect(slack.work.current).toBeUndefined();
    // Slack still gets its acks: the work waits for the next process.
    expect((await post(command('/ovs', 'flush node-3', 'U0ALICE', 'C0DOWN', 'trig-down-1'))).status).toBe(200);
    expect((await post(command('/ovs', 'help flush', 'U0BOB', 'C0DOWN', 'trig-down-2'))).status).toBe(200);
    const run = await runIn('C0DOWN');
    expect(slack.work.current).toBeDefined();
    expect(slack.work.current!.pid).not.toBe(old.pid);
    const done = await finished(rt, run.id);
    expect(done.status).toBe('succeeded');
    await delivered(done);
    expect(await until('the help answer', () => ephemerals('C0DOWN', 'U0BOB')[0])).toContain('ovs flush <node>');
    await until('nothing pending', () => slack.work.pending === 0);
    await sleep(300);
    expect(await runsIn('C0DOWN')).toHaveLength(1);
    expect(ephemerals('C0DOWN', 'U0BOB')).toHaveLength(1);
  }, 120_000);

  it('works on a request handed over again under its delivery, and never on a retry by Slack', async () => {
    const req = (key: string) => ({ kind: 'command' as const, key, pack: 'ovs', text: 'help', user: 'U0BOB', channel: 'C0AGAIN' });
    const answers = () => ephemerals('C0AGAIN', 'U0BOB').length;
    await bot.handle(req('cmd:again-1'), 'd1');
    expect(answers()).toBe(1);
    // Done under d1: handing it over again under d1, or under another delivery, does nothing.
    await bot.handle(req('cmd:again-1'), 'd1');
    await bot.handle(req('cmd:again-1'), 'd2');
    expect(answers()).toBe(1);
    // Taken under d3 by a process that died before it was done: d3 again works on it, d4 does not.
    await rt.redis.set(`${rt.prefix}:slack:seen:cmd:again-2`, 'd3', 'EX', 60);
    await bot.handle(req('cmd:again-2'), 'd4');
    expect(answers()).toBe(1);
    await bot.handle(req('cmd:again-2'), 'd3');
    expect(answers()).toBe(2);
    // A run started under d5, its process dying before the request was marked done: d5 again only
    // makes sure the run is queued, and starts no second one.
    const flush = { kind: 'command' as const, key: 'cmd:again-3', pack: 'ovs', text: 'flush node-3', user: 'U0ALICE', channel: 'C0AGAIN' };
    await bot.handle(flush, 'd5');
    const run = await runIn('C0AGAIN');
    await rt.redis.set(`${rt.prefix}:slack:seen:cmd:again-3`, `run:${run.id}:d5`, 'EX', 60);
    await bot.handle(flush, 'd5');
    expect(await rt.redis.get(`${rt.prefix}:slack:seen:cmd:again-3`)).toBe('done');
    expect((await finished(rt, run.id)).status).toBe('succeeded');
    expect(await runsIn('C0AGAIN')).toHaveLength(1);
  }, 60_000);
});

describe('slack: socket mode', () => {
  it('connects through apps.connections.open and answers commands as in HTTP mode', async () => {
    const srt = testRuntime(lab.lab.configPath, { env: env(fake, { SLACK_APP_TOKEN: 'xapp-test', SLACK_SIGNING_SECRET: '' }) });
    const sockets = fake.socketCount();
    const started = await startAdapters(srt, [(r) => startSlack(r)]);
    try {
      expect(started.mounts).toEqual([]);
      expect(fake.callsOf('apps.connections.open').length).toBeGreaterThan(0);
      await until('the socket', () => fake.socketCount() > sockets);
      const payload = Object.fromEntries(new URLSearchParams(command('/ovs', 'flush node-9', 'U0ALICE', 'C0SOCKET')));
      const ack = await fake.envelope('slash_commands', payload);
      expect(ack.envelope_id).toBeDefined();
      await fake.envelope('slash_commands', payload, 1);
      const answer = await until('an answer over socket mode', () => ephemerals('C0SOCKET', 'U0ALICE')[0]);
      expect(answer).toMatch(/unknown host "node-9"/);
      await sleep(300);
      expect(ephemerals('C0SOCKET', 'U0ALICE')).toHaveLength(1);
    } finally {
      await started.stop();
      await srt.cleanup();
    }
  }, 60_000);
});
