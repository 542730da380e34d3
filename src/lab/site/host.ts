import { createHash } from 'node:crypto';

/** A simulated host: its inventory groups and vars, how it runs services, and the state its tools start with. */
export interface SiteHost {
  name: string;
  groups: string[];
  vars: Record<string, unknown>;
  /**
   * The init system the host boots with. Default `systemd` (Debian ≥ 8, Ubuntu ≥ 15.04); `upstart` is
   * Ubuntu ≤ 14.04; `sysv` is Debian's /etc/init.d scripts run by sysvinit. It decides which
   * service managers the host has: `systemctl` only on systemd hosts, `initctl` and its `start`,
   * `stop`, `restart`, `status` only on upstart hosts; on the others they are not found.
   */
  init?: InitSystem;
  /** runit is installed beside the init system (its `sv`, and services under /etc/service). Default false. */
  runit?: boolean;
  /** The services the host has, by the name the pages and `service` use; none by default. */
  services?: Record<string, SiteService>;
  /** Initial tool state, written to `state/<name>.json`. */
  state: Record<string, unknown>;
  /** Instances whose files (disk, disk.local, …) this compute node holds. */
  instances: SiteInstance[];
  /** Files of the fake root, by absolute path (a path ending in "/" is a directory). */
  files?: Record<string, string>;
  /**
   * Directories of the fake root copied from the lab's tools (src/lab/tools/<source>), by absolute
   * path: programs the host has installed that the lab doubles in Python (the OVS framework).
   */
  trees?: Record<string, string>;
  /**
   * Inventory vars that name a path on the host (`ovsFramework: /opt/OpenvStorage`): the lab's
   * runbook.yaml points them into the host's fake root, where the lab installed what they name.
   */
  rootPaths?: Record<string, string>;
}

export type InitSystem = 'systemd' | 'upstart' | 'sysv';

/** A systemd unit's ActiveState and SubState, as `systemctl status` shows them. */
export type SystemdState = 'active (running)' | 'active (exited)' | 'inactive (dead)' | 'failed (failed)';
/** An upstart job's goal and state, as `initctl status` shows them. */
export type UpstartState = 'start/running' | 'stop/waiting';
/** What an init script's `status` answers (LSB): 0 running, 1 dead but its pid file remains, 3 not running. */
export type LsbStatus = 0 | 1 | 3;
/** What runit's `sv status` begins with. */
export type RunitState = 'run' | 'down';

/**
 * One service of a host, run by the host's init system, or by runit when `runit` is set: a systemd
 * unit, an upstart job (`/etc/init/<job>.conf`), an init script (`/etc/init.d/<script>`) or a runit
 * service (`/etc/service/<dir>`). The lab writes the job files, init scripts and service directories
 * into the host's fake root.
 */
export interface SiteService {
  /** Supervised by runit's runsv instead of the init system (the host must have runit). Default false. */
  runit?: boolean;
  /** Its state, in the words of whatever runs it (systemd, upstart, an LSB status code, runit). */
  state: SystemdState | UpstartState | LsbStatus | RunitState;
  /** The unit (`<name>.service`), job, init script or runit service directory. Default: from the service's name. */
  unit?: string;
  /** What systemd and the init script call it. Default: DAEMONS' description, else the name. */
  description?: string;
  /**
   * Started at boot. Default true. false: a disabled unit, an upstart job whose `.override` holds
   * `manual`, an init script whose rc links are K links, a runit service with a `down` file.
   */
  enabled?: boolean;
  /** A masked systemd unit (links to /dev/null): it refuses to start. Default false. */
  masked?: boolean;
  /**
   * The init script implements `status` (LSB). Default true; Debian's pre-LSB skeleton scripts did
   * not, and print their usage (exit 1) when asked.
   */
  lsbStatus?: boolean;
  /** The processes it runs while up. Default: DAEMONS[name], else one process named after it. */
  processes?: SiteProcess[];
}

