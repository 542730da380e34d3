import { chmod, cp, mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { commOf, daemonOf, readServiceState, type InitSystem, type SiteHost, type SiteInstance, type SiteService } from './site.js';
import { runtime } from './tool-runtime.js';

/** Directories every fake root has, so `mount … /mnt/` and `ls /tmp` work as on a real host. */
const FAKE_ROOT_DIRS = ['/mnt', '/tmp', '/var/log'];

/** The root file system of an instance, as `ls -lh /mnt/` shows it in the operations guide. */
const ROOT_FS_DIRS = ['boot', 'dev', 'etc', 'home/cloud-user', 'lost+found', 'media', 'mnt', 'opt', 'proc', 'root', 'run', 'srv', 'sys', 'tmp', 'usr/bin', 'usr/lib', 'usr/lib64', 'usr/sbin', 'var/log'];
const ROOT_FS_LINKS: [string, string][] = [
  ['bin', 'usr/bin'],
  ['lib', 'usr/lib'],
  ['lib64', 'usr/lib64'],
  ['sbin', 'usr/sbin'],
];

async function writeTree(dir: string, dirs: string[], files: Record<string, string>, links: [string, string][] = []): Promise<void> {
  await Promise.all(dirs.map((d) => mkdir(join(dir, d), { recursive: true })));
  await Promise.all([
    ...Object.entries(files).map(([f, text]) => writeFile(join(dir, f), text)),
    ...links.map(([link, target]) => symlink(target, join(dir, link))),
  ]);
}

/**
 * `/var/lib/nova/instances/<uuid>/` as the libvirt driver keeps it since Grizzly (named by uuid:
 * nova 76461c83d1; nova/virt/libvirt/utils.py get_instance_path), with no libvirt.xml (not written
 * since Ocata, nova dccaf9cb88): console.log, the qcow2 `disk` (sparse, so it shows the guide's size
 * and costs no space) and `disk.info`; the disk's contents under `images/`.
 */
async function seedInstance(labDir: string, host: string, inst: SiteInstance): Promise<void> {
  const instanceDir = `/var/lib/nova/instances/${inst.uuid}`;
  const dir = runtime.realPath(labDir, host, instanceDir);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'console.log'), `[    0.000000] Linux version 6.1.0-18-cloud-amd64\n[    2.104211] ${inst.displayName} login:\n`);
  await writeFile(join(dir, 'disk'), '');
  await truncate(join(dir, 'disk'), 33 * 1024 * 1024);
  await writeFile(join(dir, 'disk.info'), `${JSON.stringify({ [`${instanceDir}/disk`]: 'qcow2' })}\n`);
  await writeTree(
    runtime.imagePath(labDir, host, `${instanceDir}/disk`),
    ROOT_FS_DIRS,
    {
      'etc/hostname': `${inst.displayName}\n`,
      'etc/fstab': 'LABEL=cloudimg-rootfs / ext4 defaults 0 0\n/dev/vdb /mnt/data auto defaults,nofail 0 2\n',
      'var/log/messages': `kernel: EXT4-fs error (device vda1): ext4_lookup: deleted inode referenced\n`,
      'home/cloud-user/notes.txt': `${inst.displayName}: customer data, look only with approval\n`,
    },
    ROOT_FS_LINKS,
  );
}

/** A file of the fake root (a directory when the path ends in "/"). */
async function seedFile(labDir: string, host: string, p: string, text: string, mode?: number): Promise<void> {
  // The fake root itself, not runtime.realPath: a seeded mount must not redirect a seed file.
  const real = join(runtime.hostFile(labDir, host, 'root'), p);
  if (p.endsWith('/')) {
    await mkdir(real, { recursive: true });
    return;
  }
  await mkdir(dirname(real), { recursive: true });
  await writeFile(real, text);
  if (mode !== undefined) await chmod(real, mode);
}

/** Who runs a service: the host's init system, or runit. */
function managerOf(host: SiteHost, name: string, s: SiteService): InitSystem | 'runit' {
  const init = host.init ?? 'systemd';
  // An init script on an upstart host (its LSB state says so) is run by upstart's SysV compatibility.
  const manager = s.runit ? 'runit' : init === 'upstart' && readServiceState(s.state).manager === 'sysv' ? 'sysv' : init;
  if (s.runit && !host.runit) throw new Error(`lab site: ${host.name} runs ${name} under runit but has no runit`);
  const word = readServiceState(s.state).manager;
  if (word !== manager) throw new Error(`lab site: ${host.name}'s ${name} is run by ${manager}, but its state ${JSON.stringify(s.state)} is ${word}'s`);
  return manager;
}

function unitOf(manager: InitSystem | 'runit', name: string, s: SiteService): string {
  return s.unit ?? (manager === 'systemd' ? `${name}.service` : name);
}

/**
 * `state/init.json` (see tools/service-state.cjs): the host's init system, and each service with its
 * processes, the running ones with pids given in boot order as a real boot gives them.
 */
