'use strict';
/**
 * procps-ng 4.0.2 (Debian 12) `ps`, `pgrep`, `pkill`, and `pidof`, over the host's process table
 * (../process-table.cjs: its simulated daemons and the real processes of its sessions), from
 * procps-ng's source at tag v4.0.2 (gitlab.com/procps-ng/procps, mirrored at
 * github.com/procps-ng/procps):
 *
 * - ps (src/ps/output.c format_array, macro_array; src/ps/sortformat.c): `aux` is the "u" format
 *   `user,pid,pcpu,pmem,vsz,rss,tname,stat,start_time,bsdtime,args`, `-f` is
 *   `uid_hack,pid,ppid,c,stime,tname,time,cmd`, the default `pid,tname,time,ucmd`. Columns are one
 *   space apart; numbers right-aligned, text left-aligned and the last column not padded; PID
 *   columns are as wide as pid_max's digits (5 for 32768, 7 for the 4194304 systemd sets); a user
 *   name wider than its 8 columns is cut to 7 and `+`. `field=Name` renames a header and `field=`
 *   empties it (the rest of the list is still fields, as Debian 12's ps 4.0.2 does); no header line
 *   is printed when every header is empty. Nothing selected
 *   (`-p`, `-C`): exit 1. `ps` lists itself and its pipeline's other programs.
 * - pgrep/pkill (src/pgrep.c): an extended regular expression matched against the process name
 *   (the kernel's 15 characters) or, with -f, the whole command line; never matches itself; exit 0
 *   when something matched, 1 when nothing did, 2 for bad usage; a pattern longer than 15
 *   characters without -f warns that it cannot match.
 * - pidof (sysvinit-utils 3.06 killall5.c, Debian 12's /bin/pidof): the pids of the programs named,
 *   newest first, exit 1 when there is none.
 */
const { ToolError } = require('../runtime.cjs');
const state = require('../service-state.cjs');
const { table, kill, COMM_LEN } = require('../process-table.cjs');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n) => String(n).padStart(2, '0');

/** A stable small number per string: fake memory sizes that do not change between two `ps`. */
function hash(s) {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) % 1_000_003;
  return h;
}

/** Multi-threaded daemons show `l` in STAT. */
const THREADED = new Set(['mysqld', 'beam.smp', 'java', 'named', 'libvirtd', 'arakoon', 'volumedriver_fs', 'nscd', 'memcached', 'rsyslogd']);

function stat(p) {
  if (p.real) return `${p.stateChar}${p.sid === p.pid ? 's' : ''}`;
  const leader = p.ppid <= 1 || p.comm === 'runsv' ? 's' : '';
  return `S${leader}${THREADED.has(p.comm) ? 'l' : ''}`;
}

/** start_time / stime: `15:26` today, `Nov30` this year, `2025` before. */
function startTime(ms) {
  const d = new Date(ms);
  const now = new Date();
  if (Date.now() - ms < 24 * 3600 * 1000) return `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}`;
  if (d.getUTCFullYear() === now.getUTCFullYear()) return `${MONTHS[d.getUTCMonth()]}${pad2(d.getUTCDate())}`;
  return String(d.getUTCFullYear());
}

function cpu(p) {
  return p.real ? Math.floor(p.cpuSeconds) : hash(p.args) % 3;
}

function clock(seconds) {
  const days = Math.floor(seconds / 86400);
  const hms = `${pad2(Math.floor((seconds % 86400) / 3600))}:${pad2(Math.floor((seconds % 3600) / 60))}:${pad2(seconds % 60)}`;
  return days > 0 ? `${days}-${hms}` : hms;
}

function elapsed(ms) {
  const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  const days = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = pad2(Math.floor((s % 3600) / 60));
  const sec = pad2(s % 60);
  if (days > 0) return `${days}-${pad2(h)}:${m}:${sec}`;
  if (h > 0) return `${pad2(h)}:${m}:${sec}`;
  return `${m}:${sec}`;
}

