import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunbookConfig } from '../../src/config/runbook-config.js';
import { isTerminal, type Gate, type Run } from '../../src/engine/types.js';
import { SshPool } from '../../src/executors/ssh/pool.js';
import { clearFaults, readCalls, readHostState, readServices, setFault, setHostSetting, setService as setHostService, startHost, type ServiceStatus, type Vdisk } from '../../src/lab/index.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

/**
 * The ovs pack end to end from the CLI (`runbook run … --json`), on a lab of two masters (node-1,
 * node-2) and one extra (node-4). Manual steps are answered from here through the Runtime API,
 * playing the person who powers nodes on.
 */
const CLI = resolve('dist/cli.js');
const NODES = ['node-1', 'node-2', 'node-4'];

let lab: Awaited<ReturnType<typeof startTestLab>>;
let driver: ReturnType<typeof testRuntime>;
const prefix = uniquePrefix();
const dir = () => lab.lab.dir;

const runbook = (...args: string[]) => runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix }, ...args);

interface RunJson {
  id: string;
  status: string;
  error?: string;
  steps: { id: string; title: string; risk: string; status: string; exitCode?: number }[];
}

/**
 * `runbook run "<text>" --as alice --approve-as bob --json`, answering every manual step as bob
 * (after `onManual`, which plays what the person does). Returns the CLI's JSON and the stored run.
 */
async function run(text: string, onManual: (g: Gate) => Promise<void> | void = () => undefined): Promise<{ code: number; out: RunJson; run: Run; manual: string[]; stderr: string }> {
  const child = runbook('run', text, '--as', 'alice', '--approve-as', 'bob', '--json');
  let ended = false;
  void child.finally(() => (ended = true));
  const answered: string[] = [];
  while (!ended) {
    for (const r of await driver.store.list(50)) {
      if (isTerminal(r.status)) continue;
      const full = await driver.store.load(r.id);
      for (const g of Object.values(full.gates)) {
        if (g.kind !== 'manual' || g.status !== 'open' || answered.includes(g.id)) continue;
        answered.push(g.id);
        await onManual(g);
        await driver.decisions.decide(full.id, 'bob', 'done', { gateId: g.id });
      }
    }
    await sleep(150);
  }
  const r = await child;
  const out = JSON.parse(r.stdout) as RunJson;
  return { code: r.code, out, run: await driver.store.load(out.id), manual: answered.map((g) => g.replace(/@manual$/, '')), stderr: r.stderr };
}

const step = (out: RunJson, id: string) => out.steps.find((s) => s.id === id);
const calls = (host: string, prefix: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(prefix));
const services = (host: string) => readServices(dir(), host);
/** Sets a host's service state as a fault in the field would leave it. */
const setService = (host: string, name: string, state: ServiceStatus | undefined) => setHostService(dir(), host, name, state);

function answers(host: string): Promise<boolean> {
  const h = lab.lab.hosts.find((x) => x.name === host)!;
  return new Promise((ok) => {
    const s = connect({ host: h.address, port: h.port });
    s.once('connect', () => (s.destroy(), ok(true)));
    s.once('error', () => ok(false));
  });
}

