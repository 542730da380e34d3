'use strict';
/**
 * `ovs`: the Open vStorage CLI launcher of a storage router, as the host's release line has it (state
 * `framework.release`, from the inventory var `ovsRelease`). Nothing in any release has the
 * `ovs vdisk …` commands the runbook pages were once automated with; the page's flush is Python
 * through the framework's data-access layer (tools/python).
 *
 * - `fargo`: openvstorage/framework scripts/system/ovs @ 2.7.4-fargo.1 (d3a24231, 2016-11-04), a
 *   bash launcher. `ovs` alone runs `ipython` (IPython 1.2.1 on Ubuntu 14.04); `help`, and every
 *   subcommand it does not know (`ovs vdisk list`, looked up as /opt/OpenvStorage/scripts/vdisk.sh
 *   since fe5c4658), print the help and exit 0; `monitor services` is the endless loop of
 *   ovs/extensions/services/upstart.py `monitor_services` (`initctl list`, `start/running`);
 *   `collect logs` tars /var/log/{arakoon,nginx,ovs,rabbitmq,upstart}*, /var/log/*log and
 *   /var/log/dmesg* into /tmp/ovs-<hostname>-<%Y%m%d%H%M%S>-logs.tar, gzips it and echoes the .gz path.
 * - `2.9`: the same launcher @ 2.9.30 (977f894d, 2019-07-03), IPython 2.4.1 on Ubuntu 16.04;
 *   `collect logs` first writes `journalctl -u ovs-* -u asd-* -u alba-*` to /var/log/journald.log
 *   (60f68fde); `monitor services` is framework-extensions @ dfa64392
 *   src/services/interfaces/systemd.py `monitor_services` (`Running processes`, `<unit> active <pid>
 *   <version>`; `Non-running processes`, `<unit> inactive|failed`).
 * - `develop`: the click CLI of the 2019 development line (ovs/cli @ 6e985c34, run as
 *   `python /opt/OpenvStorage/ovs/cli/entry.py "$@"`, never tagged): `ovs` alone is IPython's
 *   `embed()` (IPython 5.8.0); an unknown command is click's UsageError, exit 2 (click 7.0
 *   `MultiCommand.resolve_command` → `ctx.fail('No such command "%s".')`, `UsageError.show`);
 *   `collect <anything>` (ovs/cli/misc/misc.py) runs `tar czfP` into /tmp/ovs-<storage router>-
 *   <%Y-%m-%d-%H-%M-%S>-logs.tar (gzipped, named .tar) and prints `Files stored in <path>`.
 *
 * `ovs config get <key>` prints the key's value as the framework stored it (JSON, indent 4), nothing for
 * a key not set; `ovs config list <key>` the names under it: the same on every line (the launcher's
 * `Configuration.get(key, raw=True)` / `Configuration.list(key)`; ovs/cli/config/config.py).
 *
 * What every line shares: the monitor loop reprints only when the states change (after '\x1b[2J\x1b[H',
 * the screen clear) and sleeps a second, until killed; Python 2 block-buffers stdout on a pipe (glibc
 * stdio, a st_blksize buffer: 4096 bytes for a pipe), so nothing reaches a caller without a terminal
 * until 4096 bytes have piled up, and one screen of states is less. IPython reads its input from
 * stdin: at end of input it asks "Do you really want to exit ([y]/n)?", takes the default on the next
 * end of input and exits 0 (IPython/terminal/interactiveshell.py `interact` and `exit`, and
 * IPython/utils/io.py `ask_yes_no`, rel-1.2.1 and rel-2.4.1; 5.8.0 `interact` asks the same without the
 * newline first). The lab does not run the lines typed into it: each advances the prompt only.
 *
 * A host without the framework (no `framework` state) has no `ovs`: the shell answers 127.
 * State: `framework` = { release, guid }, the host's services (service-state.cjs), `journal` (see
 * journalctl), `config` = { "<key>": <value> }, `collected` = [{ archive, at }]. The log files are
 * the fake root's.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { setTimeout: sleep } = require('node:timers/promises');
const { ToolError } = require('../runtime.cjs');
const services = require('../service-state.cjs');
const { journalText } = require('./journal.cjs');

/** What each release line runs: interpreter banners and how the launcher behaves. */
const RELEASES = {
  fargo: { launcher: 'shell', python: '2.7.6 (default, Oct 26 2016, 20:30:19) ', ipython: '1.2.1', journal: false },
  '2.9': { launcher: 'shell', python: '2.7.12 (default, Nov 12 2018, 14:36:49) ', ipython: '2.4.1', journal: true },
  develop: { launcher: 'click', python: '2.7.12 (default, Nov 12 2018, 14:36:49) ', ipython: '5.8.0', journal: true },
};