function initState(host: SiteHost, bootedAt: number): Record<string, unknown> {
  const init = host.init ?? 'systemd';
  // systemd raises pid_max to 4194304 (its 50-pid-max.conf, v243+); older hosts keep the kernel's 32768.
  const pidMax = init === 'systemd' ? 4194304 : 32768;
  let nextPid = 400;
  const services = Object.fromEntries(
    Object.entries(host.services ?? {}).map(([name, s]) => {
      const manager = managerOf(host, name, s);
      const { status, exited } = readServiceState(s.state);
      const daemon = daemonOf(name);
      const processes = (s.processes ?? daemon.processes).map((p) => ({ user: p.user, args: p.args, comm: commOf(p), respawn: p.respawn ?? false }));
      const pids = status === 'running' && !exited ? processes.map(() => (nextPid += 7)) : [];
      const unit = unitOf(manager, name, s);
      const description = s.description ?? daemon.description;
      const started = manager === 'systemd' && status === 'running' ? [{ t: bootedAt, text: `${host.name} systemd[1]: Started ${description === unit ? unit : `${unit} - ${description}`}.` }] : [];
      const service = {
        manager,
        unit,
        description,
        daemon: daemon.name ?? processes[0]?.comm ?? name,
        status,
        ...(exited ? { exited } : {}),
        result: status === 'failed' ? 'exit-code' : 'success',
        since: bootedAt,
        startedAt: bootedAt,
        enabled: s.enabled ?? true,
        masked: s.masked ?? false,
        lsbStatus: s.lsbStatus ?? true,
        processes,
        pids,
        journal: started,
      };
      return [name, service];
    }),
  );
  return { init, runit: host.runit ?? false, pidMax, nextPid: nextPid + 100, bootedAt, hostname: host.name, badStarts: {}, services };
}

/** An upstart job file, enough for an operator who reads it. */
function upstartJob(description: string, args: string): string {
  return `description "${description}"\n\nstart on runlevel [2345]\nstop on runlevel [!2345]\n\nrespawn\n\nexec ${args}\n`;
}

/**
 * An init script of the lab: it runs the lab's init-script simulator (tools/sims/service.cjs), so no
 * real init script ever runs. A script with `status` has Debian's LSB header; a pre-LSB one none.
 */
function initScript(name: string, description: string, lsb: boolean): string {
  const header = lsb
    ? ['### BEGIN INIT INFO', `# Provides:          ${name}`, '# Required-Start:    $remote_fs $syslog', '# Required-Stop:     $remote_fs $syslog', '# Default-Start:     2 3 4 5', '# Default-Stop:      0 1 6', `# Short-Description: ${description}`, '### END INIT INFO']
    : [`# ${description}`];
  return ['#!/bin/sh', ...header, '# The runbook lab stands in for this script: its simulator answers (src/lab/tools/sims/service.cjs).', `exec lab-initd ${name} "$@"`, ''].join('\n');
}

/** The files each manager reads in the fake root: upstart's job files, the init scripts, runit's service directories. */
function serviceFiles(host: SiteHost): [string, string, number?][] {
  const files: [string, string, number?][] = [];
  for (const [name, s] of Object.entries(host.services ?? {})) {
    const manager = managerOf(host, name, s);
    const unit = unitOf(manager, name, s);
    const daemon = daemonOf(name);
    const description = s.description ?? daemon.description;
    if (manager === 'upstart') {
      if (host.files?.[`/etc/init/${unit}.conf`] === undefined) files.push([`/etc/init/${unit}.conf`, upstartJob(description, (s.processes ?? daemon.processes)[0]?.args ?? name)]);
      if (s.enabled === false) files.push([`/etc/init/${unit}.override`, 'manual\n']);
    } else if (manager === 'sysv') {
      files.push([`/etc/init.d/${unit}`, initScript(unit, description, s.lsbStatus ?? true), 0o755]);
    } else if (manager === 'runit') {
      files.push([`/etc/service/${unit}/run`, `#!/bin/sh\nexec 2>&1\nexec ${(s.processes ?? daemon.processes)[0]?.args ?? name}\n`, 0o755]);
      if (s.enabled === false) files.push([`/etc/service/${unit}/down`, '']);
    }
  }
  return files;
}

/** A directory of the lab's tools (its own copy, `<lab>/tools/`) installed at path p of the fake root. */
async function seedTree(labDir: string, host: string, p: string, source: string): Promise<void> {
  await cp(join(labDir, 'tools', source), join(runtime.hostFile(labDir, host, 'root'), p), { recursive: true });
}

/** Writes a host's directory as its tools expect it on first use (see tools/runtime.cjs). */
export async function seedHost(labDir: string, host: SiteHost): Promise<void> {
  await mkdir(join(runtime.hostDir(labDir, host.name), 'state'), { recursive: true });
  const state = { ...host.state, init: initState(host, Date.now()) };
  await Promise.all([
    ...FAKE_ROOT_DIRS.map((d) => mkdir(runtime.realPath(labDir, host.name, d), { recursive: true })),
    ...Object.entries(state).map(([name, value]) => writeFile(runtime.statePath(labDir, host.name, name), `${JSON.stringify(value, null, 2)}\n`)),
    writeFile(runtime.hostFile(labDir, host.name, 'faults.json'), '[]\n'),
    writeFile(runtime.hostFile(labDir, host.name, 'settings.json'), '{}\n'),
    writeFile(runtime.hostFile(labDir, host.name, 'calls.log'), ''),
    ...host.instances.map((inst) => seedInstance(labDir, host.name, inst)),
    ...Object.entries(host.files ?? {}).map(([p, text]) => seedFile(labDir, host.name, p, text)),
    ...serviceFiles(host).map(([p, text, mode]) => seedFile(labDir, host.name, p, text, mode)),
    ...Object.entries(host.trees ?? {}).map(([p, source]) => seedTree(labDir, host.name, p, source)),
  ]);
}
