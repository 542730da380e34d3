import { generateKeyPairSync, sign } from 'node:crypto';
import type { REST } from 'discord.js';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { commandsFor, commandText, hostChoices } from '../../../src/adapters/discord/commands.js';
import { discordPublicKey, isSignedByDiscord } from '../../../src/adapters/discord/signature.js';
import { DiscordProgress } from '../../../src/adapters/discord/progress.js';
import { decodeCustomId, encodeCustomId, gateRef, toDiscord } from '../../../src/adapters/discord/render.js';
import { gateMessage, plainStyle, stepMessage, type Message } from '../../../src/adapters/messages.js';
import type { Gate, Run, StampedEvent } from '../../../src/engine/types.js';
import { Inventory } from '../../../src/inventory.js';
import { defaultCatalog } from '../../../src/procedures/index.js';

const catalog = defaultCatalog();
const inventory = new Inventory({
  'node-3': { address: '127.0.0.3', port: 22, user: 'lab', groups: ['ovs', 'ovs-master'], vars: {} },
  'node-4': { address: '127.0.0.4', port: 22, user: 'lab', groups: ['ovs'], vars: {} },
  c01: { address: '127.0.0.11', port: 22, user: 'lab', groups: ['openstack', 'compute'], vars: {} },
  c02: { address: '127.0.0.12', port: 22, user: 'lab', groups: ['openstack', 'compute'], vars: {} },
});

type Opt = { name: string; description: string; required?: boolean; options?: Opt[]; choices?: { name: string; value: unknown }[] };

describe('discord commands from the catalog', () => {
  const cmds = commandsFor(catalog) as unknown as Opt[];

  it('stay within Discord limits: names, descriptions, 25 options, required first, 8000 characters a command', () => {
    const size = (o: Opt): number => o.name.length + o.description.length + (o.choices ?? []).reduce((n, c) => n + c.name.length + String(c.value).length, 0) + (o.options ?? []).reduce((n, x) => n + size(x), 0);
    const check = (o: Opt) => {
      expect(o.name).toMatch(/^[-_\p{Ll}\p{N}]{1,32}$/u);
      expect(o.description.length).toBeGreaterThan(0);
      expect(o.description.length).toBeLessThanOrEqual(100);
      expect(o.options?.length ?? 0).toBeLessThanOrEqual(25);
      const req = (o.options ?? []).map((x) => x.required === true);
      expect(req.indexOf(false) === -1 || req.lastIndexOf(true) < req.indexOf(false), o.name).toBe(true);
      o.options?.forEach(check);
    };
    for (const c of cmds) {
      check(c);
      expect(size(c)).toBeLessThanOrEqual(8000);
    }
  });

  it('turn the options back into the text the catalog parses', () => {
    const parse = (pack: string, sub: string, options: { name: string; type: number; value: string | number | boolean }[]) => catalog.parse(`${pack} ${commandText(catalog, pack, sub, options)}`, inventory).args;
    expect(parse('ovs', 'flush', [{ name: 'node', type: 3, value: 'node-3' }])).toEqual({ node: 'node-3' });
    expect(parse('nova', 'drain', [{ name: 'host', type: 3, value: 'c01' }, { name: 'to', type: 3, value: 'c02' }, { name: 'block-migrate', type: 5, value: true }])).toEqual({ host: 'c01', to: 'c02', blockMigrate: true });
    expect(parse('nova', 'drain', [{ name: 'host', type: 3, value: 'c01' }, { name: 'to', type: 3, value: 'c02' }, { name: 'block-migrate', type: 5, value: false }])).toMatchObject({ blockMigrate: false });
    expect(commandText(catalog, 'ovs', 'status', [{ name: 'run', type: 3, value: 'r-1' }])).toBe('status r-1');
    expect(commandText(catalog, 'ovs', 'help', [])).toBe('help');
  });

  it('autocomplete offers only the hosts the procedure accepts, filtered by what was typed', () => {
    const ask = (pack: string, sub: string, focused: string, value: string) =>
      hostChoices(catalog, inventory, { data: { name: pack, options: [{ type: 1, name: sub, options: [{ type: 3, name: focused, value, focused: true }] }] } } as never).map((c) => c.value);
    expect(ask('ovs', 'flush', 'node', '')).toEqual(['node-3', 'node-4']);
    expect(ask('ovs', 'flush', 'node', '4')).toEqual(['node-4']);
    expect(ask('nova', 'drain', 'to', 'c')).toEqual(['c01', 'c02']);
  });
});

