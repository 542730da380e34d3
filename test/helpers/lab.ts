import { spawn } from 'node:child_process';
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

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `ssh host command` with the system OpenSSH client, strict host key checking against the lab's known_hosts. */
export function labSsh(lab: Lab, name: string, command: string): Promise<SshResult> {
  const h = lab.hosts.find((x) => x.name === name);
  if (h === undefined) throw new Error(`the lab has no host ${name}`);
  const args = [
    '-i', join(lab.dir, 'client', 'id_ed25519'),
    '-o', `UserKnownHostsFile=${join(lab.dir, 'client', 'known_hosts')}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-p', String(h.port),
    `${lab.user}@${h.address}`,
    command,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
