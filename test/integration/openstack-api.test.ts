/**
 * The lab's OpenStack API double against the real clients of Debian 12 (python3-openstackclient
 * 6.0.0, python3-novaclient 18.1.0, python3-glanceclient 4.1.0, python3-swiftclient 4.1.0), run on
 * the controller as the procedures run them: each test names the API reference or client source the
 * behaviour comes from, and checks the command, its exit code and the fields a procedure reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setOpenStackTimeScale, setService } from '../../src/lab/index.js';
import { INSTANCES, VOLUMES } from '../../src/lab/site.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { apiRequests, instanceState, onController, query } from '../helpers/openstack.js';
import { until } from '../helpers/until.js';

let t: TestLab;
const lab = () => t.lab;
const os = (command: string) => onController(lab(), command);
const uuid = (name: string) => INSTANCES.find((i) => i.displayName === name)!.uuid;
const volumeId = (name: string) => VOLUMES.find((v) => v.displayName === name)!.id;
const status = async (id: string) => (await query<{ status: string }>(lab(), 'cinder', 'select status from volumes where id = ?', [id]))[0]!.status;

beforeAll(async () => {
  // openrc credentials: every client reads them (clouds.yaml only openstack does). A tenth of nova's clock.
  t = await startTestLab({ only: ['controller', 'c01', 'c02'], openstackCredentials: 'openrc', openstackTimeScale: 0.1 });
});

afterAll(async () => {
  await t?.down();
});

describe('Keystone v3 and the service catalog (api-ref identity/v3, keystoneauth1 5.0.0)', () => {
  it('a wrong password is a 401 the client reports, and nothing else is asked', async () => {
    const before = apiRequests(lab()).length;
    const r = await os('OS_PASSWORD=wrong openstack project list');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('The request you have made requires authentication. (HTTP 401)');
    expect(apiRequests(lab()).slice(before).map((q) => `${q.method} ${q.path} ${q.status}`)).toEqual(['GET /identity/v3 200', 'POST /identity/v3/auth/tokens 401']);
  });

  it('openstack project list: a token scoped to admin, then the projects', async () => {
    const r = await os('openstack project list -f value -c Name');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['admin', 'demo', 'service']);
  });
});

describe('Compute v2.1: servers (api-ref compute "List Servers Detailed", "Show Server Details"; views/servers.py)', () => {
  it('openstack server list --host --all-projects -f json: the host filter and every project (OSC ListServer, microversion 2.1)', async () => {
    const r = await os('openstack server list --host c01 --all-projects --limit -1 -f json -c ID -c Name -c Status');
    expect(r.code).toBe(0);
    const servers = JSON.parse(r.stdout) as { ID: string; Name: string; Status: string }[];
    expect(servers.map((s) => s.Name).sort()).toEqual(['at3-ui02', 'db-1', 'web-1']);
    expect(servers.every((s) => s.Status === 'ACTIVE')).toBe(true);
    const list = apiRequests(lab()).filter((q) => q.path.startsWith('/compute/v2.1/servers/detail')).at(-1)!;
    expect(list.path).toMatch(/all_tenants=True/);
    expect(list.path).toMatch(/host=c01/);
    expect(list.version).toBe('2.1');
  });

  it('nova list --all-tenants inserts the Tenant ID column (novaclient 18.1.0 do_list) and negotiates 2.92, novaclient\'s maximum', async () => {
    const r = await os('nova list --host c02 --all-tenants');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\| ID\s+\| Name\s+\| Tenant ID\s+\| Status\s+\| Task State\s+\| Power State\s+\| Networks\s+\|/);
    expect(r.stderr).toContain('nova CLI is deprecated');
    expect(apiRequests(lab()).filter((q) => q.path.startsWith('/compute/v2.1/servers/detail')).at(-1)!.version).toBe('compute 2.92');
  });

  it('openstack server show -f json: host is nova\'s service host, hypervisor_hostname its node', async () => {
    const r = await os(`openstack server show ${uuid('build-1')} -f json`);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(s).toMatchObject({ status: 'ACTIVE', 'OS-EXT-SRV-ATTR:host': 'c02', 'OS-EXT-SRV-ATTR:hypervisor_hostname': 'c02.example.com', 'OS-EXT-STS:vm_state': 'active', 'OS-EXT-STS:task_state': null, name: 'build-1' });
  });
});

describe('Compute v2.1: live migration (migrate_server.py; asynchronous checks from 2.34)', () => {
  it('nova live-migration answers 202 at once, the server is MIGRATING, then ACTIVE on the target with its ports and node moved', async () => {
    const id = uuid('build-2');
    // nova's own pace (2 s), slower than a client's start: the show comes while the migration runs.
    setOpenStackTimeScale(lab().dir, 1);
    const r = await os(`nova live-migration ${id} c01; openstack server show ${id} -f value -c status`).finally(() => setOpenStackTimeScale(lab().dir, undefined));
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('MIGRATING');
    await until('build-2 on c01', async () => (await instanceState(lab(), id)).instance?.host === 'c01');
    const after = await instanceState(lab(), id);
    expect(after.instance).toMatchObject({ host: 'c01', node: 'c01.example.com', task_state: null });
    expect(after.bindings).toEqual([{ host: 'c01', status: 'ACTIVE' }]);
    const m = await os(`openstack server migration list --server ${id} -f json`);
    expect(JSON.parse(m.stdout)[0]).toMatchObject({ 'Source Compute': 'c02', 'Dest Compute': 'c01', Status: 'completed' });
  });

  it('to a compute node that is down: 202 from 2.34 (the migration record says error); a 400 the client shows before 2.34', async () => {
    await query(lab(), 'nova', "update services set forced_down = 1 where host = 'c02' and `binary` = 'nova-compute'");
    const id = uuid('at3-ui02');
    const r = await os(`nova live-migration ${id} c02; openstack --os-compute-api-version 2.30 server migrate --live-migration --host c02 ${id}`);
    await query(lab(), 'nova', "update services set forced_down = 0 where host = 'c02' and `binary` = 'nova-compute'");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Compute service of c02 is unavailable at this time. (HTTP 400)');
    const m = await until('the migration in error', async () => {
      const list = JSON.parse((await os(`openstack server migration list --server ${id} -f json`)).stdout) as { Status: string }[];
      return list[0]?.Status === 'error' && list;
    });
    expect(m).toHaveLength(1);
    expect((await instanceState(lab(), id)).instance).toMatchObject({ host: 'c01', task_state: null });
  });
});

describe('Compute v2.1: services and evacuation (services.py, evacuate.py, servicegroup db driver)', () => {
  it('evacuating from an up host is refused; after compute service set --down the evacuation rebuilds it elsewhere; OSC 6.0.0 then fails to print it', async () => {
    const id = uuid('db-1');
    const refused = await os(`nova evacuate ${id} c02`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Compute service of c01 is still in use. (HTTP 400)');
    const down = await os('openstack compute service set --down --disable --disable-reason failed c01 nova-compute; openstack compute service list --host c01 --service nova-compute -f json');
    expect(JSON.parse(down.stdout)).toEqual([expect.objectContaining({ Host: 'c01', Binary: 'nova-compute', Status: 'disabled', State: 'down' })]);
    // python-openstackclient < 6.1.0 (4592d2c78): the request is accepted, then TupleWithMeta has no to_dict.
    const osc = await os(`openstack --os-compute-api-version 2.29 server evacuate --host c02 ${id}`);
    expect(osc.code).toBe(1);
    expect(osc.stderr.trim()).toBe("'TupleWithMeta' object has no attribute 'to_dict'");
    await until('db-1 rebuilt on c02', async () => (await instanceState(lab(), id)).instance?.host === 'c02');
    const m = JSON.parse((await os(`openstack server migration list --server ${id} -f json`)).stdout) as { Status: string; 'Dest Compute': string }[];
    expect(m[0]).toMatchObject({ Status: 'done', 'Dest Compute': 'c02' });
    await query(lab(), 'nova', "update services set forced_down = 0, disabled = 0, disabled_reason = NULL where host = 'c01'");
  });

  it('nova-compute reports while it runs: stopped on its host, it is down after service_down_time', async () => {
    setService(lab().dir, 'c02', 'nova-compute', 'stopped');
    const down = await until(
      'nova-compute of c02 down',
      async () => {
        const r = await os('openstack compute service list --host c02 --service nova-compute -f json');
        return (JSON.parse(r.stdout) as { State: string }[])[0]?.State === 'down';
      },
      30_000,
    );
    setService(lab().dir, 'c02', 'nova-compute', 'running');
    expect(down).toBe(true);
  });
});

describe('Volumes, nova\'s side and cinder\'s (volume_attachments.py, cinder volume/api.py _attachment_reserve)', () => {
  it('a detach is asynchronous: the volume is detaching, an attach then is refused (nova still maps it), and once available it attaches again', async () => {
    const server = uuid('web-1');
    const vol = volumeId('data');
    // A detach that takes nova's 2 s and more: the show and the attach come while it runs.
    setOpenStackTimeScale(lab().dir, 2);
    const r = await os(`nova volume-detach ${server} ${vol} && openstack volume show ${vol} -f value -c status; nova volume-attach ${server} ${vol} /dev/vdb`).finally(() => setOpenStackTimeScale(lab().dir, undefined));
    expect(r.stdout).toContain('detaching');
    expect(r.code).toBe(1);
    // nova keeps its mapping until the detach is done, and checks it before asking cinder.
    expect(r.stderr).toContain(`ERROR (BadRequest): Invalid volume: volume ${vol} already attached (HTTP 400)`);
    await until('data available', async () => (await status(vol)) === 'available');
    expect((await instanceState(lab(), server)).bdms).toEqual([]);
    const attach = await os(`openstack server add volume ${server} ${vol} --device /dev/vdb -f json`);
    expect(attach.code).toBe(0);
    await until('data in use', async () => (await status(vol)) === 'in-use');
    const [a] = await query<{ instance_uuid: string; attach_status: string; mountpoint: string }>(lab(), 'cinder', 'select instance_uuid, attach_status, mountpoint from volume_attachment where volume_id = ? and deleted = 0', [vol]);
    expect(a).toEqual({ instance_uuid: server, attach_status: 'attached', mountpoint: '/dev/vdb' });
    // nova refuses a second attachment of the same volume (compute/api.py _check_volume_already_attached).
    const again = await os(`openstack server add volume ${server} ${vol}`);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`volume ${vol} already attached`);
  });

  it('openstack volume set --state available --detached resets cinder and deletes its attachments (admin_actions.py os-reset_status)', async () => {
    const vol = volumeId('test');
    const r = await os(`openstack volume set --state available --detached ${vol}; openstack volume show ${vol} -f json -c status -c attachments`);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ status: 'available', attachments: [] });
    expect(await query(lab(), 'cinder', 'select id from volume_attachment where volume_id = ? and deleted = 0', [vol])).toEqual([]);
    // nova still has its mapping: that is what recover-volumes cleans.
    expect((await instanceState(lab(), uuid('at3-ui02'))).bdms).toEqual([{ volume_id: vol, device_name: '/dev/vdc' }]);
  });
});

describe('Image v2 and the Object Storage account', () => {
  it('glance image-list (glanceclient 4.1.0: v2 images with their schema) and swift stat (swiftclient 4.1.0: HEAD on the account)', async () => {
    const r = await os('glance image-list && swift stat');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\| [0-9a-f-]{36} \| cirros-0\.6\.2-x86_64-disk \|/);
    expect(r.stdout).toMatch(/Account: AUTH_[0-9a-f]{32}\n\s+Containers: 3\n\s+Objects: 1422\n\s+Bytes: 1873612800/);
  });

  it('an API whose service is stopped on the controller drops the connection, as a closed port would', async () => {
    setService(lab().dir, 'controller', 'glance-api', 'stopped');
    const r = await os('glance image-list');
    setService(lab().dir, 'controller', 'glance-api', 'running');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Unable to establish connection|Connection aborted|RemoteDisconnected/);
  });
});
