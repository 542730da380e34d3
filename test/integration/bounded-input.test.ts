import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConsole } from '../../src/adapters/console/index.js';
import { startDiscord } from '../../src/adapters/discord/index.js';
import { startAdapters } from '../../src/adapters/index.js';
import { startHttp } from '../../src/http/surface.js';
import { discordEnv, postInteraction, slackInProcess } from '../helpers/chat.js';
import { runCli } from '../helpers/cli.js';
import { FakeDiscord, Interactions } from '../helpers/fake-discord.js';
import { FakeSlack, slackSignature, slashCommandBody } from '../helpers/fake-slack.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

/**
 * What a person can send, on every way in: a node set that would name millions of hosts, a 100 kB
 * argument, control characters, someone not in runbook.yaml, someone not allowed to run. Each gets
 * its answer, and nothing starts. No host is reached: every refusal comes before a step.
 */
const SIGNING = 'bounded-input-signing-secret';
const GUILD = '200000000000000001';
const CHANNEL = '300000000000000001';
const dir = mkdtempSync(join(tmpdir(), 'runbook-bounded-'));
const configPath = join(dir, 'runbook.yaml');
writeFileSync(
  configPath,
  `hosts:
${Array.from({ length: 6 }, (_, i) => `  node-${i + 1}: { address: 127.0.0.${11 + i}, user: lab, groups: [ovs, ${i < 3 ? 'ovs-master' : 'ovs-extra'}] }`).join('\n')}
ssh: { privateKeyPath: /nonexistent/id, knownHostsPath: /nonexistent/known_hosts }
people:
  alice: { roles: [operator], slack: U0ALICE, discord: "100000000000000001" }
  bob: { roles: [operator, approver], slack: U0BOB }
  dave: { roles: [viewer], slack: U0DAVE, discord: "100000000000000004" }
`,
);

const LONG = 'n'.repeat(100_000);
/** Each case: what is typed after the slash, and what the answer must say. */
const CASES: [string, string, RegExp][] = [
  ['millions of hosts', 'ops exec node-[1-99999999] -- uptime', /"ops exec node-\[1-99999999\] -- uptime" names more than 100000 hosts|names more than 100000 hosts/],
  ['millions of hosts, a few at a time', `ops exec ${Array.from({ length: 40 }, (_, i) => `n${i}[1-99999]`).join(',')} -- uptime`, /names more than 100000 hosts/],
  ['a 100 kB argument', `ovs flush ${LONG}`, /^the command is 100,0\d\d characters long; at most 8,192 are accepted$/],
  ['a control character', 'ovs flush node-3\u001b[2J', /^the command holds a control character \(U\+001B at position \d+\): type it again without it$/],
  ['an invisible direction mark', 'ops exec node-3 -- echo \u202Etxt.exe', /invisible direction mark/],
];

let rt: ReturnType<typeof testRuntime>;
let adapters: Awaited<ReturnType<typeof startAdapters>>;
let http: Awaited<ReturnType<typeof startHttp>>;
let fakeSlack: FakeSlack;
let fakeDiscord: FakeDiscord;
let ix: Interactions;
const prefix = uniquePrefix();
const keys = generateKeyPairSync('ed25519');

beforeAll(async () => {
  fakeSlack = await new FakeSlack().start();
  fakeDiscord = await new FakeDiscord().start();
  ix = new Interactions(fakeDiscord, GUILD, CHANNEL);
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', ...discordEnv(fakeDiscord, keys, GUILD) };
  rt = testRuntime(configPath, { env, prefix });
  adapters = await startAdapters(rt, [startConsole, slackInProcess(rt, { botToken: 'xoxb-bounded', signingSecret: SIGNING, apiUrl: fakeSlack.apiUrl }), (r) => startDiscord(r)]);
  http = await startHttp(rt, adapters.mounts, { auth: adapters.auth! });
});

afterAll(async () => {
  await http?.close();
  await adapters?.stop();
  await rt?.cleanup();
  await fakeSlack?.stop();
  await fakeDiscord?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const base = () => `http://127.0.0.1:${http.port}`;

/** `/<pack> <rest>` from a Slack user; the answer only they see. */
async function slack(user: string, typed: string): Promise<string> {
  const [pack = '', ...rest] = typed.split(' ');
  const channel = `C${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
  const body = slashCommandBody({ command: `/${pack}`, text: rest.join(' '), user, channel });
  const r = await fetch(`${base()}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...slackSignature(SIGNING, body) }, body });
  expect(r.status).toBe(200);
  const call = await until(`the answer in ${channel}`, () => fakeSlack.callsOf('chat.postEphemeral').find((c) => c.args.channel === channel));
  return String(call.args.text);
}

