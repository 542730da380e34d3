import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadRunbookConfig } from '../../src/config/runbook-config.js';
import { SshPool } from '../../src/executors/ssh/pool.js';
import { clearFaults, readCalls, readServices, setFault, setHostSetting, setService } from '../../src/lab/index.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { detectFacts, procedure, type StepContext } from '../../src/procedures/dsl.js';
import { FACTS_PROBE, parseFacts } from '../../src/procedures/facts.js';
import { Catalog, defaultCatalog } from '../../src/procedures/index.js';
import { checkServices, controlServices, disableServices, enableServices, findProcesses, serviceAction, serviceCheck, servicePaths, type ServiceStatus } from '../../src/procedures/services.js';
import { startTestLab, type SshResult, type TestLab } from '../helpers/lab.js';
import { finished, testRuntime } from '../helpers/runtime.js';

/**
 * The lab's service managers and process tools against what the real programs do, each test naming
 * the source it follows: a systemd storage router (node-1), an upstart one (node-3), and HCoop's
 * fileserver (deleuze: init.d scripts, runit beside them). Commands run as the ssh executor runs a
 * step's: no terminal, input closed, one pooled connection per host.
 */
let t: TestLab;
let pool: SshPool;
const vars = (host: string) => t.lab.hosts.find((h) => h.name === host)!.vars;

async function ssh(host: string, command: string): Promise<SshResult> {
  const h = t.lab.hosts.find((x) => x.name === host)!;
  const r = await pool.exec({ name: host, address: h.address, port: h.port, user: t.lab.user }, command);
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  t = await startTestLab({ only: ['node-1', 'node-3', 'deleuze'] });
  pool = new SshPool(loadRunbookConfig(t.lab.configPath).ssh);
});

afterAll(async () => {
  await pool?.close();
  await t?.down();
});

describe('programs a host does not have', () => {
  it('answer as dash does for a command it cannot find, and are never the machine’s own', async () => {
    const absent = { 'node-1': ['initctl', 'start', 'status', 'sv'], 'node-3': ['systemctl', 'sv'], deleuze: ['systemctl', 'initctl', 'stop'] };
    for (const [host, tools] of Object.entries(absent)) {
      for (const tool of tools) {
        const r = await ssh(host, `${tool} --version`);
        expect(r, `${tool} on ${host}`).toEqual({ code: 127, stdout: '', stderr: `sh: 1: ${tool}: not found\n` });
      }
    }
    // Every name the machine also has is the lab's, on every host, present or absent.
    const r = await ssh('node-3', 'for p in systemctl ps pgrep pkill pidof killall service; do command -v $p; done');
    expect(r.stdout.trim().split('\n')).toEqual(['systemctl', 'ps', 'pgrep', 'pkill', 'pidof', 'killall', 'service'].map((p) => join(t.lab.dir, 'bin', p)));
    expect(readCalls(t.lab.dir, 'node-3').some((c) => c.argv[0] === 'systemctl')).toBe(false);
  });
});

describe('the facts probe', () => {
  it('learns systemd, upstart, and init.d with runit, as facts.ts reads the real programs', async () => {
    const facts = async (host: string) => parseFacts((await ssh(host, FACTS_PROBE.text)).stdout);
    expect(await facts('node-1')).toMatchObject({ init: 'systemd', initVersion: 'systemd 252', runit: false });
    expect(await facts('node-3')).toMatchObject({ init: 'upstart', initVersion: 'upstart 1.12.1', runit: false });
    const deleuze = await facts('deleuze');
    expect(deleuze).toMatchObject({ init: 'sysv', runit: true });
    expect(deleuze.initVersion).toBeUndefined();
  });
});

