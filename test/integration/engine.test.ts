import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadRunbookConfig } from '../../src/config/runbook-config.js';
import { NotAllowedError } from '../../src/errors.js';
import { SshPool } from '../../src/executors/ssh/pool.js';
import { clearFaults, readCalls, readHostState, setFault, setHostSetting, type MountsState, type NbdState, type Vdisk, type VirshState } from '../../src/lab/index.js';
import { describeFacts, detectFacts, parse, procedure } from '../../src/procedures/dsl.js';
import { Catalog, defaultCatalog } from '../../src/procedures/index.js';
import { sh } from '../../src/procedures/shell.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { finished, testRuntime, waitForEvent, watch } from '../helpers/runtime.js';

let lab: Awaited<ReturnType<typeof startTestLab>>;
let rt: ReturnType<typeof testRuntime>;

beforeAll(async () => {
  lab = await startTestLab({ only: ['node-3', 'node-4', 'c01'] });
  rt = testRuntime(lab.lab.configPath);
  rt.startWorker(4);
});

afterAll(async () => {
  await rt?.cleanup();
  await lab?.down();
});

const dir = () => lab.lab.dir;
const calls = (host: string, prefix: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(prefix));
const request = (text: string, person = 'alice') => rt.intake.request({ text, person, origin: { adapter: 'test' } });

describe('ovs flush', () => {
  it('flushes every vDisk of the storage router, one step per vDisk, and leaves no snapshot behind', async () => {
    const vdisks = readHostState<Vdisk[]>(dir(), 'node-3', 'vdisks')!;
    expect(vdisks.length).toBeGreaterThan(1);
    const run = await finished(rt, (await request('ovs flush node-3')).id);
    expect(run.status).toBe('succeeded');
    for (const v of vdisks) {
      for (const step of ['snapshot', 'in-backend', 'delete-snapshot']) expect(run.steps[`flush[${v.name}].${step}`]?.status).toBe('succeeded');
      expect(calls('node-3', `storagerouterclient create_snapshot ${v.volume_id} flush_snapshot`)).toHaveLength(1);
      expect(calls('node-3', `storagerouterclient delete_snapshot ${v.volume_id} flush_snapshot`)).toHaveLength(1);
    }
    expect(readHostState<Vdisk[]>(dir(), 'node-3', 'vdisks')!.every((v) => !v.snapshots.some((s) => s.name === 'flush_snapshot'))).toBe(true);
    expect(run.steps.flush?.progress).toEqual({ done: vdisks.length, failed: 0, total: vdisks.length });
  });

  it('polls until the snapshot is in the backend, saying so in the thread', async () => {
    setHostSetting(dir(), 'node-4', 'pendingChecks', 2);
    const run = await request('ovs flush node-4');
    const events = await watch(rt, run.id);
    const waits = events.filter((e) => e.type === 'step.progress' && e.message.startsWith("Sleeping 5 seconds until NON-disposable SCO's"));
    const n = readHostState<Vdisk[]>(dir(), 'node-4', 'vdisks')!.length;
    expect(waits).toHaveLength(2 * n);
    expect((await rt.store.load(run.id)).status).toBe('succeeded');
    setHostSetting(dir(), 'node-4', 'pendingChecks', 1);
  });

  it('fails the run and names the step when a snapshot cannot be made', async () => {
    setFault(dir(), 'node-4', { match: 'storagerouterclient create_snapshot', action: 'fail', stderr: 'volumedriver: backend unreachable', times: 1 });
    const run = await finished(rt, (await request('ovs flush node-4')).id);
    clearFaults(dir(), 'node-4');
    expect(run.status).toBe('failed');
    const failed = Object.values(run.steps).filter((s) => s.status === 'failed' && s.kind === 'ssh');
    expect(failed).toHaveLength(1);
    // The binding raises what it raises when the volumedriver cannot be reached; Python's traceback ends with it.
    const error = 'exit code 1: volumedriver.storagerouter.storagerouterclient.ClusterNotReachableException: volumedriver: backend unreachable';
    expect(failed[0]!.error).toBe(error);
    expect(run.error).toBe(`step "${failed[0]!.title}" failed on node-4 (${error})`);
    expect(failed[0]!.title).toMatch(/^Commencing flush to backend for volume 'vd-4-\d+'$/);
  });

  it('makes a second run on the same storage router wait for the first', async () => {
    setFault(dir(), 'node-3', { match: 'ovs-dal storagerouters', action: 'slow', delayMs: 600, times: 1 });
    const first = await request('ovs flush node-3');
    await waitForEvent(rt, first.id, (e) => e.type === 'step.started');
    const second = await request('ovs flush node-3', 'bob');
    const secondEvents = await watch(rt, second.id);
    const firstRun = await rt.store.load(first.id);
    expect(secondEvents.find((e) => e.type === 'lock.waiting')).toMatchObject({ hosts: ['node-3'], heldBy: [first.id] });
    expect(firstRun.status).toBe('succeeded');
    expect((await rt.store.load(second.id)).status).toBe('succeeded');
    const secondStart = Date.parse(secondEvents.find((e) => e.type === 'run.started')!.at);
    expect(secondStart).toBeGreaterThanOrEqual(Date.parse(firstRun.finishedAt!));
  });
});