function lstart(ms) {
  const d = new Date(ms);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()];
  return `${day} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

function user(name, width) {
  return name.length > width ? `${name.slice(0, width - 1)}+` : name;
}

const vsz = (p) => (p.real ? p.vsz : 10_000 + (hash(p.comm) % 400_000));
const rss = (p) => (p.real ? p.rss : 2_000 + (hash(`${p.comm}rss`) % 60_000));

/** ps's fields (src/ps/output.c format_array): header, width, alignment and value; W is the pid width. */
function fields(W) {
  const f = (header, width, right, value) => ({ header, width, right, value });
  return {
    pid: f('PID', W, true, (p) => String(p.pid)),
    tgid: f('TGID', W, true, (p) => String(p.pid)),
    ppid: f('PPID', W, true, (p) => String(p.ppid)),
    user: f('USER', 8, false, (p) => user(p.user, 8)),
    euser: f('EUSER', 8, false, (p) => user(p.user, 8)),
    uname: f('USER', 8, false, (p) => user(p.user, 8)),
    uid_hack: f('UID', 8, false, (p) => user(p.user, 8)),
    comm: f('COMMAND', 15, false, (p) => p.comm),
    ucmd: f('CMD', 15, false, (p) => p.comm),
    ucomm: f('COMMAND', 15, false, (p) => p.comm),
    args: f('COMMAND', 27, false, (p) => p.args),
    cmd: f('CMD', 27, false, (p) => p.args),
    command: f('COMMAND', 27, false, (p) => p.args),
    stat: f('STAT', 4, false, stat),
    state: f('S', 1, false, (p) => stat(p).slice(0, 1)),
    s: f('S', 1, false, (p) => stat(p).slice(0, 1)),
    tname: f('TTY', 8, false, () => '?'),
    tty: f('TT', 8, false, () => '?'),
    tt: f('TT', 8, false, () => '?'),
    time: f('TIME', 8, true, (p) => clock(cpu(p))),
    cputime: f('TIME', 8, true, (p) => clock(cpu(p))),
    bsdtime: f('TIME', 6, true, (p) => `${Math.floor(cpu(p) / 60)}:${pad2(cpu(p) % 60)}`),
    etime: f('ELAPSED', 11, true, (p) => elapsed(p.started)),
    etimes: f('ELAPSED', 7, true, (p) => String(Math.max(0, Math.floor((Date.now() - p.started) / 1000)))),
    start_time: f('START', 5, true, (p) => startTime(p.started)),
    stime: f('STIME', 5, true, (p) => startTime(p.started)),
    lstart: f('STARTED', 24, true, (p) => lstart(p.started)),
    pcpu: f('%CPU', 4, true, () => '0.0'),
    '%cpu': f('%CPU', 4, true, () => '0.0'),
    pmem: f('%MEM', 4, true, (p) => (rss(p) / 40_000).toFixed(1)),
    '%mem': f('%MEM', 4, true, (p) => (rss(p) / 40_000).toFixed(1)),
    vsz: f('VSZ', 6, true, (p) => String(vsz(p))),
    rss: f('RSS', 5, true, (p) => String(rss(p))),
    c: f('C', 2, true, () => '0'),
  };
}

const FORMATS = {
  default: 'pid,tname,time,ucmd',
  full: 'uid_hack,pid,ppid,c,stime,tname,time,cmd',
  bsd: 'pid,tname,stat,bsdtime,args',
  user: 'user,pid,pcpu,pmem,vsz,rss,tname,stat,start_time,bsdtime,args',
};

const PS_USAGE = `
Usage:
 ps [options]

 Try 'ps --help <simple|list|output|threads|misc|all>'
  or 'ps --help <s|l|o|t|m|a>'
 for additional help text.