/** The launcher's own help (show_help), shortened to the options the pages and the lab use. */
const SHELL_HELP = [
  'Open vStorage CLI launcher',
  '--------------------------',
  'Usage:',
  '  * Miscellaneous options:',
  '    - ovs                                        Launch Open vStorage shell (ipython)',
  '    - ovs help                                   Show this help section',
  '    - ovs collect logs                           Collect all Open vStorage logs to a tarball (for support purposes)',
  '',
  '  * Monitor options:',
  '    - ovs monitor services                       Watch Open vStorage services',
  '    - ovs monitor heartbeat                      Send an internal heartbeat',
  '',
  '  * Services options:',
  '    - ovs stop framework [ip|all]                Stop Open vStorage Framework services on this node, on all nodes, or on the given ip',
  '    - ovs start framework [ip|all]               Start Open vStorage Framework services on this node, on all nodes, or on the given ip',
  '',
  '  * Configuration editing:',
  '    - ovs config list [some]                     Lists all keys [under \'some\']',
  '    - ovs config get some/key                    Prints the contents of \'some/key\'',
  '',
  '  * Custom Open vStorage modules:',
  '    - ovs <modulename> <arguments>               Execute a custom Open vStorage module in /opt/OpenvStorage/scripts/',
  '',
  '',
].join('\n');

/** Subcommands the real launcher has that the lab does not run (they change a cluster). */
const NOT_SIMULATED = ['setup', 'rollback', 'update', 'remove', 'stop', 'start', 'unittest', 'local_update', 'version'];

const PIPE_BUFFER = 4096;

/**
 * stdout as Python 2 has it: line by line on a terminal, in 4096-byte blocks on a pipe. `flush` is
 * Python's at a normal exit.
 */
function pythonStdout() {
  let pending = '';
  return {
    write(text) {
      if (process.stdout.isTTY) return void process.stdout.write(text);
      pending += text;
      while (Buffer.byteLength(pending) >= PIPE_BUFFER) {
        const block = Buffer.from(pending).subarray(0, PIPE_BUFFER);
        process.stdout.write(block);
        pending = Buffer.from(pending).subarray(PIPE_BUFFER).toString();
      }
    },
    flush() {
      process.stdout.write(pending);
      pending = '';
    },
  };
}

/** Calls onLine for each line read from stdin; resolves at the end of input. */
function readLines(onLine) {
  return new Promise((resolve) => {
    let buffered = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => {
      buffered += chunk;
      for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
        onLine();
        buffered = buffered.slice(i + 1);
      }
    });
    process.stdin.on('end', () => {
      if (buffered) onLine();
      resolve();
    });
    process.stdin.on('error', () => resolve());
  });
}

/** IPython's interactive shell on a stdin that is not a terminal, until end of input. */
async function ipython(release) {
  const out = pythonStdout();
  out.write(
    `Python ${release.python}\nType "copyright", "credits" or "license" for more information.\n\nIPython ${release.ipython} -- An enhanced Interactive Python.\n` +
      "?         -> Introduction and overview of IPython's features.\n%quickref -> Quick reference.\nhelp      -> Python's own help system.\nobject?   -> Details about 'object', use 'object??' for extra details.\n",
  );
  out.write('\nIn [1]: ');
  let prompt = 1;
  await readLines(() => {
    prompt += 1;
    out.write(`\nIn [${prompt}]: `);
  });
  // 1.x and 2.x write a newline before asking; 5.x asks on the prompt's line.
  out.write(`${release.ipython.startsWith('5.') ? '' : '\n'}Do you really want to exit ([y]/n)? \n`);
  out.flush();
  if (prompt > 1) process.stderr.write('lab: the simulated IPython shell does not run what it reads\n');
  return 0;
}

/**
 * One screen of `monitor_services`: the framework's upstart layout (the `ovs-` jobs of `initctl
 * list`) or systemd's (the `ovs-` unit files, each `systemctl is-active`, MainPID and version).
 */
