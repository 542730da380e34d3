import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { LabCall } from './types.js';

/**
 * The simulated tools' source folder. tsc does not copy .cjs files into dist/, so this resolves
 * through the package root, which is two levels up from both src/lab/ and dist/lab/.
 */
export const toolsDir = fileURLToPath(new URL('../../src/lab/tools/', import.meta.url));

/** Typed view of tools/runtime.cjs: the lab's TypeScript uses the tools' own layout and lock. */
interface ToolRuntime {
  hostDir(labDir: string, host: string): string;
  hostFile(labDir: string, host: string, name: string): string;
  statePath(labDir: string, host: string, name: string): string;
  readJson<T>(file: string, fallback: T): T;
  updateJson<T, R>(labDir: string, host: string, file: string, fallback: T, fn: (value: T) => R): R;
  readCalls(labDir: string, host: string): LabCall[];
  /** Where a host's absolute path lives in its fake root (or in a mounted image). */
  realPath(labDir: string, host: string, p: string): string;
  /** Directory holding the contents of the disk image at a host's path p. */
  imagePath(labDir: string, host: string, p: string): string;
}

/** A host's state as the tools see it (tools/runtime.cjs HostContext). */
export interface HostContext {
  readonly labDir: string;
  readonly host: string;
  realPath(p: string): string;
}

/** One service of state/init.json (see tools/service-state.cjs). */
export interface ServiceRecord {
  manager: 'systemd' | 'upstart' | 'sysv' | 'runit';
  unit: string;
  status: 'running' | 'stopped' | 'failed';
  pids: number[];
}

/** Typed view of tools/service-state.cjs: the lab changes a host's services as its tools do. */
interface InitState {
  services: Record<string, ServiceRecord>;
  /** Services taken off the host by the lab (setService undefined), to put back. */
  uninstalled?: Record<string, ServiceRecord>;
}

interface ServiceStateModule {
  read(ctx: HostContext): InitState;
  update<R>(ctx: HostContext, fn: (state: InitState) => R): R;
  start(ctx: HostContext, name: string): string | undefined;
  stop(ctx: HostContext, name: string): string | undefined;
  /** Kills the service's main process with the signal (a crash: `failed`, or upstart's stop/waiting). */
  signal(ctx: HostContext, pids: number[], signal: number): number[];
}

const require = createRequire(import.meta.url);

export const runtime = require(`${toolsDir}runtime.cjs`) as ToolRuntime & { HostContext: new (labDir: string, host: string) => HostContext };

export const serviceState = require(`${toolsDir}service-state.cjs`) as ServiceStateModule;

/** Every tool name the lab links into its bin/. */
export const toolNames = (require(`${toolsDir}labtool.cjs`) as { toolNames: string[] }).toolNames;