For more details see ps(1).`;

const psError = (message) => new ToolError(`error: ${message}\n${PS_USAGE}`, 1);
const LAB_PS = 'ps: the lab simulates aux/ax/x/u/h/o/p, -e/-A, -f, -p, -C, -u/-U, -o, --no-headers, -w';

function splitList(v) {
  return v.split(/[,\s]+/).filter(Boolean);
}

function parsePs(args) {
  const o = { all: false, bsdAll: false, bsdX: false, formats: [], style: undefined, pids: [], comms: [], users: [], headers: true };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const next = () => {
      const v = args[++i];
      if (v === undefined) throw psError('list of process IDs must follow -p');
      return v;
    };
    if (a === '--no-headers' || a === '--no-heading') o.headers = false;
    else if (a.startsWith('--')) {
      const [k, v] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
      if (k === '--pid') o.pids.push(...splitList(v ?? next()));
      else if (k === '--format') o.formats.push(v ?? next());
      else if (k === '--user') o.users.push(...splitList(v ?? next()));
      else if (['--width', '--cols', '--columns', '--sort', '--forest', '--ppid', '--tty', '--group'].includes(k)) throw new ToolError(`${LAB_PS}; not ${k}`, 1);
      else throw psError('unknown gnu long option');
    } else if (a.startsWith('-')) {
      const flags = a.slice(1);
      for (let j = 0; j < flags.length; j++) {
        const c = flags[j];
        const rest = flags.slice(j + 1);
        const value = () => {
          const v = rest !== '' ? rest : next();
          j = flags.length;
          return v;
        };
        if (c === 'e' || c === 'A') o.all = true;
        else if (c === 'f') o.style = 'full';
        else if (c === 'p' || c === 'q') o.pids.push(...splitList(value()));
        else if (c === 'C') o.comms.push(...splitList(value()));
        else if (c === 'u' || c === 'U') o.users.push(...splitList(value()));
        else if (c === 'o') o.formats.push(value());
        else if (c === 'w') continue;
        else if ('aFjlLmMNOtTyZHgGsd'.includes(c)) throw new ToolError(`${LAB_PS}; not -${c}`, 1);
        else throw psError('unsupported SysV option');
      }
    } else {
      for (let j = 0; j < a.length; j++) {
        const c = a[j];
        const rest = a.slice(j + 1);
        const value = () => {
          const v = rest !== '' ? rest : next();
          j = a.length;
          return v;
        };
        if (c === 'a') o.bsdAll = true;
        else if (c === 'x') o.bsdX = true;
        else if (c === 'u') o.style = 'user';
        else if (c === 'h') o.headers = false;
        else if (c === 'w') continue;
        else if (c === 'o') o.formats.push(value());
        else if (c === 'p') o.pids.push(...splitList(value()));
        else if ('fjlvsmrSTUceXLZ'.includes(c)) throw new ToolError(`${LAB_PS}; not ${c}`, 1);
        else throw psError('unsupported option (BSD syntax)');
      }
      o.bsd = true;
    }
  }
  return o;
}

/** The columns of format lists (`pid,comm=`, `comm=Name`): each `field` or `field=header`, commas or blanks between. */
function columns(formats, all) {
  return formats
    .flatMap((fmt) => fmt.split(/[,\s]+/).filter(Boolean))
    .map((part) => {
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      const field = all[name];
      if (field === undefined) throw psError(`unknown user-defined format specifier "${name}"`);
      return { ...field, header: eq < 0 ? field.header : part.slice(eq + 1) };
    });
}

function render(cols, rows, headers) {
  const widths = cols.map((c) => Math.max(c.width, c.header.length));
  const line = (cells) => cells.map((cell, j) => (cols[j].right ? cell.padStart(widths[j]) : j === cells.length - 1 ? cell : cell.padEnd(widths[j]))).join(' ');
  const out = [];
  if (headers && cols.some((c) => c.header !== '')) out.push(line(cols.map((c) => c.header)));
  for (const p of rows) out.push(line(cols.map((c) => c.value(p))));
  return out;
}

function ps(ctx, args) {
  const o = parsePs(args);
  const profile = state.read(ctx);
  const W = String(profile.pidMax).length;
  const all = fields(W);
  const procs = table(ctx);
  const me = procs.find((p) => p.pid === process.pid);
  const selectors = [];
  if (o.all || (o.bsdAll && o.bsdX)) selectors.push(() => true);
  else if (o.bsdX) selectors.push((p) => p.user === me?.user);
  if (o.pids.length > 0) selectors.push((p) => o.pids.includes(String(p.pid)));
  if (o.comms.length > 0) selectors.push((p) => o.comms.some((c) => c.slice(0, COMM_LEN) === p.comm));
  if (o.users.length > 0) selectors.push((p) => o.users.includes(p.user) || o.users.includes(String(p.uid ?? (p.user === 'root' ? 0 : -1))));
  // No selection: the invoker's own processes without a terminal (an `ssh host cmd` session has none).
  if (selectors.length === 0) selectors.push((p) => p.user === me?.user);
  const rows = procs.filter((p) => selectors.some((s) => s(p)));
  const format = o.formats.length > 0 ? o.formats : [FORMATS[o.style ?? (o.bsd ? 'bsd' : 'default')]];
  const lines = render(columns(format, all), rows, o.headers);
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
  return rows.length > 0 ? 0 : 1;
}

/** pgrep, pkill and pidwait's options (src/pgrep.c parse_opts). */
function parseGrep(program, args) {
  const o = { exact: false, full: false, listName: false, listFull: false, count: false, inverse: false, ignoreCase: false, newest: false, oldest: false, users: [], parents: [], echo: false, signal: 15, delimiter: '\n', pattern: undefined };
  const usage = (message) => new ToolError(`${program}: ${message}\nTry \`${program} --help' for more information.`, 2);
  const words = [...args];
  if (program === 'pkill') {
    const i = words.findIndex((w) => /^-[A-Z0-9]/i.test(w) && state.signalNumber(w.slice(1)) !== undefined && !/^-[xfalcvinoue]$/.test(w));
    if (i >= 0) o.signal = state.signalNumber(words.splice(i, 1)[0].slice(1));
  }
  const positional = [];
  for (let i = 0; i < words.length; i++) {
    const a = words[i];
    const value = (inline) => {
      if (inline !== '') return inline;
      const v = words[++i];
      if (v === undefined) throw usage(`option requires an argument -- '${a.slice(-1)}'`);
      return v;
    };
    if (a === '--') {
      positional.push(...words.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const [k, v] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, ''];
      const map = { '--exact': 'exact', '--full': 'full', '--list-name': 'listName', '--list-full': 'listFull', '--count': 'count', '--inverse': 'inverse', '--ignore-case': 'ignoreCase', '--newest': 'newest', '--oldest': 'oldest', '--echo': 'echo' };
      if (map[k]) o[map[k]] = true;
      else if (k === '--euid' || k === '--uid') o.users.push(...value(v).split(','));
      else if (k === '--parent') o.parents.push(...value(v).split(','));
      else if (k === '--signal' && program === 'pkill') o.signal = state.signalNumber(value(v)) ?? -1;
      else if (k === '--delimiter' && program === 'pgrep') o.delimiter = value(v);
      else throw usage(`unrecognized option '${k}'`);
      if (o.signal === -1) throw new ToolError(`${program}: Unknown signal "${v}".`, 2);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        const inline = a.slice(j + 1);
        const flag = { x: 'exact', f: 'full', c: 'count', v: 'inverse', i: 'ignoreCase', n: 'newest', o: 'oldest' }[c];
        if (flag) o[flag] = true;
        else if (c === 'l' && program === 'pgrep') o.listName = true;
        else if (c === 'a' && program === 'pgrep') o.listFull = true;
        else if (c === 'e' && program === 'pkill') o.echo = true;
        else if (c === 'u' || c === 'U') {
          o.users.push(...value(inline).split(','));
          break;
        } else if (c === 'P') {
          o.parents.push(...value(inline).split(','));
          break;
        } else if (c === 'd' && program === 'pgrep') {
          o.delimiter = value(inline);
          break;
        } else if ('gGstFLrAwq'.includes(c)) throw new ToolError(`${program}: the lab simulates -x, -f, -l, -a, -c, -v, -i, -n, -o, -u, -P${program === 'pkill' ? ', -e and a signal' : ', -d'}; not -${c}`, 2);
        else throw usage(`invalid option -- '${c}'`);
      }
      continue;
    }
    positional.push(a);
  }
  if (positional.length > 1) throw usage('only one pattern can be provided');
  o.pattern = positional[0];
  if (o.pattern === undefined && o.users.length === 0 && o.parents.length === 0) throw usage('no matching criteria specified');
  return o;
}

