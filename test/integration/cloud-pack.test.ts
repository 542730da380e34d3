import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearFaults, readCalls, readHostState, readServices, setFault, setService as setHostService, type ServiceStatus } from '../../src/lab/index.js';
import { CONTROLLER_SERVICES, DB_PASSWORDS } from '../../src/lab/site.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { cli, statuses } from '../helpers/cli.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { testRuntime, uniquePrefix, watch } from '../helpers/runtime.js';

interface NovaState {
  instances: { uuid: string; name: string; status: string; volumes: { id: string; device: string }[]; reboots?: number }[];
}

let lab: TestLab;
const prefix = uniquePrefix();
const { runbook, follow } = cli(() => lab, prefix);
const dir = () => lab.lab.dir;
const services = (host: string) => readServices(dir(), host);
const calls = (host: string, start: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(start));
function setState<T>(host: string, name: string, fn: (v: T) => void): void {
  runtime.updateJson(dir(), host, runtime.statePath(dir(), host, name), {} as T, fn);
}
const setService = (host: string, name: string, to: ServiceStatus) => setHostService(dir(), host, name, to);

async function cinder<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const conn = await mysql.createConnection({ uri: lab.lab.mysqlUrl, database: lab.lab.databases.cinder });
  try {
    return (await conn.query(sql))[0] as T[];
  } finally {
    await conn.end();
  }
}

beforeAll(async () => {
  lab = await startTestLab({ only: ['controller', 'c01'] });
});

afterAll(async () => {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  await rt.cleanup();
  await lab?.down();
});

describe('cloud check-controller and check-storage', () => {
  it('finds nova, glance, keystone and cinder running, and their clients working', async () => {
    const { code, run } = await follow('cloud check-controller');
    expect(code).toBe(0);
    expect(Object.values(statuses(run))).toEqual(Array(7).fill('succeeded'));
    expect(calls('controller', 'ps aux').length).toBe(4);
    expect(calls('controller', 'glance index')).toHaveLength(1);
  });

  it('fails at the client of a service that is down, though its other processes run', async () => {
    setService('controller', 'glance-api', 'stopped');
    const { run } = await follow('cloud check-controller controller');
    setService('controller', 'glance-api', 'running');
    expect(run.status).toBe('failed');
    expect(statuses(run).glance).toBe('succeeded');
    expect(statuses(run)['glance-index']).toBe('failed');
    expect(run.error).toMatch(/Unable to establish connection to http:\/\/controller:9292/);
  });

  it('checks the Object Storage service on the storage proxy, and fails when it is not running', async () => {
    expect((await follow('cloud check-storage')).run.status).toBe('succeeded');
    setService('controller', 'swift-proxy', 'stopped');
    const { run } = await follow('cloud check-storage');
    setService('controller', 'swift-proxy', 'running');
    expect(run.status).toBe('failed');
    // `ps aux | grep swift` finds its own grep, as on a real host: the page's process check cannot
    // fail (a finding for the procedure); `swift stat` is what fails.
    expect(statuses(run).swift).toBe('succeeded');
    expect(statuses(run).stat).toBe('failed');
    // Both runs reached `swift stat`.
    expect(calls('controller', 'swift stat')).toHaveLength(2);
  });
});