describe('nova inspect-disk', () => {
  const virsh = () => readHostState<VirshState>(dir(), 'c01', 'virsh')!.domains.find((d) => d.name === 'instance-0000274a')!;
  const cleanedUp = () => {
    expect(virsh().state).toBe('running');
    expect(readHostState<NbdState>(dir(), 'c01', 'nbd') ?? {}).toEqual({});
    expect(readHostState<MountsState>(dir(), 'c01', 'mounts') ?? {}).toEqual({});
  };

  it('finds the compute node in nova, waits for approval, inspects, then unmounts, disconnects and resumes', async () => {
    const req = await request('nova inspect-disk instance-0000274a');
    expect(req.args).toEqual({ instance: 'instance-0000274a', host: 'c01', uuid: '3f57699a-e773-4650-a443-b4b37eed5a06' });
    const opened = await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    if (opened.type !== 'gate.opened') throw new Error('unreachable');
    expect(opened.gate.steps.map((s) => s.command)).toEqual([
      'virsh suspend 30',
      'modprobe nbd max_part=16',
      'qemu-nbd -r --force-share -c /dev/nbd0 /var/lib/nova/instances/3f57699a-e773-4650-a443-b4b37eed5a06/disk',
      'mount -o ro /dev/nbd0p1 /mnt/',
      'ls -lh /mnt/',
    ]);
    expect(opened.gate.deciders).not.toContain('alice');
    expect(calls('c01', 'virsh suspend')).toHaveLength(0);
    await rt.decisions.decide(req.id, 'bob', 'approve');
    const run = await finished(rt, req.id);
    expect(run.status).toBe('succeeded');
    expect(run.steps['inspect.list']!.outputTail).toMatch(/lost\+found/);
    expect(['umount', 'disconnect', 'resume'].map((s) => run.steps[s]!.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    cleanedUp();
  });

  it('a requester cannot approve their own sensitive step, and the refusal is audited', async () => {
    const req = await request('nova inspect-disk instance-0000274a', 'bob');
    await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    await expect(rt.decisions.decide(req.id, 'bob', 'approve')).rejects.toThrow(NotAllowedError);
    await expect(rt.decisions.decide(req.id, 'alice', 'approve')).rejects.toThrow(/alice may not approve/);
    const run = await rt.store.load(req.id);
    expect(run.status).toBe('waiting');
    expect(Object.values(run.gates)[0]!.status).toBe('open');
    const audit = await rt.store.audit();
    expect(audit.filter((e) => e.runId === req.id && e.type === 'gate.refused').map((e) => (e as { by: string }).by)).toEqual(['bob', 'alice']);
    await rt.decisions.decide(req.id, 'carol', 'reject', { reason: 'not during business hours' });
    const end = await finished(rt, req.id);
    expect(end.status).toBe('rejected');
    expect(end.error).toBe('rejected by carol: not during business hours');
    expect(['umount', 'disconnect', 'resume'].map((s) => end.steps[s]!.status)).toEqual(['skipped', 'skipped', 'skipped']);
    expect(calls('c01', 'virsh suspend')).toHaveLength(1);
  });

  it('a double click decides a gate once', async () => {
    const req = await request('nova inspect-disk instance-0000274a');
    await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    const clicks = await Promise.allSettled([rt.decisions.decide(req.id, 'bob', 'approve'), rt.decisions.decide(req.id, 'bob', 'approve'), rt.decisions.decide(req.id, 'carol', 'reject')]);
    expect(clicks.filter((c) => c.status === 'fulfilled')).toHaveLength(1);
    const run = await finished(rt, req.id);
    const events = (await rt.store.audit()).filter((e) => e.runId === req.id);
    expect(events.filter((e) => e.type === 'gate.decided')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'step.started' && e.path === 'inspect.suspend')).toHaveLength(run.status === 'succeeded' ? 1 : 0);
  });

  it('a failed mount still disconnects the nbd device and resumes the VM', async () => {
    setFault(dir(), 'c01', { match: 'mount -o ro /dev/nbd0p1', action: 'fail', stderr: 'mount: wrong fs type, bad option, bad superblock on /dev/nbd0p1', exitCode: 32 });
    const req = await request('nova inspect-disk instance-0000274a');
    await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    await rt.decisions.decide(req.id, 'carol', 'approve');
    const run = await finished(rt, req.id);
    clearFaults(dir(), 'c01');
    expect(run.status).toBe('failed');
    expect(run.steps['inspect.mount']).toMatchObject({ status: 'failed', exitCode: 32 });
    expect(run.steps['inspect.list']).toBeUndefined();
    expect(run.steps.umount!.status).toBe('skipped');
    expect(run.steps.disconnect!.status).toBe('succeeded');
    expect(run.steps.resume!.status).toBe('succeeded');
    cleanedUp();
  });

  it('a cancelled inspection kills the running command and still cleans up', async () => {
    setFault(dir(), 'c01', { match: 'ls', action: 'hang' });
    const req = await request('nova inspect-disk instance-0000274a');
    await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    await rt.decisions.decide(req.id, 'bob', 'approve');
    await waitForEvent(rt, req.id, (e) => e.type === 'step.started' && e.path === 'inspect.list');
    await rt.decisions.cancel(req.id, 'alice');
    const run = await finished(rt, req.id);
    clearFaults(dir(), 'c01');
    expect(run.status).toBe('cancelled');
    expect(run.error).toBe('cancelled by alice');
    expect(run.steps['inspect.list']!.status).toBe('cancelled');
    expect(['umount', 'disconnect', 'resume'].map((s) => run.steps[s]!.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    cleanedUp();
    const still = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`${dir()}/bin/ls`));
    expect(still).toEqual([]);
  });

  it('an approval nobody gives in time expires, and the run ends expired', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    cfg.policy.approvalExpiryMinutes = 0.005;
    const short = testRuntime(lab.lab.configPath, { config: cfg });
    short.startWorker(2);
    try {
      const req = await short.intake.request({ text: 'nova inspect-disk instance-0000274a', person: 'alice', origin: { adapter: 'test' } });
      const run = await finished(short, req.id);
      expect(run.status).toBe('expired');
      expect(Object.values(run.gates)[0]).toMatchObject({ status: 'decided', decision: 'expire', decidedBy: 'system' });
      await expect(short.decisions.decide(req.id, 'bob', 'approve')).rejects.toThrow(/already ended \(expired\)/);
    } finally {
      await short.cleanup();
    }
  });

  it('an approval does not count once what the step would run has changed', async () => {
    const noWorker = testRuntime(lab.lab.configPath);
    try {
      const req = await noWorker.intake.request({ text: 'nova inspect-disk instance-0000274a', person: 'alice', origin: { adapter: 'test' } });
      expect(await noWorker.engine.advance(req.id)).toBe('waiting');
      await noWorker.decisions.decide(req.id, 'bob', 'approve');
      // The inventory changes between approval and execution: c01 is now reached elsewhere.
      const cfg = loadRunbookConfig(lab.lab.configPath);
      cfg.hosts.c01!.address = '127.0.0.99';
      const moved = testRuntime(lab.lab.configPath, { config: cfg, prefix: noWorker.prefix });
      try {
        expect(await moved.engine.advance(req.id)).toBe('waiting');
      } finally {
        await moved.close();
      }
      const run = await noWorker.store.load(req.id);
      const gates = Object.values(run.gates);
      expect(gates.map((g) => g.status).sort()).toEqual(['open', 'void']);
      expect(gates.find((g) => g.status === 'open')!.steps[0]!.address).toMatch(/@127\.0\.0\.99:/);
      expect(run.steps['inspect.suspend']).toBeUndefined();
      await noWorker.decisions.cancel(req.id, 'alice');
      expect(await noWorker.engine.advance(req.id)).toBe('cancelled');
    } finally {
      await noWorker.cleanup();
    }
  });
});