function monitorScreen(ctx, kind) {
  const all = services.read(ctx).services;
  const names = Object.keys(all).filter((s) => s.startsWith('ovs-') && all[s].manager === kind).sort();
  const width = Math.max(0, ...names.map((s) => s.length));
  const pad = (s) => `${s} ${' '.repeat(width - s.length)}`;
  const running = names.filter((s) => all[s].status === 'running');
  const other = names.filter((s) => all[s].status !== 'running');
  if (kind === 'upstart') {
    return [
      'OVS running processes',
      '=====================\n',
      ...running.map((s) => `${pad(s)} start/running`),
      '\n\nOVS non-running processes',
      '=========================\n',
      ...other.map((s) => `${pad(s)} stop/waiting`),
    ];
  }
  const version = (s) => {
    try {
      return fs.readFileSync(ctx.realPath(`/opt/OpenvStorage/run/${s.slice(4)}.version`), 'utf8').split('\n')[0].trim();
    } catch {
      return '<unknown>';
    }
  };
  return [
    'Running processes',
    '=================\n',
    ...running.map((s) => `${pad(s)} active  ${String(all[s].pids[0] ?? 0).padStart(10)} ${version(s)}`),
    '\n\nNon-running processes',
    '=====================\n',
    ...other.map((s) => `${pad(s)} ${all[s].status === 'failed' ? 'failed' : 'inactive'}`),
  ];
}

/** `ovs monitor services`: prints the screen whenever it changes, checks every second, never ends. */
async function monitorServices(ctx) {
  const out = pythonStdout();
  let previous;
  for (;;) {
    // The framework's ServiceFactory picks the interface of the host's service manager.
    const screen = monitorScreen(ctx, services.read(ctx).init === 'upstart' ? 'upstart' : 'systemd').join('\n');
    if (screen !== previous) {
      out.write(`\x1b[2J\x1b[H\n${screen}\n`);
      previous = screen;
    }
    await sleep(1000);
  }
}

const two = (n) => String(n).padStart(2, '0');

/** The log paths the launcher archives: /var/log/<name>* for each name, /var/log/*log, /var/log/dmesg*. */
function logPaths(ctx, names) {
  const dir = ctx.realPath('/var/log');
  const entries = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  return entries.filter((e) => names.some((n) => e.startsWith(n)) || e.endsWith('log') || e.startsWith('dmesg')).map((e) => `var/log/${e}`);
}

