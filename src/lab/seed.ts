import { mkdir, symlink, truncate, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { SiteHost, SiteInstance } from './site.js';
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
async function seedFile(labDir: string, host: string, p: string, text: string): Promise<void> {
  // The fake root itself, not runtime.realPath: a seeded mount must not redirect a seed file.
  const real = join(runtime.hostFile(labDir, host, 'root'), p);
  if (p.endsWith('/')) {
    await mkdir(real, { recursive: true });
    return;
  }
  await mkdir(dirname(real), { recursive: true });
  await writeFile(real, text);
}

/** Writes a host's directory as its tools expect it on first use (see tools/runtime.cjs). */
export async function seedHost(labDir: string, host: SiteHost): Promise<void> {
  await mkdir(join(runtime.hostDir(labDir, host.name), 'state'), { recursive: true });
  await Promise.all([
    ...FAKE_ROOT_DIRS.map((d) => mkdir(runtime.realPath(labDir, host.name, d), { recursive: true })),
    ...Object.entries(host.state).map(([name, value]) => writeFile(runtime.statePath(labDir, host.name, name), `${JSON.stringify(value, null, 2)}\n`)),
    writeFile(runtime.hostFile(labDir, host.name, 'faults.json'), '[]\n'),
    writeFile(runtime.hostFile(labDir, host.name, 'settings.json'), '{}\n'),
    writeFile(runtime.hostFile(labDir, host.name, 'calls.log'), ''),
    ...host.instances.map((inst) => seedInstance(labDir, host.name, inst)),
    ...Object.entries(host.files ?? {}).map(([p, text]) => seedFile(labDir, host.name, p, text)),
  ]);
}