describe('discord rendering', () => {
  const gate: Gate = {
    id: 'inspect@abc', kind: 'approval', stepPath: 'inspect', risk: 'sensitive', hash: 'abc', requestedAt: '2026-11-22T12:00:00.000Z', expiresAt: '2026-11-22T12:15:00.000Z', deciders: ['alice', 'bob'], status: 'open',
    steps: [{ path: 'inspect.suspend', title: 'Suspend the instance', kind: 'ssh', risk: 'destructive', host: 'c01', command: 'virsh suspend 30' }],
  };
  const style = { mention: (p: string) => (p === 'bob' ? '<@2>' : p === 'alice' ? '<@1>' : `@${p}`), time: (iso: string) => `<t:${Date.parse(iso) / 1000}:t>` };

  it('an open gate has Approve and Reject buttons whose ids say what they decide, and pings who may decide', () => {
    const m = toDiscord(gateMessage(gate, { id: 'r-1', requester: 'alice', procedure: 'nova inspect-disk' }, style));
    const rows = m.body.components as unknown as { components: { custom_id: string }[] }[];
    const ids = rows.flatMap((row) => row.components.map((b) => b.custom_id));
    expect(ids.map((id) => decodeCustomId(id))).toEqual([{ action: 'approve', runId: 'r-1', gateId: 'inspect@abc' }, { action: 'reject', runId: 'r-1', gateId: 'inspect@abc' }]);
    expect(m.body.content).toContain('<@2>');
    expect(m.body.allowed_mentions).toEqual({ parse: [], users: ['1', '2'] });
    expect(m.body.embeds![0]!.description).toContain('```\nc01$ virsh suspend 30\n```');
  });

  it('a decided gate is edited to no buttons and no pings', () => {
    const m = toDiscord(gateMessage({ ...gate, status: 'decided', decision: 'approve', decidedBy: 'bob', decidedAt: '2026-11-22T12:03:00.000Z' }, { id: 'r-1', requester: 'alice', procedure: 'nova inspect-disk' }, style));
    expect(m.body.components).toEqual([]);
    expect(m.body.content).toBe('');
    expect(m.body.embeds![0]!.description).toContain('-# Approved by <@2> at <t:');
  });

  it('long output fits the embed and is attached in full', () => {
    const long = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n');
    const e: StampedEvent = { type: 'step.finished', runId: 'r-1', at: '', path: 'list', title: 'ls', status: 'succeeded', kind: 'ssh', risk: 'read', exitCode: 0, outputTail: long };
    const m = toDiscord(stepMessage(e));
    expect(m.body.embeds![0]!.description!.length).toBeLessThanOrEqual(4096);
    expect(m.files).toEqual([{ name: 'list.log', data: Buffer.from(long) }]);
    expect(m.body.attachments).toEqual([{ id: 0, filename: 'list.log' }]);
  });

  it('a description too long for an embed is shortened, never rejected', () => {
    const m: Message = { key: 'k', place: 'thread', tone: 'info', summary: 's', blocks: [{ type: 'text', text: 'x'.repeat(3000) }, { type: 'code', text: 'y'.repeat(3000) }] };
    expect(toDiscord(m).body.embeds![0]!.description!.length).toBeLessThanOrEqual(4096);
    expect(encodeCustomId({ action: 'done', runId: 'r', gateId: 'g' }, 'rbm')).toBe('rbm:done:r:g');
  });

  it('a gate id too long for a custom id travels as a digest of it', () => {
    const gateId = `move[${'0123456789abcdef'.repeat(4)}].migrate[${'x'.repeat(30)}]@0123456789ab`;
    const id = encodeCustomId({ action: 'approve', runId: 'r-abcdef123456', gateId });
    expect(id.length).toBeLessThanOrEqual(100);
    expect(decodeCustomId(id)).toEqual({ action: 'approve', runId: 'r-abcdef123456', gateId: gateRef(gateId) });
  });
});

