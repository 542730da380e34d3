/**
 * The nova pack end to end in the lab: the real `openstack` client on the controller (clouds.yaml
 * credentials, so every client step runs openstack) against the OpenStack API double, the real
 * nova/cinder/neutron schemas in MariaDB; the rows and the API's state checked afterwards.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCalls, readHostState, readServices, setHostState, setService, type VirshState } from '../../src/lab/index.js';
import { INSTANCES, VOLUMES } from '../../src/lab/site.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { cli, statuses } from '../helpers/cli.js';
import { startConsoleChat } from '../helpers/console-chat.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { apiRequests, instanceState, query } from '../helpers/openstack.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

let t: TestLab;
const prefix = uniquePrefix();
const { runbook, follow } = cli(() => t, prefix);
const lab = () => t.lab;
const dir = () => t.lab.dir;
const uuid = (name: string) => INSTANCES.find((i) => i.displayName === name)!.uuid;
const volumeId = (name: string) => VOLUMES.find((v) => v.displayName === name)!.id;
const onHost = async (host: string) => (await query<{ uuid: string }>(lab(), 'nova', 'select uuid from instances where host = ? and deleted = 0 order by uuid', [host])).map((r) => r.uuid);
const service = async (host: string) => (await query<{ disabled: number; forced_down: number; disabled_reason: string | null }>(lab(), 'nova', "select disabled, forced_down, disabled_reason from services where host = ? and `binary` = 'nova-compute' and deleted = 0", [host]))[0]!;
const hostService = (host: string, name: string) => readServices(dir(), host)[name];
const setHostService = (host: string, name: string, to: 'running' | 'stopped') => setService(dir(), host, name, to);
const calls = (host: string, start: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(start));

/** nova's and cinder's records of the attachments agree: every live mapping has an attached cinder attachment, and back. */
async function viewsAgree(): Promise<{ nova: string[]; cinder: string[] }> {
  const nova = await query<{ k: string }>(lab(), 'nova', "select concat(instance_uuid, ' ', volume_id) as k from block_device_mapping where destination_type = 'volume' and deleted = 0 order by k");
  const cinder = await query<{ k: string }>(lab(), 'cinder', "select concat(instance_uuid, ' ', volume_id) as k from volume_attachment where deleted = 0 and attach_status = 'attached' order by k");
  return { nova: nova.map((r) => r.k), cinder: cinder.map((r) => r.k) };
}

beforeAll(async () => {
  // A tenth of nova's clock: a migration lands before the client that asks about it has started.
  t = await startTestLab({ only: ['controller', 'c01', 'c02'], openstackTimeScale: 0.1 });
});

afterAll(async () => {
  const rt = testRuntime(lab().configPath, { prefix });
  await rt.cleanup();
  await t?.down();
});

describe('nova drain and undrain', () => {
  it('live-migrates every instance of c01 to c02 one by one, waits for each, then disables and stops nova-compute', async () => {
    const before = await onHost('c01');
    expect(before).toHaveLength(3);
    const { code, run } = await follow('nova drain c01 --to c02');
    expect(run.status).toBe('succeeded');
    expect(code).toBe(0);
    for (const id of before) expect(statuses(run)[`migrate[${id}].arrived`]).toBe('succeeded');
    expect(await onHost('c01')).toEqual([]);
    for (const id of before) {
      const s = await instanceState(lab(), id);
      expect(s.instance).toMatchObject({ host: 'c02', node: 'c02.example.com', task_state: null, vm_state: 'active' });
      // neutron activated the binding on c02 (web-1's stale INACTIVE one to c02 included) and dropped c01's.
      expect(s.bindings).toEqual([{ host: 'c02', status: 'ACTIVE' }]);
    }
    const migrations = await query<{ status: string; migration_type: string }>(lab(), 'nova', "select status, migration_type from migrations where source_compute = 'c01'");
    expect(migrations).toEqual(before.map(() => ({ status: 'completed', migration_type: 'live-migration' })));
    expect(await service('c01')).toMatchObject({ disabled: 1, disabled_reason: 'planned maintenance' });
    expect(hostService('c01', 'nova-compute')).toBe('stopped');
    expect(readHostState<VirshState>(dir(), 'c01', 'virsh')!.domains).toEqual([]);
    expect(readHostState<VirshState>(dir(), 'c02', 'virsh')!.domains.map((d) => d.uuid).sort()).toEqual([...before, uuid('build-1'), uuid('build-2')].sort());
    // The live migrations went through the compute API, the page's nova live-migration standing as the reference.
    expect(apiRequests(lab()).filter((q) => q.method === 'POST' && q.path.endsWith('/action') && q.status === 202)).toHaveLength(3);
  });

  it('undrain lets nova-compute start again, starts it, enables it in nova and waits until it reports', async () => {
    const { run } = await follow('nova undrain c01');
    expect(run.status).toBe('succeeded');
    expect(hostService('c01', 'nova-compute')).toBe('running');
    expect(await service('c01')).toMatchObject({ disabled: 0, forced_down: 0 });
    expect(statuses(run).amqp).toBe('succeeded');
  });

  it('a migration nova refuses stops the drain: nothing is disabled or stopped', async () => {
    // c01 is forced down; openstack asks at 2.30, before nova checked asynchronously (2.34): a 400.
    await query(lab(), 'nova', "update services set forced_down = 1 where host = 'c01' and `binary` = 'nova-compute'");
    const { code, run } = await follow('nova drain c02 --to c01 --block-migrate');
    await query(lab(), 'nova', "update services set forced_down = 0 where host = 'c01' and `binary` = 'nova-compute'");
    expect(code).toBe(1);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/Compute service of c01 is unavailable at this time\. \(HTTP 400\)/);
    expect(statuses(run).disable).toBe('pending');
    expect(await service('c02')).toMatchObject({ disabled: 0 });
    expect(hostService('c02', 'nova-compute')).toBe('running');
    expect((await onHost('c02')).length).toBe(5);
  });
});