describe('systemctl (systemd v252)', () => {
  it('is-active: a line per unit; exit 0 when any is active, else 3; an unknown unit is inactive (systemctl-is-active.c)', async () => {
    expect(await ssh('node-1', 'systemctl is-active ovs-workers no-such')).toMatchObject({ code: 0, stdout: 'active\ninactive\n' });
    expect(await ssh('node-1', 'systemctl is-active no-such; systemctl is-active --quiet ovs-workers; echo $?')).toMatchObject({ stdout: 'inactive\n0\n' });
    expect((await ssh('node-1', 'systemctl is-active no-such')).code).toBe(3);
    expect(await ssh('node-1', 'systemctl is-active')).toMatchObject({ code: 1, stderr: 'Too few arguments.\n' });
  });

  it('start/stop of an unknown unit: "not found" / "not loaded", exit 5 (systemctl-start-unit.c, dbus-unit.c)', async () => {
    expect(await ssh('node-1', 'systemctl start no-such')).toEqual({ code: 5, stdout: '', stderr: 'Failed to start no-such.service: Unit no-such.service not found.\n' });
    expect(await ssh('node-1', 'systemctl stop no-such')).toEqual({ code: 5, stdout: '', stderr: 'Failed to stop no-such.service: Unit no-such.service not loaded.\n' });
    expect(await ssh('node-1', 'systemctl frobnicate x')).toMatchObject({ code: 1, stderr: 'Unknown command verb frobnicate.\n' });
  });

  it('status: exit 0 active, 3 not active, 4 unknown (systemctl-show.c), in print_status_info’s layout', async () => {
    const ok = await ssh('node-1', 'systemctl status ovs-workers');
    expect(ok.code).toBe(0);
    const lines = ok.stdout.split('\n');
    expect(lines[0]).toBe('* ovs-workers.service - Open vStorage workers');
    expect(lines[1]).toBe('     Loaded: loaded (/lib/systemd/system/ovs-workers.service; enabled; preset: enabled)');
    expect(lines[2]).toMatch(/^ {5}Active: active \(running\) since \w{3} \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; .+ ago$/);
    expect(lines[3]).toMatch(/^ {3}Main PID: \d+ \(celery\)$/);
    expect(ok.stdout).toMatch(/\n {5}CGroup: \/system\.slice\/ovs-workers\.service\n {13}`-\d+ \/usr\/bin\/python \/usr\/bin\/celery worker/);
    expect(await ssh('node-1', 'systemctl status no-such')).toEqual({ code: 4, stdout: '', stderr: 'Unit no-such.service could not be found.\n' });
    const stopped = await ssh('node-1', 'systemctl stop memcached; systemctl status memcached');
    expect(stopped.code).toBe(3);
    expect(stopped.stdout).toMatch(/^\* memcached\.service - memcached daemon\n.*\n {5}Active: inactive \(dead\) since .*\n {3}Duration: /);
    expect(stopped.stdout).toContain('node-1 systemd[1]: Stopped memcached.service - memcached daemon.\n');
    expect(readServices(t.lab.dir, 'node-1').memcached).toBe('stopped');
  });

  it('list-units: format-table columns, inactive units only with --all, --plain drops the glyph column', async () => {
    const r = await ssh('node-1', "systemctl list-units --no-legend --plain 'ovs-w*' memcached.service; echo ==; systemctl list-units --all --no-legend --plain 'ovs-w*' memcached.service; echo ==; systemctl list-units 'ovs-wa*'");
    const [active, all, legend] = r.stdout.split('==\n');
    expect(active).toBe(['ovs-watcher.service loaded active running Watcher for Open vStorage master services', 'ovs-webapp-api.service loaded active running ovs-webapp-api', 'ovs-workers.service loaded active running Open vStorage workers', ''].join('\n').replace(/^(\S+) /gm, (m, u: string) => `${u.padEnd(22)} `));
    expect(all).toContain('memcached.service      loaded inactive dead    memcached daemon\n');
    expect(legend).toBe(
      [
        '  UNIT                LOAD   ACTIVE SUB     DESCRIPTION',
        '  ovs-watcher.service loaded active running Watcher for Open vStorage master services',
        '',
        'LOAD   = Reflects whether the unit definition was properly loaded.',
        'ACTIVE = The high-level unit activation state, i.e. generalization of SUB.',
        'SUB    = The low-level unit activation state, values depend on unit type.',
        '1 loaded units listed. Pass --all to see loaded but inactive units, too.',
        "To show all installed unit files use 'systemctl list-unit-files'.",
        '',
      ].join('\n'),
    );
  });

  it('show -p … --value: in the D-Bus vtables’ order (Service before Unit), not the order asked', async () => {
    const r = await ssh('node-1', 'systemctl show -p SubState,ActiveState,MainPID --value ovs-workers; systemctl show -p LoadState,ActiveState no-such');
    expect(r.stdout).toMatch(/^\d+\nactive\nrunning\nLoadState=not-found\nActiveState=inactive\n$/);
  });

  it('mask --now stops the unit and refuses starts ("is masked", exit 1) until unmask; enable/disable say what they link', async () => {
    const masked = await ssh('node-1', 'systemctl mask --now ovs-scheduled-tasks; systemctl start ovs-scheduled-tasks; echo rc=$?; systemctl is-enabled ovs-scheduled-tasks; systemctl list-units --all --no-legend ovs-scheduled-tasks.service');
    expect(masked.stderr).toBe('Created symlink /etc/systemd/system/ovs-scheduled-tasks.service -> /dev/null.\nFailed to start ovs-scheduled-tasks.service: Unit ovs-scheduled-tasks.service is masked.\n');
    expect(masked.stdout).toBe('rc=1\nmasked\n* ovs-scheduled-tasks.service masked inactive dead ovs-scheduled-tasks.service\n');
    const back = await ssh('node-1', 'systemctl unmask ovs-scheduled-tasks; systemctl disable ovs-scheduled-tasks; systemctl is-enabled ovs-scheduled-tasks; echo rc=$?; systemctl enable --now ovs-scheduled-tasks; systemctl is-active ovs-scheduled-tasks');
    expect(back.stderr).toBe(
      [
        'Removed "/etc/systemd/system/ovs-scheduled-tasks.service".',
        'Removed "/etc/systemd/system/multi-user.target.wants/ovs-scheduled-tasks.service".',
        'Created symlink /etc/systemd/system/multi-user.target.wants/ovs-scheduled-tasks.service -> /lib/systemd/system/ovs-scheduled-tasks.service.',
        '',
      ].join('\n'),
    );
    expect(back.stdout).toBe('disabled\nrc=1\nactive\n');
    expect(await ssh('node-1', 'systemctl is-enabled no-such')).toMatchObject({ code: 1, stderr: 'Failed to get unit file state for no-such.service: No such file or directory\n' });
  });

  it('`service x …` on a systemd host is systemctl (init-system-helpers 1.65.2 script/service)', async () => {
    const r = await ssh('node-1', 'service nginx status >/dev/null; echo $?; service no-such status; echo $?; service no-such start; echo $?');
    expect(r.stdout).toBe('0\n4\n5\n');
    expect(r.stderr).toBe('Unit no-such.service could not be found.\nFailed to start no-such.service: Unit no-such.service not found.\n');
    const calls = readCalls(t.lab.dir, 'node-1').map((c) => c.argv.join(' '));
    expect(calls).toContain('systemctl status nginx.service');
  });
});

describe('upstart 1.12.1 (initctl, start, stop, restart, status)', () => {
  it('status and the job commands: job_status() lines, "Unknown job", "Job is already running", "Unknown instance: " (util/initctl.c, init/job_class.c)', async () => {
    const r = await ssh('node-3', 'status ovs-workers; stop ovs-workers; stop ovs-workers; echo rc=$?; status ovs-workers; echo rc=$?; restart ovs-workers; echo rc=$?; start ovs-workers; start ovs-workers; echo rc=$?; initctl status no-such; echo rc=$?; start; echo rc=$?');
    const pid = /^ovs-workers start\/running, process (\d+)$/m.exec(r.stdout)![1];
    expect(r.stdout).toMatch(new RegExp(`^ovs-workers start/running, process ${pid}\novs-workers stop/waiting\nrc=1\novs-workers stop/waiting\nrc=0\nrc=1\novs-workers start/running, process (?!${pid}\\n)\\d+\nrc=1\nrc=1\nrc=1\n$`));
    expect(r.stderr).toBe(
      ['stop: Unknown instance: ', 'restart: Unknown instance: ', 'start: Job is already running: ovs-workers', 'initctl: Unknown job: no-such', 'start: missing job name', "Try `start --help' for more information.", ''].join('\n'),
    );
  });

  it('initctl version and list; a job whose file is gone is unknown once it stops (init(5): jobs are /etc/init/*.conf)', async () => {
    const r = await ssh('node-3', 'initctl version; initctl list | grep -c /; mv /etc/init/ovs-snmp.conf /tmp/; status ovs-snmp; stop ovs-snmp; status ovs-snmp; echo rc=$?; mv /tmp/ovs-snmp.conf /etc/init/; start ovs-snmp');
    expect(r.stdout).toMatch(/^init \(upstart 1\.12\.1\)\n17\novs-snmp start\/running, process \d+\novs-snmp stop\/waiting\nrc=1\novs-snmp start\/running, process \d+\n$/);
    expect(r.stderr).toBe('status: Unknown job: ovs-snmp\n');
  });

  it('a job held by a `manual` override still starts by hand; `service` goes to upstart (Ubuntu 14.04 service)', async () => {
    const check = checkServices({ init: 'upstart', runit: false }, ['ovs-watcher']);
    const off = disableServices({ init: 'upstart', runit: false }, ['ovs-watcher'], servicePaths(vars('node-3')));
    expect((await ssh('node-3', off.command.text)).code).toBe(0);
    expect(readFileSync(runtime.realPath(t.lab.dir, 'node-3', '/etc/init/ovs-watcher.override'), 'utf8')).toBe('manual\n');
    expect(check.parser.parse((await ssh('node-3', check.command.text)).stdout)[0]!.state).toBe('stopped');
    const r = await ssh('node-3', 'service ovs-watcher start; service ovs-watcher restart; service ovs-watcher status');
    expect(r.stdout).toMatch(/^ovs-watcher start\/running, process \d+\novs-watcher stop\/waiting\novs-watcher start\/running, process \d+\novs-watcher start\/running, process \d+\n$/);
    expect((await ssh('node-3', enableServices({ init: 'upstart', runit: false }, ['ovs-watcher'], servicePaths(vars('node-3'))).command.text)).code).toBe(0);
    expect(existsSync(runtime.realPath(t.lab.dir, 'node-3', '/etc/init/ovs-watcher.override'))).toBe(false);
  });
});

