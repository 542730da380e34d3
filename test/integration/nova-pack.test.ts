import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, readCalls, readHostState, readServices, setFault, setService } from '../../src/lab/index.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { cli, statuses } from '../helpers/cli.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

/** The compute API's view kept by the lab's `nova` simulator on the controller. */
interface NovaState {
  instances: { uuid: string; name: string; host: string; status: string; power: string; volumes: { id: string; device: string }[]; reboots?: number; hardReboots?: number }[];
}

let lab: TestLab;
const prefix = uniquePrefix();
const { runbook, follow } = cli(() => lab, prefix);
const dir = () => lab.lab.dir;
const nova = () => readHostState<NovaState>(dir(), 'controller', 'nova')!;
const onHost = (fqdn: string) => nova().instances.filter((i) => i.host === fqdn);
const services = (host: string) => readServices(dir(), host);
const calls = (host: string, start: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(start));
const fakeRoot = (host: string, p: string) => runtime.realPath(dir(), host, p);
function setState<T>(host: string, name: string, fn: (v: T) => void): void {
  runtime.updateJson(dir(), host, runtime.statePath(dir(), host, name), {} as T, fn);
}

async function query<T = Record<string, unknown>>(db: 'nova' | 'cinder' | 'neutron', sql: string, params: unknown[] = []): Promise<T[]> {
  const conn = await mysql.createConnection({ uri: lab.lab.mysqlUrl, database: lab.lab.databases[db] });
  try {
    const [rows] = await conn.query(sql, params);
    return rows as T[];
  } finally {
    await conn.end();
  }
}

beforeAll(async () => {
  // c01 is a systemd host now; nova drain/undrain and after-reboot still type upstart's
  // `stop|start|status nova-compute` and move /etc/init/nova-compute.conf: pinned to upstart here
  // until the nova procedures use the host's own service manager.
  lab = await startTestLab({ only: ['controller', 'c01', 'c02'], profiles: { c01: { init: 'upstart' } } });
});

afterAll(async () => {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  await rt.cleanup();
  await lab?.down();
});

describe('nova drain and undrain', () => {
  it('live-migrates every instance of c01 to c02 one by one, stops nova-compute and moves its init files aside', async () => {
    const before = onHost('c01.example.com');
    expect(before.length).toBe(3);
    const { code, run } = await follow('nova drain c01 --to c02');
    expect(run.status).toBe('succeeded');
    expect(code).toBe(0);
    const migrations = calls('controller', 'nova live-migration');
    expect(migrations.map((c) => c.argv.slice(2))).toEqual(before.map((i) => [i.uuid, 'c02.example.com']));
    for (const i of before) expect(statuses(run)[`migrate[${i.uuid}].arrived`]).toBe('succeeded');
    expect(onHost('c01.example.com')).toEqual([]);
    expect(onHost('c02.example.com').map((i) => i.uuid)).toEqual(expect.arrayContaining(before.map((i) => i.uuid)));
    expect(services('c01')['nova-compute']).toBe('stopped');
    expect(existsSync(fakeRoot('c01', '/etc/init/nova-compute.conf'))).toBe(false);
    expect(existsSync(fakeRoot('c01', '/etc/init.d/nova-compute'))).toBe(false);
    expect(existsSync(fakeRoot('c01', '/root/tmp/nova-compute.conf'))).toBe(true);
    expect(existsSync(fakeRoot('c01', '/root/tmp/nova-compute'))).toBe(true);
  });

  it('undrain puts the init files back and starts nova-compute', async () => {
    const { run } = await follow('nova undrain c01');
    expect(run.status).toBe('succeeded');
    expect(existsSync(fakeRoot('c01', '/etc/init/nova-compute.conf'))).toBe(true);
    expect(existsSync(fakeRoot('c01', '/etc/init.d/nova-compute'))).toBe(true);
    expect(existsSync(fakeRoot('c01', '/root/tmp/nova-compute.conf'))).toBe(false);
    expect(services('c01')['nova-compute']).toBe('running');
  });

  it('a migration that fails stops the drain: nova-compute keeps running and nothing is moved aside', async () => {
    const onC02 = onHost('c02.example.com');
    setFault(dir(), 'controller', { match: 'nova live-migration', action: 'fail', stderr: 'ERROR (BadRequest): Unacceptable CPU info: CPU doesn\'t have compatibility. (HTTP 400)', times: 1 });
    const stopsBefore = calls('c02', 'stop nova-compute').length;
    const { code, run } = await follow('nova drain c02 --to c01 --block-migrate');
    clearFaults(dir(), 'controller');
    expect(code).toBe(1);
    expect(run.status).toBe('failed');
    const first = onC02[0]!;
    expect(statuses(run)[`migrate[${first.uuid}].live-migration`]).toBe('failed');
    expect(run.error).toMatch(/Unacceptable CPU info/);
    expect(statuses(run).stop).toBe('pending');
    expect(calls('c02', 'stop nova-compute').length).toBe(stopsBefore);
    expect(services('c02')['nova-compute']).toBe('running');
    expect(existsSync(fakeRoot('c02', '/etc/init/nova-compute.conf'))).toBe(true);
    expect(onHost('c02.example.com').length).toBe(onC02.length);
  });

  it('undrain of a node that was never drained fails at the first move and starts nothing', async () => {
    // c02 was never drained: its init files are where they belong, and /root/tmp holds none.
    const { run } = await follow('nova undrain c02');
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/mv: cannot stat '\/root\/tmp\/nova-compute.conf': No such file or directory/);
    expect(statuses(run)['restore-conf']).toBe('failed');
    expect(calls('c02', 'start nova-compute')).toHaveLength(0);
  });
});