/** A Discord slash command through the signed interactions endpoint; the first answer. */
async function discord(user: string, pack: string, sub: string, options: Record<string, string>): Promise<string> {
  const payload = ix.slash(user, pack, sub, options);
  fakeDiscord.issue(payload);
  const r = await postInteraction(base(), payload, keys);
  return ((await r.json()) as { data: { content: string } }).data.content;
}

/** The console in the lab on loopback, as `person`. */
async function consoleAs(person: string, typed: string): Promise<string> {
  const r = await fetch(`${base()}/console/api/command`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ person, text: `/${typed}` }) });
  const j = (await r.json()) as { text?: string; error?: string };
  return j.text ?? j.error ?? '';
}

async function cli(person: string, typed: string): Promise<{ code: number; stderr: string }> {
  return runCli({ RUNBOOK_CONFIG: configPath, RUNBOOK_PREFIX: prefix }, 'run', typed, '--as', person);
}

describe('bounded input on every way in', () => {
  for (const [what, typed, answer] of CASES) {
    it(`${what}: a clear answer from Slack, the console and the CLI, and no run`, async () => {
      expect(await slack('U0ALICE', typed)).toMatch(answer);
      expect(await consoleAs('alice', typed)).toMatch(answer);
      const r = await cli('alice', typed);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toMatch(answer);
      expect(r.stderr.length).toBeLessThan(2_000);
      expect(await rt.store.list(10)).toEqual([]);
    });
  }

  it('Discord options that would name millions of hosts, or carry 100 kB or a control character, get an answer and no run', async () => {
    expect(await discord('100000000000000001', 'ops', 'exec', { targets: 'node-[1-99999999]', command: 'uptime' })).toMatch(/names more than 100000 hosts/);
    expect(await discord('100000000000000001', 'ovs', 'flush', { node: LONG })).toMatch(/^the command is 100,0\d\d characters long; at most 8,192 are accepted$/);
    expect(await discord('100000000000000001', 'ovs', 'flush', { node: 'node-3\u0000' })).toMatch(/holds a control character \(U\+0000/);
    expect(await rt.store.list(10)).toEqual([]);
  });

  it('someone not in runbook.yaml is told so, on every way in', async () => {
    expect(await slack('U0MALLORY', 'ovs flush node-3')).toBe("You (slack user U0MALLORY) are not in runbook.yaml's people, so you can only use help. Ask an admin to add `slack: U0MALLORY` to your entry under people.");
    expect(await discord('100000000000000666', 'ovs', 'flush', { node: 'node-3' })).toMatch(/^You \(discord user 100000000000000666\) are not in runbook.yaml's people/);
    expect(await consoleAs('mallory', 'ovs flush node-3')).toBe('unknown person "mallory": people in runbook.yaml are alice, bob, dave');
    expect(await consoleAs(LONG, 'ovs flush node-3')).toBe(`unknown person "${'n'.repeat(64)}…": people in runbook.yaml are alice, bob, dave`);
    const r = await cli('mallory', 'ovs flush node-3');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown person "mallory": people in runbook.yaml are alice, bob, dave/);
    expect(await rt.store.list(10)).toEqual([]);
  });

  it('someone not allowed to run gets no run, and the answer says who may', async () => {
    const refusal = /^(Not allowed: )?dave may not run "ovs flush": it needs one of the roles operator, admin, and dave has viewer\. Who may: alice, bob\.$/;
    expect(await slack('U0DAVE', 'ovs flush node-3')).toMatch(refusal);
    expect(await discord('100000000000000004', 'ovs', 'flush', { node: 'node-3' })).toMatch(refusal);
    expect(await consoleAs('dave', 'ovs flush node-3')).toMatch(refusal);
    const r = await cli('dave', 'ovs flush node-3');
    expect(r.code).toBe(3);
    expect(r.stderr.replace(/^not allowed: /, '').trim()).toMatch(refusal);
    expect(await rt.store.list(10)).toEqual([]);
  });
});