describe('init scripts and service on a sysv host (Debian)', () => {
  it('LSB scripts answer status with status_of_proc (/lib/lsb/init-functions); pre-LSB ones print their usage, exit 1', async () => {
    const r = await ssh('deleuze', 'service mysql status; echo rc=$?; service mysql stop; service mysql status; echo rc=$?; service mysql start; service spamassassin status; echo rc=$?; service no-such stop; echo rc=$?');
    expect(r.stdout).toBe('mysqld is running.\nrc=0\nStopping MySQL database server: mysqld.\nmysqld is not running ... failed!\nrc=3\nStarting MySQL database server: mysqld.\nrc=1\nrc=1\n');
    expect(r.stderr).toBe('Usage: /etc/init.d/spamassassin {start|stop|restart|force-reload}\nno-such: unrecognized service\n');
  });

  it('a script run from the initd var behaves as through service; both are logged as the script', async () => {
    const initd = vars('deleuze').initd as string;
    expect(initd).toBe(runtime.realPath(t.lab.dir, 'deleuze', '/etc/init.d'));
    const r = await ssh('deleuze', `'${initd}/cron' stop; '${initd}/cron' status; echo rc=$?; service cron start`);
    expect(r.stdout).toBe('Stopping periodic command scheduler: cron.\ncron is not running ... failed!\nrc=3\nStarting periodic command scheduler: cron.\n');
    const calls = readCalls(t.lab.dir, 'deleuze').map((c) => c.argv.join(' '));
    expect(calls.filter((c) => c.startsWith('/etc/init.d/cron'))).toEqual(['/etc/init.d/cron stop', '/etc/init.d/cron status', '/etc/init.d/cron start']);
  });

  it('update-rc.d disable needs runlevels for a script without LSB header (init-system-helpers 1.65.2 update-rc.d)', async () => {
    const r = await ssh('deleuze', 'update-rc.d spamassassin disable; echo rc=$?; update-rc.d spamassassin disable 2 3 4 5; echo rc=$?; update-rc.d no-such disable; echo rc=$?; update-rc.d spamassassin enable 2 3 4 5');
    expect(r.stdout).toBe('rc=1\nrc=0\nrc=1\n');
    expect(r.stderr).toBe('update-rc.d: error: spamassassin Default-Start contains no runlevels, aborting.\nupdate-rc.d: error: cannot find a LSB script for no-such\n');
  });

  it('the library’s check reads every script, its usage included', async () => {
    const check = checkServices({ init: 'sysv', runit: true }, ['nscd', 'spamassassin', 'no-such'], servicePaths(vars('deleuze')));
    const r = await ssh('deleuze', check.command.text);
    expect(check.parser.parse(r.stdout)).toEqual([
      { name: 'nscd', state: 'running', raw: 'exit 0: nscd is running.' },
      { name: 'spamassassin', state: 'unknown', raw: 'exit 1: Usage: /etc/init.d/spamassassin {start|stop|restart|force-reload}' },
      { name: 'no-such', state: 'missing', raw: 'no no-such init script' },
    ]);
  });
});

