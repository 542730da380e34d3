import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labUp, type Lab, type LabOptions } from '../../src/lab/index.js';

export interface TestLab {
  lab: Lab;
  /** Stops the lab, drops its databases and removes its directory. */
  down(): Promise<void>;
}

/**
 * A lab of its own for one test file: a fresh temp dir, a free port and database names no other
 * test uses, so test files can run in parallel.
 */
export async function startTestLab(opts: Partial<LabOptions> = {}): Promise<TestLab> {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-lab-'));
  const dbPrefix = `t${process.pid}_${Math.random().toString(36).slice(2, 8)}_`;
  const down = async () => {
    try {
      await labDown(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    return { lab: await labUp({ port: 0, dbPrefix, ...opts, dir }), down };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
