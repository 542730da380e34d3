import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCalls, readHostState, readServices, setHostSetting, setService, startHost, type Vdisk } from '../../src/lab/index.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { cli, statuses } from '../helpers/cli.js';
import { startTestConsole } from '../helpers/console.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { uniquePrefix } from '../helpers/runtime.js';

/**
 * Every procedure of the ovs pack end to end, on systemd storage routers (node-1, node-2: 2.9
 * masters; node-4: a 2.9 extra) and upstart ones (node-3: a Fargo master; node-6: a Fargo extra),
 * each from the CLI on one kind of router and from the web console (a chat adapter) on the other,
 * with the lab's state checked afterwards.
 */
const NODES = ['node-1', 'node-2', 'node-3', 'node-4', 'node-6'];

let lab: TestLab;
let web: Awaited<ReturnType<typeof startTestConsole>>;
const prefix = uniquePrefix();
const dir = () => lab.lab.dir;
const { runbook, follow } = cli(() => lab, prefix);

/** From the CLI as alice, bob approving and pressing Done. */
const fromCli = (text: string, onManual?: (stepPath: string) => void | Promise<void>) => follow(text, { approveAs: 'bob', done: 'bob', ...(onManual ? { onManual } : {}) });
/** From the console as alice, bob approving and pressing Done. */
const fromConsole = (text: string, onManual?: (stepPath: string) => void | Promise<void>) => web.follow(text, { approver: 'bob', done: 'bob', ...(onManual ? { onManual } : {}) });

const vdisks = (host: string) => readHostState<Vdisk[]>(dir(), host, 'vdisks')!;
const calls = (host: string, prefix: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(prefix));
/** The snapshots the volumedriver made for a volume: create_snapshot calls of flush_snapshot that succeeded. */
const created = (host: string, volumeId: string) => calls(host, `storagerouterclient create_snapshot ${volumeId} flush_snapshot`).filter((c) => c.exit === 0).length;

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

/** After a flush: every vDisk has its scheduled snapshot and no flush_snapshot, and each flush_snapshot was made once. */
function flushed(host: string, before: Record<string, number>): void {
  for (const v of vdisks(host)) {
    expect(v.snapshots.map((s) => s.name)).not.toContain('flush_snapshot');
    expect(v.snapshots).toHaveLength(1);
    expect(created(host, v.volume_id) - (before[v.volume_id] ?? 0)).toBe(1);
  }
}
const createdSoFar = (host: string) => Object.fromEntries(vdisks(host).map((v) => [v.volume_id, created(host, v.volume_id)]));

beforeAll(async () => {
  lab = await startTestLab({ only: NODES });
  // The console's runtime shares the CLI's Redis prefix: one place to read every run from.
  web = await startTestConsole(lab.lab.configPath, prefix);
  // Snapshots are in the backend at the first check: no 5-second waits in these runs.
  for (const n of NODES) setHostSetting(dir(), n, 'pendingChecks', 0);
});

afterAll(async () => {
  await web?.stop();
  await lab?.down();
});

describe('ovs flush', () => {
  it('flushes every vDisk of a systemd router from the CLI: one step per vDisk through the framework, no snapshot left', async () => {
    const before = createdSoFar('node-1');
    const { code, run } = await fromCli('ovs flush node-1');
    expect(code).toBe(0);
    expect(run.status).toBe('succeeded');
    const s = statuses(run);
    for (const v of vdisks('node-1')) for (const step of ['snapshot', 'in-backend', 'delete-snapshot']) expect(s[`flush[${v.name}].${step}`]).toBe('succeeded');
    flushed('node-1', before);
  });

  it('flushes an upstart (Fargo) router from the console', async () => {
    const before = createdSoFar('node-3');
    const { run, history } = await fromConsole('/ovs flush node-3');
    expect(run.status).toBe('succeeded');
    expect(run.facts!['node-3']).toMatchObject({ init: 'upstart', python3: expect.any(String) });
    flushed('node-3', before);
    expect(history).toContain("Commencing flush to backend for volume 'vd-3-01'");
  });

  it('reuses the flush_snapshot of an interrupted step instead of making another, and replaces one an earlier flush left', async () => {
    // An earlier flush died after its create_snapshot: its flush_snapshot (another flush id) is still there.
    const [stale, ...rest] = vdisks('node-4');
    runtime.updateJson<Vdisk[], void>(dir(), 'node-4', runtime.statePath(dir(), 'node-4', 'vdisks'), [], (vs) => {
      vs.find((v) => v.volume_id === stale!.volume_id)!.snapshots.push({ name: 'flush_snapshot', uuid: 'left-by-an-earlier-flush', timestamp: 1, metadata: '', pending: 0 });
    });
    const before = createdSoFar('node-4');
    const { run } = await fromCli('ovs flush node-4');
    expect(run.status).toBe('succeeded');
    flushed('node-4', before);
    expect(rest.length).toBeGreaterThan(0);
    expect(calls('node-4', `storagerouterclient delete_snapshot ${stale!.volume_id} flush_snapshot`).filter((c) => c.exit === 0)).toHaveLength(2);
  });
});