describe('runit sv (runit 2.1.2 src/sv.c)', () => {
  it('status, stop, start print svstatus_print lines; up/down print nothing; an unknown service fails; no arguments: usage, exit 100', async () => {
    const r = await ssh('deleuze', 'sv status courier-authdaemon; sv stop courier-authdaemon; sv status courier-authdaemon no-such; echo rc=$?; sv up courier-authdaemon; sv start courier-authdaemon; sv; echo rc=$?');
    expect(r.stdout).toMatch(/^run: courier-authdaemon: \(pid \d+\) \d+s\nok: down: courier-authdaemon: 0s, normally up\ndown: courier-authdaemon: 0s, normally up\nfail: no-such: unable to change to service directory: file does not exist\nrc=1\nok: run: courier-authdaemon: \(pid \d+\) 0s\nrc=100\n$/);
    expect(r.stderr).toBe('usage: sv [-v] [-w sec] command service ...\n');
  });

  it('a down file makes it "normally down"; killing its daemon brings it back under runsv', async () => {
    const svdir = vars('deleuze').svdir as string;
    const before = (await ssh('deleuze', 'pgrep -x courierlogger')).stdout.trim();
    const r = await ssh('deleuze', `touch '${svdir}/courier-authdaemon/down'; sv status courier-authdaemon; killall courierlogger; pgrep -x courierlogger; rm '${svdir}/courier-authdaemon/down'`);
    expect(r.stdout).toMatch(/^run: courier-authdaemon: \(pid \d+\) \d+s, normally down\n(\d+)\n$/);
    expect(r.stdout.trim().split('\n')[1]).not.toBe(before);
  });
});

