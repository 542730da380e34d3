/**
 * The OpenStack site: a controller (every API, and the clients with their credentials), compute
 * nodes c01/c02 and swift storage nodes s01-s03, with the instances, volumes and ports the
 * operations guide talks about, shaped as a current release stores them (database.ts seeds them).
 *
 * Names as a real cloud has them: nova's service `host` is the compute node's host name (nova's
 * CONF.host defaults to socket.gethostname(), the short name: `c01`), its hypervisor (`node`,
 * compute_nodes.hypervisor_hostname) the name libvirt reports (`c01.example.com`); neutron binds a
 * port to nova's host name; cinder's volume service is `controller@lvm`, a volume's host
 * `controller@lvm#LVM`.
 */
import { runningServices, stableUuid, type SiteHost, type SiteInstance } from './host.js';

/** libvirt's name of a nova instance: `instance-0000274a` for id 0x274a (instance_name_template). */
export function instanceName(id: number): string {
  return `instance-${id.toString(16).padStart(8, '0')}`;
}

/** The hypervisor host name libvirt reports for a compute node (nova's `node`). */
export function computeFqdn(compute: string): string {
  return `${compute}.example.com`;
}

/** The compute nodes' host IPs (compute_nodes.host_ip, my_ip in nova.conf). */
export const COMPUTE_IPS: Record<string, string> = { c01: '10.100.3.1', c02: '10.100.3.2' };
export const COMPUTES = Object.keys(COMPUTE_IPS);

/** Keystone's projects; the instances and volumes belong to `demo`. */
export const PROJECTS = Object.fromEntries(['admin', 'demo', 'service'].map((name) => [name, stableUuid(`project ${name}`).replace(/-/g, '')])) as Record<'admin' | 'demo' | 'service', string>;
export const USERS = Object.fromEntries(['admin', 'demo'].map((name) => [name, stableUuid(`user ${name}`).replace(/-/g, '')])) as Record<'admin' | 'demo', string>;

const instance = (id: number, uuid: string, displayName: string, compute: string, domainId: number, deleted = false): SiteInstance => ({
  id,
  uuid,
  displayName,
  compute,
  domainId,
  deleted,
});