describe('nova after-reboot', () => {
  it('starts nova-compute, checks the AMQP connection, then reboots each instance of the node once', async () => {
    setService(dir(), 'c02', 'nova-compute', 'stopped');
    setState<NovaState>('controller', 'nova', (s) => s.instances.filter((i) => i.host === 'c02.example.com').forEach((i) => Object.assign(i, { status: 'SHUTOFF', power: 'Shutdown' })));
    const mine = onHost('c02.example.com');
    const { run } = await follow('nova after-reboot c02');
    expect(run.status).toBe('succeeded');
    expect(statuses(run).start).toBe('succeeded');
    expect(services('c02')['nova-compute']).toBe('running');
    for (const i of mine) {
      expect(statuses(run)[`reboot[${i.uuid}].nova-reboot`]).toBe('succeeded');
      expect(calls('controller', `nova reboot ${i.uuid}`)).toHaveLength(1);
    }
    expect(onHost('c02.example.com').every((i) => i.status === 'ACTIVE' && i.power === 'Running' && i.reboots === 1)).toBe(true);
  });

  it('a nova-compute that will not start stops the run before any instance is rebooted', async () => {
    setService(dir(), 'c02', 'nova-compute', 'stopped');
    setFault(dir(), 'c02', { match: 'start nova-compute', action: 'fail', stderr: 'start: Job failed to start' });
    const reboots = calls('controller', 'nova reboot').length;
    const { run } = await follow('nova after-reboot c02');
    clearFaults(dir(), 'c02');
    expect(run.status).toBe('failed');
    expect(statuses(run).start).toBe('failed');
    expect(run.error).toMatch(/start: Job failed to start/);
    expect(calls('controller', 'nova reboot').length).toBe(reboots);
    setService(dir(), 'c02', 'nova-compute', 'running');
  });
});

describe('nova after-reboot without AMQP', () => {
  it('refuses to start instances when nova-compute has not connected to the AMQP server', async () => {
    const log = fakeRoot('c02', '/var/log/nova/nova-compute');
    const text = readFileSync(log, 'utf8');
    writeFileSync(log, text.split('\n').filter((l) => !l.includes('AMQP')).join('\n'));
    const reboots = calls('controller', 'nova reboot').length;
    try {
      const { run } = await follow('nova after-reboot c02');
      expect(run.status).toBe('failed');
      expect(statuses(run).amqp).toBe('succeeded');
      expect(run.error).toMatch(/nova-compute on c02 has not connected to the AMQP server/);
      expect(calls('controller', 'nova reboot').length).toBe(reboots);
    } finally {
      writeFileSync(log, text);
    }
  });
});

