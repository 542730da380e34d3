import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { UsageError } from '../errors.js';

const run = promisify(execFile);

/** System user the lab's sshd and tools run as when the lab is started by root. */
export const LAB_USER = 'runbook-lab';

/**
 * Home of the lab user. Not Debian's usual /nonexistent: sshd prints "Could not chdir to home
 * directory" on the stderr of every session whose home is missing, which would pollute every
 * command's output. `/` exists and is not writable by the lab user.
 */
const LAB_HOME = '/';

export interface LabUser {
  name: string;
  uid: number;
  gid: number;
  /** True when the lab runs as root and must hand its files and processes to this user. */
  dropPrivileges: boolean;
}

interface PasswdEntry {
  uid: number;
  gid: number;
  home: string;
}

async function getent(name: string): Promise<PasswdEntry | undefined> {
  try {
    const { stdout } = await run('getent', ['passwd', name]);
    const [, , uid, gid, , home] = stdout.trim().split(':');
    return { uid: Number(uid), gid: Number(gid), home: home ?? '' };
  } catch {
    return undefined;
  }
}

/** Exit code of useradd/usermod when another process holds /etc/passwd's lock. */
const PASSWD_LOCKED = 10;

/** Runs useradd/usermod, retrying while parallel labs (test files) hold /etc/passwd's lock. */
async function runAccountTool(cmd: string, args: string[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await run(cmd, args);
      return;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== PASSWD_LOCKED || attempt >= 20) throw err;
      await sleep(100);
    }
  }
}

async function ensureSystemUser(): Promise<PasswdEntry> {
  let entry = await getent(LAB_USER);
  if (entry === undefined) {
    try {
      await runAccountTool('useradd', ['--system', '--no-create-home', '--home-dir', LAB_HOME, '--shell', '/bin/sh', LAB_USER]);
    } catch (err) {
      // Another lab created it meanwhile (useradd exits 9); anything else is a real failure.
      if ((await getent(LAB_USER)) === undefined) throw err;
    }
    entry = await getent(LAB_USER);
    if (entry === undefined) throw new Error(`useradd did not create ${LAB_USER}`);
  }
  if (!existsSync(entry.home)) {
    await runAccountTool('usermod', ['--home', LAB_HOME, LAB_USER]);
    entry = { ...entry, home: LAB_HOME };
  }
  return entry;
}

/** The lab user: `runbook-lab` (created when missing) when running as root, else the current user. */
export async function resolveLabUser(): Promise<LabUser> {
  if (process.getuid?.() !== 0) {
    const me = userInfo();
    return { name: me.username, uid: me.uid, gid: me.gid, dropPrivileges: false };
  }
  const { uid, gid } = await ensureSystemUser();
  return { name: LAB_USER, uid, gid, dropPrivileges: true };
}

/**
 * Throws when the lab user cannot reach dir: every folder above it must be searchable by others
 * (mkdtemp under /tmp is; /root is not). The lab never changes folders outside its own.
 */
export function assertReachable(dir: string, user: LabUser): void {
  if (!user.dropPrivileges) return;
  for (let d = dirname(dir); ; d = dirname(d)) {
    const st = statSync(d);
    if (st.uid !== user.uid && (st.mode & 0o001) === 0) {
      throw new UsageError(`the lab user ${user.name} cannot reach ${dir}: ${d} is not searchable by others (mode ${(st.mode & 0o777).toString(8)}); choose a lab dir elsewhere, e.g. under /tmp`);
    }
    if (d === dirname(d)) return;
  }
}