describe('ssh safety', () => {
  it('refuses a host whose key does not match known_hosts, and runs nothing there', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const tampered = join(dir(), 'known_hosts.tampered');
    const lines = readFileSync(cfg.ssh.knownHostsPath, 'utf8').split('\n');
    const node3 = lab.lab.hosts.find((h) => h.name === 'node-3')!;
    const c01 = lab.lab.hosts.find((h) => h.name === 'c01')!;
    const c01Key = lines.find((l) => l.startsWith(`[${c01.address}]:`))!.split(' ').slice(1).join(' ');
    writeFileSync(tampered, lines.map((l) => (l.startsWith(`[${node3.address}]:`) ? `[${node3.address}]:${node3.port} ${c01Key}` : l)).join('\n'));
    cfg.ssh.knownHostsPath = tampered;
    const before = readCalls(dir(), 'node-3').length;
    const bad = testRuntime(lab.lab.configPath, { config: cfg });
    bad.startWorker(1);
    try {
      const req = await bad.intake.request({ text: 'ovs flush node-3', person: 'alice', origin: { adapter: 'test' } });
      const run = await finished(bad, req.id);
      expect(run.status).toBe('failed');
      expect(run.steps.detect!.error).toMatch(/^HOST KEY OF node-3 \(\[127\.0\.0\.\d+\]:\d+\) HAS CHANGED: it presented SHA256:/);
      expect(readCalls(dir(), 'node-3').length).toBe(before);
    } finally {
      await bad.cleanup();
    }
  });

  it('refuses a host missing from known_hosts', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const empty = join(dir(), 'known_hosts.empty');
    writeFileSync(empty, '');
    const pool = new SshPool({ ...cfg.ssh, knownHostsPath: empty });
    try {
      const h = cfg.hosts['c01']!;
      await expect(pool.exec({ name: 'c01', ...h }, 'true')).rejects.toThrow(/host key of c01 .* is not in .*known_hosts.empty; refusing to connect/);
    } finally {
      await pool.close();
    }
  });

  it('never executes shell metacharacters in an interpolated value', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const pool = new SshPool(cfg.ssh);
    const marker = join(dir(), 'pwned');
    const evil = `x; touch ${marker} $(touch ${marker}) \`touch ${marker}\` | touch ${marker} && touch ${marker} 'q'`;
    try {
      const res = await pool.exec({ name: 'c01', ...cfg.hosts['c01']! }, sh`printf %s ${evil}`.text);
      expect(res.exitCode).toBe(0);
      expect(res.stdout).toBe(evil);
      expect(existsSync(marker)).toBe(false);
    } finally {
      await pool.close();
    }
  });

  it('reuses one connection per host for many commands, within MaxSessions', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const pool = new SshPool(cfg.ssh);
    const target = { name: 'c01', ...cfg.hosts['c01']! };
    try {
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => pool.exec(target, `echo ${i}`)));
      expect(results.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 25 }, (_, i) => String(i)));
      expect(pool.stats()).toEqual({ connections: 1, channels: 0, queued: 0 });
    } finally {
      await pool.close();
    }
  });

  it('runs a command as `ssh host cmd` does: no terminal, and its input ends at once, so a program that reads it never waits', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const pool = new SshPool(cfg.ssh);
    try {
      // With the input left open, `read` would wait for the 10-minute timeout; it reads end-of-file (status 1).
      const res = await pool.exec({ name: 'c01', ...cfg.hosts['c01']! }, 'read line; echo "read: $?"; [ -t 0 ] || echo "no terminal"', { timeoutMs: 600_000 });
      expect(res.stdout).toBe('read: 1\nno terminal\n');
    } finally {
      await pool.close();
    }
  });

  it('sends a script on the standard input of an interpreter, then end-of-file', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const pool = new SshPool(cfg.ssh);
    try {
      const script = 'import sys\nprint("flush %s on %s" % (sys.argv[1], sys.stdin.read() or "EOF"))\n';
      const res = await pool.exec({ name: 'c01', ...cfg.hosts['c01']! }, sh`python3 - ${'vd-3-01'}`.text, { stdin: script });
      expect(res).toMatchObject({ exitCode: 0, stdout: 'flush vd-3-01 on EOF\n' });
    } finally {
      await pool.close();
    }
  });

  it('kills a command that runs past its timeout', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const pool = new SshPool(cfg.ssh);
    try {
      await expect(pool.exec({ name: 'c01', ...cfg.hosts['c01']! }, 'lab-sleep 30', { timeoutMs: 300 })).rejects.toThrow(/ran past its 300 ms timeout and was killed/);
      const last = readCalls(dir(), 'c01').filter((c) => c.argv[0] === 'lab-sleep').at(-1);
      expect(last?.exit).toBeGreaterThan(128);
    } finally {
      await pool.close();
    }
  });

});