describe('plans', () => {
  it('show the page\'s commands and SQL before anything runs', async () => {
    const drain = await runbook('run', 'nova drain c01 --to c02 --block-migrate', '--as', 'alice', '--dry-run');
    expect(drain.code).toBe(0);
    expect(drain.stdout).toMatch(/on controller: nova list --host c01\.example\.com --all-tenants/);
    expect(drain.stdout).toMatch(/\[write\] on c01: mv \/etc\/init\.d\/nova-compute \/root\/tmp/);
    const move = await runbook('run', 'nova move-instances c01 --to c02', '--as', 'alice', '--dry-run');
    expect(move.stdout).toMatch(/on database nova: select uuid from instances where host = \? and deleted = 0/);
    // The UPDATEs are bound by what the SELECTs find: the plan says so, the approval shows them.
    expect(move.stdout).toMatch(/Update the nova and Networking databases: everything hosted on c01\.example\.com is now hosted on c02\.example\.com \[DESTRUCTIVE, needs approval\]/);
    expect(move.stdout).toMatch(/ml2_port_binding_levels of c01\.example\.com \[DESTRUCTIVE\] \(after "ports"\)/);
  });
});

describe('nova reattach-volumes', () => {
  it('detaches and reattaches each volume of the node at its mount point, once the instances are confirmed booted', async () => {
    const manual: string[] = [];
    const { run } = await follow('nova reattach-volumes c01', { done: 'bob', onManual: (p) => void manual.push(p) });
    expect(run.status).toBe('succeeded');
    expect(manual).toEqual(['booted']);
    const volumes = await query<{ id: string; instance_uuid: string; mountpoint: string }>('cinder', "select id, instance_uuid, mountpoint from volumes where status = 'in-use'");
    expect(volumes).toHaveLength(2);
    for (const v of volumes) {
      expect(calls('controller', `nova volume-detach ${v.instance_uuid} ${v.id}`)).toHaveLength(1);
      expect(calls('controller', `nova volume-attach ${v.instance_uuid} ${v.id} ${v.mountpoint}`)).toHaveLength(1);
      expect(nova().instances.find((i) => i.uuid === v.instance_uuid)!.volumes).toContainEqual({ id: v.id, device: v.mountpoint });
    }
  });

  it('an attach that fails fails the run and names the volume', async () => {
    setFault(dir(), 'controller', { match: 'nova volume-attach', action: 'fail', stderr: 'ERROR (ClientException): Unexpected API Error. (HTTP 500)', times: 1 });
    const { run } = await follow('nova reattach-volumes c01', { done: 'bob' });
    clearFaults(dir(), 'controller');
    expect(run.status).toBe('failed');
    const failed = run.steps.filter((s) => s.status === 'failed' && s.id.startsWith('reattach['));
    expect(failed.map((s) => s.id)).toEqual([expect.stringMatching(/^reattach\[[0-9a-f-]+\]\.attach$/)]);
    // Put back what the failed run left detached, as the operator would.
    const volumeId = /^reattach\[([0-9a-f-]+)\]/.exec(failed[0]!.id)![1]!;
    const [v] = await query<{ instance_uuid: string; mountpoint: string }>('cinder', 'select instance_uuid, mountpoint from volumes where id = ?', [volumeId]);
    setState<NovaState>('controller', 'nova', (s) => void s.instances.find((i) => i.uuid === v!.instance_uuid)!.volumes.push({ id: volumeId, device: v!.mountpoint }));
  });
});

