import { createHash } from 'node:crypto';
import { UsageError } from '../errors.js';
import type { Domain, ServicesState, Vdisk } from './types.js';

/**
 * The simulated sites: the hosts the runbooks talk about, their inventory groups and vars, and the
 * state their tools start with. Named hosts keep their address whatever `only` selects, so a host
 * is always at the same place.
 */
export interface SiteHost {
  name: string;
  groups: string[];
  vars: Record<string, unknown>;
  /** Initial tool state, written to `state/<name>.json`. */
  state: Record<string, unknown>;
  /** Instances whose files (disk, disk.local, …) this compute node holds. */
  instances: SiteInstance[];
  /** Files of the fake root, by absolute path (a path ending in "/" is a directory). */
  files?: Record<string, string>;
}

export interface SiteInstance {
  /** nova `instances.id`; the libvirt name is derived from it. */
  id: number;
  uuid: string;
  displayName: string;
  /** Name of the compute host. */
  compute: string;
  /** virsh domain id. */
  domainId: number;
  /** Soft-deleted in nova (`deleted = 1`): no domain, no files, and no procedure may touch it. */
  deleted: boolean;
}

/** A stable uuid-shaped id derived from a name, so seeds are the same on every lab up. */
export function stableUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** libvirt's name of a nova instance: `instance-0000274a` for id 0x274a. */
export function instanceName(id: number): string {
  return `instance-${id.toString(16).padStart(8, '0')}`;
}

export function computeFqdn(compute: string): string {
  return `${compute}.example.com`;
}

/** The compute nodes' host IPs (libvirt.xml's DHCPSERVER and VNC listen address point there). */
export const COMPUTE_IPS: Record<string, string> = { c01: '10.100.3.1', c02: '10.100.3.2' };

/**
 * An instance's libvirt.xml as nova of the operations guide's era writes it: the disks, the nwfilter
 * parameters (DHCPSERVER: the compute host's IP) and the VNC console listening on the host's IP.
 */
export function libvirtXml(inst: SiteInstance): string {
  const name = instanceName(inst.id);
  const dir = `/var/lib/nova/instances/${name}`;
  const host = COMPUTE_IPS[inst.compute] ?? '0.0.0.0';
  return [
    '<domain type="kvm">',
    `  <uuid>${inst.uuid}</uuid>`,
    `  <name>${name}</name>`,
    '  <devices>',
    `    <disk type="file" device="disk"><source file="${dir}/disk"/></disk>`,
    `    <disk type="file" device="disk"><source file="${dir}/disk.local"/></disk>`,
    '    <interface type="bridge">',
    `      <filterref filter="nova-instance-${name}-fa163e">`,
    `        <parameter name="IP" value="10.0.0.${(inst.id % 200) + 3}"/>`,
    `        <parameter name="DHCPSERVER" value="${host}"/>`,
    '      </filterref>',
    '    </interface>',
    `    <graphics type="vnc" autoport="yes" keymap="en-us" listen="${host}"/>`,
    '  </devices>',
    '</domain>',
    '',
  ].join('\n');
}

const instance = (id: number, uuid: string, displayName: string, compute: string, domainId: number, deleted = false): SiteInstance => ({
  id,
  uuid,
  displayName,
  compute,
  domainId,
  deleted,
});