describe('discord request signatures', () => {
  it('accept what the application key signed, and nothing else', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const key = discordPublicKey(publicKey.export({ format: 'der', type: 'spki' }).subarray(-32).toString('hex'));
    const body = Buffer.from('{"type":1}');
    const sig = sign(null, Buffer.concat([Buffer.from('1700000000'), body]), privateKey).toString('hex');
    expect(isSignedByDiscord(key, sig, '1700000000', body)).toBe(true);
    expect(isSignedByDiscord(key, sig, '1700000001', body)).toBe(false);
    expect(isSignedByDiscord(key, sig, '1700000000', Buffer.from('{"type":2}'))).toBe(false);
    expect(isSignedByDiscord(key, 'zz', '1700000000', body)).toBe(false);
    expect(isSignedByDiscord(key, undefined, undefined, body)).toBe(false);
    expect(() => discordPublicKey('abc')).toThrow(/DISCORD_PUBLIC_KEY: must be the 64 hex characters/);
  });
});

describe('discord progress', () => {
  const base: Run = {
    id: 'r-1', procedure: 'ovs flush', args: { node: 'node-3' }, requester: 'alice', origin: { adapter: 'discord', channel: 'C1' }, createdAt: '2026-11-22T12:00:00.000Z', updatedAt: '', status: 'running',
    plan: [{ path: 'vdisks', title: 'Fetch the vDisks', kind: 'ssh', risk: 'read', gated: false, host: 'node-3', command: 'ovs vdisk list' }],
    notes: [], locks: [{ host: 'node-3', mode: 'write' }], steps: {}, captures: {}, expansions: {}, gates: {}, phase: 'main',
  };
  const ev = (e: Record<string, unknown>): StampedEvent => ({ runId: 'r-1', at: '2026-11-22T12:00:01.000Z', ...e }) as StampedEvent;

  function fixture(opts: { failFirstSave?: boolean } = {}) {
    const calls: { method: 'post' | 'patch'; route: string; body: { content?: string; nonce?: string; enforce_nonce?: boolean; embeds?: { fields?: { name: string; value: string }[] }[] }; files?: { name: string; data: Buffer }[] }[] = [];
    let id = 100;
    const rest = {
      post: async (route: string, o: { body: never; files?: never }) => (calls.push({ method: 'post', route, body: o.body, ...(o.files ? { files: o.files } : {}) }), { id: String(id++) }),
      patch: async (route: string, o: { body: never; files?: never }) => (calls.push({ method: 'patch', route, body: o.body, ...(o.files ? { files: o.files } : {}) }), {}),
    } as unknown as REST;
    const kv = new Map<string, string>();
    let fail = opts.failFirstSave ?? false;
    const hset = async (k: string, f: string, v: string) => {
      if (fail) {
        fail = false;
        throw new Error('redis went away');
      }
      kv.set(`${k}|${f}`, v);
    };
    const redis = { hget: async (k: string, f: string) => kv.get(`${k}|${f}`) ?? null, hset, expire: async () => 1 } as unknown as Redis;
    const stored = new Map([['r-1/0123456789abcdef', Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff])]]);
    const getFile = async (runId: string, fid: string) => stored.get(`${runId}/${fid}`);
    const progress = new DiscordProgress({ rest, redis, prefix: 't', style: plainStyle, log: pino({ level: 'silent' }), planEditIntervalMs: 60_000, getFile });
    return { calls, progress };
  }

  it('posts the plan card, starts its thread, and edits a message whose key was posted before instead of posting it again', async () => {
    const { calls, progress } = fixture();
    await progress.deliver(base, ev({ type: 'run.planned', plan: base.plan, notes: [] }));
    const started = ev({ type: 'step.started', path: 'vdisks', title: 'Fetch the vDisks', kind: 'ssh', risk: 'read', host: 'node-3', command: 'ovs vdisk list', attempt: 1 });
    await progress.deliver(base, started);
    await progress.deliver(base, started);
    expect(calls.map((c) => `${c.method} ${c.route}`)).toEqual(['post /channels/C1/messages', 'post /channels/C1/messages/100/threads', 'post /channels/101/messages', 'patch /channels/101/messages/102']);
  });

  it('attaches the bytes of a file a step fetched from its host, and says so when the file is no longer kept', async () => {
    const { calls, progress } = fixture();
    const finished = (fid: string) =>
      ev({ type: 'step.finished', path: 'collect', title: 'Collect the logs', kind: 'ssh', risk: 'read', status: 'succeeded', host: 'node-3', exitCode: 0, attachment: { name: 'ovs-node-3-logs.tar.gz', path: '/tmp/ovs-node-3-logs.tar.gz', bytes: 5, id: fid } });
    await progress.deliver(base, finished('0123456789abcdef'));
    const sent = calls.at(-1)!;
    expect(sent.files).toEqual([{ name: 'ovs-node-3-logs.tar.gz', data: Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff]) }]);
    expect(JSON.stringify(sent.body)).toContain('/tmp/ovs-node-3-logs.tar.gz from node-3 (5 bytes) is attached');
    await progress.deliver(base, { ...finished('fedcba9876543210'), path: 'collect-2' } as StampedEvent);
    expect(calls.at(-1)!.files).toBeUndefined();
    expect(JSON.stringify(calls.at(-1)!.body)).toContain('ovs-node-3-logs.tar.gz is no longer kept (files are kept 7 days)');
  });

  it('coalesces status edits of the plan card, and always sends the final one', async () => {
    const { calls, progress } = fixture();
    await progress.deliver(base, ev({ type: 'run.planned', plan: base.plan, notes: [] }));
    for (let i = 1; i <= 30; i++) await progress.deliver({ ...base, steps: { vdisks: { path: 'vdisks', title: 'Fetch the vDisks', kind: 'ssh', risk: 'read', status: 'running', attempts: 1 } } }, ev({ type: 'step.progress', path: 'vdisks', message: `${i}`, done: i, total: 30 }));
    await new Promise((r) => setTimeout(r, 20));
    const done: Run = { ...base, status: 'succeeded', finishedAt: '2026-11-22T12:00:09.000Z', steps: { vdisks: { path: 'vdisks', title: 'Fetch the vDisks', kind: 'ssh', risk: 'read', status: 'succeeded', attempts: 1 } } };
    await progress.deliver(done, ev({ type: 'run.finished', status: 'succeeded', durationMs: 9000 }));
    const planEdits = calls.filter((c) => c.method === 'patch' && c.route === '/channels/C1/messages/100');
    expect(planEdits).toHaveLength(2);
    expect(planEdits.at(-1)!.body.embeds![0]!.fields!.find((f) => f.name === 'Status')!.value).toMatch(/^succeeded · 1\/1 steps/);
  });

  it('a post whose id could not be noted is sent again with the same enforced nonce, so Discord returns the first', async () => {
    const { calls, progress } = fixture({ failFirstSave: true });
    const planned = ev({ type: 'run.planned', plan: base.plan, notes: [] });
    await expect(progress.deliver(base, planned)).rejects.toThrow('redis went away');
    await progress.deliver(base, planned);
    const posts = calls.filter((c) => c.route === '/channels/C1/messages');
    expect(posts).toHaveLength(2);
    expect(posts[0]!.body.enforce_nonce).toBe(true);
    expect(posts[1]!.body.nonce).toBe(posts[0]!.body.nonce);
    expect(posts[0]!.body.nonce!.length).toBeLessThanOrEqual(25);
  });
});
