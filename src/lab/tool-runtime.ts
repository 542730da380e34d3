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

const require = createRequire(import.meta.url);

export const runtime = require(`${toolsDir}runtime.cjs`) as ToolRuntime;

/** Every tool name the lab links into its bin/. */
export const toolNames = (require(`${toolsDir}labtool.cjs`) as { toolNames: string[] }).toolNames;