describe('files a step attaches', () => {
  const collect = procedure({
    pack: 'test',
    name: 'collect',
    summary: 'collect an archive and attach it',
    usage: 'test collect <node> <path>',
    examples: [],
    source: 'test',
    args: z.object({ node: z.string(), path: z.string() }),
    positional: ['node', 'path'],
    hosts: { node: {} },
    // As `ovs collect logs` does, the step prints where it put the archive; attach reads it from the step's own capture.
    steps: [{ kind: 'ssh', id: 'collect', title: 'Collect the logs', risk: 'read', host: (ctx) => ctx.args.node, command: (ctx) => sh`echo ${ctx.args.path}`, capture: parse.text(), attach: (ctx) => ctx.capture<string>('collect') }],
  });
  const withCollect = (maxAttachmentBytes?: number) => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    if (maxAttachmentBytes) cfg.ssh.maxAttachmentBytes = maxAttachmentBytes;
    const r = testRuntime(lab.lab.configPath, { config: cfg, catalog: new Catalog([...defaultCatalog().all(), collect]) });
    r.startWorker(1);
    return r;
  };
  /** A file of node-3's fake root, as a tool there would have written it. */
  const put = (path: string, bytes: Buffer) => {
    const real = runtime.realPath(dir(), 'node-3', path);
    mkdirSync(dirname(real), { recursive: true });
    writeFileSync(real, bytes);
  };

  it('fetches the file over the same connection, byte for byte, keeps it with the run and hands it out from the CLI', async () => {
    const bytes = randomBytes(200_000);
    put('/var/tmp/ovs-node-3-logs.tar.gz', bytes);
    const r = withCollect();
    try {
      const run = await finished(r, (await r.intake.request({ text: 'test collect node-3 /var/tmp/ovs-node-3-logs.tar.gz', person: 'alice', origin: { adapter: 'test' } })).id);
      expect(run.status).toBe('succeeded');
      const att = run.steps.collect!.attachment!;
      expect(att).toMatchObject({ name: 'ovs-node-3-logs.tar.gz', path: '/var/tmp/ovs-node-3-logs.tar.gz', bytes: bytes.length });
      expect((await r.store.getFile(run.id, att.id))!.equals(bytes)).toBe(true);
      const out = join(dir(), 'fetched.tar.gz');
      const cli = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: r.prefix }, 'attachment', run.id, '--out', out);
      expect(cli.code).toBe(0);
      expect(readFileSync(out).equals(bytes)).toBe(true);
    } finally {
      await r.cleanup();
    }
  });

  it('leaves a file over the bound on the host and says where, without failing the step', async () => {
    put('/var/tmp/big.tar.gz', randomBytes(5_000));
    const r = withCollect(1_000);
    try {
      const run = await finished(r, (await r.intake.request({ text: 'test collect node-3 /var/tmp/big.tar.gz', person: 'alice', origin: { adapter: 'test' } })).id);
      expect(run.status).toBe('succeeded');
      expect(run.steps.collect!.attachment).toBeUndefined();
      expect(run.steps.collect!.reason).toMatch(/^\/var\/tmp\/big\.tar\.gz is larger than 1000 bytes, the most a step attaches \(ssh\.maxAttachmentBytes\): it stays on node-3; copy it with scp \S+@127\.0\.0\.\d+:\/var\/tmp\/big\.tar\.gz \.$/);
    } finally {
      await r.cleanup();
    }
  });

  it('fails the step, naming the file, when the file is not there', async () => {
    const r = withCollect();
    try {
      const run = await finished(r, (await r.intake.request({ text: 'test collect node-3 /var/tmp/nothing.tar.gz', person: 'alice', origin: { adapter: 'test' } })).id);
      expect(run.status).toBe('failed');
      expect(run.steps.collect!.error).toBe('the file to attach: cannot read /var/tmp/nothing.tar.gz on node-3: cat: /var/tmp/nothing.tar.gz: No such file or directory');
    } finally {
      await r.cleanup();
    }
  });
});

