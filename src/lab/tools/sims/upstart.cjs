'use strict';
/**
 * Upstart 1.12.1 (Ubuntu 14.04): `initctl` and its links `start`, `stop`, `restart`, `reload` and
 * `status`, from upstart's util/initctl.c and init/job_class.c at release 1.12.1-0ubuntu4
 * (github.com/ubports/upstart, commit 38772460):
 *
 * - job_status(): `<job> <goal>/<state>, process <pid>` while it runs, `<job> stop/waiting` when it
 *   has no instance; `status` answers exit 0 either way.
 * - Errors are printed as "<program>: <message>" (nih_error; the program is `initctl` or the link's
 *   name), exit 1: "Unknown job: x" (control.c) for a job with no configuration, "Job is already
 *   running: x" (job_class.c) for `start`, "Unknown instance: " for `stop`/`restart`/`reload` of a
 *   job that is not running; "<program>: missing job name" plus "Try `<program> --help' for more
 *   information." with no job.
 * - `initctl version` prints the init daemon's package string, `init (upstart 1.12.1)`.
 * - `initctl list` prints job_status() of every job.
 * - A job exists while `/etc/init/<job>.conf` does (upstart watches the directory with inotify), or
 *   while it still runs after its file went away. `/etc/init/<job>.override` holding `manual` keeps
 *   the job from starting on its events (at boot); `start` still starts it (init(5), "manual").
 */
const { ToolError } = require('../runtime.cjs');
const state = require('../service-state.cjs');

const VERSION = 'init (upstart 1.12.1)';

function jobsOf(st) {
  return Object.entries(st.services).filter(([, s]) => s.manager === 'upstart');
}

/** The service behind a job name, when upstart knows the job. */
function findJob(ctx, st, job) {
  const entry = jobsOf(st).find(([, s]) => s.unit === job);
  if (entry === undefined) return undefined;
  const [, s] = entry;
  if (!state.exists(ctx, `/etc/init/${job}.conf`) && s.status !== 'running') return undefined;
  return entry;
}

function jobStatus(s) {
  return s.status === 'running' && s.pids.length > 0 ? `${s.unit} start/running, process ${s.pids[0]}` : s.status === 'running' ? `${s.unit} start/running` : `${s.unit} stop/waiting`;
}

function fail(program, message) {
  return new ToolError(`${program}: ${message}`, 1);
}

function missingJob(program) {
  return new ToolError(`${program}: missing job name\nTry \`${program} --help' for more information.`, 1);
}

function jobCommand(ctx, program, verb, args) {
  const [job, ...env] = args.filter((a) => !a.startsWith('-'));
  if (job === undefined) throw missingJob(program);
  if (env.some((e) => !e.includes('='))) throw fail(program, 'Env must be KEY=VALUE pairs');
  const st = state.read(ctx);
  const entry = findJob(ctx, st, job);
  if (entry === undefined) throw fail(program, `Unknown job: ${job}`);
  const [name, s] = entry;
  switch (verb) {
    case 'status':
      break;
    case 'start':
      if (s.status === 'running') throw fail(program, `Job is already running: ${job}`);
      state.start(ctx, name);
      break;
    case 'stop':
      if (s.status !== 'running') throw fail(program, 'Unknown instance: ');
      state.stop(ctx, name);
      break;
    case 'restart':
      if (s.status !== 'running') throw fail(program, 'Unknown instance: ');
      state.stop(ctx, name);
      state.start(ctx, name);
      break;
    case 'reload':
      if (s.status !== 'running') throw fail(program, 'Unknown instance: ');
      return 0;
    default:
      throw new Error(`unknown verb ${verb}`);
  }
  const after = state.read(ctx).services[name];
  // A daemon that died just after it was spawned was reported started, with the pid it had.
  process.stdout.write(`${after.status === 'failed' && after.exit ? `${after.unit} start/running, process ${after.exit.pid}` : jobStatus(after)}\n`);
  return 0;
}

const JOB_VERBS = ['start', 'stop', 'restart', 'reload', 'status'];

function initctl(ctx, args) {
  const words = args.filter((a) => !['--system', '--no-wait', '-n', '-q', '--quiet'].includes(a));
  const [command, ...rest] = words;
  if (command === undefined) throw new ToolError('initctl: missing command\nTry `initctl --help\' for more information.', 1);
  if (JOB_VERBS.includes(command)) return jobCommand(ctx, 'initctl', command, rest);
  if (command === 'version') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command === 'list') {
    const st = state.read(ctx);
    const lines = jobsOf(st)
      .filter(([, s]) => findJob(ctx, st, s.unit) !== undefined)
      .map(([, s]) => `${jobStatus(s)}\n`);
    process.stdout.write(lines.join(''));
    return 0;
  }
  const real = ['show-config', 'check-config', 'emit', 'reload-configuration', 'log-priority', 'notify-disk-writeable', 'usage', 'get-env', 'set-env', 'list-env', 'list-sessions', 'reset-env', 'unset-env'];
  if (real.includes(command)) throw new ToolError(`initctl: the lab does not simulate "${command}"; it simulates version, list, ${JOB_VERBS.join(', ')}`, 1);
  throw new ToolError(`initctl: invalid command: ${command}\nTry \`initctl --help' for more information.`, 1);
}

const upstartOnly = (profile) => profile.init === 'upstart';
initctl.requires = upstartOnly;

const links = Object.fromEntries(
  JOB_VERBS.map((verb) => {
    const handler = (ctx, args) => jobCommand(ctx, verb, verb, args);
    handler.requires = upstartOnly;
    return [verb, handler];
  }),
);

module.exports = { initctl, ...links };
