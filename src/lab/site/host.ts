import { createHash } from 'node:crypto';

/** A simulated host: its inventory groups and vars, and the state its tools start with. */
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
  /** Soft-deleted in nova (`deleted = id`, as oslo.db soft_delete does): no domain, no files, and no procedure may touch it. */
  deleted: boolean;
}

/** A stable uuid-shaped id derived from a name, so seeds are the same on every lab up. */
export function stableUuid(seed: string): string {
  const h = createHash('sha1').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function plainHost(name: string, groups: string[], vars: Record<string, unknown> = {}): SiteHost {
  return { name, groups, vars, state: {}, instances: [] };
}