describe('ps, pgrep, killall (procps-ng 4.0.2, psmisc)', () => {
  it('ps aux | grep x lists the grep itself, with its real command line (output.c "u" format)', async () => {
    const r = await ssh('deleuze', 'ps aux | grep spamd');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^root +\d+ +0\.0 +\d+\.\d +\d+ +\d+ \? +Ss +\d\d:\d\d +\d+:\d\d \/usr\/sbin\/spamd --create-prefs/);
    expect(lines.some((l) => / grep spamd$/.test(l))).toBe(true);
    expect(lines.some((l) => / sh -c ps aux \| grep spamd$/.test(l))).toBe(true);
    const header = (await ssh('node-1', 'ps aux | head -n 1')).stdout;
    // systemd hosts: pid_max 4194304, so PID is 7 wide; 32768 on deleuze: 5.
    expect(header).toBe('USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n');
    expect((await ssh('deleuze', 'ps aux | head -n 1')).stdout).toBe('USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n');
  });

  it('ps -p 1 -o comm= names PID 1 (systemd, init); -C selects by process name; nothing selected: exit 1', async () => {
    expect((await ssh('node-1', 'ps -p 1 -o comm=')).stdout).toBe('systemd\n');
    expect((await ssh('node-3', 'ps -p 1 -o comm=')).stdout).toBe('init\n');
    const c = await ssh('deleuze', 'ps -C postmaster -o pid=,comm=,args=; ps -C no-such; echo rc=$?; ps -o pid,comm= -p 1');
    expect(c.stdout).toMatch(/^ *\d+ postmaster {6}\/usr\/lib\/postgresql\/8\.3\/bin\/postmaster -D[^\n]*\n( *\d+ postmaster {6}postgres: [a-z ]+ process\n){3}  PID TTY          TIME CMD\nrc=1\n  PID \n    1 init\n$/);
  });

  it('pgrep matches the 15-character process name, never itself; -f the whole command line (pgrep.c)', async () => {
    const r = await ssh('deleuze', 'pgrep -l authdaemond; pgrep -x spamd | wc -l; pgrep -x spam; echo rc=$?; pgrep -f spamd | wc -l; pgrep courier-authdaemon; echo rc=$?; pgrep; echo rc=$?');
    expect(r.stdout).toMatch(/^\d+ authdaemond\n\d+ authdaemond\n3\nrc=1\n4\nrc=1\nrc=2\n$/);
    expect(r.stderr).toBe("pgrep: pattern that searches for process name longer than 15 characters will result in zero matches\nTry `pgrep -f' option to match against the complete command line.\npgrep: no matching criteria specified\nTry `pgrep --help' for more information.\n");
  });

  it('killall matches the process name, not the service’s; killing a daemon leaves its service as a real kill would', async () => {
    const r = await ssh('deleuze', 'killall openbsd-inetd; echo rc=$?; killall inetd; echo rc=$?; killall -q inetd; echo rc=$?; killall');
    expect(r.stdout).toBe('rc=1\nrc=0\nrc=1\n');
    expect(r.stderr).toMatch(/^openbsd-inetd: no process found\nUsage: killall \[OPTION\]\.\.\. \[--\] NAME\.\.\./);
    // An init script's daemon dies leaving its pid file: the script says dead (LSB 1).
    expect(readServices(t.lab.dir, 'deleuze')['openbsd-inetd']).toBe('failed');
    // systemd: SIGTERM is a clean stop (inactive), SIGKILL a failure (Result: signal).
    const sd = await ssh('node-1', 'killall rsyslogd; systemctl start memcached nginx; killall memcached; killall -9 nginx; systemctl is-active memcached nginx; systemctl status nginx | sed -n 3p');
    expect(sd.stdout).toMatch(/^inactive\nfailed\n {5}Active: failed \(Result: signal\) since /);
    expect(sd.stderr).toBe('rsyslogd: no process found\n');
    // upstart: the job goes to stop/waiting.
    expect((await ssh('node-3', 'killall nginx; status nginx')).stdout).toBe('nginx stop/waiting\n');
  });

  it('a daemon its parent restarts (mysqld under mysqld_safe) comes back with a new pid', async () => {
    const r = await ssh('deleuze', 'pgrep -x mysqld; killall mysqld; pgrep -x mysqld; service mysql status');
    const [before, after] = r.stdout.trim().split('\n');
    expect(after).not.toBe(before);
    expect(r.stdout).toContain('mysqld is running.\n');
  });

  it('findProcesses finds the daemons by the names the kernel keeps', async () => {
    const find = findProcesses(['spamd', 'inetd', 'no-such']);
    setService(t.lab.dir, 'deleuze', 'openbsd-inetd', 'running');
    const r = await ssh('deleuze', find.command.text);
    expect(new Set(find.parser.parse(r.stdout).map((p) => p.name))).toEqual(new Set(['spamd', 'inetd']));
  });
});

