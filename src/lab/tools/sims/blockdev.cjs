'use strict';
/**
 * Upstream: xfsprogs 6.1 mkfs/xfs_mkfs.c; util-linux 2.38 sys-utils/dmesg.c (Debian 12).
 * Disks of a storage node: `dmesg` (the kernel's messages, from state) and `mkfs.xfs [-f] [-L <label>]
 * [-m uuid=<uuid>] <device>`, which refuses, as the real one does, a device that is mounted or that
 * holds a file system unless `-f` is given. Without `-m uuid=` the new file system has a new UUID
 * (xfsprogs 6.1, mkfs/xfs_mkfs.c: platform_uuid_generate unless -m uuid= is given; -L sets the
 * label, at most 12 characters). `mount -a` and `umount <device>` are in disk.cjs.
 *
 * State: `disks` = { "/dev/sdb": { filesystem: "xfs" | null, uuid, label? } }, `dmesg` = [ lines ].
 * A device's files are the directory images/<device>/ (mounted at its fstab mount point).
 */
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const { ToolError } = require('../runtime.cjs');

function uuidOf(seed) {
  const h = createHash('sha1').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

module.exports = {
  dmesg(ctx, args) {
    if (args.length > 0) throw new ToolError('usage: dmesg', 1);
    process.stdout.write(ctx.read('dmesg', []).map((l) => `${l}\n`).join(''));
    return 0;
  },

  'mkfs.xfs'(ctx, args) {
    const usage = 'usage: mkfs.xfs [-f] [-L label] [-m uuid=<uuid>] <device> (the lab simulates only these options)';
    let force = false;
    let label;
    let uuid;
    const rest = [];
    for (let i = 0; i < args.length; i++) {
      if (args[i] === '-f') force = true;
      else if (args[i] === '-L' && args[i + 1] !== undefined) label = args[++i];
      else if (args[i] === '-m' && /^uuid=[0-9a-f-]{36}$/i.test(args[i + 1] ?? '')) uuid = args[++i].slice(5).toLowerCase();
      else if (args[i].startsWith('-')) throw new ToolError(usage, 1);
      else rest.push(args[i]);
    }
    if (rest.length !== 1) throw new ToolError(usage, 1);
    if (label !== undefined && label.length > 12) throw new ToolError(`mkfs.xfs: label ${label} is too long (at most 12 characters)\n${usage}`, 1);
    const [device] = rest;
    const mounted = Object.values(ctx.read('mounts', {})).some((m) => m.device === device);
    ctx.update('disks', {}, (disks) => {
      const d = disks[device];
      if (d === undefined) throw new ToolError(`mkfs.xfs: cannot open ${device}: No such file or directory`, 1);
      if (mounted) throw new ToolError(`mkfs.xfs: ${device} contains a mounted filesystem\nUsage: mkfs.xfs [-f] <device>`, 1);
      if (d.filesystem && !force) {
        throw new ToolError(`mkfs.xfs: ${device} appears to contain an existing filesystem (${d.filesystem}).\nmkfs.xfs: Use the -f option to force overwrite.`, 1);
      }
      d.filesystem = 'xfs';
      d.uuid = uuid ?? uuidOf(`${device} ${Date.now()}`);
      if (label !== undefined) d.label = label;
      else delete d.label;
    });
    const dir = ctx.imagePath(device);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    process.stdout.write(
      `meta-data=${device}              isize=512    agcount=4, agsize=61047662 blks\n` +
        '         =                       sectsz=4096  attr=2, projid32bit=1\n' +
        'data     =                       bsize=4096   blocks=244190646, imaxpct=25\n' +
        'naming   =version 2              bsize=4096   ascii-ci=0, ftype=1\n' +
        'log      =internal log           bsize=4096   blocks=119233, version=2\n' +
        `realtime =none                   extsz=4096   blocks=0, rtextents=0\n`,
    );
    return 0;
  },
};
