/**
 * The Open vStorage site: Storage Routers node-1 to node-6 (masters node-1..3), each as a host of its
 * release line is after `ovs setup`: the framework (the lab's Python doubles of its data-access layer
 * and of the volumedriver binding, tools/python) under /opt/OpenvStorage, its machine id, its
 * configuration store, the services its role and vPools give it, and its logs where that release
 * writes them. The routers are deliberately on different release lines, so one lab exercises each; a
 * real cluster runs one release.
 *
 * - `fargo` (node-3, node-6): Open vStorage 2.7 "Fargo" (framework tag 2.7.4-fargo.1) on Ubuntu 14.04
 *   with upstart; the configuration in etcd (the runbook page's `etcd://127.0.0.1:2379/…`).
 * - `2.9` (node-1, node-2, node-4): the 2.9.x line (2.9.30, 2019) on Ubuntu 16.04 with systemd; the
 *   configuration in the Arakoon cluster `cacc` (`arakoon://cacc/…?ini=…arakoon_cacc.ini`).
 * - `develop` (node-5): the 2019 development line with the click CLI, as 2.9 otherwise; its logging
 *   target is `file` (/var/log/ovs/…, the troubleshooting page's layout), the others log to the
 *   service manager (the framework's default `{"type": "console"}`).
 */
import type { Vdisk } from '../types.js';
import { runningServices, stableUuid, type InitSystem, type SiteHost, type SiteService } from './host.js';

type OvsRelease = 'fargo' | '2.9' | 'develop';

const RELEASE: Record<number, OvsRelease> = { 1: '2.9', 2: '2.9', 3: 'fargo', 4: '2.9', 5: 'develop', 6: 'fargo' };
/** Fargo's routers run Ubuntu 14.04 (upstart); the later lines Ubuntu 16.04 (systemd). */
const INIT: Record<OvsRelease, InitSystem> = { fargo: 'upstart', '2.9': 'systemd', develop: 'systemd' };
/**
 * On Ubuntu 14.04 memcached, nginx and rabbitmq-server are Debian packages' init.d scripts, which
 * upstart runs through its SysV compatibility (`initctl status memcached`: "Unknown job").
 */
const SYSV_ON_UPSTART = ['memcached', 'nginx', 'rabbitmq-server'];
const MASTERS = [1, 2, 3];

/** A Storage Router's machine id: 16 letters and digits (/etc/openvstorage_id), stable per node. */
function machineId(n: number): string {
  return stableUuid(`machine node-${n}`).replace(/-/g, '').slice(0, 16);
}

/**
 * The services `ovs setup` and the vPool's storage driver leave on the node, by release line (the
 * framework's own lists: ovs/lib/setup.py `_add_services` and ovs/lib/storagerouter.py @
 * 2.7.4-fargo.1; ovs/lib/noderemoval.py, nodeinstallation.py and storagerouter.py @ 2.9.30), with the
 * distribution's memcached, rabbitmq-server and nginx on masters.
 */
function installedServices(release: OvsRelease, master: boolean, vpools: string[]): string[] {
  const fargo = release === 'fargo';
  const every = ['ovs-workers', 'ovs-watcher-framework', 'ovs-support-agent', ...(fargo ? ['ovs-watcher-config', 'ovs-etcd-config'] : [])];
  const onMasters = master
    ? ['ovs-scheduled-tasks', 'ovs-webapp-api', 'ovs-volumerouter-consumer', ...(fargo ? [] : ['ovs-arakoon-cacc']), 'ovs-arakoon-ovsdb', 'ovs-arakoon-voldrv', 'memcached', 'rabbitmq-server', 'nginx']
    : [];
  const perVpool = vpools.flatMap((v) => [`ovs-volumedriver_${v}`, `ovs-dtl_${v}`, fargo ? `ovs-albaproxy_${v}` : `ovs-albaproxy_${v}_0`]);
  return [...every, ...onMasters, ...(vpools.length > 0 ? ['ovs-watcher-volumedriver'] : []), ...perVpool];
}

/**
 * What an `ovs-*` unit runs, from the framework's service templates (config/templates/systemd and
 * upstart @ 2.9.30 and 2.7.4-fargo.1): its Description and its process, as `ps` shows it.
 */
