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

const OVS_MASTER_SERVICES = [
  'ovs-arakoon-ovsdb',
  'ovs-arakoon-voldrv',
  'ovs-memcached',
  'ovs-nginx',
  'ovs-rabbitmq',
  'ovs-scheduled-tasks',
  'ovs-snmp',
  'ovs-volumerouter-consumer',
  'ovs-watcher-framework',
  'ovs-webapp-api',
  'ovs-workers',
];
const OVS_EXTRA_SERVICES = ['ovs-volumerouter-consumer', 'ovs-watcher-framework', 'ovs-workers'];
const VPOOL_SERVICES = (vpool: string) => [`ovs-volumedriver_${vpool}`, `ovs-dtl_${vpool}`];

function storageRouter(n: number): SiteHost {
  const role = n <= 3 ? 'master' : 'extra';
  const vpools = ['vpool1'];
  const services: ServicesState = {};
  for (const s of [...(role === 'master' ? OVS_MASTER_SERVICES : OVS_EXTRA_SERVICES), ...vpools.flatMap(VPOOL_SERVICES)]) {
    services[s] = 'running';
  }
  // node-n serves 3 + n vDisks, so routers differ and a fan-out over them is not uniform.
  const vdisks: Vdisk[] = Array.from({ length: 3 + n }, (_, i) => {
    const name = `vd-${n}-${String(i + 1).padStart(2, '0')}`;
    return { guid: stableUuid(`vdisk ${name}`), name, volume_id: stableUuid(`volume ${name}`), snapshots: [] };
  });
  return {
    name: `node-${n}`,
    groups: ['ovs', role === 'master' ? 'ovs-master' : 'ovs-extra'],
    vars: { ip: `10.100.1.${n}`, vpools, role },
    state: { vdisks, services },
    instances: [],
  };
}

function computeNode(name: string): SiteHost {
  const instances = INSTANCES.filter((i) => i.compute === name && !i.deleted);
  const domains: Domain[] = instances.map((i) => ({ id: i.domainId, name: instanceName(i.id), state: 'running' }));
  return { name, groups: ['openstack', 'compute'], vars: { fqdn: computeFqdn(name) }, state: { virsh: { domains } }, instances };
}

function plainHost(name: string, groups: string[], vars: Record<string, unknown> = {}): SiteHost {
  return { name, groups, vars, state: {}, instances: [] };
}

/** Every named host, in the fixed order that gives them their addresses. */
export const NAMED_HOSTS: readonly SiteHost[] = [
  ...[1, 2, 3, 4, 5, 6].map(storageRouter),
  plainHost('controller', ['openstack', 'controller']),
  computeNode('c01'),
  computeNode('c02'),
  ...[1, 2, 3].map((n) => plainHost(`s0${n}`, ['openstack', 'swift'], { ip: `10.100.2.${n}` })),
  plainHost('deleuze', ['afs', 'afs-fileserver']),
  plainHost('outpost', ['afs', 'afs-client']),
  plainHost('mire', ['afs', 'afs-client']),
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
