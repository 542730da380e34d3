'use strict';
/**
 * The tools of the AFS fileserver reboot page (RebootingDeleuze): runit's `sv start|stop|restart|status
 * <name>`, `killall <name>`, `ps aux` (the processes of the running services, so that
 * `ps aux | egrep 'postmaste()r'` finds Postgres only when it runs), OpenAFS's `bos status <server>`
 * and HCoop's `domtool <file>` (a test configuration of a domain).
 *
 * State: `services` (shared with `service`), `afs` = { salvageChecksLeft: n } (set by `reboot` from the
 * host setting `salvageChecks`: that many `bos status` calls still see the salvager), `domtool` =
 * { configured: ["<domain>"] }, `files` = { "<path>": "<text>" } (files the tools read).
 */
const { ToolError } = require('../runtime.cjs');
const { set, current } = require('./service.cjs').state;

function pid(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 30000;
  return 1000 + h;
}

/** runit's answers: `ok: run: nscd: (pid 1234) 0s` and `ok: down: nscd: 0s, normally up`. */
function svLine(name, state) {
  return state === 'running' ? `run: ${name}: (pid ${pid(name)}) 0s` : `down: ${name}: 0s, normally up`;
}

function sv(ctx, args) {
  const [command, name, ...extra] = args;
  if (!command || !name || extra.length > 0) throw new ToolError('usage: sv [-v] [-w sec] command service ...', 100);
  const unknown = `fail: ${name}: unable to change to service directory: file does not exist`;
  switch (command) {
    case 'status':
    case 's':
      process.stdout.write(`${svLine(name, current(ctx, name, unknown))}\n`);
      return 0;
    case 'start':
    case 'up':
    case 'u':
    case 'restart':
    case 't':
      set(ctx, name, 'running', unknown);
      // runit reports what it sees after the start; a service that died at once shows as down.
      if (current(ctx, name, unknown) !== 'running') {
        process.stdout.write(`timeout: ${svLine(name, 'halted')}\n`);
        return 1;
      }
      process.stdout.write(`ok: ${svLine(name, 'running')}\n`);
      return 0;
    case 'stop':
    case 'down':
    case 'd':
      set(ctx, name, 'halted', unknown);
      process.stdout.write(`ok: ${svLine(name, 'halted')}\n`);
      return 0;
    default:
      throw new ToolError('usage: sv [-v] [-w sec] command service ...', 100);
  }
}

/** killall: ends the service's processes if it runs; "no process found" (exit 1) otherwise. */
function killall(ctx, args) {
  const [name, ...extra] = args;
  if (!name || name.startsWith('-') || extra.length > 0) throw new ToolError('Usage: killall NAME (the lab simulates only this form)', 1);
  const killed = ctx.update('services', {}, (services) => {
    if (services[name] !== 'running') return false;
    services[name] = 'halted';
    return true;
  });
  if (!killed) {
    process.stderr.write(`${name}: no process found\n`);
    return 1;
  }
  return 0;
}

/** What `ps aux` shows for a running service: user and command line. */
const PROCESSES = {
  nscd: ['root', '/usr/sbin/nscd'],
  mysql: ['mysql', '/usr/sbin/mysqld --basedir=/usr --datadir=/var/lib/mysql --user=mysql --pid-file=/var/run/mysqld/mysqld.pid'],
  postgres: ['postgres', '/usr/lib/postgresql/8.3/bin/postmaster -D /var/lib/postgresql/8.3/main'],
  apache2: ['root', '/usr/sbin/apache2 -k start'],
  'domtool-server': ['domtool', '/usr/local/bin/domtool-server'],
  'domtool-slave': ['domtool', '/usr/local/bin/domtool-slave'],
  cron: ['root', '/usr/sbin/cron'],
  spamassassin: ['root', '/usr/sbin/spamd --create-prefs --max-children 5 --helper-home-dir -d --pidfile=/var/run/spamd.pid'],
  'courier-authdaemon': ['daemon', '/usr/sbin/courierlogger -pid=/var/run/courier/authdaemon/pid -start /usr/lib/courier/courier-authlib/authdaemond'],
  'openbsd-inetd': ['root', '/usr/sbin/inetd'],
  bind9: ['bind', '/usr/sbin/named -u bind'],
};

/** OpenStack's daemons are Python scripts run as their project's user; anything else a plain daemon. */
function defaultProcess(name) {
  const project = /^(nova|glance|cinder|neutron|keystone|swift)(-|$)/.exec(name)?.[1];
  if (project !== undefined) return [project, `/usr/bin/python /usr/bin/${name} --config-file=/etc/${project}/${project}.conf`];
  return ['root', `/usr/sbin/${name}`];
}

