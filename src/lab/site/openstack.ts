/**
 * The OpenStack site: controller, compute nodes c01/c02 and swift storage nodes s01-s03, with the
 * instances and volumes the operations guide talks about.
 */
import type { Domain } from '../types.js';
import { runningServices, stableUuid, type SiteHost, type SiteInstance } from './host.js';

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

/** The OpenStack services the controller (systemd) runs, as `service <name> status` knows them. */
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

export function controller(): SiteHost {
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
    init: 'systemd',
    services: runningServices('systemd', CONTROLLER_SERVICES),
    state: { nova, glance, keystone, swift, rings: ringState() },
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

/** c02 still runs Ubuntu 14.04 (upstart), c01 a systemd release. */
const UPSTART_COMPUTES = ['c02'];

export function computeNode(name: string): SiteHost {
  const instances = INSTANCES.filter((i) => i.compute === name && !i.deleted);
  const domains: Domain[] = instances.map((i) => ({ id: i.domainId, name: instanceName(i.id), state: 'running' }));
  // /var/lib/nova/instances is shared storage: the other nodes' instances have their files here too.
  const shared = INSTANCES.filter((i) => i.compute !== name && !i.deleted);
  const { accounts: users, owners } = accounts(name, INSTANCES.filter((i) => !i.deleted));
  return {
    name,
    groups: ['openstack', 'compute'],
    vars: { fqdn: computeFqdn(name), ip: COMPUTE_IPS[name] },
    init: UPSTART_COMPUTES.includes(name) ? 'upstart' : 'systemd',
    services: runningServices(UPSTART_COMPUTES.includes(name) ? 'upstart' : 'systemd', ['nova-compute', 'libvirt-bin', 'neutron-openvswitch-agent']),
    state: { virsh: { domains }, accounts: users, owners },
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

export function storageNode(n: number): SiteHost {
  const node = SWIFT_NODES[n - 1]!;
  return {
    name: node.name,
    groups: ['openstack', 'swift'],
    vars: { ip: node.ip, fqdn: node.fqdn, zone: node.zone },
    init: 'systemd',
    services: runningServices('systemd', ['swift-object', 'swift-container', 'swift-account', 'rsync']),
    state: {
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

