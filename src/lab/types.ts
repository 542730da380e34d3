import type { HostProfile } from './site/host.js';

export interface LabOptions {
  /** Directory that holds everything of the lab; created when missing. */
  dir: string;
  /** Generic hosts `lab-001`… (groups `[generic]`) added after the named ones. Default 0. */
  extraHosts?: number;
  /** Start only these named hosts (plus the extra hosts). Default: all named hosts. */
  only?: string[];
  /** One port for every host; 0 picks a port free on all of the lab's addresses. Default 2222. */
  port?: number;
  /** MariaDB server for the lab's databases. Default `process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'`. */
  mysqlUrl?: string;
  /** Prefix of the lab's database names. Default `lab_` (lab_nova, lab_cinder, lab_neutron). */
  dbPrefix?: string;
  /** The shape of cinder's tables: `current` (Kilo and later) or `pre-kilo` (Juno's, the disaster-recovery page's era). Default `current`. */
  cinderSchema?: CinderSchema;
  /**
   * Scales the OpenStack API double's clock: an asynchronous action (live migration, evacuation,
   * detach, reboot) takes 2 s, nova-compute reports every 10 s, and a service is down after 60 s
   * without a report (nova's report_interval and service_down_time). Default 1.
   */
  openstackTimeScale?: number;
  /** How the controller's OpenStack clients get their credentials: a clouds.yaml (`clouds`) or an openrc file. Default `clouds`. */
  openstackCredentials?: OpenStackCredentials;
  /**
   * Per named host, changes to its init profile (init system, runit, services) for this lab only;
   * e.g. `{ c01: { init: 'upstart' } }`. Default: the site's profiles (see site/host.ts).
   */
  profiles?: Record<string, HostProfile>;
  /**
   * Pack directories whose procedures the lab runs: their `lab/<tool>.cjs` simulators join the
   * lab's tools, and the lab's runbook.yaml loads the packs. Default none.
   */
  packs?: string[];
}

export type OpenStackCredentials = 'clouds' | 'openrc';

/** `current`: cinder ≥ Kilo (volume_attachment); `pre-kilo`: the attachment in volumes' own columns. */
export type CinderSchema = 'current' | 'pre-kilo';

export interface LabHost {
  name: string;
  address: string;
  port: number;
  groups: string[];
  vars: Record<string, unknown>;
}

export interface LabDatabases {
  nova: string;
  cinder: string;
  neutron: string;
}

export interface Lab {
  /** Absolute lab directory. */
  dir: string;
  /** `<dir>/runbook.yaml`. */
  configPath: string;
  hosts: LabHost[];
  /** The unprivileged user every host logs in. */
  user: string;
  /** Database names on the lab's MariaDB. */
  databases: LabDatabases;
  /** Server URL without a database. */
  mysqlUrl: string;
  cinderSchema: CinderSchema;
  /** The OpenStack API double on loopback: Keystone's URL, and the credentials the controller's clients use. */
  openstack: LabOpenStack;
  /** Absolute pack directories the lab simulates the tools of, and its runbook.yaml loads. */
  packs?: string[];
}

export interface LabOpenStack {
  /** `http://127.0.0.1:<port>/identity/v3` */
  authUrl: string;
  port: number;
  timeScale: number;
  credentials: OpenStackCredentials;
}

/** A fault the simulated tools of one host inject (see src/lab/tools/labtool.cjs). */
export interface LabFault {
  /** Compared word by word with the start of the invocation: `virsh resume` matches `virsh resume 30`. */
  match: string;
  /** fail: print stderr, exit; hang: sleep until killed; slow: wait delayMs, then behave normally. */
  action: 'fail' | 'hang' | 'slow';
  /** For fail. Default 1. */
  exitCode?: number;
  /** For fail. Default `<tool>: simulated failure (lab fault)`. */
  stderr?: string;
  /** For slow. Default 1000. */
  delayMs?: number;
  /** The fault applies this many times, then is used up. Default: for ever. */
  times?: number;
}

/** One line of a host's calls.log. */
export interface LabCall {
  /** Start time, ms since the epoch. */
  t: number;
  /** Tool name and arguments. */
  argv: string[];
  /** Exit code; 128 + signal number when a signal ended it. */
  exit: number;
}

/** Shapes of the simulated tools' state files, for `readHostState<T>(dir, host, name)`. */
export interface VdiskSnapshot {
  /** The snapshot id the volumedriver knows it by (`flush_snapshot`, or a uuid the framework chose). */
  name: string;
  uuid: string;
  timestamp: number;
  metadata: string;
  /** How many more `info_snapshot` calls see it not yet in the backend; 0: in the backend. */
  pending: number;
}

/** `readHostState<Vdisk[]>(dir, host, 'vdisks')`: the vDisks the Storage Router serves. */
export interface Vdisk {
  guid: string;
  name: string;
  volume_id: string;
  devicename: string;
  vpool: string;
  snapshots: VdiskSnapshot[];
}


export interface Domain {
  id: number;
  name: string;
  /** The nova instance it runs: how the OpenStack double finds it when nova moves the instance. */
  uuid?: string;
  state: 'running' | 'paused' | 'shut off';
}

/** `readHostState<VirshState>(dir, host, 'virsh')`. */
export interface VirshState {
  domains: Domain[];
}

/** `readHostState<NbdState>(dir, host, 'nbd')`: device → path of the connected disk. */
export type NbdState = Record<string, string>;

/** `readHostState<MountsState>(dir, host, 'mounts')`: mount point → device and disk. */
export type MountsState = Record<string, { device: string; source: string }>;