describe('the procedure library on each host', () => {
  it('checks, stops, starts and restarts with the host’s own manager, and says how it went', async () => {
    const hosts = { 'node-1': { init: 'systemd', runit: false }, 'node-3': { init: 'upstart', runit: false }, deleuze: { init: 'sysv', runit: true } } as const;
    await Promise.all(
      Object.entries(hosts).map(async ([host, facts]) => {
        const name = host === 'deleuze' ? 'nscd' : 'ovs-workers';
        const paths = servicePaths(vars(host));
        const check = checkServices(facts, [name], paths);
        const verbs = ['stop', 'stop', 'start', 'start', 'restart'] as const;
        // One session per host: each verb, its exit code, then the check's output, between markers.
        const script = verbs.map((v) => `${controlServices(facts, v, [name], paths).command.text}; echo "== $?"; ${check.command.text}; echo ==`).join('; ');
        const parts = (await ssh(host, script)).stdout.split(/^==(?: (\d+))?\n/m);
        verbs.forEach((verb, i) => {
          expect(parts[1 + 4 * i], `${verb} ${name} on ${host}`).toBe('0');
          expect(check.parser.parse(parts[2 + 4 * i]!)[0]!.state, `after ${verb} ${name} on ${host}`).toBe(verb === 'stop' ? 'stopped' : 'running');
        });
        setService(t.lab.dir, host, name, 'failed');
        const after = await ssh(host, `${check.command.text}; echo ==; ${controlServices(facts, 'restart', [name], paths).command.text}; echo "== $?"; ${check.command.text}`);
        const [failed, , restarted] = after.stdout.split(/^==.*\n/m);
        expect(check.parser.parse(failed!)[0]!.state).toBe(host === 'node-3' ? 'stopped' : 'failed');
        expect(after.stdout).toContain('== 0\n');
        expect(check.parser.parse(restarted!)[0]!.state).toBe('running');
      }),
    );
  });

  it('a fault on the command a manager runs applies when `service` runs it', async () => {
    setFault(t.lab.dir, 'node-1', { match: 'systemctl restart nginx.service', action: 'fail', exitCode: 1, stderr: 'Job for nginx.service failed.', times: 1 });
    try {
      expect(await ssh('node-1', 'service nginx restart')).toMatchObject({ code: 1, stderr: 'Job for nginx.service failed.\n' });
    } finally {
      clearFaults(t.lab.dir, 'node-1');
    }
  });

  it('a start the badStarts setting spoils reports success, and the service is dead afterwards', async () => {
    setHostSetting(t.lab.dir, 'deleuze', 'badStarts', { postgres: 1 });
    const r = await ssh('deleuze', 'service postgres restart; service postgres status; echo rc=$?; service postgres start; service postgres status');
    expect(r.stdout).toBe('Restarting PostgreSQL 8.3 database server: postmaster.\npostmaster is not running ... failed!\nrc=1\nStarting PostgreSQL 8.3 database server: postmaster.\npostmaster is running.\n');
  });
});

