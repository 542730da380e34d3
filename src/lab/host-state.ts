import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { labPaths } from './paths.js';
import type { ServiceStatus } from './site.js';
import { runtime, serviceState, type HostContext, type ServiceRecord } from './tool-runtime.js';
import type { LabCall, LabFault } from './types.js';

/** The absolute lab dir, after checking that the lab has this host. */
function labDirOf(dir: string, host: string): string {
  const labDir = resolve(dir);
  if (!existsSync(runtime.hostDir(labDir, host))) throw new Error(`the lab in ${dir} has no host ${host}`);
  return labDir;
}

/** Locked update of one of the host's files, shared with the tools (see tools/runtime.cjs). */
function updateHostFile<T>(dir: string, host: string, name: string, fallback: T, fn: (value: T) => void): void {
  const labDir = labDirOf(dir, host);
  runtime.updateJson(labDir, host, runtime.hostFile(labDir, host, name), fallback, fn);
}

/** Adds a fault to the host's tools; faults match in the order they were set. */
export function setFault(dir: string, host: string, fault: LabFault): void {
  updateHostFile<LabFault[]>(dir, host, 'faults.json', [], (faults) => {
    faults.push(fault);
  });
}

/** Removes the faults of one host, or of every host. */
export function clearFaults(dir: string, host?: string): void {
  for (const h of host === undefined ? readdirSync(labPaths(resolve(dir)).hosts) : [host]) {
    updateHostFile<LabFault[]>(dir, h, 'faults.json', [], (faults) => {
      faults.length = 0;
    });
  }
}

/** Sets a knob of the host's tools, e.g. `pendingChecks` (info-snapshot calls before in_backend). */
export function setHostSetting(dir: string, host: string, key: string, value: unknown): void {
  updateHostFile<Record<string, unknown>>(dir, host, 'settings.json', {}, (settings) => {
    settings[key] = value;
  });
}

/** Every tool invocation on the host so far, oldest first. */
export function readCalls(dir: string, host: string): LabCall[] {
  return runtime.readCalls(labDirOf(dir, host), host);
}

/** A state file of the host's tools (`vdisks`, `init`, `virsh`, `nbd`, `mounts`), if it exists. */
export function readHostState<T = unknown>(dir: string, host: string, name: string): T | undefined {
  const labDir = labDirOf(dir, host);
  return runtime.readJson<T | undefined>(runtime.statePath(labDir, host, name), undefined);
}

/** Locked change of a state file of the host's tools, as a test sets the scene (a service stopped, a guest shut off). */
export function setHostState<T>(dir: string, host: string, name: string, fn: (value: T) => void): void {
  const labDir = labDirOf(dir, host);
  runtime.updateJson(labDir, host, runtime.statePath(labDir, host, name), {} as T, fn);
}

/** Every service of the host and how it stands (`running`, `stopped`, `failed`), whatever runs it. */
export function readServices(dir: string, host: string): Record<string, ServiceStatus> {
  const ctx = new runtime.HostContext(labDirOf(dir, host), host);
  return Object.fromEntries(Object.entries(serviceState.read(ctx).services).map(([name, s]) => [name, s.status]));
}

/** The fake-root files a service manager reads for a service: its job file, init script or service directory. */
function serviceFiles(service: ServiceRecord): string[] {
  return { systemd: [], upstart: [`/etc/init/${service.unit}.conf`, `/etc/init/${service.unit}.override`], sysv: [`/etc/init.d/${service.unit}`], runit: [`/etc/service/${service.unit}`] }[service.manager];
}

/**
 * Moves a service's files between the fake root and the host's `uninstalled/<service>/` (kept so
 * that putting the service back restores them as they were).
 */
function moveFiles(ctx: HostContext, name: string, service: ServiceRecord, install: boolean): void {
  for (const f of serviceFiles(service)) {
    const stash = join(runtime.hostDir(ctx.labDir, ctx.host), 'uninstalled', name, f);
    const [from, to] = install ? [stash, ctx.realPath(f)] : [ctx.realPath(f), stash];
    if (!existsSync(from)) continue;
    mkdirSync(dirname(to), { recursive: true });
    renameSync(from, to);
  }
}

/**
 * Leaves a service of the host as a fault in the field would: `running` (started), `stopped`
 * (stopped cleanly), `failed` (its daemon died of SIGKILL: systemd and init scripts say failed,
 * upstart's job waits, runit starts it again), or undefined (not installed: gone, with its job file,
 * init script or runit service directory, until it is set to a state again).
 */
export function setService(dir: string, host: string, name: string, status: ServiceStatus | undefined): void {
  const ctx = new runtime.HostContext(labDirOf(dir, host), host);
  const { services, uninstalled = {} } = serviceState.read(ctx);
  const service = services[name] ?? uninstalled[name];
  if (service === undefined) throw new Error(`lab host ${host} has no service ${name}`);
  if (status === undefined || services[name] === undefined) {
    const install = status !== undefined;
    if (install === (services[name] !== undefined)) return;
    moveFiles(ctx, name, service, install);
    serviceState.update(ctx, (state) => {
      state.uninstalled ??= {};
      const [from, to] = install ? [state.uninstalled, state.services] : [state.services, state.uninstalled];
      to[name] = from[name]!;
      delete from[name];
    });
    if (!install) return;
  }
  if (status === 'running') serviceState.start(ctx, name);
  else if (status === 'stopped') serviceState.stop(ctx, name);
  else {
    serviceState.start(ctx, name);
    serviceState.signal(ctx, serviceState.read(ctx).services[name]!.pids.slice(0, 1), 9);
  }
}
