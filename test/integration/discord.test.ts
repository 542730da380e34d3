import { generateKeyPairSync, sign } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { REST, Routes } from 'discord.js';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ChatService } from '../../src/adapters/chat.js';
import { InteractionHandler, startDiscord } from '../../src/adapters/discord/index.js';
import { startAdapters } from '../../src/adapters/index.js';
import { loadRunbookConfig } from '../../src/config/runbook-config.js';
import { startHttp } from '../../src/http/surface.js';
import { FakeDiscord, Interactions, TOKEN_LIFETIME_MS, type FakeInteraction, type FakeMessage } from '../helpers/fake-discord.js';
import { startTestLab } from '../helpers/lab.js';
import { finished, testRuntime } from '../helpers/runtime.js';

const ALICE = '100000000000000001';
const BOB = '100000000000000002';
const CAROL = '100000000000000003';
const DAVE = '100000000000000004';
const STRANGER = '100000000000000099';
const GUILD = '200000000000000001';
const CHANNEL = '300000000000000001';
const INSTANCE = 'instance-0000274a';

let lab: Awaited<ReturnType<typeof startTestLab>>;
let rt: ReturnType<typeof testRuntime>;
let fake: FakeDiscord;
let ix: Interactions;
let adapters: Awaited<ReturnType<typeof startAdapters>>;
let http: Awaited<ReturnType<typeof startHttp>>;
const keys = generateKeyPairSync('ed25519');
const publicKeyHex = keys.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex');

// Warnings and errors logged for the adapter (its own and the hub's): a failed answer or delivery must not pass unnoticed.
const logged: { level: number; msg: string; adapter?: string; err?: string; skewSeconds?: number }[] = [];
const log = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line) as (typeof logged)[number]) });

const start = () => startAdapters(rt, [(r) => startDiscord(r, { planEditIntervalMs: 100 })]);

beforeAll(async () => {
  fake = await new FakeDiscord().start();
  ix = new Interactions(fake, GUILD, CHANNEL);
  lab = await startTestLab({ only: ['node-3', 'c01'] });
  // Approvals last an hour here, so the run that outlives its 15-minute interaction token is not expired by the jump of the clock.
  const config = loadRunbookConfig(lab.lab.configPath);
  config.policy.approvalExpiryMinutes = 60;
  rt = testRuntime(lab.lab.configPath, {
    config,
    log,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DISCORD_TOKEN: fake.botToken, DISCORD_APPLICATION_ID: fake.applicationId, DISCORD_PUBLIC_KEY: publicKeyHex, DISCORD_GUILD_ID: GUILD, DISCORD_API_URL: fake.restUrl },
  });
  rt.startWorker(4);
  adapters = await start();
  http = await startHttp(rt, adapters.mounts);
});

afterAll(async () => {
  await http?.close();
  await adapters?.stop();
  await rt?.cleanup();
  await lab?.down();
  await fake?.stop();
});

afterEach(() => {
  expect(logged.filter((l) => l.adapter === 'discord')).toEqual([]);
});

const ephemeral = (it: FakeInteraction) => {
  expect(it.response.type === 4 || it.response.type === 5).toBe(true);
  expect(it.response.data.flags).toBe(64);
  return String((it.response.type === 5 ? it.original : it.response.data).content);
};
const runIdOf = (text: string) => /Run (\S+) started/.exec(text)![1]!;
const planOf = (runId: string) => fake.messagesIn(CHANNEL).find((m) => FakeDiscord.text(m).includes(runId));
const statusOf = (m: FakeMessage | undefined) => String(m?.embeds[0]?.fields?.find((f: { name: string }) => f.name === 'Status')?.value ?? '');
const threadOf = (runId: string) => {
  const plan = planOf(runId);
  return plan ? fake.messagesIn(plan.id) : [];
};
const gateIn = (runId: string) => threadOf(runId).find((m) => m.history.some((h) => JSON.stringify(h.components ?? []).includes('rb:approve:')));
const buttons = (m: FakeMessage) => m.components.flatMap((row: { components: { custom_id: string; label: string }[] }) => row.components);

async function startRun(user: string, pack: string, sub: string, options: Record<string, string>): Promise<string> {
  const text = ephemeral(await fake.interact(ix.slash(user, pack, sub, options)));
  expect(text).toMatch(/^Run \S+ started/);
  return runIdOf(text);
}