describe('nova move-instances', () => {
  const hosts = async () => (await query<{ host: string; deleted: number; uuid: string }>('nova', 'select uuid, host, deleted from instances order by id'));

  it('an UPDATE that would touch more rows than were selected and approved is rolled back', async () => {
    const before = await hosts();
    const late = '0d0d0d0d-0000-4000-a000-000000000001';
    try {
      const { run } = await follow('nova move-instances c01 --to c02', {
        approver: 'bob',
        done: 'bob',
        // Between the SELECT and the approval, another instance lands on c01.
        onApproval: async () => {
          await query('nova', "insert into instances (uuid, display_name, host, node, vm_state, deleted) values (?, 'late', 'c01.example.com', 'c01.example.com', 'active', 0)", [late]);
        },
      });
      expect(run.status).toBe('failed');
      expect(statuses(run)['move.instances']).toBe('failed');
      expect(run.error).toMatch(/row/);
      expect(statuses(run)['move.port-bindings']).toBeUndefined();
      expect((await hosts()).filter((r) => r.uuid !== late)).toEqual(before);
      expect((await hosts()).find((r) => r.uuid === late)!.host).toBe('c01.example.com');
      expect(calls('controller', 'nova reboot --hard')).toHaveLength(0);
    } finally {
      await query('nova', 'delete from instances where uuid = ?', [late]);
    }
  });

  it('moves the instances and ports of c01 to c02 in the databases, hard-reboots each and reattaches their volumes', async () => {
    const live = (await hosts()).filter((r) => r.host === 'c01.example.com' && r.deleted === 0).map((r) => r.uuid);
    expect(live).toHaveLength(3);
    const { run } = await follow('nova move-instances c01 --to c02', { approveAs: 'bob', done: 'bob' });
    expect(run.status).toBe('succeeded');
    expect(run.steps.find((s) => s.id === 'move.instances')!.rowsAffected).toBe(3);
    const after = await hosts();
    for (const r of after) expect(r.host).toBe(r.deleted ? 'c01.example.com' : 'c02.example.com');
    expect(await query('neutron', "select port_id from ml2_port_bindings where host = 'c01.example.com'")).toEqual([]);
    expect(await query('neutron', "select port_id from ml2_port_binding_levels where host = 'c01.example.com'")).toEqual([]);
    expect((await query('neutron', "select port_id from ml2_port_bindings where host = 'c02.example.com'")).length).toBe(5);
    for (const uuid of live) expect(calls('controller', `nova reboot --hard ${uuid}`)).toHaveLength(1);
    expect(nova().instances.filter((i) => live.includes(i.uuid)).every((i) => i.hardReboots === 1)).toBe(true);
    const reattached = run.steps.filter((s) => /^reattach\[.*\]\.attach$/.test(s.id));
    expect(reattached.map((s) => s.status)).toEqual(['succeeded', 'succeeded']);
  });
});