describe('a procedure that uses the library', () => {
  type Args = { node: string };
  const node = (ctx: StepContext<Args>) => ctx.args.node;
  const restart = procedure({
    pack: 'test',
    name: 'restart-service',
    summary: 'check the workers, restart them, check them again, on the host’s own service manager',
    usage: 'test restart-service <node>',
    examples: [],
    source: 'test',
    args: z.object({ node: z.string() }),
    positional: ['node'],
    hosts: { node: {} },
    steps: [
      detectFacts({ host: node }),
      { kind: 'ssh', id: 'before', title: 'Is it running', risk: 'read', host: node, ...serviceCheck(node, ['ovs-workers', 'nscd']) },
      { kind: 'ssh', id: 'restart', title: 'Restart it', risk: 'write', host: node, ...serviceAction(node, 'restart', ['ovs-workers']) },
      { kind: 'ssh', id: 'after', title: 'Is it running again', risk: 'read', host: node, ...serviceCheck(node, ['ovs-workers']) },
    ],
  });

  it('plans the page’s command, then runs the host’s own manager and reads its answer (systemd and upstart)', async () => {
    const r = testRuntime(t.lab.configPath, { catalog: new Catalog([...defaultCatalog().all(), restart]) });
    r.startWorker(2);
    try {
      for (const [host, variant, command] of [
        ['node-1', 'systemd 252: systemctl restart', 'systemctl restart ovs-workers.service'],
        ['node-3', 'upstart 1.12.1: restart', '{ restart ovs-workers || start ovs-workers; }'],
      ] as const) {
        const req = await r.intake.request({ text: `test restart-service ${host}`, person: 'alice', origin: { adapter: 'test' } });
        expect(req.plan.find((p) => p.path === 'restart')).toMatchObject({ reference: 'restart ovs-workers' });
        const run = await finished(r, req.id);
        expect(run.status, run.error).toBe('succeeded');
        expect(run.plan.find((p) => p.path === 'restart')).toMatchObject({ command, variant, reference: 'restart ovs-workers' });
        const before = run.captures.before as ServiceStatus[];
        expect(before.map((s) => [s.name, s.state])).toEqual([
          ['ovs-workers', 'running'],
          ['nscd', 'missing'],
        ]);
        expect((run.captures.after as ServiceStatus[])[0]!.state).toBe('running');
      }
    } finally {
      await r.cleanup();
    }
  });
});
