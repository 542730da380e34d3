/** The Open vStorage site: Storage Routers node-1 to node-6 (masters node-1..3). */
import type { Vdisk } from '../types.js';
import { runningServices, stableUuid, type InitSystem, type SiteHost } from './host.js';

/** The services of "The Open vStorage services" (ovs-troubleshooting.md), by node type. */
export const OVS_MASTER_SERVICES = [
  'ovs-arakoon-ovsdb',
  'ovs-arakoon-voldrv',
  'ovs-elasticsearch',
  'ovs-memcached',
  'ovs-nginx',
  'ovs-rabbitmq',
  'ovs-scheduled-tasks',
  'ovs-snmp',
  'ovs-volumerouter-consumer',
  'ovs-watcher',
  'ovs-webapp-api',
  'ovs-workers',
];
export const OVS_EXTRA_SERVICES = ['ovs-volumerouter-consumer', 'ovs-watcher', 'ovs-workers'];
export const VPOOL_SERVICES = (vpool: string) => [`ovs-volumedriver_${vpool}`, `ovs-failovercache_${vpool}`];
/** What "Restart an environment" checks with `service <name> status` on a master. */
const MASTER_SYSTEM_SERVICES = ['memcached', 'nginx', 'rabbitmq-server'];
/** The Framework's logs under /var/log/ovs/ (ovs-troubleshooting.md, "Open vStorage Logs"). */
export const OVS_LOGS = ['api.log', 'arakoon.log', 'celery.log', 'dal.log', 'django.log', 'extensions.log', 'lib.log'];

function ovsLogs(node: string, vpools: string[]): Record<string, string> {
  const line = (i: number, component: string) => `2026-11-22 04:0${i}:1${i} 50${i}00 +0000 - ${node} - 123${i}/140${i} - ${component} - ${i} - INFO - lab log line ${i}`;
  const logs: Record<string, string> = {};
  for (const log of OVS_LOGS) logs[`/var/log/ovs/${log}`] = `${[1, 2, 3, 4, 5].map((i) => line(i, log.replace('.log', ''))).join('\n')}\n`;
  for (const v of vpools) {
    logs[`/var/log/ovs/volumedriver/${v}.log`] = `${[1, 2, 3].map((i) => line(i, `volumedriver_${v}`)).join('\n')}\n`;
    logs[`/var/log/ovs/volumedriver/foc_${v}.log`] = `${[1, 2].map((i) => line(i, `failovercache_${v}`)).join('\n')}\n`;
  }
  return logs;
}

/** Storage routers node-3 and node-6 still run Ubuntu 14.04 (upstart); the others a systemd release. */
const UPSTART_ROUTERS = [3, 6];

export function storageRouter(n: number): SiteHost {
  const role = n <= 3 ? 'master' : 'extra';
  const vpools = ['vpool1'];
  const init: InitSystem = UPSTART_ROUTERS.includes(n) ? 'upstart' : 'systemd';
  const services = runningServices(init, [...(role === 'master' ? [...OVS_MASTER_SERVICES, ...MASTER_SYSTEM_SERVICES] : OVS_EXTRA_SERVICES), ...vpools.flatMap(VPOOL_SERVICES)]);
  // node-n serves 3 + n vDisks, so routers differ and a fan-out over them is not uniform.
  const vdisks: Vdisk[] = Array.from({ length: 3 + n }, (_, i) => {
    const name = `vd-${n}-${String(i + 1).padStart(2, '0')}`;
    return { guid: stableUuid(`vdisk ${name}`), name, volume_id: stableUuid(`volume ${name}`), snapshots: [] };
  });
  const masters = [1, 2, 3].map((m) => `rabbit@node-${m}`);
  const state: Record<string, unknown> = {
    vdisks,
    vpools,
    // etcd answers on every node: each Arakoon database has a master.
    arakoon: { ovsdb: { master: 'node-1' }, voldrv: { master: 'node-2' } },
    logs: ovsLogs(`node-${n}`, vpools),
  };
  if (role === 'master') {
    state.rabbitmq = { nodes: masters, queues: [{ name: 'ovs_generic', messages: 0 }, { name: `ovs_node-${n}`, messages: 0 }, { name: 'ovs_masters', messages: 0 }] };
  }
  return {
    name: `node-${n}`,
    groups: ['ovs', role === 'master' ? 'ovs-master' : 'ovs-extra'],
    vars: { ip: `10.100.1.${n}`, vpools, role },
    init,
    services,
    state,
    instances: [],
  };
}