function ps(ctx, args) {
  if (args.join(' ') !== 'aux') throw new ToolError('ps: the lab simulates only "ps aux"', 1);
  const rows = [['root', 1, '/sbin/init']];
  for (const [name, state] of Object.entries(ctx.read('services', {}))) {
    if (state !== 'running') continue;
    const [user, cmd] = PROCESSES[name] ?? defaultProcess(name);
    rows.push([user, pid(name), cmd]);
  }
  const lines = rows.map(([user, p, cmd]) => `${user.padEnd(9)}${String(p).padStart(6)}  0.0  0.1  23456  4321 ?        Ss   Jan20   0:00 ${cmd}`);
  process.stdout.write(`USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n${lines.join('\n')}\n`);
  return 0;
}

/**
 * `bos status <server>` (or `-server <server>`), as OpenAFS 1.4.12 (openafs-stable-1_4_12, Debian
 * squeeze) src/bozo/bos.c `StatServer`/`DoStat` print it: a line per bosserver instance, the
 * fileserver's with the auxiliary status of src/bozo/fsbnodeops.c `fs_getstring` ("salvaging file
 * system" while the salvager runs, "file server running" after). While the host's bosserver is not
 * up yet after a boot, `BOZO_EnumerateInstance` fails: bos prints "bos: failed to contact host's
 * bosserver (communications failure (-1))." (on stdout in 1.4; 1.6 moved it to stderr) and still
 * exits 0, with no instance at all. A host it cannot resolve: "bos: can't find address for host
 * '<name>'", exit 1 (`GetConn`).
 *
 * State `afs`: `bosserverDownChecks` (that many more calls find the bosserver not up; `reboot` sets
 * it from `bosserverStartChecks`, the host's slowness, or the host setting of that name),
 * `salvageChecksLeft` (then that many more see the salvager), `statusChecks` (calls so far).
 */
function bos(ctx, args) {
  const [command, ...rest] = args;
  const server = rest[0] === '-server' ? rest[1] : rest[0];
  if (command !== 'status' || !server || rest.length !== (rest[0] === '-server' ? 2 : 1)) {
    throw new ToolError('Usage: bos status -server <machine name> (the lab simulates only "bos status [-server] <server>")', 1);
  }
  if (server !== ctx.host) throw new ToolError(`bos: can't find address for host '${server}'`, 1);
  const status = ctx.update('afs', {}, (afs) => {
    afs.statusChecks = (afs.statusChecks ?? 0) + 1;
    if ((afs.bosserverDownChecks ?? 0) > 0) {
      afs.bosserverDownChecks -= 1;
      return 'down';
    }
    const salvaging = (afs.salvageChecksLeft ?? 0) > 0;
    if (salvaging) afs.salvageChecksLeft -= 1;
    return salvaging ? 'salvaging' : 'running';
  });
  if (status === 'down') {
    process.stdout.write("bos: failed to contact host's bosserver (communications failure (-1)).\n");
    return 0;
  }
  process.stdout.write(
    [
      'Instance ptserver, currently running normally.',
      'Instance vlserver, currently running normally.',
      'Instance fs, currently running normally.',
      `    Auxiliary status is: ${status === 'salvaging' ? 'salvaging file system' : 'file server running'}.`,
      '',
    ].join('\n'),
  );
  return 0;
}

/**
 * `domtool <file>`: sends a domain configuration to domtool-server, which needs Postgres. The file
 * is read from the `files` state (the lab writes nothing on the machine it runs on).
 */
function domtool(ctx, args) {
  const [file, ...extra] = args;
  if (!file || extra.length > 0) throw new ToolError('Usage: domtool FILE (the lab simulates only this form)', 1);
  const text = ctx.read('files', {})[file];
  if (text === undefined) throw new ToolError(`domtool: ${file}: No such file or directory`, 1);
  const services = ctx.read('services', {});
  if (services['domtool-server'] !== 'running') throw new ToolError('domtool: Error connecting to domtool-server: Connection refused', 1);
  if (services.postgres !== 'running') throw new ToolError('domtool-server: Error: could not connect to the database (is Postgres running?)', 1);
  const domain = /domain\s+"([^"]+)"/.exec(text)?.[1];
  if (domain === undefined) throw new ToolError(`${file}:1.1-1.1 Error: expected a domain declaration`, 1);
  ctx.update('domtool', { configured: [] }, (d) => {
    d.configured.push(domain);
  });
  process.stdout.write(`Configuration of ${domain} succeeded.\n`);
  return 0;
}

module.exports = { sv, killall, ps, bos, domtool };
