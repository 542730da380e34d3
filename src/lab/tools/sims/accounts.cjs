'use strict';
/**
 * Upstream: shadow 4.13 (Debian 12) src/usermod.c, src/groupmod.c, lib/user_busy.c; findutils 4.9.0 find/ftsfind.c.
 * Users, groups and file ownership on a compute node, for the UID/GID mismatch recovery: `id <user>`,
 * `usermod -u <uid> <user>`, `groupmod -g <gid> <group>` (with their refusals of an ID in use; and
 * shadow's usermod refuses to change the UID of a user that has processes: src/usermod.c calls
 * user_busy(), lib/user_busy.c prints "usermod: user <name> is currently used by process <pid>" and
 * usermod exits 8, E_USER_BUSY; shadow 4.13, Debian 12) and
 * `find <dir> [\( -path <p> [-o -path <p>]… \) -prune -o] -uid|-gid <n> [-print | -exec chown <user> {} ;|+ |
 * -exec chgrp <group> {} ;|+]`. GNU find (findutils 4.9.0, find/ftsfind.c) walks /proc too when the
 * walk starts at / and nothing prunes it; an entry of a process that exits meanwhile cannot be
 * stat'ed (FTS_NS), is reported, and makes find exit 1 once it has done the rest of its work. The lab
 * shows that as it happens on a busy compute node (qemu threads, ssh sessions come and go): always.
 *
 * The lab cannot chown (it never runs as root), so ownership is state: `owners` = { "<path>": { uid,
 * gid } } of the fake root, which `find` walks. `accounts` = { users: { name: { uid, gid } },
 * groups: { name: gid } }. Nothing outside the lab is ever looked at or changed.
 */
const { spawnSync } = require('node:child_process');
const { ToolError } = require('../runtime.cjs');

const EMPTY = { users: {}, groups: {} };

function groupName(groups, gid) {
  return Object.keys(groups).find((g) => groups[g] === gid) ?? String(gid);
}

function id(ctx, args) {
  const accounts = ctx.read('accounts', undefined);
  // `id -u` and the like, or a host whose accounts the lab does not simulate: the real, read-only id
  // (it reports the lab user the session runs as).
  if (accounts === undefined || args.length !== 1 || args[0].startsWith('-')) {
    const result = spawnSync('/usr/bin/id', args, { stdio: 'inherit' });
    if (result.error) throw result.error;
    return result.status ?? 1;
  }
  const { users, groups } = accounts;
  const u = users[args[0]];
  if (u === undefined) throw new ToolError(`id: '${args[0]}': no such user`, 1);
  const g = groupName(groups, u.gid);
  process.stdout.write(`uid=${u.uid}(${args[0]}) gid=${u.gid}(${g}) groups=${u.gid}(${g})\n`);
  return 0;
}

/**
 * A process of the user, as user_busy finds it in /proc: nova runs nova-compute; libvirt-qemu runs
 * each guest that is not shut off. Services are the host's service manager's, guests its virsh state.
 */
function processOf(ctx, name) {
  if (name === 'nova' && ctx.serviceState('nova-compute') === 'running') return 1342;
  const guest = ctx.read('virsh', { domains: [] }).domains.find((d) => d.state !== 'shut off');
  if (name === 'libvirt-qemu' && guest !== undefined) return 2200 + guest.id;
  return undefined;
}

function usermod(ctx, args) {
  if (args.length !== 3 || args[0] !== '-u' || !/^\d+$/.test(args[1])) throw new ToolError('Usage: usermod -u UID LOGIN (the lab simulates only this form)', 2);
  const uid = Number(args[1]);
  const name = args[2];
  const pid = processOf(ctx, name);
  if (pid !== undefined && ctx.read('accounts', EMPTY).users[name]?.uid !== uid) throw new ToolError(`usermod: user ${name} is currently used by process ${pid}`, 8);
  const changed = ctx.update('accounts', EMPTY, ({ users }) => {
    if (users[name] === undefined) throw new ToolError(`usermod: user '${name}' does not exist`, 6);
    if (users[name].uid === uid) return false;
    if (Object.entries(users).some(([n, u]) => n !== name && u.uid === uid)) throw new ToolError(`usermod: UID '${uid}' already exists`, 4);
    users[name].uid = uid;
    return true;
  });
  if (!changed) process.stdout.write('usermod: no changes\n');
  return 0;
}