describe('ovs services', () => {
  it('checks the framework\'s services of a Fargo upstart master from the CLI and of a 2.9 systemd extra from the console', async () => {
    const { code, run: fargo } = await fromCli('ovs services node-3');
    expect(code).toBe(0);
    expect(fargo.status).toBe('succeeded');
    const { run, history } = await fromConsole('/ovs services node-4');
    expect(run.status).toBe('succeeded');
    expect(run.steps.services).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(history).toContain('systemctl list-units --all --no-legend --plain');
    expect(String(run.captures.compare)).toContain('ovs-dtl_vpool1');
  });

  it('names what is not running or missing, and what the page advises', async () => {
    setService(dir(), 'node-6', 'ovs-workers', 'stopped');
    setService(dir(), 'node-6', 'ovs-dtl_vpool1', undefined);
    try {
      const { code, run } = await fromCli('ovs services node-6');
      expect(code).toBe(1);
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(/^step "Compare them with the services the framework installs on such a node" failed: not running or missing on node-6: fargo extra node, vPools vpool1: ovs-workers: stop\/waiting; ovs-dtl_vpool1: not listed by the service manager\./);
      expect(run.error).toContain('If needed, restart the workers');
    } finally {
      setService(dir(), 'node-6', 'ovs-dtl_vpool1', 'running');
      setService(dir(), 'node-6', 'ovs-workers', 'running');
    }
  });
});

describe('ovs restart-workers', () => {
  it('restarts the workers through systemd from the CLI, and starts stopped ones through upstart from the console', async () => {
    const { run: sd } = await fromCli('ovs restart-workers node-1');
    expect(sd.status).toBe('succeeded');
    expect(calls('node-1', 'systemctl restart ovs-workers.service')).toHaveLength(1);
    setService(dir(), 'node-6', 'ovs-workers', 'stopped');
    const { run } = await fromConsole('/ovs restart-workers node-6');
    expect(run.status).toBe('succeeded');
    expect(run.captures.running).toMatch(/^ovs-workers on node-6: start\/running \(was stop\/waiting\)$/);
    expect(readServices(dir(), 'node-6')['ovs-workers']).toBe('running');
  });
});