async function openGate(runId: string): Promise<FakeMessage> {
  await fake.waitFor(() => Boolean(gateIn(runId)?.components.length), `the approval request of ${runId}`);
  return gateIn(runId)!;
}

describe('Discord adapter', () => {
  it('registers one guild command per pack, a subcommand per procedure, with typed options from its schema', () => {
    const cmds = fake.commands.get(`guild:${GUILD}`)!;
    expect(cmds.map((c) => c.name).sort()).toEqual(rt.catalog.packs().sort());
    const ovs = cmds.find((c) => c.name === 'ovs');
    const flush = ovs.options.find((o: { name: string }) => o.name === 'flush');
    expect(flush).toMatchObject({ type: 1, options: [{ name: 'node', type: 3, required: true, autocomplete: true }] });
    const nova = cmds.find((c) => c.name === 'nova');
    const inspect = nova.options.find((o: { name: string }) => o.name === 'inspect-disk');
    expect(inspect.options).toEqual([
      expect.objectContaining({ name: 'instance', type: 3, required: true }),
      expect.objectContaining({ name: 'host', type: 3, required: false, autocomplete: true }),
    ]);
    const drain = nova.options.find((o: { name: string }) => o.name === 'drain');
    expect(drain.options).toContainEqual(expect.objectContaining({ name: 'block-migrate', type: 5, required: false }));
    expect(ovs.options.map((o: { name: string }) => o.name)).toEqual(expect.arrayContaining(['help', 'status', 'cancel']));
    expect(fake.identifies[0]).toMatchObject({ token: fake.botToken, intents: 1 });
  });

  it('autocompletes host options with the inventory hosts the procedure accepts', async () => {
    const ovs = await fake.interact(ix.autocomplete(ALICE, 'ovs', 'flush', 'node', ''));
    expect(ovs.response).toMatchObject({ type: 8, data: { choices: [{ value: 'node-3' }] } });
    const typed = await fake.interact(ix.autocomplete(ALICE, 'ovs', 'flush', 'node', 'c0'));
    expect(typed.response.data.choices).toEqual([]);
    const compute = await fake.interact(ix.autocomplete(ALICE, 'nova', 'inspect-disk', 'host', 'c', { instance: INSTANCE }));
    expect(compute.response.data.choices.map((c: { value: string }) => c.value)).toEqual(['c01']);
  });

  it('runs /ovs flush to its final status: plan card in the channel, every step in its thread, through 429s', async () => {
    const threadPosts = (method: string, path: string) => method === 'POST' && /^\/channels\/\d+\/messages$/.test(path) && path !== `/channels/${CHANNEL}/messages`;
    fake.rateLimit(threadPosts, 2);
    const limitedBefore = fake.limited;
    const answer = await fake.interact(ix.slash(ALICE, 'ovs', 'flush', { node: 'node-3' }));
    const runId = runIdOf(ephemeral(answer));
    const run = await finished(rt, runId);
    expect(run.status).toBe('succeeded');
    await fake.waitFor(() => statusOf(planOf(runId)).startsWith('succeeded') && threadOf(runId).some((m) => FakeDiscord.text(m).includes(`Run ${runId} succeeded`)), 'the final status');

    const plan = planOf(runId)!;
    expect(plan.embeds[0].title).toBe('ovs flush node-3');
    expect(FakeDiscord.text(plan)).toContain(`Requested by: <@${ALICE}>`);
    expect(FakeDiscord.text(plan)).toContain('Targets: node-3');
    expect(FakeDiscord.text(plan)).toContain(`Run: ${runId}`);
    expect(FakeDiscord.text(plan)).toContain('Fetch the vDisks on the Storage Router [read] · node-3 · `ovs vdisk list`');
    expect(plan.history.length).toBeGreaterThan(1);
    expect(fake.threads.get(plan.id)).toMatchObject({ parent: CHANNEL, name: `ovs flush node-3 · ${runId}` });

    // One message per step, posted once and ending in its final state.
    const leaves = Object.values(run.steps).filter((s) => s.kind !== 'forEach' && s.kind !== 'group');
    const thread = threadOf(runId);
    for (const s of leaves) {
      const mine = thread.filter((m) => FakeDiscord.text(m).includes(s.title));
      expect(mine, s.path).toHaveLength(1);
      expect(FakeDiscord.text(mine[0]!)).toContain(`✅ **${s.title}** succeeded`);
    }
    expect(fake.limited - limitedBefore).toBeGreaterThanOrEqual(2);
    expect(await rt.metrics.text().then((m) => m.body)).toMatch(/^runbook_chat_api_calls_total\{platform="discord",method="POST \/channels\/:id\/messages",outcome="rate_limited"\} [2-9]\d*$/m);
    // Nothing after the first answer used the interaction token; everything else went with the bot token.
    const withToken = fake.requests.filter((r) => r.path.includes(answer.token));
    expect(withToken.map((r) => r.path)).toEqual(answer.response.type === 5 ? [expect.stringContaining('/callback'), expect.stringContaining('@original')] : [expect.stringContaining('/callback')]);
    expect(fake.requests.filter((r) => r.path.startsWith('/channels/')).every((r) => r.auth === `Bot ${fake.botToken}`)).toBe(true);
  });

  it('answers bad input and people who may not run with ephemeral replies that say how to fix it', async () => {
    expect(ephemeral(await fake.interact(ix.slash(ALICE, 'ovs', 'flush', { node: 'node-9' })))).toMatch(/^unknown host "node-9"; did you mean "node-3"\? The hosts in @ovs are: node-3/);
    expect(ephemeral(await fake.interact(ix.slash(ALICE, 'ovs', 'flush', { node: 'c01' })))).toMatch(/"c01" cannot be the <node> of ovs flush: it is not in @ovs/);
    expect(ephemeral(await fake.interact(ix.slash(ALICE, 'nova', 'inspect-disk', { instance: 'vm-1' })))).toMatch(/an instance name looks like instance-0000274a[\s\S]*Usage: nova inspect-disk/);
    expect(ephemeral(await fake.interact(ix.slash(DAVE, 'ovs', 'flush', { node: 'node-3' })))).toMatch(/^Not allowed: /);
    expect(ephemeral(await fake.interact(ix.slash(STRANGER, 'ovs', 'flush', { node: 'node-3' })))).toContain(`add \`discord: ${STRANGER}\``);
    expect(ephemeral(await fake.interact(ix.slash(ALICE, 'ovs', 'help', {})))).toContain('ovs flush <node>');
  });

  it('approval: the requester and people not allowed are told why; an approver approves and the buttons give way to who decided', async () => {
    const runId = await startRun(ALICE, 'nova', 'inspect-disk', { instance: INSTANCE });
    const gate = await openGate(runId);
    const text = FakeDiscord.text(gate);
    expect(text).toContain('c01$ virsh suspend');
    expect(text).toContain('🔒 sensitive');
    expect(text).toContain(`May decide: <@${BOB}>, <@${CAROL}>`);
    expect(text).toMatch(/Expires: <t:\d+:t>/);
    expect(gate.content).toContain(`<@${BOB}>`);
    expect(buttons(gate).map((b) => b.label)).toEqual(['Approve', 'Reject']);
    const approve = buttons(gate)[0]!.custom_id;

    expect(ephemeral(await fake.interact(ix.click(ALICE, gate, approve)))).toMatch(/alice requested run \S+ and cannot approve its own sensitive step/);
    expect(ephemeral(await fake.interact(ix.click(DAVE, gate, approve)))).toMatch(/^Not allowed: dave may not approve/);
    expect(ephemeral(await fake.interact(ix.click(BOB, gate, approve)))).toBe('Recorded: approve by bob.');

    expect((await finished(rt, runId)).status).toBe('succeeded');
    await fake.waitFor(() => gate.components.length === 0 && statusOf(planOf(runId)).startsWith('succeeded'), 'the decided gate and final status');
    expect(FakeDiscord.text(gate)).toMatch(new RegExp(`Approved by <@${BOB}> at <t:\\d+:t>`));
    expect(ephemeral(await fake.interact(ix.click(CAROL, gate, approve)))).toMatch(/has already ended \(succeeded\)/);
    expect(threadOf(runId).filter((m) => m.history.some((h) => JSON.stringify(h.components ?? []).includes('rb:approve:')))).toHaveLength(1);
  });

  it('refusal: Reject opens a modal for the reason, and the run ends rejected with its finally steps', async () => {
    const runId = await startRun(ALICE, 'nova', 'inspect-disk', { instance: INSTANCE });
    const gate = await openGate(runId);
    const reject = buttons(gate)[1]!.custom_id;
    expect(ephemeral(await fake.interact(ix.click(DAVE, gate, reject)))).toMatch(/^Not allowed: dave may not reject/);
    const modal = await fake.interact(ix.click(CAROL, gate, reject));
    expect(modal.response).toMatchObject({ type: 9, data: { title: 'Reject: say why', custom_id: reject.replace(/^rb:/, 'rbm:') } });
    expect(ephemeral(await fake.interact(ix.modalSubmit(CAROL, gate, modal.response.data.custom_id, { reason: 'not during the incident' })))).toBe('Recorded: reject by carol.');

    const run = await finished(rt, runId);
    expect(run.status).toBe('rejected');
    await fake.waitFor(() => gate.components.length === 0 && statusOf(planOf(runId)).startsWith('rejected') && threadOf(runId).some((m) => FakeDiscord.text(m).includes(`Run ${runId} rejected`)), 'the rejection in the thread and on the plan card');
    expect(FakeDiscord.text(gate)).toMatch(new RegExp(`Rejected by <@${CAROL}> at <t:\\d+:t>: not during the incident`));
    // The finally steps ran and reported: nothing was suspended, so nothing needed resuming.
    expect(threadOf(runId).some((m) => /Resume the instance\*\* skipped/.test(FakeDiscord.text(m)))).toBe(true);
  });

  it('work that misses the answer deadline is deferred at once, then completed with the interaction token', async () => {
    const rest = new REST({ api: fake.restUrl }).setToken(fake.botToken);
    const slowChat: ChatService = Object.assign(Object.create(rt.chat) as ChatService, {
      command: async (...a: Parameters<ChatService['command']>) => {
        await sleep(100);
        return rt.chat.command(...a);
      },
    });
    const handler = new InteractionHandler({ chat: slowChat, catalog: rt.catalog, inventory: rt.inventory, policy: rt.policy, store: rt.store, rest, applicationId: fake.applicationId, ackDeadlineMs: 0 });
    const payload = ix.slash(ALICE, 'ovs', 'flush', { node: 'node-9' });
    const rec = fake.issue(payload);
    await handler.handle(payload as never, async (response) => {
      await rest.post(Routes.interactionCallback(payload.id, payload.token), { body: response, auth: false });
    });
    expect(rec.response).toEqual({ type: 5, data: { flags: 64 } });
    expect(rec.original.content).toMatch(/^unknown host "node-9"/);
  });

  describe('POST /discord/interactions', () => {
    const post = (body: string, headers: Record<string, string>) => fetch(`http://127.0.0.1:${http.port}/discord/interactions`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    const signed = (payload: unknown, key = keys.privateKey) => {
      const body = JSON.stringify(payload);
      const timestamp = String(Math.floor(Date.now() / 1000));
      return post(body, { 'x-signature-ed25519': sign(null, Buffer.from(timestamp + body), key).toString('hex'), 'x-signature-timestamp': timestamp });
    };

    it('answers a signed PING with PONG and a signed command like the gateway does', async () => {
      const pong = await signed({ id: '1', type: 1, application_id: fake.applicationId, token: 'ping', version: 1 });
      expect(pong.status).toBe(200);
      expect(await pong.json()).toEqual({ type: 1 });
      const payload = ix.slash(ALICE, 'ovs', 'flush', { node: 'node-9' });
      fake.issue(payload);
      const res = await signed(payload);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ type: 4, data: { flags: 64, content: expect.stringMatching(/^unknown host "node-9"/) } });
    });

    it('refuses a forged or unsigned request with 401', async () => {
      const forged = await signed({ id: '2', type: 1, application_id: fake.applicationId, token: 'x', version: 1 }, generateKeyPairSync('ed25519').privateKey);
      expect(forged.status).toBe(401);
      const body = JSON.stringify({ id: '3', type: 1 });
      expect((await post(body, {})).status).toBe(401);
      const timestamp = String(Math.floor(Date.now() / 1000));
      const sig = sign(null, Buffer.from(timestamp + body), keys.privateKey).toString('hex');
      expect((await post(body.replace('"3"', '"4"'), { 'x-signature-ed25519': sig, 'x-signature-timestamp': timestamp })).status).toBe(401);
    });

    it('refuses a correctly signed request replayed more than 5 minutes later, or dated ahead, with 401', async () => {
      const body = JSON.stringify({ id: '5', type: 1, application_id: fake.applicationId, token: 'x', version: 1 });
      const at = (offsetS: number) => {
        const timestamp = String(Math.floor(Date.now() / 1000) + offsetS);
        return post(body, { 'x-signature-ed25519': sign(null, Buffer.from(timestamp + body), keys.privateKey).toString('hex'), 'x-signature-timestamp': timestamp });
      };
      const stale = await at(-330);
      expect(stale.status).toBe(401);
      expect(await stale.json()).toEqual({ error: "request timestamp is more than 5 minutes from the server's clock" });
      expect((await at(330)).status).toBe(401);
      // Within the window either way, it is answered.
      expect((await at(-240)).status).toBe(200);
      expect((await at(60)).status).toBe(200);
      // The operator is told, once per refusal, with how far off the timestamp was.
      const refusals = logged.filter((l) => l.adapter === 'discord' && typeof l.skewSeconds === 'number');
      expect(refusals.map((l) => Math.sign(l.skewSeconds!))).toEqual([1, -1]);
      logged.splice(0, logged.length, ...logged.filter((l) => !refusals.includes(l)));
    });
  });

  it('a run that outlives its 15-minute interaction token keeps reporting, through a bot restart, without that token', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    try {
      const first = await fake.interact(ix.slash(ALICE, 'nova', 'inspect-disk', { instance: INSTANCE }));
      const runId = runIdOf(ephemeral(first));
      const gate = await openGate(runId);
      const registrations = () => fake.requests.filter((r) => r.method === 'PUT' && r.path === `/applications/${fake.applicationId}/guilds/${GUILD}/commands`).map((r) => JSON.stringify(r.body));

      // The bot restarts while the run waits, and a quarter of an hour and more goes by.
      await adapters.stop();
      adapters = await start();
      // Registering again at start-up sends the same commands: a no-op for Discord.
      const [firstRegistration, again] = registrations().slice(-2);
      expect(registrations().length).toBeGreaterThanOrEqual(2);
      expect(again).toBe(firstRegistration);
      vi.setSystemTime(Date.now() + TOKEN_LIFETIME_MS + 60_000);
      const stale = await fetch(`${fake.restUrl}/v10/webhooks/${fake.applicationId}/${first.token}/messages/@original`, { method: 'PATCH', body: '{"content":"late"}', headers: { 'content-type': 'application/json' } });
      expect(stale.status).toBe(401);
      fake.expiredTokenUses.length = 0;
      const afterJump = fake.requests.length;

      expect(ephemeral(await fake.interact(ix.click(BOB, gate, buttons(gate)[0]!.custom_id)))).toBe('Recorded: approve by bob.');
      expect((await finished(rt, runId)).status).toBe('succeeded');
      await fake.waitFor(() => statusOf(planOf(runId)).startsWith('succeeded') && threadOf(runId).some((m) => FakeDiscord.text(m).includes(`Run ${runId} succeeded`)), 'the final status after the token expired');

      expect(fake.expiredTokenUses).toEqual([]);
      const later = fake.requests.slice(afterJump);
      expect(later.some((r) => r.path.includes(first.token))).toBe(false);
      expect(later.filter((r) => r.method === 'POST' && r.path === `/channels/${planOf(runId)!.id}/messages`).length).toBeGreaterThan(0);
      // The restarted bot edited the messages the first one posted: one gate message, one thread, one plan card.
      expect(FakeDiscord.text(gate)).toMatch(new RegExp(`Approved by <@${BOB}>`));
      expect(threadOf(runId).filter((m) => m.history.some((h) => JSON.stringify(h.components ?? []).includes('rb:approve:')))).toHaveLength(1);
      expect(fake.messagesIn(CHANNEL).filter((m) => FakeDiscord.text(m).includes(runId))).toHaveLength(1);
      expect(later.filter((r) => r.path.endsWith('/threads'))).toEqual([]);
      // The gateway session stayed alive meanwhile: heartbeats sent and acknowledged (op 1 / op 11).
      expect(fake.heartbeats).toBeGreaterThan(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