describe('steps that differ between real hosts', () => {
  const restart = procedure({
    pack: 'test',
    name: 'restart',
    summary: 'restart the workers, as the host manages services',
    usage: 'test restart <node>',
    examples: [],
    source: 'test',
    args: z.object({ node: z.string() }),
    positional: ['node'],
    hosts: { node: {} },
    steps: [
      detectFacts({ host: (ctx) => ctx.args.node }),
      {
        kind: 'ssh',
        id: 'which',
        title: 'Say which service manager runs',
        risk: 'read',
        host: (ctx) => ctx.args.node,
        command: (ctx) => sh`echo ${ctx.facts(ctx.args.node).init}`,
        variant: (ctx) => describeFacts(ctx.facts(ctx.args.node)),
        reference: 'status ovs-workers',
      },
    ],
  });

  it('detects the host, keeps its facts for the run and the next plans, and draws the plan again with the command that runs', async () => {
    const r = testRuntime(lab.lab.configPath, { catalog: new Catalog([...defaultCatalog().all(), restart]) });
    r.startWorker(1);
    try {
      const req = await r.intake.request({ text: 'test restart node-4', person: 'alice', origin: { adapter: 'test' } });
      expect(req.plan.find((p) => p.path === 'which')).toMatchObject({ after: 'after detecting node-4', reference: 'status ovs-workers' });
      const run = await finished(r, req.id);
      expect(run.status).toBe('succeeded');
      const facts = run.facts!['node-4']!;
      expect(facts).toMatchObject({ source: 'run', init: expect.stringMatching(/^(systemd|upstart|sysv)$/) });
      expect(run.steps.which!.outputTail!.trim()).toBe(facts.init);
      expect(run.plan.find((p) => p.path === 'which')).toMatchObject({ command: `echo ${facts.init}`, variant: describeFacts(facts), reference: 'status ovs-workers' });
      // The next plan on this host names the command at once, from the cache.
      const next = await r.intake.prepare({ text: 'test restart node-4', person: 'alice', origin: { adapter: 'test' } });
      expect(next.run.facts!['node-4']).toMatchObject({ source: 'cache', init: facts.init });
      expect(next.run.plan.find((p) => p.path === 'which')).toMatchObject({ command: `echo ${facts.init}` });
    } finally {
      await r.cleanup();
    }
  });
});
