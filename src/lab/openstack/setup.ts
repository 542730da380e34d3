/**
 * What the lab prepares for the real OpenStack programs on its controller: the credentials the
 * clients read (a clouds.yaml, or an openrc file), the Object Storage rings (real builder files,
 * made with swift's own RingBuilder), and the API double they talk to, started and ended with the
 * lab as the hosts' sshd are.
 */
import { execFile, spawn } from 'node:child_process';
import { chownSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { labPaths } from '../paths.js';
import { RING_PORTS, SWIFT_DISKS, SWIFT_NODES } from '../site/openstack.js';
import { runtime } from '../tool-runtime.js';
import type { Lab, OpenStackCredentials } from '../types.js';
import type { LabUser } from '../user.js';
import { timeScaleFile } from './cloud.js';

const run = promisify(execFile);
const START_TIMEOUT_MS = 15_000;

/** The name of the lab's cloud in its clouds.yaml (OS_CLOUD). */
export const LAB_CLOUD = 'lab';

/** Where a controller keeps what the clients read: the fake root's files, as real paths (the clients are real programs). */
export function controllerFiles(dir: string) {
  const root = (p: string) => runtime.realPath(dir, 'controller', p);
  return {
    cloudsYaml: root('/etc/openstack/clouds.yaml'),
    openrc: root('/root/admin-openrc.sh'),
    ringDir: root('/etc/swift'),
  };
}

/**
 * Writes the controller's credentials, mode 0600 for the lab user: the install guide's
 * admin-openrc.sh (`export OS_…`), or a clouds.yaml entry (openstacksdk's config format). Returns
 * what runbook.yaml says of them (`vars.openstack` of the controller).
 */
export function writeCredentials(dir: string, authUrl: string, password: string, kind: OpenStackCredentials, user: LabUser): Record<string, string> {
  const files = controllerFiles(dir);
  const file = kind === 'openrc' ? files.openrc : files.cloudsYaml;
  const text =
    kind === 'openrc'
      ? [
          'export OS_PROJECT_DOMAIN_NAME=Default',
          'export OS_USER_DOMAIN_NAME=Default',
          'export OS_PROJECT_NAME=admin',
          'export OS_USERNAME=admin',
          `export OS_PASSWORD='${password}'`,
          `export OS_AUTH_URL=${authUrl}`,
          'export OS_IDENTITY_API_VERSION=3',
          'export OS_IMAGE_API_VERSION=2',
          'export OS_REGION_NAME=RegionOne',
          '',
        ].join('\n')
      : [
          'clouds:',
          `  ${LAB_CLOUD}:`,
          '    auth:',
          `      auth_url: ${authUrl}`,
          '      username: admin',
          `      password: '${password}'`,
          '      project_name: admin',
          '      user_domain_name: Default',
          '      project_domain_name: Default',
          '    region_name: RegionOne',
          '    interface: public',
          '    identity_api_version: 3',
          '',
        ].join('\n');
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, text, { mode: 0o600 });
  if (user.dropPrivileges) chownSync(file, user.uid, user.gid);
  return kind === 'openrc' ? { openrc: file } : { cloud: LAB_CLOUD, cloudsFile: file };
}

/**
 * The three rings of the storage nodes, built as `swift-ring-builder <ring>.builder create 10 3 1`
 * and `add r1z<N>-<ip>:<port>/<disk> 100` for each disk of each node, then `rebalance`, through swift's own
 * RingBuilder (one Python process instead of fifteen); the ring files are copied to the storage
 * nodes' /etc/swift, as the page's scp does.
 */