/** A host that was shut down is off (every process of it ended) and answers no more. */
async function waitDown(host: string): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (readHostState<{ state: string }>(dir(), host, 'power')?.state === 'off' && !(await answers(host))) return true;
    await sleep(50);
  }
  return false;
}

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p tsconfig.build.json)`);
  // node-4 is a systemd host now; ovs restart-workers and the checks of ovs restart still type
  // upstart's `status|start|restart ovs-workers`: pinned to upstart here until the ovs procedures use
  // the host's own service manager.
  lab = await startTestLab({ only: NODES, profiles: { 'node-4': { init: 'upstart' } } });
  driver = testRuntime(lab.lab.configPath, { prefix });
  // Snapshots are in the backend at the first check: no 5-second waits in these runs.
  for (const n of NODES) setHostSetting(dir(), n, 'pendingChecks', 0);
});

afterAll(async () => {
  await driver?.cleanup();
  await lab?.down();
});

describe('the lab tools of the pages', () => {
  it('tail reads the fake root (a pipe goes to the real tail); the vPool test fails when the volumedriver is down', async () => {
    const cfg = loadRunbookConfig(lab.lab.configPath);
    const pool = new SshPool(cfg.ssh);
    const target = { name: 'node-4', ...cfg.hosts['node-4']! };
    try {
      expect((await pool.exec(target, "printf 'a\\nb\\n' | tail -n 1")).stdout).toBe('b\n');
      expect((await pool.exec(target, 'tail -n 2 /var/log/ovs/volumedriver/vpool1.log')).stdout.trim().split('\n')).toHaveLength(2);
      expect((await pool.exec(target, 'tail /var/log/ovs/nope.log')).stderr).toContain("tail: cannot open '/var/log/ovs/nope.log' for reading: No such file or directory");
      const etc = await pool.exec(target, 'touch /etc/runbook-lab-ovs-test');
      expect(etc.exitCode).toBe(1);
      expect(existsSync('/etc/runbook-lab-ovs-test')).toBe(false);
      setService('node-4', 'ovs-volumedriver_vpool1', 'stopped');
      const down = await pool.exec(target, 'truncate -s 10G /mnt/vpool1/test.raw');
      expect(down.exitCode).toBe(1);
      expect(down.stderr).toContain("truncate: cannot open '/mnt/vpool1/test.raw' for writing: Transport endpoint is not connected");
      expect(readHostState(dir(), 'node-4', 'files-written')).toBeUndefined();
    } finally {
      setService('node-4', 'ovs-volumedriver_vpool1', 'running');
      await pool.close();
    }
  });
});

describe('ovs services', () => {
  it('finds every service the page lists for a master and for an extra node (with its vPool)', async () => {
    for (const n of ['node-1', 'node-4']) {
      const r = await run(`ovs services ${n}`);
      expect(r.code).toBe(0);
      expect(r.out.status).toBe('succeeded');
    }
    expect(calls('node-4', 'ovs monitor services').length).toBeGreaterThan(0);
  });

  it('fails naming what is missing and what the page advises', async () => {
    setService('node-4', 'ovs-workers', 'stopped');
    setService('node-4', 'ovs-failovercache_vpool1', undefined);
    try {
      const r = await run('ovs services node-4');
      expect(r.code).toBe(1);
      expect(r.out.status).toBe('failed');
      const monitor = r.run.steps.monitor!;
      expect(monitor.error).toMatch(/^exit code 1: not running or missing on node-4 \(extra node, vPools vpool1\): ovs-workers ovs-failovercache_vpool1\./);
      expect(monitor.error).toContain('If needed, restart the workers');
      expect(monitor.outputTail).toContain('ovs-workers: halted');
    } finally {
      setService('node-4', 'ovs-workers', 'running');
      setService('node-4', 'ovs-failovercache_vpool1', 'running');
    }
  });
});

describe('ovs collect-logs, who-master, restart-workers, tail', () => {
  it('collects the logs into /var/tmp/ovs-<hostname>-logs.tar and reports the path', async () => {
    const r = await run('ovs collect-logs node-2');
    expect(r.out.status).toBe('succeeded');
    expect(r.run.captures.collect).toEqual({ archive: '/var/tmp/ovs-node-2-logs.tar' });
    expect(r.run.steps.collect!.outputTail).toContain('/var/tmp/ovs-node-2-logs.tar');
    expect(readFileSync(runtime.realPath(dir(), 'node-2', '/var/tmp/ovs-node-2-logs.tar'), 'utf8')).toContain('/var/log/ovs/celery.log');
  });

  it('names the Arakoon master of a database, and gives the page advice when there is none', async () => {
    const ok = await run('ovs who-master ovsdb');
    expect(ok.out.status).toBe('succeeded');
    expect(ok.run.args).toEqual({ database: 'ovsdb', node: 'node-1' });
    expect(ok.run.captures['who-master']).toBe('node-1');
    runtime.updateJson<Record<string, { master: string | null }>, void>(dir(), 'node-2', runtime.statePath(dir(), 'node-2', 'arakoon'), {}, (a) => {
      a.voldrv = { master: null };
    });
    const none = await run('ovs who-master voldrv --node node-2');
    expect(none.out.status).toBe('failed');
    expect(none.run.steps['who-master']!.outputTail).toContain('No Master');
    expect(none.run.steps['who-master']!.error).toMatch(/^exit code 1: The page: "Next, address issues with the Arakoon databases by checking the log\. A typical issue is the lack of a master\."/);
    const bad = await runbook('run', 'ovs who-master "ovsdb; reboot"', '--as', 'alice');
    expect(bad.code).toBe(2);
  });

  it('restarts the workers of a node, and fails when they do not come back', async () => {
    const running = await run('ovs restart-workers node-4');
    expect(running.out.status).toBe('succeeded');
    expect(running.out.steps.map((s) => `${s.id}:${s.status}`)).toEqual(['status:succeeded', 'restart:succeeded', 'start:skipped', 'check:succeeded']);
    expect(calls('node-4', 'restart ovs-workers')).toHaveLength(1);
    setService('node-4', 'ovs-workers', 'stopped');
    const stopped = await run('ovs restart-workers node-4');
    expect(stopped.out.steps.map((s) => `${s.id}:${s.status}`)).toEqual(['status:succeeded', 'restart:skipped', 'start:succeeded', 'check:succeeded']);
    expect(services('node-4')['ovs-workers']).toBe('running');
    setFault(dir(), 'node-4', { match: 'restart ovs-workers', action: 'fail', stderr: 'restart: Job failed to restart', times: 1 });
    const bad = await run('ovs restart-workers node-4');
    clearFaults(dir(), 'node-4');
    expect(bad.out.status).toBe('failed');
    expect(bad.run.steps.restart!.error).toMatch(/^exit code 1: The page: "In case there is an issue with Celery/);
    expect(bad.run.steps.restart!.outputTail).toContain('restart: Job failed to restart');
    expect(bad.run.steps.check).toBeUndefined();
  });

  it('tails a log of the page, and refuses logs the page does not list', async () => {
    const r = await run('ovs tail node-1 celery.log --lines 3');
    expect(r.out.status).toBe('succeeded');
    expect(r.run.steps.tail!.command).toBe('tail -n 3 /var/log/ovs/celery.log');
    expect(r.run.steps.tail!.outputTail!.trim().split('\n')).toHaveLength(3);
    const foc = await run('ovs tail node-4 foc_vpool1.log');
    expect(foc.out.status).toBe('succeeded');
    expect(foc.run.steps.tail!.outputTail).toContain('failovercache_vpool1');
    const passwd = await runbook('run', 'ovs tail node-1 ../../etc/passwd', '--as', 'alice');
    expect(passwd.code).toBe(2);
    expect(passwd.stderr).toMatch(/the logs are api\.log, arakoon\.log, celery\.log, dal\.log, django\.log, extensions\.log, lib\.log/);
    const novpool = await runbook('run', 'ovs tail node-1 vpool9.log', '--as', 'alice');
    expect(novpool.code).toBe(2);
    expect(novpool.stderr).toMatch(/node-1 serves no vPool "vpool9"/);
  });
});

describe('ovs shutdown and ovs restart', () => {
  it('refuses to leave half or fewer of the masters online, before anything runs', async () => {
    const before = readCalls(dir(), 'node-1').length;
    const r = await runbook('run', 'ovs shutdown node-1', '--as', 'alice', '--approve-as', 'bob', '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ovs shutdown refused: shutting down node-1 would leave 1 of the 2 master nodes online/);
    expect(readCalls(dir(), 'node-1').length).toBe(before);
    expect(await answers('node-1')).toBe(true);
  });

  it('shuts an extra node down: VMs stopped by a person, vDisks flushed, then shutdown -h now; the node goes down', async () => {
    const r = await run('ovs shutdown node-4');
    expect(r.out.status).toBe('succeeded');
    expect(r.manual).toEqual(['stop-vms']);
    const vdisks = readHostState<Vdisk[]>(dir(), 'node-4', 'vdisks')!;
    for (const v of vdisks) {
      expect(step(r.out, `flush[node-4].flush[${v.name}].snapshot`)?.status).toBe('succeeded');
      expect(step(r.out, `flush[node-4].flush[${v.name}].delete-snapshot`)?.status).toBe('succeeded');
    }
    expect(vdisks.every((v) => v.snapshots.length === 0)).toBe(true);
    expect(step(r.out, 'shutdown[node-4].halt')).toMatchObject({ status: 'succeeded', risk: 'destructive', exitCode: 0 });
    expect(await waitDown('node-4')).toBe(true);
    expect(readHostState<{ state: string; last: string }>(dir(), 'node-4', 'power')).toMatchObject({ state: 'off', last: 'shutdown -h now' });
    expect(await answers('node-1')).toBe(true);
    await startHost(dir(), 'node-4');
  });

  it('shuts the whole cluster down on purpose, extras first and masters last; ovs restart brings it back and checks it', async () => {
    const down = await run('ovs shutdown cluster');
    expect(down.out.status).toBe('succeeded');
    expect(down.run.args).toEqual({ nodes: NODES, cluster: true });
    expect(down.run.notes[0]).toMatch(/^The whole cluster goes down on purpose: all 3 nodes/);
    expect(Object.values(down.run.gates).filter((g) => g.kind === 'approval').map((g) => g.stepPath)).toEqual(['stop-vms', 'shutdown']);
    const halts = ['node-4', 'node-1', 'node-2'].map((n) => Date.parse(down.run.steps[`shutdown[${n}].halt`]!.finishedAt!));
    expect([...halts].sort((a, b) => a - b)).toEqual(halts);
    for (const n of NODES) expect(await waitDown(n)).toBe(true);

    // The person powers each node on when asked; the bot waits for SSH before the next master.
    const poweredOn: string[] = [];
    const up = await run('ovs restart', async (g) => {
      if (g.stepPath === 'backend') return;
      const hosts = g.stepPath === 'extras-power-on' ? ['node-4'] : [/^masters\[(.+)\]\.power-on$/.exec(g.stepPath)![1]!];
      for (const h of hosts) {
        poweredOn.push(h);
        await startHost(dir(), h);
      }
    });
    expect(up.out.status).toBe('succeeded');
    expect(up.manual).toEqual(['backend', 'masters[node-1].power-on', 'masters[node-2].power-on', 'extras-power-on']);
    expect(poweredOn).toEqual(['node-1', 'node-2', 'node-4']);
    expect(step(up.out, 'checks[node-1].cluster-status')?.status).toBe('succeeded');
    expect(step(up.out, 'checks[node-4].cluster-status')?.status).toBe('skipped');
    expect(step(up.out, 'checks[node-4].restart-workers')?.status).toBe('skipped');
    expect(up.run.captures['arakoon[ovsdb].who-master']).toBe('node-1');
    for (const n of NODES) {
      expect(readHostState<Record<string, number>>(dir(), n, 'files-written')).toEqual({ '/mnt/vpool1/test.raw': 10 * 1024 ** 3, '/mnt/vpool1/myvm.xml': 0 });
    }
  });

  it('restarts the workers where they are down, and names the failed check with the page advice', async () => {
    setService('node-4', 'ovs-workers', 'stopped');
    setService('node-2', 'rabbitmq-server', 'stopped');
    try {
      const r = await run('ovs restart');
      expect(r.out.status).toBe('failed');
      expect(step(r.out, 'checks[node-4].restart-workers')?.status).toBe('succeeded');
      expect(services('node-4')['ovs-workers']).toBe('running');
      const rabbit = r.run.steps['checks[node-2].rabbitmq']!;
      expect(rabbit.status).toBe('failed');
      // node-2 is a systemd host: `service rabbitmq-server status` is `systemctl status rabbitmq-server.service`.
      expect(rabbit.outputTail).toContain('Active: inactive (dead)');
      expect(rabbit.error).toMatch(/^exit code 3: The page: "First fix the issues with Nginx, Memcached and RabbitMQ by checking the relevant logs\. In case the RabbitMQ service isn't started, start the service on all nodes at the same time using `service rabbitmq-server start`/);
      expect(r.out.error).toContain('service rabbitmq-server status');
      // Nothing further down the stack runs while a service check fails.
      expect(calls('node-1', 'truncate').length).toBe(1);
    } finally {
      setService('node-2', 'rabbitmq-server', 'running');
    }
  });
});
