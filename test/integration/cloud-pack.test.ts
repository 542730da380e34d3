/**
 * The cloud pack end to end in the lab: the real clients on the controller (clouds.yaml
 * credentials) against the OpenStack API double, the real cinder and nova schemas; rows and API
 * state checked afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, readCalls, readServices, setFault, setHostState, setService, type VirshState } from '../../src/lab/index.js';
import { CONTROLLER_SERVICES, DB_PASSWORDS, INSTANCES } from '../../src/lab/site.js';
import { cli, statuses } from '../helpers/cli.js';
import { startConsoleChat } from '../helpers/console-chat.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { apiRequests, query } from '../helpers/openstack.js';
import { testRuntime, uniquePrefix, watch } from '../helpers/runtime.js';

let t: TestLab;
const prefix = uniquePrefix();
const { runbook, follow } = cli(() => t, prefix);
const lab = () => t.lab;
const dir = () => t.lab.dir;
const services = (host: string) => readServices(dir(), host);
const setHostService = (host: string, name: string, to: 'running' | 'stopped') => setService(dir(), host, name, to);
const calls = (host: string, start: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(start));
const live = INSTANCES.filter((i) => !i.deleted);

beforeAll(async () => {
  t = await startTestLab({ only: ['controller', 'c01', 'c02'], openstackTimeScale: 0.1 });
});

afterAll(async () => {
  const rt = testRuntime(lab().configPath, { prefix });
  await rt.cleanup();
  await t?.down();
});

describe('cloud check-controller and check-storage', () => {
  it('finds nova, glance, keystone and cinder running (pgrep), and their clients working with the controller\'s credentials', async () => {
    const { code, run } = await follow('cloud check-controller');
    expect(code).toBe(0);
    expect(Object.values(statuses(run))).toEqual(Array(7).fill('succeeded'));
    expect(calls('controller', 'pgrep -l -x')).toHaveLength(4);
    // glance index is gone: openstack image list asked the Image API (clouds.yaml credentials).
    expect(apiRequests(lab()).some((q) => q.path.startsWith('/image/v2/images') && q.status === 200)).toBe(true);
  });

  it('glance-api stopped: the process check says so, where ps aux | grep glance- would have found itself', async () => {
    setHostService('controller', 'glance-api', 'stopped');
    const { run } = await follow('cloud check-controller controller');
    setHostService('controller', 'glance-api', 'running');
    expect(run.status).toBe('failed');
    expect(statuses(run).glance).toBe('failed');
    expect(run.error).toMatch(/no glance-api process runs/);
    expect(statuses(run)['glance-index']).toBe('pending');
  });

  it('from the console: checks the Object Storage service on the storage proxy', async () => {
    const chat = await startConsoleChat(lab().configPath);
    try {
      const { run, thread } = await chat.run('alice', '/cloud check-storage');
      expect(run.status).toBe('succeeded');
      expect(thread).toContain('Also check that it is functioning: swift stat');
    } finally {
      await chat.close();
    }
    expect(apiRequests(lab()).some((q) => q.method === 'HEAD' && q.path.startsWith('/object-store/v1/AUTH_') && q.status === 204)).toBe(true);
  });
});

describe('cloud db-connections', () => {
  it('expands the glance glob on the host, skips the commented defaults, masks the passwords, and no password reaches the run, its events or the audit trail', async () => {
    const { run, stdout, stderr } = await follow('cloud db-connections');
    expect(run.status).toBe('succeeded');
    const rt = testRuntime(lab().configPath, { prefix });
    try {
      const stored = await rt.store.load(run.id);
      expect(stored.captures.grep).toEqual([
        'connection = mysql+pymysql://nova:***@cloud.example.com/nova',
        'connection = mysql+pymysql://glance:***@cloud.example.com/glance',
        'connection = mysql+pymysql://glance:***@cloud.example.com/glance',
        'connection = mysql+pymysql://cinder:***@cloud.example.com/cinder',
        'connection = mysql+pymysql://keystone_admin:***@cloud.example.com/keystone',
      ]);
      const everything = JSON.stringify([stored, await watch(rt, run.id), (await rt.store.audit()).filter((e) => e.runId === run.id), stdout, stderr, (await runbook('show', run.id)).stdout]);
      for (const password of Object.values(DB_PASSWORDS)) expect(everything).not.toContain(password);
    } finally {
      await rt.close();
    }
  });

  it('fails, rather than showing nothing, when no connection string can be read', async () => {
    setFault(dir(), 'controller', { match: 'grep', action: 'fail', exitCode: 2, stderr: 'grep: /etc/nova/nova.conf: Permission denied', times: 1 });
    const { run } = await follow('cloud db-connections');
    clearFaults(dir(), 'controller');
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/no connection string was found/);
  });
});

/** After a power loss: the guests are off and nova has marked them SHUTOFF; cinder and nova still hold the attachments. */
async function powerLoss(): Promise<void> {
  await query(lab(), 'nova', "update instances set vm_state = 'stopped', power_state = 4 where deleted = 0");
  for (const h of ['c01', 'c02']) setHostState<VirshState>(dir(), h, 'virsh', (v) => v.domains.forEach((d) => (d.state = 'shut off')));
}

