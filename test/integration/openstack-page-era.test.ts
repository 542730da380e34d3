/**
 * The OpenStack packs on a cloud closer to the pages' own: cinder before Kilo (the attachment in
 * `volumes`' own columns), credentials in an openrc file (so the page's `nova`, `glance` and `swift`
 * clients run), and an upstart compute node (c02), where the page's commands apply as written.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readHostState, readServices, setHostState, type VirshState } from '../../src/lab/index.js';
import { INSTANCES, VOLUMES } from '../../src/lab/site.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { cli, statuses } from '../helpers/cli.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { apiRequests, query } from '../helpers/openstack.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

let t: TestLab;
const prefix = uniquePrefix();
const { runbook, follow } = cli(() => t, prefix);
const lab = () => t.lab;
const dir = () => t.lab.dir;
const live = INSTANCES.filter((i) => !i.deleted);
const attachedVolumes = () => query<{ id: string; instance_uuid: string | null; mountpoint: string | null; status: string; attach_status: string }>(lab(), 'cinder', 'select id, instance_uuid, mountpoint, status, attach_status from volumes where deleted = 0 and instance_uuid is not null order by id');

beforeAll(async () => {
  t = await startTestLab({ only: ['controller', 'c01', 'c02'], cinderSchema: 'pre-kilo', openstackCredentials: 'openrc', openstackTimeScale: 0.1 });
});

afterAll(async () => {
  const rt = testRuntime(lab().configPath, { prefix });
  await rt.cleanup();
  await t?.down();
});

describe('the page\'s clients with an openrc', () => {
  it('cloud check-controller runs glance image-list, nova list and openstack project list after sourcing the openrc', async () => {
    const r = await runbook('run', 'cloud check-controller', '--as', 'alice', '--dry-run');
    expect(r.stdout).toMatch(/\. \S+admin-openrc\.sh && glance image-list/);
    expect(r.stdout).toMatch(/\. \S+admin-openrc\.sh && nova list/);
    expect(r.stdout).toContain('source openrc; glance index');
  });

  it('nova reattach-volumes: the page\'s SELECT on volumes, nova volume-detach, a wait, nova volume-attach at the mount point', async () => {
    const before = await attachedVolumes();
    expect(before).toHaveLength(2);
    const { run } = await follow('nova reattach-volumes c01', { done: 'bob' });
    expect(run.status).toBe('succeeded');
    const r = await runbook('show', run.id);
    expect(r.stdout).toContain('cinder before Kilo: the attachment in volumes');
    // novaclient negotiated its own maximum, 2.92, for the detach and the attach.
    const novaCalls = apiRequests(lab()).filter((q) => q.path.includes('/os-volume_attachments') && q.method !== 'GET');
    expect(novaCalls.map((q) => `${q.method} ${q.version}`)).toEqual(before.flatMap(() => ['DELETE compute 2.92', 'POST compute 2.92']));
    const after = await attachedVolumes();
    expect(after.map((v) => [v.id, v.instance_uuid, v.status, v.attach_status])).toEqual(before.map((v) => [v.id, v.instance_uuid, 'in-use', 'attached']));
  });
});

describe('cloud recover-volumes on cinder before Kilo', () => {
  it('runs the page\'s UPDATEs on volumes (instance_uuid for the instance_id cinder never had), reboots each instance once, reattaches', async () => {
    const saved = await attachedVolumes();
    await query(lab(), 'nova', "update instances set vm_state = 'stopped', power_state = 4 where deleted = 0");
    for (const h of ['c01', 'c02']) setHostState<VirshState>(dir(), h, 'virsh', (v) => v.domains.forEach((d) => (d.state = 'shut off')));
    const { run } = await follow('cloud recover-volumes', { approveAs: 'bob', done: 'bob' });
    expect(run.status).toBe('succeeded');
    expect(statuses(run)).toMatchObject({ 'clean.mountpoint': 'succeeded', 'clean.status': 'succeeded', 'clean.attach-status': 'succeeded', 'clean.instance-id': 'succeeded', 'clean.block-device-mappings': 'succeeded' });
    const reboots = apiRequests(lab()).filter((q) => q.method === 'POST' && q.path.endsWith('/action') && q.status === 202);
    for (const i of live) expect(reboots.filter((q) => q.path.includes(i.uuid))).toHaveLength(1);
    expect((await attachedVolumes()).map((v) => [v.id, v.instance_uuid, v.status, v.attach_status])).toEqual(saved.map((v) => [v.id, v.instance_uuid, 'in-use', 'attached']));
    const spare = VOLUMES.find((v) => v.displayName === 'spare')!;
    expect(await query(lab(), 'cinder', 'select status, attach_status, instance_uuid from volumes where id = ?', [spare.id])).toEqual([{ status: 'available', attach_status: 'detached', instance_uuid: null }]);
  });
});

describe('an upstart compute node', () => {
  it('nova drain c02 stops nova-compute with upstart\'s stop and holds it with a manual override (the page moves its job file aside); undrain lets it start', async () => {
    expect(readHostState<{ init: string }>(dir(), 'c02', 'init')?.init).toBe('upstart');
    const { run } = await follow('nova drain c02 --to c01');
    expect(run.status).toBe('succeeded');
    expect(await query(lab(), 'nova', "select uuid from instances where host = 'c02' and deleted = 0")).toEqual([]);
    expect(readServices(dir(), 'c02')['nova-compute']).toBe('stopped');
    const override = runtime.realPath(dir(), 'c02', '/etc/init/nova-compute.override');
    expect(readFileSync(override, 'utf8')).toBe('manual\n');
    const shown = (await runbook('show', run.id)).stdout;
    expect(shown).toContain('mv /etc/init/nova-compute.conf /root/tmp');
    const back = await follow('nova undrain c02');
    expect(back.run.status).toBe('succeeded');
    expect(existsSync(override)).toBe(false);
    expect(readServices(dir(), 'c02')['nova-compute']).toBe('running');
    expect(statuses(back.run).amqp).toBe('succeeded');
  });
});