/** The processes pgrep/pkill select: never itself. */
function select(ctx, program, o) {
  let re;
  if (o.pattern !== undefined) {
    try {
      re = new RegExp(o.exact ? `^(${o.pattern})$` : o.pattern, o.ignoreCase ? 'i' : '');
    } catch (err) {
      throw new ToolError(`${program}: regex error: ${err.message}`, 2);
    }
  }
  let found = table(ctx).filter((p) => {
    if (p.pid === process.pid) return false;
    let match = true;
    if (o.users.length > 0 && !o.users.includes(p.user) && !o.users.includes(String(p.uid))) match = false;
    else if (o.parents.length > 0 && !o.parents.includes(String(p.ppid))) match = false;
    else if (re !== undefined && !re.test(o.full ? p.args : p.comm)) match = false;
    return match !== o.inverse;
  });
  if (o.newest && found.length > 0) found = [found.reduce((a, b) => (b.started > a.started || (b.started === a.started && b.pid > a.pid) ? b : a))];
  if (o.oldest && found.length > 0) found = [found.reduce((a, b) => (b.started < a.started || (b.started === a.started && b.pid < a.pid) ? b : a))];
  if (found.length === 0 && !o.full && o.pattern !== undefined && o.pattern.length > COMM_LEN) {
    process.stderr.write(`${program}: pattern that searches for process name longer than 15 characters will result in zero matches\nTry \`${program} -f' option to match against the complete command line.\n`);
  }
  return found;
}