function groupmod(ctx, args) {
  if (args.length !== 3 || args[0] !== '-g' || !/^\d+$/.test(args[1])) throw new ToolError('Usage: groupmod -g GID GROUP (the lab simulates only this form)', 2);
  const gid = Number(args[1]);
  const name = args[2];
  ctx.update('accounts', EMPTY, ({ users, groups }) => {
    if (groups[name] === undefined) throw new ToolError(`groupmod: group '${name}' does not exist`, 6);
    const old = groups[name];
    if (old === gid) return;
    if (Object.entries(groups).some(([n, g]) => n !== name && g === gid)) throw new ToolError(`groupmod: GID '${gid}' already exists`, 4);
    groups[name] = gid;
    // The primary group of users is stored by number: it follows the group.
    for (const u of Object.values(users)) if (u.gid === old) u.gid = gid;
  });
  return 0;
}

const FIND_USAGE = 'usage: find <dir> [\\( -path <p> [-o -path <p>]... \\) -prune -o] -uid|-gid <n> [-print | -exec chown <user> {} ;|+ | -exec chgrp <group> {} ;|+] (the lab simulates only this form)';

/** A /proc entry of a thread that ended while find walked: what GNU find reports (FTS_NS). */
const VANISHED = "find: '/proc/31877/task/31877/fdinfo/7': No such file or directory\n";

function find(ctx, argv) {
  const [dir, ...args] = argv;
  const pruned = [];
  if (args[0] === '(') {
    let i = 1;
    for (;;) {
      if (args[i] !== '-path' || !args[i + 1]) throw new ToolError(FIND_USAGE, 1);
      pruned.push(args[i + 1].replace(/\/+$/, ''));
      i += 2;
      if (args[i] === '-o') i++;
      else break;
    }
    if (args[i] !== ')' || args[i + 1] !== '-prune' || args[i + 2] !== '-o') throw new ToolError(FIND_USAGE, 1);
    args.splice(0, i + 3);
  }
  const [test, value, ...rest] = args;
  if (!dir || !['-uid', '-gid'].includes(test) || !/^\d+$/.test(value ?? '')) throw new ToolError(FIND_USAGE, 1);
  let exec;
  if (rest.length === 1 && rest[0] === '-print') rest.length = 0;
  if (rest.length > 0) {
    const [e, cmd, who, braces, end] = rest;
    if (rest.length !== 5 || e !== '-exec' || !['chown', 'chgrp'].includes(cmd) || braces !== '{}' || ![';', '+'].includes(end)) throw new ToolError(FIND_USAGE, 1);
    exec = { cmd, who };
  }
  const walksProc = (dir === '/' || dir.replace(/\/+$/, '') === '/proc') && !pruned.includes('/proc');
  const isPruned = (p) => pruned.some((q) => p === q || p.startsWith(`${q}/`));
  const n = Number(value);
  const key = test === '-uid' ? 'uid' : 'gid';
  const under = dir === '/' ? '/' : `${dir.replace(/\/+$/, '')}/`;
  const inScope = (p) => !isPruned(p) && (dir === '/' || p === dir.replace(/\/+$/, '') || p.startsWith(under));
  const { users, groups } = ctx.read('accounts', EMPTY);
  if (exec === undefined) {
    const owners = ctx.read('owners', {});
    process.stdout.write(Object.keys(owners).filter((p) => inScope(p) && owners[p][key] === n).sort().map((p) => `${p}\n`).join(''));
    if (walksProc) process.stderr.write(VANISHED);
    return walksProc ? 1 : 0;
  }
  const to = exec.cmd === 'chown' ? users[exec.who]?.uid : groups[exec.who];
  let failed = false;
  ctx.update('owners', {}, (owners) => {
    for (const p of Object.keys(owners).sort()) {
      if (!inScope(p) || owners[p][key] !== n) continue;
      if (to === undefined) {
        process.stderr.write(`${exec.cmd}: invalid ${exec.cmd === 'chown' ? 'user' : 'group'}: '${exec.who}'\n`);
        failed = true;
        continue;
      }
      owners[p][exec.cmd === 'chown' ? 'uid' : 'gid'] = to;
    }
  });
  if (walksProc) process.stderr.write(VANISHED);
  return failed || walksProc ? 1 : 0;
}

module.exports = { id, usermod, groupmod, find };

/** `getent group <name>` / `getent passwd <name>` from the same accounts (exit 2: not found). */
module.exports.getent = function getent(ctx, args) {
  const [db, name] = args;
  if (args.length !== 2 || !['group', 'passwd'].includes(db)) throw new ToolError('usage: getent group|passwd <name> (the lab simulates only this form)', 1);
  const { users, groups } = ctx.read('accounts', EMPTY);
  if (db === 'group') {
    if (groups[name] === undefined) return 2;
    process.stdout.write(`${name}:x:${groups[name]}:\n`);
    return 0;
  }
  if (users[name] === undefined) return 2;
  process.stdout.write(`${name}:x:${users[name].uid}:${users[name].gid}::/var/lib/${name}:/bin/false\n`);
  return 0;
};
