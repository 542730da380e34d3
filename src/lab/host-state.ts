import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { labPaths } from './paths.js';
import { runtime } from './tool-runtime.js';
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

/** A state file of the host's tools (`vdisks`, `services`, `virsh`, `nbd`, `mounts`), if it exists. */
export function readHostState<T = unknown>(dir: string, host: string, name: string): T | undefined {
  const labDir = labDirOf(dir, host);
  return runtime.readJson<T | undefined>(runtime.statePath(labDir, host, name), undefined);
}

/** Locked change of a state file of the host's tools, as a test sets the scene (a service stopped, a guest shut off). */
export function setHostState<T>(dir: string, host: string, name: string, fn: (value: T) => void): void {
  const labDir = labDirOf(dir, host);
  runtime.updateJson(labDir, host, runtime.statePath(labDir, host, name), {} as T, fn);
}
