'use strict';
/**
 * Upstream: OpenSSH 9.2 scp.c (Debian 12).
 * OpenSSH's `scp [-o option]… <file>… <host>:<dir>` (OpenSSH 9.2, scp.c), as the page's ring
 * distribution runs it on the storage proxy: copies only between fake roots of this lab. The
 * destination is a lab host named by its name, `vars.fqdn`, `vars.ip` or address (from the lab's
 * lab.json); an unknown name fails as ssh's resolver does ("Could not resolve hostname … Name or
 * service not known", exit 1). `-o BatchMode=yes` (never prompt) is accepted; the lab's hosts
 * trust each other's keys, as the page's setup assumes.
 */
const fs = require('node:fs');
const path = require('node:path');
const runtime = require('../runtime.cjs');
const { ToolError } = runtime;

/** The lab host a name, FQDN or IP designates, or undefined. */
function labHost(labDir, name) {
  const lab = runtime.readJson(path.join(labDir, 'lab.json'), { hosts: [] });
  return lab.hosts.find((h) => h.name === name || h.address === name || h.vars?.fqdn === name || h.vars?.ip === name);
}

function scp(ctx, argv) {
  const args = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-o' && argv[i + 1] !== undefined) i++;
    else args.push(argv[i]);
  }
  if (args.length < 2 || args.some((a) => a.startsWith('-'))) throw new ToolError('usage: scp [-o ssh_option] <source>… <host>:<directory>', 1);
  const dest = args.at(-1);
  const m = /^([^:/]+):(.*)$/.exec(dest);
  if (!m) throw new ToolError(`scp: the lab copies only to another host: ${dest}`, 1);
  const [, name, dir] = m;
  const host = labHost(ctx.labDir, name);
  if (host === undefined) throw new ToolError(`ssh: Could not resolve hostname ${name}: Name or service not known\nlost connection`, 1);
  const targetDir = runtime.realPath(ctx.labDir, host.name, dir || '/');
  if (fs.statSync(targetDir, { throwIfNoEntry: false })?.isDirectory() !== true) throw new ToolError(`scp: ${dir}: No such file or directory`, 1);
  for (const src of args.slice(0, -1)) {
    const real = ctx.realPath(src);
    if (!fs.existsSync(real)) throw new ToolError(`scp: ${src}: No such file or directory`, 1);
    fs.copyFileSync(real, path.join(targetDir, path.posix.basename(src)));
  }
  return 0;
}

module.exports = { scp };
