'use strict';
/**
 * psmisc's `killall`, from src/killall.c (psmisc 22.14, github.com/acg/psmisc commit 0d03fe8; the
 * same matching in Debian 12's 23.6), over the host's process table (../process-table.cjs):
 *
 * - A name matches the process name the kernel keeps (comm, 15 characters); a name of 15 or more
 *   characters is compared with the base name of the command's first word instead (-e requires that
 *   longer match). Never itself.
 * - Signals: SIGTERM by default, `-s SIG`, `--signal SIG`, `-SIG`, `-9`.
 * - "<name>: no process found" on stderr for each name that matched nothing; exit 0 only when every
 *   name killed at least one process (`-q` silences the complaint, not the exit code). `-v`:
 *   "Killed <name>(<pid>) with signal <n>" on stderr. `-w` waits until they are gone (the lab's
 *   simulated daemons die at once).
 * - No name: the usage on stderr, exit 1.
 * Killing a service's daemon brings the service down as a real kill would (../service-state.cjs).
 */
const { ToolError } = require('../runtime.cjs');
const state = require('../service-state.cjs');
const { table, kill, COMM_LEN } = require('../process-table.cjs');

const USAGE = `Usage: killall [OPTION]... [--] NAME...
       killall -l, --list
       killall -V, --version

  -e,--exact          require exact match for very long names
  -I,--ignore-case    case insensitive process name match
  -g,--process-group  kill process group instead of process
  -y,--younger-than   kill processes younger than TIME
  -o,--older-than     kill processes older than TIME
  -i,--interactive    ask for confirmation before killing
  -l,--list           list all known signal names
  -q,--quiet          don't print complaints
  -r,--regexp         interpret NAME as an extended regular expression
  -s,--signal SIGNAL  send this signal instead of SIGTERM
  -u,--user USER      kill only process(es) running as USER
  -v,--verbose        report if the signal was successfully sent
  -V,--version        display version information
  -w,--wait           wait for processes to die
  -n,--ns PID         match processes that belong to the same namespaces
                      as PID
  -Z,--context REGEXP kill only process(es) having context
                      (must precede other arguments)`;

function parse(args) {
  const o = { signal: 15, quiet: false, verbose: false, exact: false, ignoreCase: false, regexp: false, users: [], names: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw new ToolError(USAGE, 1);
      return v;
    };
    if (a === '--') {
      o.names.push(...args.slice(i + 1));
      break;
    }
    const long = { '--quiet': 'quiet', '--verbose': 'verbose', '--exact': 'exact', '--ignore-case': 'ignoreCase', '--regexp': 'regexp', '--wait': 'wait' }[a];
    if (long) {
      o[long] = true;
      continue;
    }
    if (a === '--signal' || a === '-s') {
      const v = next();
      o.signal = state.signalNumber(v);
      if (o.signal === undefined) throw new ToolError(`${v}: unknown signal; killall -l lists signals.`, 1);
      continue;
    }
    if (a === '--user' || a === '-u') {
      o.users.push(next());
      continue;
    }
    if (/^-[A-Z]+$|^-\d+$|^-SIG/.test(a) && state.signalNumber(a.slice(1)) !== undefined) {
      o.signal = state.signalNumber(a.slice(1));
      continue;
    }
    if (/^-[qvewIr]+$/.test(a)) {
      for (const c of a.slice(1)) o[{ q: 'quiet', v: 'verbose', e: 'exact', w: 'wait', I: 'ignoreCase', r: 'regexp' }[c]] = true;
      continue;
    }
    if (a.startsWith('-')) {
      if (/^-(-?(list|version|interactive|process-group|younger-than|older-than|ns|context)|[lVigyonZ])/.test(a)) {
        throw new ToolError(`killall: the lab simulates -s/-SIGNAL, -q, -v, -e, -w, -I, -r, -u; not ${a}`, 1);
      }
      throw new ToolError(`killall: unknown signal ${a.slice(1)}\n${USAGE}`, 1);
    }
    o.names.push(a);
  }
  return o;
}

function matches(o, name, p) {
  const long = name.length >= COMM_LEN;
  const command = p.args.split(' ')[0].split('/').pop();
  if (o.regexp) return new RegExp(name, o.ignoreCase ? 'i' : '').test(long ? command : p.comm);
  const eq = (a, b) => (o.ignoreCase ? a.toLowerCase() === b.toLowerCase() : a === b);
  if (!long || p.comm.length < COMM_LEN) return eq(name, p.comm);
  // The kernel cut the name: compare with the command's base name when that is where it came from.
  if (command.slice(0, COMM_LEN) === p.comm) return eq(name, command);
  return !o.exact && eq(name.slice(0, COMM_LEN), p.comm);
}

function killall(ctx, args) {
  const o = parse(args);
  if (o.names.length === 0) throw new ToolError(USAGE, 1);
  const procs = table(ctx).filter((p) => p.pid !== process.pid && (o.users.length === 0 || o.users.includes(p.user)));
  let found = 0;
  for (const name of o.names) {
    const hit = procs.filter((p) => matches(o, name, p));
    const done = new Set(kill(ctx, hit, o.signal));
    if (o.verbose) for (const p of hit.filter((x) => done.has(x.pid))) process.stderr.write(`Killed ${p.comm}(${p.pid}) with signal ${o.signal}\n`);
    if (done.size > 0) found++;
    else if (!o.quiet) process.stderr.write(`${name}: no process found\n`);
  }
  return found === o.names.length ? 0 : 1;
}

module.exports = { killall };
