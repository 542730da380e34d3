'use strict';
/**
 * Upstream: QEMU 7.2 qemu-nbd.c, block/file-posix.c; Linux drivers/block/nbd.c; util-linux 2.38 libmount (mount, umount).
 * The qemu-nbd inspection of an instance disk: `modprobe nbd [max_part=N]`, `qemu-nbd [-r]
 * [--force-share|-U] -c /dev/nbdN <disk>`, `mount [-o ro] /dev/nbdNp1 <dir>`, `ls`, `umount <dir>`,
 * `qemu-nbd -d /dev/nbdN`. Nothing real is loaded, connected or mounted: the disk's contents are a
 * directory tree under the host's `images/`, and `ls` follows a simulated mount into it.
 *
 * Followed: QEMU 7.2 (Debian 12's qemu-utils) qemu-nbd.c (`-r` read-only, `-U`/`--force-share`,
 * "Failed to blk_new_open '<file>': …", the client thread's "Failed to open /dev/nbdN") and
 * block/file-posix.c raw_check_lock_bytes: since QEMU 2.10 an image a running or paused guest holds
 * is locked, "Failed to get "write" lock" / "Is another process using the image [<file>]?", unless
 * opened read-only and shared. The kernel's nbd driver (drivers/block/nbd.c): /dev/nbdN exists once
 * the module is loaded, its partitions (/dev/nbdNp1) only with `max_part` > 0 (default 0); kmod's
 * modprobe of a loaded module does nothing and exits 0.
 *
 * State: `nbd` = { "/dev/nbdN": "<disk path>" }, `nbd-module` = { loaded, maxPart }, `mounts` =
 * { "<dir>": { device, source: "<disk path>", ro? } }; a guest's disk is held by its domain in
 * `virsh` (running or paused, matched by the instance's uuid in the disk's path).
 */
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { ToolError, virtualPath } = require('../runtime.cjs');

const NBD_DEVICE = /^\/dev\/nbd\d+$/;
const NBD_PARTITION = /^(\/dev\/nbd\d+)(p1)?$/;

function isFile(p) {
  return fs.statSync(p, { throwIfNoEntry: false })?.isFile() === true;
}

function isDirectory(p) {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
}

function connect(ctx, device, disk, opts) {
  const source = virtualPath(disk);
  if (!isFile(ctx.realPath(source))) {
    throw new ToolError(`qemu-nbd: Failed to blk_new_open '${disk}': Could not open '${disk}': No such file or directory`);
  }
  const holder = ctx.read('virsh', { domains: [] }).domains.find((d) => d.uuid !== undefined && source.includes(`/${d.uuid}/`) && d.state !== 'shut off');
  if (holder !== undefined && !(opts.readOnly && opts.forceShare)) {
    throw new ToolError(`qemu-nbd: Failed to blk_new_open '${disk}': Failed to get "${opts.readOnly ? 'consistent read' : 'write'}" lock\nIs another process using the image [${disk}]?`);
  }
  if (!ctx.read('nbd-module', { loaded: false }).loaded) throw new ToolError(`qemu-nbd: Failed to open ${device}: No such file or directory`);
  ctx.update('nbd', {}, (nbd) => {
    if (nbd[device] !== undefined) throw new ToolError(`qemu-nbd: Failed to open ${device}: Device or resource busy`);
    nbd[device] = source;
  });
  return 0;
}

function disconnect(ctx, device) {
  // Like qemu-nbd, disconnecting a free device is not an error.
  ctx.update('nbd', {}, (nbd) => {
    delete nbd[device];
  });
  process.stdout.write(`${device} disconnected\n`);
  return 0;
}

/**
 * `mount -a`: every /etc/fstab entry of a block device not mounted yet, named as a path (`/dev/sdb`)
 * or by tag (`LABEL=sdb`, `UUID=…`, quotes allowed), when the device holds a file system (state
 * `disks`, see blockdev.cjs); its files are images/<device>/. A tag no disk has is util-linux 2.38's
 * "can't find LABEL=…" (libmount/src/context_mount.c, MNT_ERR_NOSOURCE).
 */
function mountAll(ctx) {
  let fstab = '';
  try {
    fstab = fs.readFileSync(ctx.realPath('/etc/fstab'), 'utf8');
  } catch {
    fstab = '';
  }
  const disks = ctx.read('disks', {});
  let code = 0;
  for (const line of fstab.split('\n')) {
    const [source, dir, type] = line.trim().split(/\s+/);
    if (!source || source.startsWith('#') || type === 'swap' || dir === undefined || dir === '/') continue;
    const tag = /^(LABEL|UUID)="?([^"]+)"?$/.exec(source);
    if (!tag && !source.startsWith('/dev/')) continue;
    const point = virtualPath(dir);
    if (Object.hasOwn(ctx.read('mounts', {}), point)) continue;
    const device = tag ? Object.keys(disks).find((d) => disks[d]?.filesystem && (tag[1] === 'LABEL' ? disks[d].label === tag[2] : disks[d].uuid === tag[2].toLowerCase())) : source;
    if (device === undefined) {
      process.stderr.write(`mount: ${point}: can't find ${tag[1]}=${tag[2]}.\n`);
      code = 32;
      continue;
    }
    if (!disks[device]?.filesystem) {
      process.stderr.write(`mount: ${point}: wrong fs type, bad option, bad superblock on ${device}, missing codepage or helper program, or other error.\n`);
      code = 32;
      continue;
    }
    if (!isDirectory(ctx.realPath(point))) {
      process.stderr.write(`mount: ${point}: mount point does not exist.\n`);
      code = 32;
      continue;
    }
    fs.mkdirSync(ctx.imagePath(device), { recursive: true });
    ctx.update('mounts', {}, (mounts) => {
      mounts[point] = { device, source: device };
    });
  }
  return code;
}