/** A process of a service, as `ps` shows it. */
export interface SiteProcess {
  user: string;
  /** The command line (/proc/<pid>/cmdline). */
  args: string;
  /**
   * The name the kernel keeps (15 characters): the executable's, or the script's for an interpreted
   * program (`/usr/bin/python3 /usr/bin/nova-compute` is `nova-compute`). Default: derived from args.
   */
  comm?: string;
  /** Its parent starts it again when it is killed (mysqld under mysqld_safe). Default false. */
  respawn?: boolean;
}

/** How a service stands, whatever runs it: what tests and the other simulators read. */
export type ServiceStatus = 'running' | 'stopped' | 'failed';

/** The named services, all running, in the words of the host's init system (runit's for those in `runit`). */
export function runningServices(init: InitSystem, names: readonly string[], runit: readonly string[] = []): Record<string, SiteService> {
  return Object.fromEntries(names.map((n) => [n, runit.includes(n) ? { runit: true, state: serviceStateWord('runit', 'running') } : { state: serviceStateWord(init, 'running') }]));
}

const NEUTRAL: Record<string, { manager: InitSystem | 'runit'; status: ServiceStatus; exited?: boolean }> = {
  'active (running)': { manager: 'systemd', status: 'running' },
  'active (exited)': { manager: 'systemd', status: 'running', exited: true },
  'inactive (dead)': { manager: 'systemd', status: 'stopped' },
  'failed (failed)': { manager: 'systemd', status: 'failed' },
  'start/running': { manager: 'upstart', status: 'running' },
  'stop/waiting': { manager: 'upstart', status: 'stopped' },
  0: { manager: 'sysv', status: 'running' },
  1: { manager: 'sysv', status: 'failed' },
  3: { manager: 'sysv', status: 'stopped' },
  run: { manager: 'runit', status: 'running' },
  down: { manager: 'runit', status: 'stopped' },
};

/** The manager a state word belongs to, and what it means. */
export function readServiceState(state: SiteService['state']): { manager: InitSystem | 'runit'; status: ServiceStatus; exited?: boolean } {
  const n = NEUTRAL[String(state)];
  if (n === undefined) throw new Error(`unknown service state ${JSON.stringify(state)}`);
  return n;
}

const WORDS: Record<InitSystem | 'runit', Record<ServiceStatus, SiteService['state']>> = {
  systemd: { running: 'active (running)', stopped: 'inactive (dead)', failed: 'failed (failed)' },
  upstart: { running: 'start/running', stopped: 'stop/waiting', failed: 'stop/waiting' },
  sysv: { running: 0, stopped: 3, failed: 1 },
  runit: { running: 'run', stopped: 'down', failed: 'down' },
};

/** The state word that says `status` for a manager (upstart and runit have no failed state: the job waits, the service is down). */
function serviceStateWord(manager: InitSystem | 'runit', status: ServiceStatus): SiteService['state'] {
  return WORDS[manager][status];
}

/** Changes to a host's init profile for one lab (a test pins a host to what a procedure still assumes). */
export interface HostProfile {
  init?: InitSystem;
  runit?: boolean;
  /** Per service: fields to change; a state is re-expressed in the new init system's words. */
  services?: Record<string, Partial<SiteService>>;
}

/** The host as the profile changes it: every service's state said in its (possibly new) manager's words. */
export function withProfile(host: SiteHost, profile: HostProfile): SiteHost {
  const init = profile.init ?? host.init ?? 'systemd';
  const services = Object.fromEntries(
    Object.entries(host.services ?? {}).map(([name, s]) => {
      const merged = { ...s, ...profile.services?.[name] };
      const manager = merged.runit ? 'runit' : init;
      return [name, { ...merged, state: serviceStateWord(manager, readServiceState(merged.state).status) }];
    }),
  );
  return { ...host, init, runit: profile.runit ?? host.runit ?? false, services };
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