function pgrep(ctx, args) {
  const o = parseGrep('pgrep', args);
  const found = select(ctx, 'pgrep', o);
  if (o.count) process.stdout.write(`${found.length}\n`);
  else if (found.length > 0) {
    const items = found.map((p) => (o.listFull ? `${p.pid} ${p.args}` : o.listName ? `${p.pid} ${p.comm}` : String(p.pid)));
    process.stdout.write(`${items.join(o.delimiter)}\n`);
  }
  return found.length > 0 ? 0 : 1;
}

function pkill(ctx, args) {
  const o = parseGrep('pkill', args);
  const found = select(ctx, 'pkill', o);
  const done = new Set(kill(ctx, found, o.signal));
  if (o.echo) for (const p of found.filter((x) => done.has(x.pid))) process.stdout.write(`${p.comm} killed (pid ${p.pid})\n`);
  if (o.count) process.stdout.write(`${done.size}\n`);
  return done.size > 0 ? 0 : 1;
}

/** pidof: programs by name (or by the base name of their command's first word), newest first. */
function pidof(ctx, args) {
  const names = args.filter((a) => !a.startsWith('-'));
  const omit = new Set([String(process.pid)]);
  for (let i = 0; i < args.length; i++) if (args[i] === '-o' && args[i + 1]) args[i + 1].split(',').forEach((x) => omit.add(x));
  const found = table(ctx)
    .filter((p) => !omit.has(String(p.pid)))
    .filter((p) => names.some((n) => n === p.comm || n === p.args.split(' ')[0] || n === p.args.split(' ')[0].split('/').pop()))
    .sort((a, b) => b.pid - a.pid);
  if (found.length === 0) return 1;
  process.stdout.write(`${found.map((p) => p.pid).join(' ')}\n`);
  return 0;
}

module.exports = { ps, pgrep, pkill, pidof };