describe('cloud recover-volumes (cinder ≥ Kilo)', () => {
  it('a rejected clean-up changes nothing and reboots nothing', async () => {
    const before = await query(lab(), 'cinder', 'select * from volume_attachment order by id');
    const { code, run } = await follow('cloud recover-volumes', { approveAs: 'alice' });
    expect(code).toBe(3);
    expect(run.status).toBe('cancelled');
    expect(await query(lab(), 'cinder', 'select * from volume_attachment order by id')).toEqual(before);
    expect(apiRequests(lab()).filter((q) => q.method === 'POST' && q.path.endsWith('/action'))).toEqual([]);
  });

  it('cleans cinder\'s and nova\'s records of the attachments, restarts every instance once, reattaches the saved volumes; both views agree', async () => {
    const attached = await query<{ volume_id: string; instance_uuid: string }>(lab(), 'cinder', "select volume_id, instance_uuid from volume_attachment where deleted = 0 and attach_status = 'attached' order by volume_id");
    expect(attached).toHaveLength(2);
    await powerLoss();
    const manual: string[] = [];
    const { run } = await follow('cloud recover-volumes', { approveAs: 'bob', done: 'bob', onManual: (p) => void manual.push(p) });
    expect(run.status).toBe('succeeded');
    expect(manual).toEqual(['reboot-inside']);
    // page's instance_id: never a cinder column; on this schema there is nothing to clear.
    expect(statuses(run)['clean.instance-id']).toBe('skipped');
    // Each instance rebooted exactly once: hard, since nova refuses a soft reboot of a SHUTOFF one.
    const reboots = apiRequests(lab()).filter((q) => q.method === 'POST' && q.path.endsWith('/action') && q.status === 202);
    expect(reboots).toHaveLength(live.length);
    for (const i of live) expect(reboots.filter((q) => q.path.includes(i.uuid))).toHaveLength(1);
    const now = await query<{ volume_id: string; instance_uuid: string }>(lab(), 'cinder', "select volume_id, instance_uuid from volume_attachment where deleted = 0 and attach_status = 'attached' order by volume_id");
    expect(now).toEqual(attached);
    // The attachments of before the power loss are soft-deleted, as cinder deletes them (deleted, detached, detach_time).
    const old = await query<{ n: number }>(lab(), 'cinder', "select count(*) as n from volume_attachment where deleted = 1 and attach_status = 'detached' and detach_time is not null");
    expect(Number(old[0]!.n)).toBeGreaterThanOrEqual(3);
    const nova = await query<{ k: string }>(lab(), 'nova', "select concat(volume_id, ' ', instance_uuid) as k from block_device_mapping where destination_type = 'volume' and deleted = 0 order by k");
    expect(nova.map((r) => r.k)).toEqual(attached.map((a) => `${a.volume_id} ${a.instance_uuid}`));
    const volumes = await query<{ status: string; n: number }>(lab(), 'cinder', 'select status, count(*) as n from volumes where deleted = 0 group by status order by status');
    expect(volumes).toEqual([
      { status: 'available', n: 1 },
      { status: 'in-use', n: 2 },
    ]);
    // The soft-deleted volume was left alone (the page's update touched it).
    expect(await query(lab(), 'cinder', "select status from volumes where deleted = 1")).toEqual([{ status: 'deleted' }]);
  });
});

describe('cloud restore', () => {
  const halted = () => {
    for (const s of CONTROLLER_SERVICES) setHostService('controller', s, 'stopped');
    setHostService('c01', 'nova-compute', 'stopped');
  };

  it('a service that will not start stops the restoration at its line: nothing of a later priority is started', async () => {
    halted();
    setFault(dir(), 'controller', { match: 'systemctl start keystone.service', action: 'fail', exitCode: 1, stderr: 'Job for keystone.service failed because the control process exited with error code.' });
    const { run } = await follow('cloud restore', { done: 'bob' });
    clearFaults(dir(), 'controller');
    expect(run.status).toBe('failed');
    expect(statuses(run)['priority-15.start-keystone']).toBe('failed');
    expect(services('controller')).toMatchObject({ 'rabbitmq-server': 'running', mysql: 'running', 'cinder-volume': 'running', keystone: 'stopped', 'nova-api': 'stopped', apache2: 'stopped' });
    expect(calls('controller', 'service nova-api start')).toHaveLength(0);
  });

  it('restores every service in the order of the priority list, and says which of the page\'s services current releases no longer have', async () => {
    halted();
    const seen = readCalls(dir(), 'controller').length;
    const manual: string[] = [];
    const { run } = await follow('cloud restore', { done: 'bob', onManual: (p) => void manual.push(p) });
    expect(run.status).toBe('succeeded');
    expect(manual).toEqual(['priority-1.restore', 'priority-2.restore', 'priority-3.restore', 'priority-5.restore', 'priority-10.check', 'priority-99.check']);
    expect(statuses(run)['priority-99.gone-nova-consoleauth']).toBe('succeeded');
    expect(statuses(run)['priority-21.gone-glance-registry']).toBe('succeeded');
    expect(Object.entries(services('controller')).filter(([, s]) => s !== 'running')).toEqual([['swift-proxy', 'stopped']]);
    expect(services('c01')['nova-compute']).toBe('running');
    const order = readCalls(dir(), 'controller')
      .slice(seen)
      .map((c) => c.argv.join(' '))
      .filter((c) => c.startsWith('systemctl start '));
    expect(order).toEqual(
      ['neutron-server', 'cinder-volume', 'rabbitmq-server', 'mysql', 'keystone', 'cinder-scheduler', 'glance-api', 'nova-scheduler', 'nova-conductor', 'cinder-api', 'nova-api', 'nova-novncproxy', 'apache2'].map((s) => `systemctl start ${s}.service`),
    );
    setHostService('controller', 'swift-proxy', 'running');
  });
});