function ovsDaemon(unit: string, node: number, release: OvsRelease): Pick<SiteService, 'description' | 'processes'> {
  // Started as `python <script>`: the kernel names the process python, not the script.
  const py = (script: string, ...args: string[]) => ({ user: 'ovs', args: ['/usr/bin/python', script, ...args].join(' '), comm: 'python' });
  const celery = (args: string) => ({ user: 'ovs', args: `/usr/bin/python /usr/bin/celery ${args}`, comm: 'celery' });
  const watcher = (what: string, description: string) => ({ description, processes: [py('/opt/OpenvStorage/ovs/extensions/generic/watcher.py', what, 'check')] });
  const fixed: Record<string, Pick<SiteService, 'description' | 'processes'>> = {
    'ovs-workers': { description: 'Open vStorage workers', processes: [celery('worker -A ovs.celery_run -l info -Q ovs_generic,ovs_masters --autoscale=8,2 -Ofair')] },
    'ovs-scheduled-tasks': { description: 'Open vStorage scheduled tasks', processes: [celery('beat -A ovs.celery_run -l info -S ovs.celery_beat.DistributedScheduler')] },
    'ovs-webapp-api': { description: 'Open vStorage webapp API', processes: [{ user: 'ovs', args: '/usr/bin/python /usr/bin/gunicorn -c /opt/OpenvStorage/config/django_gunicorn_ovs.cfg.py api.wsgi' }] },
    'ovs-volumerouter-consumer': { description: 'Open vStorage volumerouter consumer', processes: [py('/opt/OpenvStorage/ovs/extensions/rabbitmq/consumer.py', 'volumerouter', '--durable')] },
    'ovs-support-agent': { description: 'Open vStorage support agent', processes: [py('/opt/OpenvStorage/ovs/extensions/support/agent.py')] },
    'ovs-watcher-framework': watcher('framework', 'Watcher for Open vStorage master services'),
    'ovs-watcher-volumedriver': watcher('volumedriver', 'Watcher for Open vStorage master services'),
    'ovs-watcher-config': watcher('config', 'Watcher for the configuration cluster'),
    'ovs-etcd-config': { description: 'Etcd', processes: [{ user: 'ovs', args: '/usr/bin/etcd -name config -data-dir /opt/OpenvStorage/db/etcd/config/data' }] },
  };
  if (fixed[unit]) return fixed[unit]!;
  const [, kind, arg] = /^ovs-(arakoon|volumedriver|dtl|albaproxy)[-_](.+)$/.exec(unit) ?? [];
  if (kind === 'arakoon') {
    const config = release === 'fargo' ? `etcd://127.0.0.1:2379/ovs/arakoon/${arg}/config` : `arakoon://cacc/ovs/arakoon/${arg}/config?ini=%2Fopt%2FOpenvStorage%2Fconfig%2Farakoon_cacc.ini`;
    return { description: `Arakoon service for cluster ${arg}`, processes: [{ user: 'ovs', args: `/usr/bin/arakoon --node ${machineId(node)} -config ${config} -autofix -start` }] };
  }
  if (kind === 'volumedriver') return { description: 'Open vStorage StorageDriver', processes: [{ user: 'ovs', args: `/usr/bin/volumedriver_fs -f --config /opt/OpenvStorage/config/storagedriver/storagedriver/${arg}.json --mountpoint /mnt/${arg}`, comm: 'volumedriver_fs' }] };
  if (kind === 'dtl') return { description: 'Open vStorage distributed transaction log', processes: [{ user: 'ovs', args: `/usr/bin/failovercache --path /mnt/ssd1/${arg}_db_dtl --port 26203`, comm: 'failovercache' }] };
  if (kind === 'albaproxy') return { description: 'ALBA proxy', processes: [{ user: 'ovs', args: `/usr/bin/alba proxy-start --config /opt/OpenvStorage/config/${arg}.json`, comm: 'alba' }] };
  return {};
}

/** A few lines a unit logs, in the framework's log format. */
function logLines(node: string, unit: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `2026-11-22 04:0${i}:1${i} 50${i}00 +0000 - ${node} - 123${i}/140${i} - ${unit.replace(/^ovs-/, '')} - ${i} - INFO - lab log line ${i + 1}`);
}

/** The Framework's logs of the troubleshooting page, files under /var/log/ovs/ with the `file` target. */
const FRAMEWORK_LOGS = ['api.log', 'arakoon.log', 'celery.log', 'dal.log', 'django.log', 'extensions.log', 'lib.log'];

/**
 * Where the node's logs are: files of the fake root (/var/log/upstart/<unit>.log under upstart,
 * /var/log/ovs/… with the `file` target, and what every host has under /var/log), and the journal of
 * each unit on systemd hosts.
 */
function logs(node: string, release: OvsRelease, units: string[], vpools: string[]): { files: Record<string, string>; journal?: Record<string, string[]> } {
  const text = (lines: string[]) => `${lines.join('\n')}\n`;
  const files: Record<string, string> = {
    '/var/log/syslog': text([`Nov 22 04:00:01 ${node} CRON[4242]: (root) CMD (lab)`]),
    '/var/log/dmesg': text(['[    0.000000] Linux version 4.4.0-lab']),
  };
  const ovsUnits = units.filter((u) => u.startsWith('ovs-'));
  if (units.includes('nginx')) files['/var/log/nginx/error.log'] = text([`2026/11/22 04:00:00 [notice] 1234#0: ${node}: lab`]);
  if (units.includes('rabbitmq-server')) files[`/var/log/rabbitmq/rabbit@${node}.log`] = text([`=INFO REPORT==== 22-Nov-2026::04:00:00 ===`, 'lab']);
  if (release === 'develop') {
    for (const log of FRAMEWORK_LOGS) files[`/var/log/ovs/${log}`] = text(logLines(node, log.replace('.log', ''), 5));
    for (const v of vpools) {
      files[`/var/log/ovs/volumedriver/${v}.log`] = text(logLines(node, `volumedriver_${v}`, 3));
      files[`/var/log/ovs/volumedriver/foc_${v}.log`] = text(logLines(node, `dtl_${v}`, 2));
    }
    return { files, journal: {} };
  }
  if (release === 'fargo') {
    for (const u of ovsUnits) files[`/var/log/upstart/${u}.log`] = text(logLines(node, u, 4));
    return { files };
  }
  return { files, journal: Object.fromEntries(ovsUnits.map((u) => [u, logLines(node, u, 4)])) };
}

