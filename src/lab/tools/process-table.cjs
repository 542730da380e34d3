'use strict';
/**
 * Follows procps-ng 4.0.2 and psmisc 23.6 (Debian 12) through the tools that read it (sims/procps.cjs,
 * sims/psmisc.cjs, which name the files); this module is their shared state.
 * The process table of a lab host, as ps, pgrep, pidof and killall see it: the host's simulated
 * processes (PID 1, its services' daemons: service-state.cjs) and the real processes of the sessions
 * open on the host (the login shells sshd started, and what they run), read from /proc. So the
 * `grep` of `ps aux | grep x` is listed with its real command line, as on a real host.
 *
 * Real processes are those whose environment carries this host's LAB_DIR and LAB_HOST (every
 * process of a session inherits them from sshd), plus the sshd session process above each shell.
 * A lab tool shows as the program it stands for (`node <lab>/bin/ps aux` → `ps aux`); what a lab tool
 * runs inside (the real grep under the lab's grep) is its implementation and is not shown.
 */
const fs = require('node:fs');
const path = require('node:path');
const state = require('./service-state.cjs');

const CLK_TCK = 100;
/** The kernel keeps the first 15 bytes of a program's name (TASK_COMM_LEN 16). */
const COMM_LEN = 15;

function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

let users;
/** uid → user name, from the machine's /etc/passwd (the lab user's sessions are real processes). */
function userName(uid) {
  users ??= new Map(
    (readText('/etc/passwd') ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':'))
      .map((f) => [Number(f[2]), f[0]]),
  );
  return users.get(uid) ?? String(uid);
}

function bootTime() {
  const btime = /^btime (\d+)$/m.exec(readText('/proc/stat') ?? '');
  return btime ? Number(btime[1]) * 1000 : 0;
}

/** One real process, or undefined when it is gone or not readable. */
function realProcess(pid, boot) {
  const stat = readText(`/proc/${pid}/stat`);
  const cmdline = readText(`/proc/${pid}/cmdline`);
  const status = readText(`/proc/${pid}/status`);
  if (stat === undefined || cmdline === undefined || status === undefined) return undefined;
  const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const uid = Number(/^Uid:\s+\d+\s+(\d+)/m.exec(status)?.[1] ?? -1);
  const argv = cmdline.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  return {
    pid,
    ppid: Number(f[1]),
    sid: Number(f[3]),
    stateChar: f[0],
    user: userName(uid),
    uid,
    comm,
    argv,
    // sshd pads its process title with blanks.
    args: argv.length > 0 ? argv.join(' ').trimEnd() : `[${comm}]`,
    started: boot + (Number(f[19]) * 1000) / CLK_TCK,
    cpuSeconds: (Number(f[11]) + Number(f[12])) / CLK_TCK,
    vsz: Math.round(Number(f[20]) / 1024),
    rss: Number(f[21]) * 4,
    real: true,
  };
}

/** `node <lab>/bin/<tool> args…` → the tool's name, else undefined. */
function labTool(p, bin) {
  const [interp, script] = p.argv;
  if (!interp || !script || !['node', 'nodejs'].includes(path.basename(interp)) || path.dirname(script) !== bin) return undefined;
  return path.basename(script);
}

/** The real processes of the host's sessions. */
function sessionProcesses(ctx) {
  const boot = bootTime();
  const bin = path.join(ctx.labDir, 'bin');
  const marks = [`LAB_DIR=${ctx.labDir}`, `LAB_HOST=${ctx.host}`];
  const all = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    // Only the lab user's processes are readable here, and only this host's carry its marks.
    const environ = readText(`/proc/${name}/environ`)?.split('\0');
    if (environ === undefined || !marks.every((m) => environ.includes(m))) continue;
    const p = realProcess(Number(name), boot);
    if (p !== undefined) all.set(p.pid, p);
  }
  const shown = [];
  const parents = new Map();
  for (const p of all.values()) {
    // Inside a lab tool: its implementation, not something the host runs.
    let inside = false;
    for (let a = all.get(p.ppid); a !== undefined; a = all.get(a.ppid)) {
      if (labTool(a, bin) !== undefined) inside = true;
    }
    if (inside) continue;
    const tool = labTool(p, bin);
    shown.push(tool === undefined ? p : { ...p, comm: tool.slice(0, COMM_LEN), args: [tool, ...p.argv.slice(2)].join(' ') });
    // sshd's session process above a login shell: its title replaced its environment.
    if (!all.has(p.ppid) && !parents.has(p.ppid)) {
      const parent = realProcess(p.ppid, boot);
      if (parent !== undefined && parent.args.startsWith('sshd: ')) parents.set(p.ppid, parent);
    }
  }
  return [...shown, ...parents.values()];
}

/**
 * Every process of the host, by pid: { pid, ppid, user, comm, args, started (ms), real, service,
 * stateChar, sid, cpuSeconds, vsz, rss } (the last ones for real processes only).
 */
function table(ctx) {
  const s = state.read(ctx);
  const simulated = state.processes(s).map((p) => ({ ...p, comm: p.comm.slice(0, COMM_LEN), real: false }));
  const pids = new Set(simulated.map((p) => p.pid));
  return [...simulated, ...sessionProcesses(ctx).filter((p) => !pids.has(p.pid))].sort((a, b) => a.pid - b.pid);
}

/**
 * Sends a signal to processes of the table: simulated ones through their service's state (the
 * daemon dies, its service goes down), real ones (this host's own sessions) with kill(2).
 * Returns the pids signalled.
 */
function kill(ctx, procs, sig) {
  const simulated = procs.filter((p) => !p.real).map((p) => p.pid);
  const done = simulated.length > 0 ? state.signal(ctx, simulated, sig) : [];
  for (const p of procs.filter((x) => x.real)) {
    try {
      process.kill(p.pid, sig);
      done.push(p.pid);
    } catch {
      // Already gone.
    }
  }
  return done;
}

module.exports = { table, kill, COMM_LEN };