describe('cloud db-connections', () => {
  it('shows the connection strings with their passwords masked, and no password reaches the run, its events or the audit trail', async () => {
    const { run, stdout, stderr } = await follow('cloud db-connections');
    expect(run.status).toBe('succeeded');
    const rt = testRuntime(lab.lab.configPath, { prefix });
    try {
      const stored = await rt.store.load(run.id);
      const lines = stored.captures.grep as string[];
      expect(lines).toEqual([
        'sql_connection = mysql+pymysql://nova:***@cloud.example.com/nova',
        'sql_connection = mysql+pymysql://glance:***@cloud.example.com/glance',
        'sql_connection = mysql+pymysql://glance:***@cloud.example.com/glance',
        'sql_connection = mysql+pymysql://cinder:***@cloud.example.com/cinder',
        'connection = mysql+pymysql://keystone_admin:***@cloud.example.com/keystone',
      ]);
      const everything = JSON.stringify([stored, await watch(rt, run.id), (await rt.store.audit()).filter((e) => e.runId === run.id), stdout, stderr, (await runbook('show', run.id)).stdout]);
      for (const password of Object.values(DB_PASSWORDS)) expect(everything).not.toContain(password);
      expect(everything).toContain('nova:***@');
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

describe('cloud recover-volumes', () => {
  const powerLoss = () =>
    setState<NovaState>('controller', 'nova', (s) =>
      s.instances.forEach((i) => {
        i.status = 'SHUTOFF';
        i.volumes = [];
      }),
    );

  it('a rejected clean-up of the cinder database changes nothing and reboots nothing', async () => {
    const before = await cinder('select * from volumes order by id');
    const { code, run } = await follow('cloud recover-volumes', { approveAs: 'alice' });
    expect(code).toBe(3);
    expect(run.status).toBe('cancelled');
    expect(await cinder('select * from volumes order by id')).toEqual(before);
    expect(calls('controller', 'openstack server reboot')).toHaveLength(0);
  });

  it('cleans the stalled volume state, reboots every instance exactly once and reattaches the saved volumes', async () => {
    const attached = await cinder<{ id: string; instance_uuid: string; mountpoint: string }>("select id, instance_uuid, mountpoint from volumes where attach_status = 'attached'");
    expect(attached).toHaveLength(2);
    powerLoss();
    const manual: string[] = [];
    const { run } = await follow('cloud recover-volumes', { approveAs: 'bob', done: 'bob', onManual: (p) => void manual.push(p) });
    expect(run.status).toBe('succeeded');
    expect(manual).toEqual(['reboot-inside']);
    const rows = await cinder<{ status: string; attach_status: string; mountpoint: string | null; instance_id: number }>('select status, attach_status, mountpoint, instance_id from volumes');
    expect(rows.every((r) => r.status === 'available' && r.attach_status === 'detached' && r.mountpoint === null && r.instance_id === 0)).toBe(true);
    const nova = readHostState<NovaState>(dir(), 'controller', 'nova')!;
    for (const i of nova.instances) {
      expect(calls('controller', `openstack server reboot ${i.uuid}`)).toHaveLength(1);
      expect(i.reboots).toBe(1);
    }
    for (const v of attached) {
      expect(calls('controller', `openstack server add volume ${v.instance_uuid} ${v.id} --device ${v.mountpoint}`)).toHaveLength(1);
      expect(nova.instances.find((i) => i.uuid === v.instance_uuid)!.volumes).toEqual([{ id: v.id, device: v.mountpoint }]);
    }
  });
});

describe('cloud restore', () => {
  const halted = () => {
    for (const s of CONTROLLER_SERVICES) setService('controller', s, 'stopped');
    setService('c01', 'nova-compute', 'stopped');
  };

  it('a service that will not start stops the restoration at its line: nothing of a later priority is started', async () => {
    halted();
    setFault(dir(), 'controller', { match: 'service keystone start', action: 'fail', stderr: ' * Starting keystone ...   [fail]' });
    const { run } = await follow('cloud restore', { done: 'bob' });
    clearFaults(dir(), 'controller');
    expect(run.status).toBe('failed');
    expect(statuses(run)['priority-15.start-keystone']).toBe('failed');
    expect(services('controller')).toMatchObject({ 'rabbitmq-server': 'running', mysql: 'running', 'cinder-volume': 'running', keystone: 'stopped', 'nova-api': 'stopped', apache2: 'stopped' });
    expect(calls('controller', 'service nova-api start')).toHaveLength(0);
  });

  it('restores every service in the order of the priority list, each checked before the next line starts', async () => {
    halted();
    const seen = readCalls(dir(), 'controller').length;
    const manual: string[] = [];
    const { run } = await follow('cloud restore', { done: 'bob', onManual: (p) => void manual.push(p) });
    expect(run.status).toBe('succeeded');
    expect(manual).toEqual(['priority-1.restore', 'priority-2.restore', 'priority-3.restore', 'priority-5.restore', 'priority-10.check', 'priority-99.check']);
    // Every service of the controller runs again but swift-proxy, which is no line of the list.
    expect(Object.entries(services('controller')).filter(([, s]) => s !== 'running')).toEqual([['swift-proxy', 'stopped']]);
    expect(services('c01')['nova-compute']).toBe('running');
    const order = readCalls(dir(), 'controller')
      .slice(seen)
      .map((c) => c.argv.join(' '))
      .filter((c) => c.startsWith('service '));
    expect(order.filter((c) => c.endsWith(' start'))).toEqual(
      ['neutron-server', 'cinder-volume', 'rabbitmq-server', 'mysql', 'keystone', 'cinder-scheduler', 'glance-api', 'glance-registry', 'nova-scheduler', 'nova-conductor', 'cinder-api', 'nova-api', 'nova-consoleauth', 'nova-novncproxy', 'apache2'].map(
        (s) => `service ${s} start`,
      ),
    );
    for (let i = 0; i < order.length; i += 2) expect(order[i + 1]).toBe(order[i]!.replace(/ start$/, ' status'));
  });
});