/** The instances of the operations guide's qemu-nbd example (c01), one deleted, and a second compute node. */
export const INSTANCES: readonly SiteInstance[] = [
  instance(0x981, 'b3c5f1a2-6d0e-4c8b-9a51-2f7e8d4c0981', 'web-1', 'c01', 1),
  instance(0x9f5, 'c7d2e4b6-1a3f-4e9d-8b62-5a0c9f1e09f5', 'db-1', 'c01', 2),
  instance(0x274a, '3f57699a-e773-4650-a443-b4b37eed5a06', 'at3-ui02', 'c01', 30),
  instance(0x7d1, '9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d07d1', 'old-test', 'c01', 0, true),
  instance(0xa28, 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f0a28', 'build-1', 'c02', 1),
  instance(0xa29, 'f2a3b4c5-d6e7-4f8a-9b0c-1d2e3f4a0a29', 'build-2', 'c02', 2),
];

/** Volumes in cinder: two in use by instances on c01 (at /dev/vdb and /dev/vdc), one available, one deleted. */
export interface SiteVolume {
  id: string;
  displayName: string;
  /** libvirt name of the instance it is attached to, with its mount point. */
  instance?: string;
  mountpoint?: string;
  size: number;
  /** Soft-deleted in cinder (`deleted = 1`, status `deleted`). */
  deleted?: boolean;
}

export const VOLUMES: readonly SiteVolume[] = [
  { id: '5e3c1a7b-2d4f-4b6a-9c8e-0f1a2b3c4d5e', displayName: 'data', instance: 'instance-00000981', mountpoint: '/dev/vdb', size: 10 },
  { id: '1f0fbf36-8c2e-4d1a-b3f5-6e7d8c9b0a1f', displayName: 'test', instance: 'instance-0000274a', mountpoint: '/dev/vdc', size: 1 },
  { id: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d', displayName: 'spare', size: 20 },
  { id: '0d9c8b7a-6f5e-4d4c-8b3a-2f1e0d9c8b7a', displayName: 'scratch-old', size: 5, deleted: true },
];

/** The OpenStack services the controller (systemd) runs, by their Debian unit names. */
export const CONTROLLER_SERVICES = [
  'mysql',
  'rabbitmq-server',
  'keystone',
  'glance-api',
  'nova-api',
  'nova-scheduler',
  'nova-conductor',
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

export const SWIFT_NODES = [1, 2, 3].map((n) => ({ name: `s0${n}`, ip: `10.100.2.${n}`, fqdn: `s0${n}.example.com`, zone: n }));
/** Each storage node's disks, one ring device each: with three replicas, a ring needs more than three devices to lose a node. */
export const SWIFT_DISKS = ['sdb', 'sdc'];
/** The ports the rings' devices listen on: Swift's defaults since 2.7.0 (swift cf48e75c2). */
export const RING_PORTS = { account: 6202, container: 6201, object: 6200 } as const;

/**
 * The controller: every API (served by the lab's OpenStack API double), its configuration files, and
 * the swift proxy's ring directory (the real swift-ring-builder builds the rings there at lab up).
 */
export function controller(): SiteHost {
  const conn = (user: string, password: string, db: string) => `mysql+pymysql://${user}:${password}@cloud.example.com/${db}`;
  // As the Debian packages ship them: the option commented out with its default, then the site's value.
  const conf = (section: string, key: string, url: string) =>
    `[DEFAULT]\ndebug = False\n\n[${section}]\n# The SQLAlchemy connection string (string value)\n#connection = <None>\n${key} = ${url}\nmax_pool_size = 10\n`;
  return {
    name: 'controller',
    groups: ['openstack', 'controller', 'swift-proxy'],
    vars: { fqdn: 'controller.example.com' },
    init: 'systemd',
    services: runningServices('systemd', CONTROLLER_SERVICES),
    state: {},
    instances: [],
    files: {
      '/etc/nova/nova.conf': conf('database', 'connection', conn('nova', DB_PASSWORDS.nova, 'nova')),
      '/etc/glance/glance-api.conf': conf('database', 'connection', conn('glance', DB_PASSWORDS.glance, 'glance')),
      '/etc/glance/glance-cache.conf': conf('database', 'connection', conn('glance', DB_PASSWORDS.glance, 'glance')),
      '/etc/cinder/cinder.conf': conf('database', 'connection', conn('cinder', DB_PASSWORDS.cinder, 'cinder')),
      '/etc/keystone/keystone.conf': conf('database', 'connection', conn('keystone_admin', DB_PASSWORDS.keystone, 'keystone')),
      '/etc/swift/': '',
    },
  };
}

/**
 * nova-compute's log as a current release writes it (Debian's init script: LOGFILE=/var/log/nova/
 * nova-compute.log): oslo.messaging logs "Connected to AMQP server" at DEBUG since 2.9.0, so with
 * debug = False the line is not there.
 */
const COMPUTE_LOG = [
  '2026-03-02 09:51:30.412 1342 INFO nova.service [-] Starting compute node (version 32.1.0)',
  '2026-03-02 09:51:31.977 1342 INFO nova.compute.manager [None req-5f1c0b1e - - - - - -] Looking for unclaimed instances stuck in BUILDING status for nodes managed by this host',
  '',
].join('\n');

/**
 * Users, groups and file ownership of a compute node (`id`, `usermod`, `groupmod`, `find`): the lab
 * cannot really chown, so owners are state. Debian's names: user libvirt-qemu, group `libvirt`
 * (libvirt-daemon-system's postinst, Debian ≥ 10). c01 has the IDs of a node installed apart from the
 * others (nova 108); c02 already has the page's (nova 112, group 120).
 */
function accounts(name: string, instances: readonly SiteInstance[]): { accounts: unknown; owners: Record<string, { uid: number; gid: number }> } {
  const ids = name === 'c01' ? { nova: 108, novaGroup: 113, qemu: 109, kvm: 114, libvirt: 115 } : { nova: 112, novaGroup: 120, qemu: 119, kvm: 114, libvirt: 119 };
  const owners: Record<string, { uid: number; gid: number }> = {
    '/etc/nova/nova.conf': { uid: 0, gid: ids.novaGroup },
    '/var/lib/nova': { uid: ids.nova, gid: ids.novaGroup },
    '/var/lib/nova/instances': { uid: ids.nova, gid: ids.novaGroup },
    '/var/log/nova/nova-compute.log': { uid: ids.nova, gid: ids.novaGroup },
    '/var/lib/libvirt/qemu': { uid: ids.qemu, gid: ids.kvm },
    '/var/run/libvirt/libvirt-sock': { uid: 0, gid: ids.libvirt },
    '/etc/passwd': { uid: 0, gid: 0 },
  };
  for (const i of instances) {
    const dir = `/var/lib/nova/instances/${i.uuid}`;
    owners[dir] = { uid: ids.nova, gid: ids.novaGroup };
    owners[`${dir}/console.log`] = { uid: ids.qemu, gid: ids.kvm };
    owners[`${dir}/disk`] = { uid: ids.qemu, gid: ids.kvm };
    owners[`${dir}/disk.info`] = { uid: ids.nova, gid: ids.novaGroup };
  }
  return {
    accounts: {
      users: { root: { uid: 0, gid: 0 }, syslog: { uid: 104, gid: 4 }, nova: { uid: ids.nova, gid: ids.novaGroup }, 'libvirt-qemu': { uid: ids.qemu, gid: ids.kvm } },
      groups: { root: 0, adm: 4, nova: ids.novaGroup, kvm: ids.kvm, libvirt: ids.libvirt },
    },
    owners,
  };
}

/** c02 still runs Ubuntu 14.04 (upstart, libvirt's job libvirt-bin), c01 a systemd release (libvirtd). */
const UPSTART_COMPUTES = ['c02'];

export function computeNode(name: string): SiteHost {
  const instances = INSTANCES.filter((i) => i.compute === name && !i.deleted);
  const init = UPSTART_COMPUTES.includes(name) ? 'upstart' : 'systemd';
  // /var/lib/nova/instances is shared storage: every live instance's files are there on each node.
  const { accounts: users, owners } = accounts(name, INSTANCES.filter((i) => !i.deleted));
  return {
    name,
    groups: ['openstack', 'compute'],
    vars: { fqdn: computeFqdn(name), ip: COMPUTE_IPS[name] },
    init,
    services: runningServices(init, ['nova-compute', init === 'upstart' ? 'libvirt-bin' : 'libvirtd', 'neutron-openvswitch-agent']),
    state: {
      virsh: { domains: instances.map((i) => ({ id: i.domainId, name: instanceName(i.id), uuid: i.uuid, state: 'running' })) },
      accounts: users,
      owners,
    },
    instances: INSTANCES.filter((i) => !i.deleted),
    files: {
      '/etc/nova/nova.conf': `[DEFAULT]\nhost = ${name}\nmy_ip = ${COMPUTE_IPS[name]}\n\n[vnc]\nserver_listen = 0.0.0.0\nserver_proxyclient_address = ${COMPUTE_IPS[name]}\n`,
      '/var/log/nova/nova-compute.log': COMPUTE_LOG,
      '/root/': '',
    },
  };
}

/**
 * How each storage node's /etc/fstab names its disks: s02 by device, as the install guide does
 * (swift doc/source/install/storage-install-ubuntu-debian.rst); s01 by label, as OpenStack-Ansible
 * formats them (mkfs.xfs -L); s03 by UUID, as sites that follow blkid do.
 */
const FSTAB_FORM: Record<string, 'device' | 'label' | 'uuid'> = { s01: 'label', s02: 'device', s03: 'uuid' };

export function storageNode(n: number): SiteHost {
  const node = SWIFT_NODES[n - 1]!;
  const form = FSTAB_FORM[node.name] ?? 'device';
  const uuid = (d: string) => stableUuid(`${node.name} ${d}`);
  const source = (d: string) => (form === 'label' ? `LABEL=${d}` : form === 'uuid' ? `UUID=${uuid(d)}` : `/dev/${d}`);
  return {
    name: node.name,
    groups: ['openstack', 'swift'],
    vars: { ip: node.ip, fqdn: node.fqdn, zone: node.zone },
    init: 'systemd',
    services: runningServices('systemd', ['swift-object', 'swift-container', 'swift-account', 'rsync']),
    state: {
      disks: Object.fromEntries(SWIFT_DISKS.map((d) => [`/dev/${d}`, { filesystem: 'xfs', uuid: uuid(d), ...(form === 'label' ? { label: d } : {}) }])),
      mounts: Object.fromEntries(SWIFT_DISKS.map((d) => [`/srv/node/${d}`, { device: `/dev/${d}`, source: `/dev/${d}` }])),
      dmesg: [
        '[    1.912300] sd 2:0:1:0: [sdb] 1953525168 512-byte logical blocks: (1.00 TB/932 GiB)',
        '[    1.915113] sd 2:0:1:0: [sdb] Attached SCSI disk',
        '[    5.201775] XFS (sdb): Mounting V5 Filesystem',
        '[    5.274920] XFS (sdb): Ending clean mount',
      ],
    },
    instances: [],
    files: {
      '/etc/fstab': `LABEL=cloudimg-rootfs / ext4 defaults 0 0\n${SWIFT_DISKS.map((d) => `${source(d)} /srv/node/${d} xfs noatime,nodiratime,logbufs=8 0 0\n`).join('')}`,
      ...Object.fromEntries(SWIFT_DISKS.map((d) => [`/srv/node/${d}/`, ''])),
      '/etc/swift/': '',
    },
  };
}