describe('nova recover-instance', () => {
  const build = (n: 1 | 2) => ({ uuid: n === 1 ? 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f0a28' : 'f2a3b4c5-d6e7-4f8a-9b0c-1d2e3f4a0a29', name: n === 1 ? 'instance-00000a28' : 'instance-00000a29' });
  const xml = (n: 1 | 2) => readFileSync(fakeRoot('c01', `/var/lib/nova/instances/${build(n).name}/libvirt.xml`), 'utf8');
  const hostOf = async (uuid: string) => (await query<{ host: string }>('nova', 'select host from instances where uuid = ?', [uuid]))[0]!.host;

  it('a rejected move of the VM in the database changes nothing', async () => {
    const { code, run } = await follow(`nova recover-instance ${build(1).uuid} --to c01`, { approveAs: 'alice' });
    expect(code).toBe(3);
    expect(run.status).toBe('cancelled');
    expect(await hostOf(build(1).uuid)).toBe('c02.example.com');
    expect(calls('c01', 'sed')).toHaveLength(0);
  });

  it('moves the VM in nova, points DHCPSERVER at the new host and VNC at 0.0.0.0 in its libvirt.xml, and reboots it', async () => {
    expect(xml(1)).toContain('<parameter name="DHCPSERVER" value="10.100.3.2"/>');
    const { run } = await follow(`nova recover-instance ${build(1).uuid} --to c01`, { approveAs: 'bob' });
    expect(run.status).toBe('succeeded');
    expect(await hostOf(build(1).uuid)).toBe('c01.example.com');
    expect(xml(1)).toContain('<parameter name="DHCPSERVER" value="10.100.3.1"/>');
    expect(xml(1)).toContain('<graphics type="vnc" autoport="yes" keymap="en-us" listen="0.0.0.0"/>');
    expect(xml(1)).toContain(`<uuid>${build(1).uuid}</uuid>`);
    expect(calls('controller', `openstack server reboot ${build(1).uuid}`)).toHaveLength(1);
  });

  it('stops before the reboot when the instance has no libvirt.xml on the new host (no shared storage)', async () => {
    rmSync(fakeRoot('c01', `/var/lib/nova/instances/${build(2).name}/libvirt.xml`));
    const { run } = await follow(`nova recover-instance ${build(2).uuid} --to c01`, { approveAs: 'bob' });
    expect(run.status).toBe('failed');
    expect(statuses(run).dhcpserver).toBe('failed');
    expect(run.error).toMatch(/sed: can't read \/var\/lib\/nova\/instances\/instance-00000a29\/libvirt.xml: No such file or directory/);
    expect(calls('controller', `openstack server reboot ${build(2).uuid}`)).toHaveLength(0);
  });
});

describe('nova fix-ids', () => {
  interface Accounts {
    users: Record<string, { uid: number; gid: number }>;
    groups: Record<string, number>;
  }
  const accounts = (host: string) => readHostState<Accounts>(dir(), host, 'accounts')!;
  const owners = (host: string) => readHostState<Record<string, { uid: number; gid: number }>>(dir(), host, 'owners')!;

  it('refuses a UID in use by another user at the first usermod, and changes nothing else', async () => {
    const before = { accounts: accounts('c01'), owners: owners('c01') };
    const { run } = await follow('nova fix-ids c01 --uid 104 --gid 120', { approveAs: 'bob' });
    expect(run.status).toBe('failed');
    expect(statuses(run)['node[c01].fix.set-uid']).toBe('failed');
    expect(run.error).toMatch(/usermod: UID '104' already exists/);
    expect({ accounts: accounts('c01'), owners: owners('c01') }).toEqual(before);
    expect(services('c01')['nova-compute']).toBe('running');
  });

  it('sets the same IDs on every node, gives the old IDs\' files to nova, libvirt-qemu and libvirtd, restarts the services and finds no file left behind', async () => {
    const old = owners('c01');
    const { run } = await follow('nova fix-ids c01 c02 --uid 112 --gid 120 --qemu-uid 119 --libvirtd-gid 119', { approveAs: 'bob' });
    expect(run.status).toBe('succeeded');
    for (const host of ['c01', 'c02']) {
      expect(accounts(host).users.nova).toEqual({ uid: 112, gid: 120 });
      expect(accounts(host).users['libvirt-qemu']!.uid).toBe(119);
      expect(accounts(host).groups).toMatchObject({ nova: 120, libvirtd: 119 });
      expect(services(host)).toMatchObject({ 'nova-compute': 'running', 'libvirt-bin': 'running' });
      const now = Object.values(owners(host));
      expect(now.filter((o) => [108, 109].includes(o.uid) || [113, 115].includes(o.gid))).toEqual([]);
    }
    const c01 = owners('c01');
    for (const [path, o] of Object.entries(old)) {
      expect(c01[path]).toEqual({ uid: o.uid === 108 ? 112 : o.uid === 109 ? 119 : o.uid, gid: o.gid === 113 ? 120 : o.gid === 115 ? 119 : o.gid });
    }
    expect(calls('c01', 'find / -uid 108 -exec chown nova {} ;')).toHaveLength(1);
    expect(statuses(run)['node[c01].verify-uid']).toBe('succeeded');
    // c02 had the IDs already: nothing to find there.
    expect(statuses(run)['node[c02].verify-uid']).toBe('skipped');
  });
});