export async function buildRings(dir: string, hosts: string[], user: LabUser): Promise<void> {
  if (!existsSync('/usr/bin/swift-ring-builder')) throw new Error("the lab's controller runs Debian's swift-ring-builder: apt-get install -y swift python3-openstackclient python3-novaclient python3-swiftclient");
  const ringDir = controllerFiles(dir).ringDir;
  mkdirSync(ringDir, { recursive: true });
  const devices = Object.fromEntries(
    Object.entries(RING_PORTS).map(([ring, port]) => [ring, SWIFT_NODES.flatMap((s) => SWIFT_DISKS.map((device) => ({ region: 1, zone: s.zone, ip: s.ip, port, replication_ip: s.ip, replication_port: port, device, weight: 100, meta: '' })))]),
  );
  const script = [
    'import json, os, sys',
    'from swift.common.ring import RingBuilder',
    'ring_dir, devices = sys.argv[1], json.loads(sys.argv[2])',
    'for ring, devs in devices.items():',
    '    b = RingBuilder(10, 3, 1)',
    '    for d in devs: b.add_dev(d)',
    '    b.rebalance()',
    // A cluster built long ago: no partition is held by min_part_hours.
    '    b.pretend_min_part_hours_passed()',
    "    b.save(os.path.join(ring_dir, ring + '.builder'))",
    "    b.get_ring().save(os.path.join(ring_dir, ring + '.ring.gz'))",
  ].join('\n');
  await run('/usr/bin/python3', ['-c', script, ringDir, JSON.stringify(devices)], user.dropPrivileges ? { uid: user.uid, gid: user.gid } : {});
  for (const node of SWIFT_NODES.filter((s) => hosts.includes(s.name))) {
    const to = runtime.realPath(dir, node.name, '/etc/swift');
    mkdirSync(to, { recursive: true });
    for (const f of readdirSync(ringDir).filter((n) => n.endsWith('.ring.gz'))) {
      copyFileSync(join(ringDir, f), join(to, f));
      if (user.dropPrivileges) chownSync(join(to, f), user.uid, user.gid);
    }
  }
}

/** Changes the running double's time scale (see LabOptions.openstackTimeScale); undefined goes back to the lab's. */
export function setOpenStackTimeScale(dir: string, timeScale: number | undefined): void {
  writeFileSync(timeScaleFile(dir), `${JSON.stringify(timeScale === undefined ? {} : { timeScale })}\n`, { mode: 0o644 });
}

/** This module runs from src/ as TypeScript under vitest; the double then runs the build in dist/. */
function mainPath(): string {
  return fileURLToPath(import.meta.url.endsWith('.ts') ? new URL('../../../dist/lab/openstack/main.js', import.meta.url) : new URL('./main.js', import.meta.url));
}

const pidFile = (dir: string) => join(labPaths(dir).run, 'openstack-api.pid');
/** The admin password, kept for a restart of the double (readable by the lab user only). */
const passwordFile = (dir: string) => join(labPaths(dir).run, 'openstack-admin-password');

/** The pid of the lab's API double when it runs (its pid file names a live process of this lab). */
export function runningApi(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(dir), 'utf8').trim());
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return pid > 0 && cmdline.includes(mainPath()) && cmdline.includes(dir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the API double detached (it outlives the process that started the lab), with LAB_DIR in
 * its environment so that the lab's clean-up finds it; returns once it listens. It runs as whoever
 * started the lab, as the tests' fake Slack does: it is no lab host, and its code (in dist/, which an
 * installed package may keep where the lab user cannot read) is not copied into the lab.
 */
export async function startApi(lab: Lab, user: LabUser, newPassword?: string): Promise<void> {
  const p = labPaths(lab.dir);
  if (newPassword !== undefined) {
    writeFileSync(passwordFile(lab.dir), newPassword, { mode: 0o600 });
    if (user.dropPrivileges) chownSync(passwordFile(lab.dir), user.uid, user.gid);
  }
  const password = readFileSync(passwordFile(lab.dir), 'utf8');
  const out = openSync(p.openstackOut, 'a');
  let pid: number | undefined;
  let exit: string | undefined;
  try {
    const child = spawn(process.execPath, [mainPath(), lab.dir], {
      detached: true,
      stdio: ['ignore', out, out],
      env: { LAB_DIR: lab.dir, OS_DOUBLE_PASSWORD: password, PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    child.once('exit', (code, signal) => (exit = signal ?? `exit code ${code}`));
    pid = child.pid;
    child.unref();
  } finally {
    closeSync(out);
  }
  writeFileSync(pidFile(lab.dir), `${pid}\n`);
  const deadline = Date.now() + START_TIMEOUT_MS;
  const tail = () => readFileSync(p.openstackOut, 'utf8').trim().split('\n').slice(-5).join('\n');
  for (;;) {
    if (exit !== undefined) throw new Error(`the lab's OpenStack API double exited (${exit}): ${tail()}`);
    if (readFileSync(p.openstackOut, 'utf8').includes(`listening on 127.0.0.1:${lab.openstack.port}`)) return;
    if (Date.now() > deadline) throw new Error(`the lab's OpenStack API double did not start within ${START_TIMEOUT_MS} ms: ${tail()}`);
    await sleep(20);
  }
}