function listMounts(ctx) {
  const mounts = ctx.read('mounts', {});
  process.stdout.write(Object.entries(mounts).map(([dir, m]) => `${m.device} on ${dir} type ext4 (${m.ro ? 'ro' : 'rw'},relatime)\n`).join(''));
  return 0;
}

module.exports = {
  modprobe(ctx, args) {
    const [module, ...params] = args;
    if (module !== 'nbd' || params.some((p) => !/^max_part=\d+$/.test(p))) throw new ToolError(`modprobe: the lab simulates only: modprobe nbd [max_part=N]`, 1);
    ctx.update('nbd-module', { loaded: false }, (m) => {
      // Parameters apply when the module loads; a loaded module keeps its own.
      if (m.loaded) return;
      m.loaded = true;
      m.maxPart = Number((params[0] ?? 'max_part=0').split('=')[1]);
    });
    return 0;
  },

  'qemu-nbd'(ctx, argv) {
    const opts = { readOnly: argv.includes('-r') || argv.includes('--read-only'), forceShare: argv.includes('-U') || argv.includes('--force-share') };
    const args = argv.filter((a) => !['-r', '--read-only', '-U', '--force-share'].includes(a));
    const [flag, device, disk, ...extra] = args;
    if (extra.length === 0 && device !== undefined && NBD_DEVICE.test(device)) {
      if (flag === '-c' && disk !== undefined) return connect(ctx, device, disk, opts);
      if (flag === '-d' && disk === undefined) return disconnect(ctx, device);
    }
    throw new ToolError('usage: qemu-nbd [-r] [--force-share] -c /dev/nbdN <disk image> | qemu-nbd -d /dev/nbdN', 2);
  },

  mount(ctx, argv) {
    if (argv.length === 0) return listMounts(ctx);
    if (argv.length === 1 && argv[0] === '-a') return mountAll(ctx);
    const ro = argv[0] === '-o' && argv[1] === 'ro';
    const args = ro ? argv.slice(2) : argv;
    if (args.length !== 2) throw new ToolError('usage: mount [-o ro] [<device> <dir>]', 1);
    const [device, dir] = args;
    const point = virtualPath(dir);
    const partition = NBD_PARTITION.exec(device);
    // A partition's node exists only when the module was loaded with max_part > 0.
    const partitions = (ctx.read('nbd-module', { maxPart: 0 }).maxPart ?? 0) > 0;
    const source = partition === null || (partition[2] !== undefined && !partitions) ? undefined : ctx.read('nbd', {})[partition[1]];
    if (source === undefined) throw new ToolError(`mount: ${point}: special device ${device} does not exist.`, 32);
    if (!isDirectory(ctx.realPath(point))) throw new ToolError(`mount: ${point}: mount point does not exist.`, 32);
    fs.mkdirSync(ctx.imagePath(source), { recursive: true });
    ctx.update('mounts', {}, (mounts) => {
      if (mounts[point] !== undefined) throw new ToolError(`mount: ${point}: ${mounts[point].device} already mounted on ${point}.`, 32);
      mounts[point] = { device, source, ...(ro ? { ro: true } : {}) };
    });
    return 0;
  },

  umount(ctx, args) {
    if (args.length !== 1) throw new ToolError('usage: umount <dir>|<device>', 1);
    ctx.update('mounts', {}, (mounts) => {
      // umount /dev/sdb: the mount point of that device, as umount(8) finds it.
      const point = args[0].startsWith('/dev/') ? (Object.keys(mounts).find((m) => mounts[m].device === args[0]) ?? args[0]) : virtualPath(args[0]);
      if (mounts[point] === undefined) throw new ToolError(`umount: ${point}: not mounted.`, 32);
      delete mounts[point];
    });
    return 0;
  },

  /**
   * The real /bin/ls with the same flags, on the fake root's (or a mounted image's) copy of every
   * path operand; with no operand, on the fake root's copy of the working directory. Arguments that
   * start with "-" are flags (so flags that take a separate value, like `-w 80`, are not supported).
   */
  ls(ctx, args) {
    const flags = args.filter((a) => a.startsWith('-') && a !== '--');
    const operands = args.filter((a) => !a.startsWith('-'));
    const paths = (operands.length > 0 ? operands : [process.cwd()]).map((p) => ctx.realPath(p));
    const result = spawnSync('/bin/ls', [...flags, '--', ...paths], { stdio: 'inherit' });
    if (result.error) throw result.error;
    return result.status ?? 128;
  },
};
