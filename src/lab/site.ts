/**
 * The simulated sites: the hosts the runbooks talk about, their inventory groups and vars, and the
 * state their tools start with. Named hosts keep their address whatever `only` selects, so a host
 * is always at the same place. One module per site (ovs, afs, openstack) under site/.
 */
import { UsageError } from '../errors.js';
import { afsClient, afsFileserver } from './site/afs.js';
import { plainHost, withProfile, type HostProfile, type SiteHost } from './site/host.js';
import { computeNode, controller, storageNode } from './site/openstack.js';
import { storageRouter } from './site/ovs.js';

export * from './site/afs.js';
export * from './site/daemons.js';
export * from './site/host.js';
export * from './site/openstack.js';
export * from './site/ovs.js';

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

/**
 * The hosts of a lab, with their addresses, each changed by its entry in `profiles`. Throws when
 * `only` or `profiles` names an unknown host.
 */
export function labHosts(only: string[] | undefined, extraHosts: number, profiles: Record<string, HostProfile> = {}): PlacedHost[] {
  const known = new Set(NAMED_HOSTS.map((h) => h.name));
  const unknown = [...(only ?? []), ...Object.keys(profiles)].filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new UsageError(`unknown lab host${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; the lab has ${[...known].join(', ')}`);
  }
  const named = NAMED_HOSTS.map((h, i) => ({ ...(profiles[h.name] ? withProfile(h, profiles[h.name]!) : h), address: hostAddress(i) })).filter((h) => only === undefined || only.includes(h.name));
  const extras = Array.from({ length: extraHosts }, (_, i) => ({
    ...plainHost(`lab-${String(i + 1).padStart(3, '0')}`, ['generic']),
    address: hostAddress(NAMED_HOSTS.length + i),
  }));
  return [...named, ...extras];
}