/** The configuration store's files: framework.json, and the `cacc` cluster's client ini after Fargo. */
function configFiles(release: OvsRelease): Record<string, string> {
  if (release === 'fargo') return { '/opt/OpenvStorage/config/framework.json': `${JSON.stringify({ configuration_store: 'etcd' }, null, 4)}\n` };
  const nodes = MASTERS.map(machineId);
  return {
    '/opt/OpenvStorage/config/framework.json': `${JSON.stringify({ configuration_store: 'arakoon' }, null, 4)}\n`,
    '/opt/OpenvStorage/config/arakoon_cacc.ini': [
      '[global]',
      'cluster_id = cacc',
      `cluster = ${nodes.join(',')}`,
      '',
      ...nodes.flatMap((id, i) => [`[${id}]`, `ip = 10.100.1.${MASTERS[i]}`, 'client_port = 26400', '']),
    ].join('\n'),
  };
}

export function storageRouter(n: number): SiteHost {
  const name = `node-${n}`;
  const release = RELEASE[n]!;
  const master = MASTERS.includes(n);
  const role = master ? 'master' : 'extra';
  const vpools = ['vpool1'];
  const init = INIT[release];
  const units = installedServices(release, master, vpools);
  const services: Record<string, SiteService> = Object.fromEntries(
    Object.entries(runningServices(init, units)).map(([unit, s]) => [unit, unit.startsWith('ovs-') ? { ...s, ...ovsDaemon(unit, n, release) } : init === 'upstart' && SYSV_ON_UPSTART.includes(unit) ? { state: 0 } : s]),
  );
  // node-n serves 3 + n vDisks, so routers differ and a fan-out over them is not uniform. Each has
  // the hourly snapshot the framework's scheduled task took, long in the backend.
  const vdisks: Vdisk[] = Array.from({ length: 3 + n }, (_, i) => {
    const vdisk = `vd-${n}-${String(i + 1).padStart(2, '0')}`;
    return {
      guid: stableUuid(`vdisk ${vdisk}`),
      name: vdisk,
      volume_id: stableUuid(`volume ${vdisk}`),
      devicename: `/${vdisk}.raw`,
      vpool: vpools[0]!,
      snapshots: [{ name: stableUuid(`snapshot ${vdisk}`), uuid: stableUuid(`snapshot uuid ${vdisk}`), timestamp: 1795838400, metadata: '{"label": "", "is_automatic": true}', pending: 0 }],
    };
  });
  const { files, journal } = logs(name, release, units, vpools);
  const state: Record<string, unknown> = {
    framework: { release, guid: stableUuid(`storagerouter ${name}`) },
    config: { '/ovs/framework/logging': { type: release === 'develop' ? 'file' : 'console' } },
    vdisks,
    vpools,
    // Each Arakoon cluster has a master: node-1 for ovsdb, node-2 for voldrv (by machine id).
    arakoon: {
      ovsdb: { master: machineId(1), nodes: MASTERS.map(machineId) },
      voldrv: { master: machineId(2), nodes: MASTERS.map(machineId) },
    },
    ...(journal ? { journal } : {}),
  };
  if (master) {
    state.rabbitmq = {
      nodes: MASTERS.map((m) => `rabbit@node-${m}`),
      queues: [
        { name: 'ovs_generic', messages: 0 },
        { name: `ovs_${machineId(n)}`, messages: 0 },
        { name: 'ovs_masters', messages: 0 },
      ],
    };
  }
  return {
    name,
    groups: ['ovs', master ? 'ovs-master' : 'ovs-extra'],
    vars: { ip: `10.100.1.${n}`, vpools, role, ovsRelease: release },
    init,
    services,
    rootPaths: { ovsFramework: '/opt/OpenvStorage' },
    trees: { '/opt/OpenvStorage/ovs': 'python/ovs', '/usr/lib/python2.7/dist-packages': 'python/dist-packages' },
    state,
    instances: [],
    files: {
      ...files,
      ...configFiles(release),
      '/etc/openvstorage_id': `${machineId(n)}\n`,
      '/opt/OpenvStorage/webapps/': '',
    },
  };
}
