'use strict';
/**
 * Shared state of the service managers that name their sources (systemd 252 systemctl.cjs, upstart
 * 1.12.1 upstart.cjs, sysvinit-utils service.cjs, runit 2.1.2 runit.cjs); it doubles no program itself.
 * The services of a simulated host and the processes they run, shared by the lab's service managers
 * and process tools (systemctl, initctl, service, the init scripts, sv, ps, pgrep, killall) and read
 * by the other simulators through `ctx.serviceState(name)`. One state file, `state/init.json`,
 * written by src/lab/seed.ts from the host's init profile (src/lab/site/host.ts):
 *
 *   { init: "systemd" | "upstart" | "sysv", runit: bool, pidMax, nextPid, bootedAt, hostname,
 *     badStarts: { <service>: { setting, used } }, services: { <name>: Service },
 *     uninstalled: { <name>: Service } (taken off the host by a test, to put back) }
 *
 * Service: { manager: "systemd" | "upstart" | "sysv" | "runit"; unit: the unit (`x.service`), job,
 * init script or runit service directory; description; daemon: its name in the init script's
 * messages; status: "running" | "stopped" | "failed";
 * exited: a systemd oneshot that stays "active (exited)" with no process; result: "success" |
 * "signal" | "exit-code"; since (ms); enabled; masked (systemd); lsbStatus: the init script
 * implements `status`; processes: [{ user, comm, args, respawn }]; pids: one per process while it
 * runs; journal: [{ t, text }], the lines `systemctl status` shows }.
 *
 * Whether an upstart job exists and is disabled, whether an init script exists, and whether a runit
 * service is normally down are read from files in the host's fake root (`/etc/init/<job>.conf` and
 * `.override`, `/etc/init.d/<script>`, `/etc/service/<dir>/down`), as the real programs read them:
 * procedures move and write those files.
 */
const fs = require('node:fs');

const FILE = 'init';
const EMPTY = () => ({ init: 'systemd', runit: false, pidMax: 4194304, nextPid: 1000, bootedAt: 0, hostname: '', services: {} });

const SIGNALS = { HUP: 1, INT: 2, QUIT: 3, KILL: 9, USR1: 10, SEGV: 11, USR2: 12, PIPE: 13, ALRM: 14, TERM: 15, CONT: 18, STOP: 19, TSTP: 20, WINCH: 28 };
const SIGNAL_NAMES = Object.fromEntries(Object.entries(SIGNALS).map(([n, v]) => [v, n]));
/** Signals a daemon lives through (reload, job control, the existence probe 0). */
const SURVIVED = new Set([0, 1, 10, 12, 18, 19, 20, 28]);
/** What systemd counts as a clean exit of a service's main process (systemd.exec(5), SuccessExitStatus=). */
const CLEAN_SIGNALS = new Set([1, 2, 13, 15]);

function read(ctx) {
  return ctx.read(FILE, EMPTY());
}

function update(ctx, fn) {
  return ctx.update(FILE, EMPTY(), fn);
}

/** The next pid: pids grow in small uneven steps, as on a busy host, and wrap at pid_max. */
function allocatePid(state) {
  const pid = state.nextPid;
  state.nextPid = pid + 1 + (pid % 5);
  if (state.nextPid >= state.pidMax) state.nextPid = 300;
  return pid;
}

/** `ovs-workers.service - Open vStorage workers`: how systemd v252 names a unit in its messages. */
function describeUnit(service) {
  return service.description && service.description !== service.unit ? `${service.unit} - ${service.description}` : service.unit;
}

/** A journal line of a systemd unit (other managers log to files the lab does not keep). */
function journal(state, service, text) {
  if (service.manager !== 'systemd') return;
  service.journal = [...(service.journal ?? []), { t: Date.now(), text: `${state.hostname} systemd[1]: ${text}` }].slice(-10);
}

/**
 * Uses up one of the host setting `badStarts` = { "<service>": n }: the next n starts of that service
 * report success but leave it dead (the AFS page's Postgres, which "is known to need one, two or more
 * restarts before it really starts properly"). Counting starts again whenever the setting changes.
 */
function takeBadStart(ctx, state, name) {
  const n = ctx.setting('badStarts', {})[name] ?? 0;
  if (!(n > 0)) return false;
  state.badStarts ??= {};
  const c = state.badStarts[name]?.setting === n ? state.badStarts[name] : { setting: n, used: 0 };
  state.badStarts[name] = c;
  if (c.used >= n) return false;
  c.used += 1;
  return true;
}

/** Applies fn to the named service under the host's lock; undefined for a service the host does not have. */
function change(ctx, name, fn) {
  return update(ctx, (state) => (state.services[name] === undefined ? undefined : fn(state.services[name], state)));
}

/** Starts a service; a running one is left alone. Returns the status it had, or undefined when unknown. */
function start(ctx, name) {
  return change(ctx, name, (s, state) => {
    const before = s.status;
    if (before === 'running') return before;
    s.since = Date.now();
    s.startedAt = s.since;
    delete s.exit;
    if (takeBadStart(ctx, state, name)) {
      s.status = 'failed';
      s.result = 'exit-code';
      s.exit = { pid: allocatePid(state), code: 'exited', status: '1/FAILURE' };
      s.pids = [];
      journal(state, s, `${s.unit}: Main process exited, code=exited, status=1/FAILURE`);
      journal(state, s, `${s.unit}: Failed with result 'exit-code'.`);
      return before;
    }
    s.status = 'running';
    s.result = 'success';
    s.pids = s.exited ? [] : s.processes.map(() => allocatePid(state));
    journal(state, s, `Started ${describeUnit(s)}.`);
    return before;
  });
}