describe('nova evacuate', () => {
  it('from the console: marks the failed node down, evacuates each instance to c01 and waits until each is rebuilt there', async () => {
    // c02 failed: its nova-compute stopped reporting.
    setHostService('c02', 'nova-compute', 'stopped');
    const chat = await startConsoleChat(lab().configPath);
    try {
      const { run, thread } = await chat.run('alice', '/nova evacuate c02 --to c01', 'carol');
      expect(run.status).toBe('succeeded');
      expect(thread).toContain('Mark nova-compute of c02 down (forced) and disabled');
      expect(thread).toContain('nova evacuate');
      // The report names where each instance runs now.
      expect(thread).toMatch(/build-1 \(\S+\): ACTIVE on c01/);
    } finally {
      await chat.close();
    }
    expect(await onHost('c02')).toEqual([]);
    expect(await service('c02')).toMatchObject({ forced_down: 1, disabled: 1 });
    for (const id of await onHost('c01')) {
      const s = await instanceState(lab(), id);
      expect(s.instance).toMatchObject({ host: 'c01', node: 'c01.example.com', vm_state: 'active', task_state: null });
      expect(s.bindings).toEqual([{ host: 'c01', status: 'ACTIVE' }]);
    }
    const evacuations = await query<{ status: string }>(lab(), 'nova', "select status from migrations where migration_type = 'evacuation'");
    expect(evacuations.map((m) => m.status)).toEqual(['done', 'done', 'done', 'done', 'done']);
    // The volumes followed their instances: cinder's attachments name the new host, nova's and cinder's views agree.
    const attached = await query<{ attached_host: string }>(lab(), 'cinder', "select attached_host from volume_attachment where deleted = 0 and attach_status = 'attached'");
    expect(attached.map((a) => a.attached_host)).toEqual(['c01', 'c01']);
    const views = await viewsAgree();
    expect(views.nova).toEqual(views.cinder);
    setHostService('c02', 'nova-compute', 'running');
    await query(lab(), 'nova', "update services set forced_down = 0, disabled = 0, disabled_reason = NULL where host = 'c02'");
  });

  it('refuses a node with no instance before anything is forced down', async () => {
    const { run } = await follow('nova evacuate c02', { approveAs: 'carol' });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/nova has no instance on c02: nothing to evacuate/);
    expect(await service('c02')).toMatchObject({ forced_down: 0 });
  });
});

