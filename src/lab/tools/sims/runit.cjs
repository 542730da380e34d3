'use strict';
/**
 * runit's `sv`, from runit 2.1.2's src/sv.c (github.com/void-linux/runit, commit 1a7b609, "release
 * 2.1.2."), with Debian's service directory /etc/service:
 *
 * - `sv status x`: `run: x: (pid 1234) 56s` or `down: x: 3s, normally up` (svstatus_print; "normally
 *   down" while it runs with a `down` file, "normally up" while it is down without one).
 * - `up`/`down`/`once` and the signal commands (`term`, `kill`, `hup`, …) only write to runsv's
 *   control pipe: no output. `start`, `stop` and `restart` (and `-v`) also wait for the result and
 *   print it, `ok: run: x: (pid 1234) 0s` / `ok: down: x: 0s, normally up`; a service that does not
 *   come up within the wait (7 s, `-w`) gives `timeout: down: x: 0s, normally up, want up` (the lab
 *   answers at once instead of waiting).
 * - An unknown service: `fail: x: unable to change to service directory: file does not exist`.
 * - Exit code: the number of services that failed or timed out (at most 99); with no command or no
 *   service, the usage `usage: sv [-v] [-w sec] command service ...` on stderr, exit 100.
 */
const { ToolError } = require('../runtime.cjs');
const state = require('../service-state.cjs');

const USAGE = 'usage: sv [-v] [-w sec] command service ...';

/** What sv prints of a service after the prefix: `x: (pid 1234) 56s` or `x: 3s, normally up`. */
function describe(ctx, dir, s) {
  const seconds = Math.max(0, Math.floor((Date.now() - s.since) / 1000));
  const normallyUp = !state.exists(ctx, `/etc/service/${dir}/down`);
  if (s.status === 'running') return `run: ${dir}: (pid ${s.pids[0]}) ${seconds}s${normallyUp ? '' : ', normally down'}`;
  return `down: ${dir}: ${seconds}s${normallyUp ? ', normally up' : ''}${s.wantUp ? ', want up' : ''}`;
}

const COMMANDS = {
  status: 'status',
  s: 'status',
  up: 'up',
  u: 'up',
  down: 'down',
  d: 'down',
  once: 'up',
  o: 'up',
  start: 'start',
  stop: 'stop',
  restart: 'restart',
  'force-stop': 'stop',
  'force-restart': 'restart',
  check: 'check',
  term: 'kill:15',
  t: 'kill:15',
  kill: 'kill:9',
  k: 'kill:9',
  hup: 'kill:1',
  h: 'kill:1',
  interrupt: 'kill:2',
  i: 'kill:2',
  quit: 'kill:3',
  q: 'kill:3',
  alarm: 'kill:14',
  a: 'kill:14',
  1: 'kill:10',
  2: 'kill:12',
  pause: 'kill:19',
  p: 'kill:19',
  cont: 'kill:18',
  c: 'kill:18',
};

function sv(ctx, args) {
  let verbose = false;
  let i = 0;
  for (; i < args.length && args[i].startsWith('-'); i++) {
    // -w implies -v (sv.c: `case 'w':` falls through to `case 'v':`).
    if (args[i] === '-v' || /^-w\d+$/.test(args[i])) verbose = true;
    else if (args[i] === '-w') {
      verbose = true;
      i++;
    } else throw new ToolError(USAGE, 100);
  }
  const [command, ...names] = args.slice(i);
  if (command === undefined || names.length === 0 || !Object.hasOwn(COMMANDS, command)) throw new ToolError(USAGE, 100);
  const what = COMMANDS[command];
  let rc = 0;
  const out = [];
  for (const dir of names) {
    const entry = Object.entries(state.read(ctx).services).find(([, s]) => s.manager === 'runit' && s.unit === dir);
    if (entry === undefined || !state.exists(ctx, `/etc/service/${dir}`)) {
      out.push(`fail: ${dir}: unable to change to service directory: file does not exist`);
      rc++;
      continue;
    }
    const [name] = entry;
    if (what === 'status') {
      out.push(describe(ctx, dir, entry[1]));
      continue;
    }
    if (what.startsWith('kill:')) {
      const s = entry[1];
      if (s.status === 'running') state.signal(ctx, s.pids.slice(0, 1), Number(what.slice(5)));
      continue;
    }
    if (what === 'up' || what === 'start' || what === 'restart') {
      if (what === 'restart') state.stop(ctx, name);
      state.start(ctx, name);
    } else if (what === 'down' || what === 'stop') {
      state.stop(ctx, name);
    }
    const wait = verbose || ['start', 'stop', 'restart', 'check'].includes(what);
    if (!wait) continue;
    const s = state.read(ctx).services[name];
    const wanted = what === 'stop' || what === 'down' ? 'stopped' : 'running';
    if (what === 'check' || s.status === wanted) {
      out.push(`ok: ${describe(ctx, dir, s)}`);
    } else {
      out.push(`timeout: ${describe(ctx, dir, { ...s, wantUp: wanted === 'running' })}`);
      rc++;
    }
  }
  if (out.length > 0) process.stdout.write(`${out.join('\n')}\n`);
  return Math.min(rc, 99);
}
sv.requires = (profile) => profile.runit;

module.exports = { sv };