/** Stops a service; a stopped one is left alone (a failed one becomes stopped). Returns the status it had. */
function stop(ctx, name) {
  return change(ctx, name, (s, state) => {
    const before = s.status;
    if (before === 'running') {
      s.since = Date.now();
      journal(state, s, `Stopping ${describeUnit(s)}...`);
      journal(state, s, `${s.unit}: Deactivated successfully.`);
      journal(state, s, `Stopped ${describeUnit(s)}.`);
    }
    s.status = 'stopped';
    s.result = 'success';
    s.pids = [];
    return before;
  });
}

/**
 * The simulated processes of the host: PID 1, runit's runsvdir and runsv supervisors, and the
 * processes of every running service. Each: { pid, ppid, user, comm, args, started (ms), service }.
 */
function processes(state) {
  const boot = state.bootedAt;
  const pid1 = state.init === 'systemd' ? { comm: 'systemd', args: '/sbin/init' } : { comm: 'init', args: state.init === 'upstart' ? '/sbin/init' : 'init [2]' };
  const list = [{ pid: 1, ppid: 0, user: 'root', ...pid1, started: boot }];
  const supervisor = {};
  if (state.runit) {
    list.push({ pid: 19, ppid: 1, user: 'root', comm: 'runsvdir', args: `runsvdir -P /etc/service log: ${'.'.repeat(48)}`, started: boot });
    Object.entries(state.services)
      .filter(([, s]) => s.manager === 'runit')
      .forEach(([name, s], i) => {
        supervisor[name] = 20 + i;
        list.push({ pid: 20 + i, ppid: 19, user: 'root', comm: 'runsv', args: `runsv ${s.unit}`, started: boot });
      });
  }
  for (const [name, s] of Object.entries(state.services)) {
    if (s.status !== 'running') continue;
    s.pids.forEach((pid, i) => {
      const p = s.processes[i];
      list.push({ pid, ppid: i === 0 ? (supervisor[name] ?? 1) : s.pids[0], user: p.user, comm: p.comm, args: p.args, started: s.since, service: name });
    });
  }
  return list;
}

/**
 * Delivers a signal to simulated processes as the kernel would, and returns the pids that were
 * there. A process its parent restarts (`respawn`: mysqld under mysqld_safe) comes back with a new
 * pid; another helper process is simply gone. When a service's main process dies the service is
 * down: systemd counts SIGTERM as a clean stop and anything else as `failed` (Result: signal);
 * upstart's job goes to stop/waiting; an init script's daemon leaves its pid file, so the script says
 * "dead" (`failed`); runit's runsv starts the service again, as it is wanted up.
 */
function signal(ctx, pids, sig) {
  return update(ctx, (state) => {
    const hit = processes(state).filter((p) => pids.includes(p.pid) && p.service !== undefined);
    if (SURVIVED.has(sig)) return hit.map((p) => p.pid);
    for (const name of new Set(hit.map((p) => p.service))) {
      const s = state.services[name];
      const dead = new Set(hit.filter((p) => p.service === name).map((p) => p.pid));
      if (!dead.has(s.pids[0])) {
        const kept = s.processes.map((p, i) => ({ p, pid: s.pids[i] })).filter(({ p, pid }) => p.respawn || !dead.has(pid));
        s.processes = kept.map(({ p }) => p);
        s.pids = kept.map(({ pid }) => (dead.has(pid) ? allocatePid(state) : pid));
        continue;
      }
      s.since = Date.now();
      if (s.manager === 'runit') {
        s.pids = s.processes.map(() => allocatePid(state));
        continue;
      }
      const clean = s.manager === 'systemd' && CLEAN_SIGNALS.has(sig);
      s.status = clean || s.manager === 'upstart' ? 'stopped' : 'failed';
      s.result = clean ? 'success' : 'signal';
      s.exit = { pid: s.pids[0], code: 'killed', status: SIGNAL_NAMES[sig] ?? String(sig) };
      s.pids = [];
      if (clean) {
        journal(state, s, `${s.unit}: Deactivated successfully.`);
      } else {
        journal(state, s, `${s.unit}: Main process exited, code=killed, status=${sig}/${SIGNAL_NAMES[sig] ?? sig}`);
        journal(state, s, `${s.unit}: Failed with result 'signal'.`);
      }
    }
    return hit.map((p) => p.pid);
  });
}

/** `TERM`, `SIGTERM`, `15` → 15; undefined for a name the lab does not know. */
function signalNumber(s) {
  if (/^\d+$/.test(s)) return Number(s) <= 64 ? Number(s) : undefined;
  return SIGNALS[s.toUpperCase().replace(/^SIG/, '')];
}

/** Whether a path exists in the host's fake root (job files, init scripts, runit service directories). */
function exists(ctx, p) {
  return fs.existsSync(ctx.realPath(p));
}

/** A file of the host's fake root, or undefined when there is none. */
function readFile(ctx, p) {
  try {
    return fs.readFileSync(ctx.realPath(p), 'utf8');
  } catch {
    return undefined;
  }
}

module.exports = { read, update, change, start, stop, processes, signal, signalNumber, exists, readFile };
