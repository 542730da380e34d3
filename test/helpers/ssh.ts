import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/index.js';

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command on a lab host with the system OpenSSH client, strict host key checking against the lab's known_hosts. */
export function labSsh(lab: Lab, name: string, command: string): Promise<SshResult> {
  const h = lab.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`the lab has no host ${name}`);
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