describe('nova after-reboot', () => {
  it('starts nova-compute, waits until it reports, then starts each stopped instance of the node and waits until it is ACTIVE', async () => {
    // After a power loss: nova-compute down, the guests off, nova has marked them SHUTOFF.
    const mine = await onHost('c01');
    setHostService('c01', 'nova-compute', 'stopped');
    await query(lab(), 'nova', "update instances set vm_state = 'stopped', power_state = 4 where host = 'c01' and deleted = 0");
    setHostState<VirshState>(dir(), 'c01', 'virsh', (v) => v.domains.forEach((d) => (d.state = 'shut off')));
    const { run } = await follow('nova after-reboot c01');
    expect(run.status).toBe('succeeded');
    expect(hostService('c01', 'nova-compute')).toBe('running');
    expect(statuses(run).active).toBe('succeeded');
    for (const id of mine) {
      expect(statuses(run)[`reboot[${id}].start`]).toBe('succeeded');
      expect((await instanceState(lab(), id)).instance).toMatchObject({ vm_state: 'active', power_state: 1 });
    }
    expect(readHostState<VirshState>(dir(), 'c01', 'virsh')!.domains.every((d) => d.state === 'running')).toBe(true);
    // A soft reboot of a stopped instance is refused by nova: they were started instead.
    expect(apiRequests(lab()).filter((q) => q.status === 409)).toEqual([]);
  });
});

describe('nova move-instances (the page\'s database fallback)', () => {
  it('moves host and node, drops the stale INACTIVE port binding, leaves DVR bindings alone, hard-reboots and reattaches the volumes', async () => {
    // c01 fails with everything on it; web-1's port keeps an INACTIVE binding to c02 from an unfinished live migration.
    const moved = await onHost('c01');
    const web1Port = (await query<{ id: string }>(lab(), 'neutron', 'select id from ports where device_id = ?', [uuid('web-1')]))[0]!.id;
    await query(lab(), 'neutron', "insert into ml2_port_bindings (port_id, host, vif_type, status) values (?, 'c02', 'ovs', 'INACTIVE')", [web1Port]);
    await query(lab(), 'neutron', "insert into ml2_port_binding_levels (port_id, host, level, driver) values (?, 'c02', 0, 'openvswitch')", [web1Port]);
    const dvrBefore = await query(lab(), 'neutron', "select port_id, host from ml2_port_binding_levels where port_id not in (select id from ports where device_owner like 'compute:%') order by host");
    setHostService('c01', 'nova-compute', 'stopped');
    const { run } = await follow('nova move-instances c01 --to c02', { approveAs: 'carol', done: 'bob' });
    expect(run.status).toBe('succeeded');
    expect(statuses(run)['move.stale-bindings']).toBe('succeeded');
    for (const id of moved) {
      const s = await instanceState(lab(), id);
      expect(s.instance).toMatchObject({ host: 'c02', node: 'c02.example.com', vm_state: 'active' });
      expect(s.bindings).toEqual([{ host: 'c02', status: 'ACTIVE' }]);
    }
    expect((await query<{ compute_id: number }>(lab(), 'nova', 'select distinct compute_id from instances where host = ? and deleted = 0', ['c02'])).map((r) => r.compute_id)).toEqual([2]);
    expect(await query(lab(), 'neutron', "select port_id, host from ml2_port_binding_levels where port_id not in (select id from ports where device_owner like 'compute:%') order by host")).toEqual(dvrBefore);
    // The volumes were detached and attached again: new attachments on c02, both views agree.
    const attached = await query<{ attached_host: string; mountpoint: string }>(lab(), 'cinder', "select attached_host, mountpoint from volume_attachment where deleted = 0 and attach_status = 'attached' order by mountpoint");
    expect(attached).toEqual([
      { attached_host: 'c02', mountpoint: '/dev/vdb' },
      { attached_host: 'c02', mountpoint: '/dev/vdb' },
    ]);
    const views = await viewsAgree();
    expect(views.nova).toEqual(views.cinder);
    expect(views.nova).toHaveLength(2);
    setHostService('c01', 'nova-compute', 'running');
  });
});

describe('nova recover-instance', () => {
  it('moves one VM and its port back to c01, checks the VNC listen address, hard-reboots it there', async () => {
    const id = uuid('at3-ui02');
    const { run } = await follow(`nova recover-instance ${id} --to c01`, { approveAs: 'carol' });
    expect(run.status).toBe('succeeded');
    const s = await instanceState(lab(), id);
    expect(s.instance).toMatchObject({ host: 'c01', node: 'c01.example.com', vm_state: 'active', task_state: null });
    expect(s.bindings).toEqual([{ host: 'c01', status: 'ACTIVE' }]);
    expect(readHostState<VirshState>(dir(), 'c01', 'virsh')!.domains.some((d) => d.uuid === id && d.state === 'running')).toBe(true);
    // No libvirt.xml is edited: nova has not written one since Ocata.
    expect(calls('c01', 'sed')).toEqual([]);
  });
});