/** The instances of the operations guide's qemu-nbd example (c01) and a second compute node. */
export const INSTANCES: readonly SiteInstance[] = [
  instance(0x981, 'b3c5f1a2-6d0e-4c8b-9a51-2f7e8d4c0981', 'web-1', 'c01', 1),
  instance(0x9f5, 'c7d2e4b6-1a3f-4e9d-8b62-5a0c9f1e09f5', 'db-1', 'c01', 2),
  instance(0x274a, '3f57699a-e773-4650-a443-b4b37eed5a06', 'at3-ui02', 'c01', 30),
  instance(0x7d1, '9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d07d1', 'old-test', 'c01', 0, true),
  instance(0xa28, 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f0a28', 'build-1', 'c02', 1),
  instance(0xa29, 'f2a3b4c5-d6e7-4f8a-9b0c-1d2e3f4a0a29', 'build-2', 'c02', 2),
];

/** Volumes in cinder (and in the compute API's view): two in use by instances on c01, one available. */
export interface SiteVolume {
  id: string;
  displayName: string;
  /** libvirt name of the instance it is attached to, with its mount point. */
  instance?: string;
  mountpoint?: string;
  size: number;
}

export const VOLUMES: readonly SiteVolume[] = [
  { id: '5e3c1a7b-2d4f-4b6a-9c8e-0f1a2b3c4d5e', displayName: 'data', instance: 'instance-00000981', mountpoint: '/dev/vdb', size: 10 },
  { id: '1f0fbf36-8c2e-4d1a-b3f5-6e7d8c9b0a1f', displayName: 'test', instance: 'instance-0000274a', mountpoint: '/dev/vdc', size: 1 },
  { id: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d', displayName: 'spare', size: 20 },
];

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

function storageRouter(n: number): SiteHost {
  const role = n <= 3 ? 'master' : 'extra';
  const vpools = ['vpool1'];
  const services: ServicesState = {};
  for (const s of [...(role === 'master' ? [...OVS_MASTER_SERVICES, ...MASTER_SYSTEM_SERVICES] : OVS_EXTRA_SERVICES), ...vpools.flatMap(VPOOL_SERVICES)]) {
    services[s] = 'running';
  }
  // node-n serves 3 + n vDisks, so routers differ and a fan-out over them is not uniform.
  const vdisks: Vdisk[] = Array.from({ length: 3 + n }, (_, i) => {
    const name = `vd-${n}-${String(i + 1).padStart(2, '0')}`;
    return { guid: stableUuid(`vdisk ${name}`), name, volume_id: stableUuid(`volume ${name}`), snapshots: [] };
  });
  const masters = [1, 2, 3].map((m) => `rabbit@node-${m}`);
  const state: Record<string, unknown> = {
    vdisks,
    services,
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
    state,
    instances: [],
  };
}

/** The services RebootingDeleuze stops before the reboot: they depend on AFS (and on user lookups). */
export const AFS_DEPENDENT_SERVICES = ['nscd', 'mysql', 'postgres', 'apache2', 'domtool-server', 'cron', 'spamassassin', 'courier-authdaemon', 'openbsd-inetd'];

/** HCoop's AFS fileserver: every service running; courier-authdaemon under runit, the rest init.d. */
function afsFileserver(name: string): SiteHost {
  return {
    name,
    groups: ['afs', 'afs-fileserver'],
    vars: { runit: ['courier-authdaemon'], domtoolTest: '/etc/domtool/test.hcoop.net' },
    state: {
      services: Object.fromEntries(AFS_DEPENDENT_SERVICES.map((s) => [s, 'running'])),
      files: { '/etc/domtool/test.hcoop.net': 'domain "test.hcoop.net" with\nend;\n' },
      afs: { salvageChecksLeft: 0 },
    },
    instances: [],
  };
}

/** The other machines: domtool-slave everywhere, and what the page restarts there after an outage. */
function afsClient(name: string, services: string[]): SiteHost {
  return {
    name,
    groups: ['afs', 'afs-client'],
    vars: { restartAfterFileserver: services },
    state: { services: Object.fromEntries(services.map((s) => [s, 'running'])) },
    instances: [],
  };
}

/** The OpenStack services the controller runs, as `service <name> status` knows them. */
export const CONTROLLER_SERVICES = [
  'mysql',
  'rabbitmq-server',
  'keystone',
  'glance-api',
  'glance-registry',
  'nova-api',
  'nova-scheduler',
  'nova-conductor',
  'nova-consoleauth',
  'nova-novncproxy',
  'cinder-api',
  'cinder-scheduler',
  'cinder-volume',
  'neutron-server',
  'swift-proxy',
  'apache2',
];

/** Database passwords in the controller's configuration files: `cloud db-connections` must never show them. */
export const DB_PASSWORDS = { nova: 'Nova-db-9f3b61', glance: 'Glance-db-47c2d0', cinder: 'Cinder-db-c81e55', keystone: 'Keystone-db-2a6f93' } as const;

const RINGS = ['account', 'container', 'object'] as const;
const RING_PORTS = { account: 6202, container: 6201, object: 6200 } as const;
export const SWIFT_NODES = [1, 2, 3].map((n) => ({ name: `s0${n}`, ip: `10.100.2.${n}`, fqdn: `s0${n}.example.com`, zone: n }));

function ringState(): Record<string, unknown> {
  return Object.fromEntries(
    RINGS.map((ring) => [
      ring,
      {
        devices: SWIFT_NODES.map((s, i) => ({ id: i, region: 1, zone: s.zone, ip: s.ip, port: RING_PORTS[ring], device: 'sdb', weight: 100 })),
        pending: false,
        rebalances: 1,
      },
    ]),
  );
}

function ringFiles(): Record<string, string> {
  const rings = ringState() as Record<string, { devices: unknown[] }>;
  return Object.fromEntries(RINGS.map((ring) => [`/etc/swift/${ring}.ring.gz`, `${JSON.stringify({ version: 1, devices: rings[ring]!.devices })}\n`]));
}

function controller(): SiteHost {
  const live = INSTANCES.filter((i) => !i.deleted);
  const nova = {
    computes: ['c01', 'c02'].map(computeFqdn),
    sharedStorage: true,
    instances: live.map((i, n) => ({
      uuid: i.uuid,
      name: i.displayName,
      host: computeFqdn(i.compute),
      status: 'ACTIVE',
      power: 'Running',
      networks: `private=10.0.0.${n + 3}`,
      volumes: VOLUMES.filter((v) => v.instance === instanceName(i.id)).map((v) => ({ id: v.id, device: v.mountpoint })),
    })),
    volumes: VOLUMES.map((v) => ({ id: v.id, name: v.displayName, size: v.size })),
  };
  const glance = { images: [{ id: stableUuid('image cirros'), name: 'cirros-0.3.0-x86_64', size: 9761280 }, { id: stableUuid('image ubuntu'), name: 'ubuntu-12.04-server-cloudimg', size: 251985920 }] };
  const keystone = { projects: ['admin', 'demo', 'services'].map((name) => ({ id: stableUuid(`project ${name}`).replace(/-/g, ''), name })) };
  const swift = { account: 'AUTH_admin', containers: 3, objects: 1422, bytes: 1873612800 };
  const conn = (user: string, password: string, db: string) => `mysql+pymysql://${user}:${password}@cloud.example.com/${db}`;
  const conf = (section: string, key: string, url: string) => `[DEFAULT]\ndebug = False\n\n[${section}]\n# The SQLAlchemy connection string\n${key} = ${url}\nmax_pool_size = 10\n`;
  return {
    name: 'controller',
    groups: ['openstack', 'controller', 'swift-proxy'],
    vars: { fqdn: 'controller.example.com' },
    state: { nova, glance, keystone, swift, services: Object.fromEntries(CONTROLLER_SERVICES.map((s) => [s, 'running'])), rings: ringState() },
    instances: [],
    files: {
      '/etc/nova/nova.conf': conf('database', 'sql_connection', conn('nova', DB_PASSWORDS.nova, 'nova')),
      '/etc/glance/glance-api.conf': conf('database', 'sql_connection', conn('glance', DB_PASSWORDS.glance, 'glance')),
      '/etc/glance/glance-registry.conf': conf('database', 'sql_connection', conn('glance', DB_PASSWORDS.glance, 'glance')),
      '/etc/cinder/cinder.conf': conf('database', 'sql_connection', conn('cinder', DB_PASSWORDS.cinder, 'cinder')),
      '/etc/keystone/keystone.conf': conf('database', 'connection', conn('keystone_admin', DB_PASSWORDS.keystone, 'keystone')),
      ...Object.fromEntries(RINGS.map((ring) => [`/etc/swift/${ring}.builder`, `lab: the ${ring} ring's builder (state: rings.${ring})\n`])),
      ...ringFiles(),
    },
  };
}

/** The AMQP line of the operations guide, in nova-compute's log. */
const AMQP_LOG = '2013-02-26 09:51:31 12427 INFO nova.openstack.common.rpc.common [-] Connected to AMQP server on 199.116.232.36:5672\n';

/**
 * Users and groups of a compute node (`id`, `usermod`, `groupmod`) and the simulated ownership of its
 * files (`find … -exec chown`): the lab cannot really chown, so owners are state. c01 has the IDs of a
 * node installed apart from the others (nova 108); c02 already has the page's (nova 112, group 120).
 */
function accounts(name: string, instances: readonly SiteInstance[]): { accounts: unknown; owners: Record<string, { uid: number; gid: number }> } {
  const ids = name === 'c01' ? { nova: 108, novaGroup: 113, qemu: 109, kvm: 114, libvirtd: 115 } : { nova: 112, novaGroup: 120, qemu: 119, kvm: 114, libvirtd: 119 };
  const owners: Record<string, { uid: number; gid: number }> = {
    '/etc/nova/nova.conf': { uid: 0, gid: ids.novaGroup },
    '/var/lib/nova': { uid: ids.nova, gid: ids.novaGroup },
    '/var/lib/nova/instances': { uid: ids.nova, gid: ids.novaGroup },
    '/var/log/nova/nova-compute': { uid: ids.nova, gid: ids.novaGroup },
    '/var/lib/libvirt/qemu': { uid: ids.qemu, gid: ids.kvm },
    '/var/run/libvirt/libvirt-sock': { uid: 0, gid: ids.libvirtd },
    '/etc/passwd': { uid: 0, gid: 0 },
  };
  for (const i of instances) {
    const dir = `/var/lib/nova/instances/${instanceName(i.id)}`;
    owners[dir] = { uid: ids.nova, gid: ids.novaGroup };
    owners[`${dir}/libvirt.xml`] = { uid: ids.nova, gid: ids.novaGroup };
    owners[`${dir}/console.log`] = { uid: ids.qemu, gid: ids.kvm };
    owners[`${dir}/disk`] = { uid: ids.qemu, gid: ids.kvm };
  }
  return {
    accounts: {
      users: { root: { uid: 0, gid: 0 }, syslog: { uid: 104, gid: 4 }, nova: { uid: ids.nova, gid: ids.novaGroup }, 'libvirt-qemu': { uid: ids.qemu, gid: ids.kvm } },
      groups: { root: 0, adm: 4, nova: ids.novaGroup, kvm: ids.kvm, libvirtd: ids.libvirtd },
    },
    owners,
  };
}

function computeNode(name: string): SiteHost {
  const instances = INSTANCES.filter((i) => i.compute === name && !i.deleted);
  const domains: Domain[] = instances.map((i) => ({ id: i.domainId, name: instanceName(i.id), state: 'running' }));
  // /var/lib/nova/instances is shared storage: the other nodes' instances have their files here too.
  const shared = INSTANCES.filter((i) => i.compute !== name && !i.deleted);
  const { accounts: users, owners } = accounts(name, INSTANCES.filter((i) => !i.deleted));
  return {
    name,
    groups: ['openstack', 'compute'],
    vars: { fqdn: computeFqdn(name), ip: COMPUTE_IPS[name] },
    state: { virsh: { domains }, services: { 'nova-compute': 'running', 'libvirt-bin': 'running', 'neutron-openvswitch-agent': 'running' }, accounts: users, owners },
    instances,
    files: {
      ...Object.fromEntries(shared.map((i) => [`/var/lib/nova/instances/${instanceName(i.id)}/libvirt.xml`, libvirtXml(i)])),
      '/etc/init/nova-compute.conf': 'description "Nova compute worker"\nstart on runlevel [2345]\nstop on runlevel [!2345]\nexec start-stop-daemon --start --chuid nova --exec /usr/bin/nova-compute\n',
      '/etc/init.d/nova-compute': '#!/bin/sh\n### BEGIN INIT INFO\n# Provides: nova-compute\n### END INIT INFO\n',
      '/var/log/nova/nova-compute': `2013-02-26 09:51:30 12427 INFO nova.service [-] Starting compute node (version 2013.1)\n${AMQP_LOG}`,
      '/root/': '',
    },
  };
}

function storageNode(n: number): SiteHost {
  const node = SWIFT_NODES[n - 1]!;
  return {
    name: node.name,
    groups: ['openstack', 'swift'],
    vars: { ip: node.ip, fqdn: node.fqdn, zone: node.zone },
    state: {
      services: Object.fromEntries(['swift-object', 'swift-container', 'swift-account', 'rsync'].map((s) => [s, 'running'])),
      disks: { '/dev/sdb': { filesystem: 'xfs', uuid: stableUuid(`${node.name} sdb`) } },
      mounts: { '/srv/node/sdb': { device: '/dev/sdb', source: '/dev/sdb' } },
      dmesg: [
        '[    1.912300] sd 2:0:1:0: [sdb] 1953525168 512-byte logical blocks: (1.00 TB/932 GiB)',
        '[    1.915113] sd 2:0:1:0: [sdb] Attached SCSI disk',
        '[    5.201775] XFS (sdb): Mounting V5 Filesystem',
        '[    5.274920] XFS (sdb): Ending clean mount',
      ],
    },
    instances: [],
    files: {
      '/etc/fstab': 'LABEL=cloudimg-rootfs / ext4 defaults 0 0\n/dev/sdb /srv/node/sdb xfs noatime,nodiratime,nobarrier,logbufs=8 0 0\n',
      '/srv/node/sdb/': '',
      ...ringFiles(),
    },
  };
}

function plainHost(name: string, groups: string[], vars: Record<string, unknown> = {}): SiteHost {
  return { name, groups, vars, state: {}, instances: [] };
}

/** Every named host, in the fixed order that gives them their addresses. */
export const NAMED_HOSTS: readonly SiteHost[] = [
  ...[1, 2, 3, 4, 5, 6].map(storageRouter),
  controller(),
  computeNode('c01'),
  computeNode('c02'),
  ...[1, 2, 3].map(storageNode),
  afsFileserver('deleuze'),
  afsClient('outpost', ['domtool-slave', 'bind9']),
  afsClient('mire', ['domtool-slave', 'apache2']),
];

/**
 * Address of the host at position i (named hosts first, then extras): 127.0.0.11 upward, using
 * .1–.254 of each /24 so no address ends in .0 or .255, then 127.0.1.1, 127.0.2.1, …
 */
export function hostAddress(i: number): string {
  const p = 10 + i;
  return `127.0.${Math.floor(p / 254)}.${(p % 254) + 1}`;
}

export interface PlacedHost extends SiteHost {
  address: string;
}

/** The hosts of a lab, with their addresses. Throws when `only` names an unknown host. */
export function labHosts(only: string[] | undefined, extraHosts: number): PlacedHost[] {
  const known = new Set(NAMED_HOSTS.map((h) => h.name));
  const unknown = (only ?? []).filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UsageError(`unknown lab host${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the lab has ${[...known].join(', ')}`);
  }
  const named = NAMED_HOSTS.map((h, i) => ({ ...h, address: hostAddress(i) })).filter((h) => only === undefined || only.includes(h.name));
  const extras = Array.from({ length: extraHosts }, (_, i) => ({
    ...plainHost(`lab-${String(i + 1).padStart(3, '0')}`, ['generic']),
    address: hostAddress(NAMED_HOSTS.length + i),
  }));
  return [...named, ...extras];
}
