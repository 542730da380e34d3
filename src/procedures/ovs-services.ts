/**
 * The services an Open vStorage Storage Router runs, from its inventory vars (role, release line,
 * vPools), as the framework installs them. The troubleshooting page's list is the 2014–mid-2015
 * one (ovs-memcached, ovs-nginx, ovs-rabbitmq, ovs-watcher, ovs-failovercache_<vpool>,
 * ovs-elasticsearch, ovs-snmp): none of those names exists on the releases the procedures run on.
 *
 * - Every node: ovs-workers and ovs-watcher-framework (framework ovs/lib/setup.py `_add_services`
 *   @ 2.7.4-fargo.1; ovs/lib/noderemoval.py `_remove_services` @ 2.9.30), ovs-support-agent when
 *   the node sends heartbeats to support (setup.py: only with `enable_heartbeats`).
 * - Fargo (2.7): also ovs-watcher-config, and ovs-etcd-config (the etcd member on masters, its proxy
 *   on extras: ovs/extensions/db/etcd/installer.py, target `ovs-etcd-<cluster>`, cluster `config`).
 * - Masters: ovs-scheduled-tasks, ovs-webapp-api, ovs-volumerouter-consumer, and the Arakoon
 *   clusters ovs-arakoon-ovsdb and ovs-arakoon-voldrv (after Fargo also ovs-arakoon-cacc, the
 *   configuration's own); the distribution's memcached, rabbitmq-server and nginx, which the page
 *   checks with `service <name> status`.
 * - Each vPool: ovs-volumedriver_<vpool> and ovs-dtl_<vpool> (the Failover Cache became the DTL in
 *   2015-09, framework 25a2778a), ovs-watcher-volumedriver once, and the ALBA proxy of a vPool on an
 *   ALBA backend: ovs-albaproxy_<vpool> (2.7.4-fargo.1 ovs/lib/storagerouter.py), ovs-albaproxy_<vpool>_0
 *   after (2.9.30 ovs/lib/migration.py renames it).
 */
import type { InventoryHost } from '../inventory.js';
import { releaseOf } from './ovs-framework.js';

interface ExpectedService {
  name: string;
  /** Why it may be absent on a healthy node: then it is reported, not required. */
  optional?: string;
}

export const isMaster = (h: InventoryHost): boolean => h.groups.includes('ovs-master');
export const vpoolsOf = (h: InventoryHost): string[] => (Array.isArray(h.vars.vpools) ? h.vars.vpools.map(String) : []);

/** The distribution's services the page checks on a master with `service <name> status`. */
export const MASTER_SYSTEM_SERVICES = ['memcached', 'nginx', 'rabbitmq-server'];

/** The framework's own services (`ovs-*`) the node runs, by its role, release line and vPools. */
export function expectedServices(h: InventoryHost): ExpectedService[] {
  const fargo = releaseOf(h) === 'fargo';
  const vpools = vpoolsOf(h);
  const names = [
    'ovs-workers',
    'ovs-watcher-framework',
    ...(fargo ? ['ovs-watcher-config', 'ovs-etcd-config'] : []),
    ...(isMaster(h) ? ['ovs-scheduled-tasks', 'ovs-webapp-api', 'ovs-volumerouter-consumer', ...(fargo ? [] : ['ovs-arakoon-cacc']), 'ovs-arakoon-ovsdb', 'ovs-arakoon-voldrv'] : []),
    ...(vpools.length > 0 ? ['ovs-watcher-volumedriver'] : []),
    ...vpools.flatMap((v) => [`ovs-volumedriver_${v}`, `ovs-dtl_${v}`]),
  ];
  return [
    ...names.map((name) => ({ name })),
    { name: 'ovs-support-agent', optional: 'only on a node that sends heartbeats to support' },
    ...vpools.map((v) => ({ name: fargo ? `ovs-albaproxy_${v}` : `ovs-albaproxy_${v}_0`, optional: 'only for a vPool on an ALBA backend' })),
  ];
}

/** `fargo master, vPools vpool1`: how a node is described next to its services. */
export function describeNode(h: InventoryHost): string {
  const vpools = vpoolsOf(h);
  return `${h.name}: ${releaseOf(h)} ${isMaster(h) ? 'master' : 'extra'} node${vpools.length ? `, vPools ${vpools.join(', ')}` : ''}`;
}