describe('nova reattach-volumes', () => {
  it('detaches each volume of the node, waits until cinder has it available, attaches it again and waits until it is in use', async () => {
    const { run } = await follow('nova reattach-volumes c02', { done: 'bob' });
    expect(run.status).toBe('succeeded');
    const vol = volumeId('data');
    expect(statuses(run)[`reattach[${vol}].detached`]).toBe('succeeded');
    expect(statuses(run)[`reattach[${vol}].attached`]).toBe('succeeded');
    const [v] = await query<{ status: string }>(lab(), 'cinder', 'select status from volumes where id = ?', [vol]);
    expect(v!.status).toBe('in-use');
    const views = await viewsAgree();
    expect(views.nova).toEqual(views.cinder);
  });
});

describe('nova inspect-disk', () => {
  it('suspends the guest, loads nbd with partitions, connects its disk (by uuid) read-only and shared, mounts it read-only, then undoes it all', async () => {
    const id = uuid('at3-ui02');
    const { run } = await follow('nova inspect-disk instance-0000274a', { approveAs: 'carol' });
    expect(run.status).toBe('succeeded');
    expect(calls('c01', 'qemu-nbd -r --force-share -c /dev/nbd0')[0]!.argv.at(-1)).toBe(`/var/lib/nova/instances/${id}/disk`);
    expect(calls('c01', 'mount -o ro /dev/nbd0p1 /mnt/')).toHaveLength(1);
    expect(statuses(run)).toMatchObject({ umount: 'succeeded', disconnect: 'succeeded', resume: 'succeeded' });
    expect(readHostState(dir(), 'c01', 'nbd')).toEqual({});
    expect(readHostState<VirshState>(dir(), 'c01', 'virsh')!.domains.find((d) => d.uuid === id)!.state).toBe('running');
  });
});

describe('nova fix-ids', () => {
  it('stops nova-compute and libvirtd before usermod, finds the libvirt group by its current name, gives the files back, restarts', async () => {
    const { run } = await follow('nova fix-ids c01 --uid 112 --gid 120 --libvirtd-gid 119', { approveAs: 'carol' });
    expect(run.status).toBe('succeeded');
    const accounts = readHostState<{ users: Record<string, { uid: number; gid: number }>; groups: Record<string, number> }>(dir(), 'c01', 'accounts')!;
    expect(accounts.users.nova).toEqual({ uid: 112, gid: 120 });
    expect(accounts.groups.libvirt).toBe(119);
    const owners = readHostState<Record<string, { uid: number; gid: number }>>(dir(), 'c01', 'owners')!;
    expect(Object.values(owners).some((o) => o.uid === 108 || o.gid === 113)).toBe(false);
    expect(hostService('c01', 'nova-compute')).toBe('running');
    expect(hostService('c01', 'libvirtd')).toBe('running');
    const order = readCalls(dir(), 'c01').map((c) => c.argv.join(' '));
    expect(order.findIndex((c) => c.includes('nova-compute') && c.includes('stop'))).toBeLessThan(order.findIndex((c) => c.startsWith('usermod')));
    // Not into /proc (a process that ends meanwhile makes GNU find exit 1 after its work), nor /sys.
    expect(order).toContain('find / ( -path /proc -o -path /sys ) -prune -o -uid 108 -exec chown nova {} +');
    expect(order).toContain('find / ( -path /proc -o -path /sys ) -prune -o -uid 108 -print');
    expect(order.filter((c) => c.startsWith('find') && !c.includes('-prune'))).toEqual([]);
  });

  it('refuses to change the libvirt-qemu UID while guests run on the node', async () => {
    const { run } = await follow('nova fix-ids c01 --uid 112 --gid 120 --qemu-uid 119', { approveAs: 'carol' });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/guests still run as libvirt-qemu: instance-/);
    expect(calls('c01', 'usermod -u 119')).toEqual([]);
  });
});

describe('plans', () => {
  it('shows the page\'s command beside the one that runs, and refuses a controller without credentials', async () => {
    const r = await runbook('run', 'nova drain c02 --to c01', '--as', 'alice', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OS_CLOUD=lab OS_CLIENT_CONFIG_FILE=\S+clouds\.yaml openstack server list --host c02 --all-projects/);
    expect(r.stdout).toContain('nova list --host c02.example.com --all-tenants');
    expect(existsSync(runtime.realPath(dir(), 'controller', '/etc/openstack/clouds.yaml'))).toBe(true);
  });
});