describe('ovs who-master', () => {
  it('asks the Arakoon of the node\'s own configuration: arakoon:// on 2.9 from the CLI, etcd:// on Fargo from the console', async () => {
    const { run } = await fromCli('ovs who-master ovsdb --node node-2');
    expect(run.status).toBe('succeeded');
    const r = await web.rt.store.find(run.id);
    expect(r!.steps['who-master']!.command).toBe("arakoon --who-master -config 'arakoon://cacc/ovs/arakoon/ovsdb/config?ini=%2Fopt%2FOpenvStorage%2Fconfig%2Farakoon_cacc.ini' || { rc=$?; echo 'The page: \"Next, address issues with the Arakoon databases by checking the log. A typical issue is the lack of a master.\" (arakoon --who-master -config etcd://127.0.0.1:2379/ovs/arakoon/<DB_name>/config)' >&2; exit $rc; }");
    expect(r!.captures.master).toBe('The master of the Arakoon database ovsdb is node-1 (machine id ' + readFileSync(runtime.realPath(dir(), 'node-1', '/etc/openvstorage_id'), 'utf8').trim() + ').');
    const { run: fargo } = await fromConsole('/ovs who-master voldrv --node node-3');
    expect(fargo.status).toBe('succeeded');
    expect(fargo.steps['who-master']!.command).toMatch(/^arakoon --who-master -config etcd:\/\/127\.0\.0\.1:2379\/ovs\/arakoon\/voldrv\/config /);
    expect(fargo.captures.master).toMatch(/^The master of the Arakoon database voldrv is node-2 /);
  });

  it('says when there is no master, with the page\'s advice, and refuses a database the node does not have', async () => {
    runtime.updateJson<Record<string, { master: string | null }>, void>(dir(), 'node-1', runtime.statePath(dir(), 'node-1', 'arakoon'), {}, (a) => {
      a.voldrv!.master = null;
    });
    try {
      const { run } = await fromCli('ovs who-master voldrv --node node-1');
      expect(run.status).toBe('failed');
      const r = (await web.rt.store.find(run.id))!;
      expect(r.steps['who-master']!.outputTail).toContain('Fatal error: exception Failure("No Master")');
      expect(r.steps['who-master']!.error).toMatch(/^exit code 2: The page: "Next, address issues with the Arakoon databases/);
      const { run: none } = await fromCli('ovs who-master nosuchdb --node node-1');
      expect(none.status).toBe('failed');
      expect(none.error).toMatch(/node-1's configuration has no Arakoon database "nosuchdb"; it has ovsdb, voldrv/);
    } finally {
      runtime.updateJson<Record<string, { master: string | null }>, void>(dir(), 'node-1', runtime.statePath(dir(), 'node-1', 'arakoon'), {}, (a) => {
        a.voldrv!.master = readFileSync(runtime.realPath(dir(), 'node-2', '/etc/openvstorage_id'), 'utf8').trim();
      });
    }
  });
});

describe('ovs collect-logs', () => {
  it('attaches the archive the launcher made, byte for byte: from the CLI on a 2.9 router, from the console on a Fargo one', async () => {
    for (const [node, how] of [
      ['node-2', fromCli],
      ['node-6', (t: string) => fromConsole(`/${t}`)],
    ] as const) {
      const { run } = await how(`ovs collect-logs ${node}`);
      expect(run.status).toBe('succeeded');
      const r = (await web.rt.store.find(run.id))!;
      const archive = (r.captures.collect as { archive: string }).archive;
      expect(archive).toMatch(new RegExp(`^/tmp/ovs-${node}-\\d{14}-logs\\.tar\\.gz$`));
      const att = r.steps.collect!.attachment!;
      expect(att).toMatchObject({ path: archive, name: archive.slice(5) });
      const bytes = await web.rt.store.getFile(r.id, att.id);
      expect(bytes!.equals(readFileSync(runtime.realPath(dir(), node, archive)))).toBe(true);
      expect(gunzipSync(bytes!).toString('latin1')).toContain(node === 'node-2' ? 'var/log/journald.log' : 'var/log/upstart/ovs-workers.log');
    }
  });
});

describe('ovs tail', () => {
  it('reads a log where the framework writes it: the systemd journal from the CLI, upstart\'s log from the console', async () => {
    // The workers were restarted since they logged: systemd says so in their journal.
    setService(dir(), 'node-1', 'ovs-workers', 'stopped');
    setService(dir(), 'node-1', 'ovs-workers', 'running');
    const { run } = await fromCli('ovs tail node-1 celery.log --lines 10');
    expect(run.status).toBe('succeeded');
    const r = (await web.rt.store.find(run.id))!;
    expect(r.steps.tail!.command).toBe('journalctl -u ovs-workers -n 10 --no-pager');
    // What the workers logged, then what systemd said when they were restarted.
    expect(r.steps.tail!.outputTail).toMatch(/node-1 ovs-workers\[\d+\]: .*lab log line 4\n(.*\n)*.* node-1 systemd\[1\]: Started ovs-workers\.service - Open vStorage workers\.\n$/);
    const { run: up } = await fromConsole('/ovs tail node-3 foc_vpool1.log --lines 1');
    expect(up.status).toBe('succeeded');
    expect(up.steps.tail!.command).toMatch(/^tail -n 1 \/var\/log\/upstart\/ovs-dtl_vpool1\.log$/);
    expect(up.steps.tail!.outputTail).toContain('dtl_vpool1');
  });

  it('refuses logs the page does not list and vPools the node does not serve', async () => {
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
    const r = await runbook('run', 'ovs shutdown node-1 node-2', '--as', 'alice', '--approve-as', 'bob', '--json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ovs shutdown refused: shutting down node-1, node-2 would leave 1 of the 3 master nodes online/);
    expect(readCalls(dir(), 'node-1').length).toBe(before);
  });

  it('shuts an extra node down after its flush: a systemd one from the CLI, an upstart one from the console', async () => {
    const { run } = await fromCli('ovs shutdown node-4');
    expect(run.status).toBe('succeeded');
    expect(statuses(run)['shutdown[node-4].halt']).toBe('succeeded');
    expect(await waitDown('node-4')).toBe(true);
    const before = createdSoFar('node-6');
    const { run: up } = await fromConsole('/ovs shutdown node-6');
    expect(up.status).toBe('succeeded');
    flushed('node-6', before);
    expect(await waitDown('node-6')).toBe(true);
    expect(readHostState<{ state: string; last: string }>(dir(), 'node-6', 'power')).toMatchObject({ state: 'off', last: 'shutdown -h now' });
    expect(await answers('node-1')).toBe(true);
    await startHost(dir(), 'node-4');
    await startHost(dir(), 'node-6');
  });

  it('shuts the whole cluster down on purpose; ovs restart from the CLI brings it back and checks every node with its own service manager', async () => {
    const down = await fromCli('ovs shutdown cluster');
    expect(down.run.status).toBe('succeeded');
    for (const n of NODES) expect(await waitDown(n)).toBe(true);
    const poweredOn: string[] = [];
    const { run } = await fromCli('ovs restart', async (stepPath) => {
      if (stepPath === 'backend') return;
      const hosts = stepPath === 'extras-power-on' ? ['node-4', 'node-6'] : [/^masters\[(.+)\]\.power-on$/.exec(stepPath)![1]!];
      for (const h of hosts) {
        poweredOn.push(h);
        await startHost(dir(), h);
      }
    });
    expect(run.status).toBe('succeeded');
    expect(poweredOn).toEqual(['node-1', 'node-2', 'node-3', 'node-4', 'node-6']);
    const s = statuses(run);
    expect(s['checks[node-1].cluster-status']).toBe('succeeded');
    expect(s['checks[node-4].cluster-status']).toBe('skipped');
    expect(s['checks[node-3].restart-workers']).toBe('skipped');
    expect(s['arakoon.databases[ovsdb].who-master']).toBe('succeeded');
    expect(s['arakoon.databases[voldrv].who-master']).toBe('succeeded');
    // The checks asked each manager once: systemctl on node-1, initctl on node-3.
    expect(calls('node-1', 'systemctl list-units --all --no-legend --plain ovs-workers.service').length).toBeGreaterThan(0);
    expect(calls('node-3', 'initctl list').length).toBeGreaterThan(0);
    // The vPool test wrote its files through the volumedriver's mount, then removed them (a 10 GiB test vDisk would stay).
    for (const n of NODES) {
      expect(calls(n, 'truncate -s 10G /mnt/vpool1/test.raw').at(-1)?.exit).toBe(0);
      expect(calls(n, 'rm -f /mnt/vpool1/test.raw /mnt/vpool1/myvm.xml').at(-1)?.exit).toBe(0);
      expect(readHostState<Record<string, number>>(dir(), n, 'files-written')).toEqual({});
    }
  });

  it('from the console: restarts the workers where they are down, and stops at RabbitMQ with the page\'s advice', async () => {
    setService(dir(), 'node-6', 'ovs-workers', 'stopped');
    setService(dir(), 'node-2', 'rabbitmq-server', 'stopped');
    try {
      const { run, history } = await fromConsole('/ovs restart');
      expect(run.status).toBe('failed');
      expect(run.steps['checks[node-6].restart-workers']!.status).toBe('succeeded');
      expect(readServices(dir(), 'node-6')['ovs-workers']).toBe('running');
      const cluster = run.steps['checks[node-2].cluster-status']!;
      expect(cluster.status).toBe('failed');
      expect(cluster.error).toMatch(/^exit code 2: The page: "First fix the issues with Nginx, Memcached and RabbitMQ by checking the relevant logs\. In case the RabbitMQ service isn't started, start the service on all nodes at the same time using `service rabbitmq-server start`/);
      expect((run.captures['checks[node-2].rabbitmq'] as { state: string }[])[0]!.state).toBe('stopped');
      expect(history).toContain(`Run ${run.id} failed`);
    } finally {
      setService(dir(), 'node-2', 'rabbitmq-server', 'running');
    }
  });
});