/** Real tar and gzip over the fake root's files: what they write stays in the lab. */
function run(program, args) {
  const r = spawnSync(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new ToolError(`${program}: ${r.stderr?.toString().trim() || `exit ${r.status}`}`, r.status ?? 1);
}

function collectLogs(ctx, release) {
  const now = new Date();
  if (release.journal) fs.writeFileSync(ctx.realPath('/var/log/journald.log'), journalText(ctx, ['ovs-*', 'asd-*', 'alba-*']));
  const names = ['arakoon', 'nginx', 'ovs', 'rabbitmq', 'upstart'];
  let archive;
  if (release.launcher === 'click') {
    archive = `/tmp/ovs-${ctx.host}-${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}-${two(now.getHours())}-${two(now.getMinutes())}-${two(now.getSeconds())}-logs.tar`;
    run('tar', ['-C', ctx.realPath('/'), '-czf', ctx.realPath(archive), '--exclude=var/log/syslog', ...logPaths(ctx, names)]);
    process.stdout.write(`Files stored in ${archive}\n`);
  } else {
    const tar = `/tmp/ovs-${ctx.host}-${now.getFullYear()}${two(now.getMonth() + 1)}${two(now.getDate())}${two(now.getHours())}${two(now.getMinutes())}${two(now.getSeconds())}-logs.tar`;
    fs.rmSync(ctx.realPath(tar), { force: true });
    fs.rmSync(ctx.realPath(`${tar}.gz`), { force: true });
    run('tar', ['-C', ctx.realPath('/'), '-cf', ctx.realPath(tar), ...logPaths(ctx, names)]);
    run('gzip', [ctx.realPath(tar)]);
    archive = `${tar}.gz`;
    process.stdout.write(`${archive}\n`);
  }
  ctx.update('collected', [], (c) => {
    c.push({ archive, at: now.getTime() });
  });
  return 0;
}

function notSimulated(what) {
  throw new ToolError(`ovs: the lab does not simulate "ovs ${what}"`, 1);
}

/** click's answer to a command line it cannot parse: usage, a hint, the error; exit 2. */
function clickUsage(path, usage, message) {
  const command = ['entry.py', ...path].join(' ');
  process.stderr.write(`Usage: ${command} ${usage}\nTry "${command} --help" for help.\n\nError: ${message}\n`);
  return 2;
}

async function click(ctx, release, args) {
  const [group, sub] = args;
  if (group === undefined) return ipython(release);
  if (group === 'config' && (sub === 'get' || sub === 'list')) {
    if (sub === 'get' && args[2] === undefined) return clickUsage(['config', 'get'], '[OPTIONS] PATH', 'Missing argument "PATH".');
    return config(ctx, sub, args[2]);
  }
  if (group === 'collect') return sub === undefined ? clickUsage(['collect'], '[OPTIONS] LOGS', 'Missing argument "LOGS".') : collectLogs(ctx, release);
  if (group === 'monitor') {
    if (sub === 'services') return monitorServices(ctx);
    // A group without a subcommand shows its help (click's no_args_is_help for groups).
    if (sub === undefined) {
      process.stdout.write('Usage: entry.py monitor [OPTIONS] COMMAND [ARGS]...\n\n  Monitor several aspects of the framework\n\nCommands:\n  heartbeat  Send an internal heartbeat\n  mds        Watch Open vStorage MDS clusters for all vPools per StorageRouter\n  services   Watch Open vStorage services\n');
      return 0;
    }
    return clickUsage(['monitor'], '[OPTIONS] COMMAND [ARGS]...', `No such command "${sub}".`);
  }
  if (NOT_SIMULATED.includes(group) || group === 'config') return notSimulated(group);
  return clickUsage([], '[OPTIONS] COMMAND [ARGS]...', `No such command "${group}".`);
}

/**
 * `ovs config get <key>` prints the key's raw value (the framework stores JSON with indent 4), nothing
 * for a key that does not exist; `ovs config list <key>` the names under it (Configuration.list): the
 * Arakoon clusters under /ovs/arakoon. State `config` = { "<key>": <value> }. Editing is not simulated.
 */
function config(ctx, action, key) {
  if (action === 'get' && key !== undefined) {
    const values = ctx.read('config', {});
    if (Object.hasOwn(values, key)) process.stdout.write(`${JSON.stringify(values[key], null, 4)}\n`);
    return 0;
  }
  if (action === 'list') {
    const prefix = `${(key ?? '/').replace(/\/+$/, '')}/`;
    const names = prefix === '/ovs/arakoon/' ? Object.keys(ctx.read('arakoon', {})) : Object.keys(ctx.read('config', {})).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length).split('/')[0]);
    process.stdout.write([...new Set(names)].sort().map((n) => `${n}\n`).join(''));
    return 0;
  }
  return undefined;
}

function help() {
  process.stdout.write(SHELL_HELP);
  return 0;
}

async function shell(ctx, release, args) {
  const [first, second] = args;
  if (first === undefined) return ipython(release);
  if (first === 'collect') return second === 'logs' ? collectLogs(ctx, release) : help();
  if (first === 'monitor') return second === 'services' ? monitorServices(ctx) : help();
  if (first === 'help') return help();
  if (first === 'config') return config(ctx, second, args[2]) ?? (second === 'edit' || second === 'list-recursive' ? notSimulated(`config ${second}`) : help());
  if (NOT_SIMULATED.includes(first)) return notSimulated(first);
  // `ovs <module>` runs /opt/OpenvStorage/scripts/<module>.sh when it exists; no release ships one.
  if (fs.existsSync(ctx.realPath(`/opt/OpenvStorage/scripts/${first}.sh`))) throw new ToolError(`ovs: the lab does not run custom modules (/opt/OpenvStorage/scripts/${first}.sh)`, 1);
  return help();
}

module.exports = {
  ovs(ctx, args) {
    const framework = ctx.read('framework', undefined);
    // Not the shell's own 127 (labtool's `requires` reads only the init profile): the same answer.
    if (framework === undefined) throw new ToolError('sh: 1: ovs: not found', 127);
    const release = RELEASES[framework.release];
    if (release === undefined) throw new ToolError(`ovs: the lab has no release line "${framework.release}" (it has ${Object.keys(RELEASES).join(', ')})`, 70);
    return release.launcher === 'click' ? click(ctx, release, args) : shell(ctx, release, args);
  },
};
