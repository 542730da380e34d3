import { describe, expect, it } from 'vitest';
import type { HostFacts } from '../../../src/procedures/facts.js';
import type { StepContext } from '../../../src/procedures/dsl.js';
import { checkExitCodes, checkServices, controlServices, disableServices, enableServices, findProcesses, serviceAction, serviceCheck, servicePaths, serviceStates } from '../../../src/procedures/services.js';

const systemd: HostFacts = { init: 'systemd', initVersion: 'systemd 252', runit: false };
const upstart: HostFacts = { init: 'upstart', initVersion: 'upstart 1.12.1', runit: false };
const sysv: HostFacts = { init: 'sysv', runit: true };

describe('checkServices on systemd', () => {
  const check = checkServices(systemd, ['systemd-journald', 'user@1000', 'ovs-workers']);

  it('asks systemctl list-units for the units, inactive ones included, without legend or glyph column', () => {
    expect(check.command.text).toBe('systemctl list-units --all --no-legend --plain systemd-journald.service user@1000.service ovs-workers.service');
    // The same on every manager (sv's exit code counts the services it could not reach).
    expect(check.okExitCodes).toEqual([0, 1, 2, 3]);
    expect(check.variant).toBe('systemd 252: systemctl list-units');
    expect(check.reference).toBe('status systemd-journald; status user@1000; status ovs-workers');
  });

  it('reads the rows of systemctl(1) v252 "list-units" (man/systemctl.xml), with --plain and without', () => {
    // The manual's example, as printed with --plain (systemctl-list-units.c hides the glyph column).
    const plain = ['systemd-journald.service     loaded active running Journal Service', 'user@1000.service            loaded failed failed  User Manager for UID 1000', ''].join('\n');
    expect(check.parser.parse(plain)).toEqual([
      { name: 'systemd-journald', state: 'running', raw: 'active (running)' },
      { name: 'user@1000', state: 'failed', raw: 'failed (failed)' },
      { name: 'ovs-workers', state: 'missing', raw: 'not listed' },
    ]);
    // And as the manual shows it, glyph column included.
    const shown = ['  systemd-journald.service     loaded active running Journal Service', '● user@1000.service            loaded failed failed  User Manager for UID 1000'].join('\n');
    expect(check.parser.parse(shown).map((s) => s.state)).toEqual(['running', 'failed', 'missing']);
  });

  it('tells stopped, masked and not-found units apart (LOAD column: loaded, not-found, masked)', () => {
    const rows = ['systemd-journald.service loaded inactive dead Journal Service', 'user@1000.service not-found inactive dead user@1000.service', 'ovs-workers.service masked inactive dead ovs-workers.service'].join('\n');
    expect(check.parser.parse(rows)).toEqual([
      { name: 'systemd-journald', state: 'stopped', raw: 'inactive (dead)' },
      { name: 'user@1000', state: 'missing', raw: 'not-found inactive (dead)' },
      { name: 'ovs-workers', state: 'stopped', raw: 'masked, inactive (dead)' },
    ]);
  });
});

describe('checkServices on upstart', () => {
  it('asks initctl status for one job and reads job_status() lines of initctl(8) (upstart 1.12.1)', () => {
    const check = checkServices(upstart, ['job']);
    expect(check.command.text).toBe('initctl status job');
    // "Unknown job" is on stderr with exit 1: an answer, not a failure.
    expect(check.okExitCodes).toEqual([0, 1]);
    expect(checkExitCodes(['job'])).toEqual(check.okExitCodes);
    expect(check.reference).toBe('status job');
    expect(check.parser.parse('job start/running, process 1234\n')).toEqual([{ name: 'job', state: 'running', raw: 'start/running' }]);
    expect(check.parser.parse('job stop/waiting\n')).toEqual([{ name: 'job', state: 'stopped', raw: 'stop/waiting' }]);
    expect(check.parser.parse('job start/pre-start, process 902\n')).toEqual([{ name: 'job', state: 'unknown', raw: 'start/pre-start' }]);
    expect(check.parser.parse('job start/post-start, process 1234\n\tpost-start process 1357\n')[0]!.raw).toBe('start/post-start');
    expect(check.parser.parse('')).toEqual([{ name: 'job', state: 'missing', raw: 'not listed' }]);
  });

  it('asks initctl list for several, instance jobs included', () => {
    const check = checkServices(upstart, ['ovs-workers', 'tty1', 'ovs-watcher']);
    expect(check.command.text).toBe('initctl list');
    const list = ['ovs-workers start/running, process 1234', 'tty1 (tty1) start/post-start, process 1234', 'rc stop/waiting', ''].join('\n');
    expect(check.parser.parse(list)).toEqual([
      { name: 'ovs-workers', state: 'running', raw: 'start/running' },
      { name: 'tty1', state: 'unknown', raw: 'start/post-start' },
      { name: 'ovs-watcher', state: 'missing', raw: 'not listed' },
    ]);
  });
});

describe('checkServices with init scripts', () => {
  const check = checkServices(sysv, ['mysql', 'spamassassin', 'postgres', 'nosuch'], servicePaths({ initd: '/lab/hosts/deleuze/root/etc/init.d' }));

  it('runs each script from the initd var with its exit code, one line each', () => {
    expect(check.command.text).toBe(
      `for s in mysql spamassassin postgres nosuch; do if [ -x /lab/hosts/deleuze/root/etc/init.d/"$s" ]; then out=$(/lab/hosts/deleuze/root/etc/init.d/"$s" status 2>&1); rc=$?; else out=; rc=missing; fi; printf '%s\\t%s\\t%s\\n' "$s" "$rc" "$(echo $out)"; done`,
    );
    expect(check.variant).toBe("init.d scripts: the init scripts' status");
  });

  it('reads LSB exit codes and Debian status_of_proc (/lib/lsb/init-functions); a usage is no answer', () => {
    const out = [
      'mysql\t0\tmysqld is running.',
      // The pre-LSB skeleton: `echo "Usage: $N {start|stop|restart|force-reload}" >&2; exit 1`.
      'spamassassin\t1\tUsage: /etc/init.d/spamassassin {start|stop|restart|force-reload}',
      'postgres\t3\tpostmaster is not running ... failed!',
      'nosuch\tmissing\t',
    ].join('\n');
    expect(check.parser.parse(out)).toEqual([
      { name: 'mysql', state: 'running', raw: 'exit 0: mysqld is running.' },
      { name: 'spamassassin', state: 'unknown', raw: 'exit 1: Usage: /etc/init.d/spamassassin {start|stop|restart|force-reload}' },
      { name: 'postgres', state: 'stopped', raw: 'exit 3: postmaster is not running ... failed!' },
      { name: 'nosuch', state: 'missing', raw: 'no nosuch init script' },
    ]);
    expect(check.parser.parse('mysql\t1\tmysqld is not running ... failed!\nspamassassin\t4\t\npostgres\t2\t\nnosuch\t127\t')!.map((s) => s.state)).toEqual(['failed', 'unknown', 'failed', 'unknown']);
  });

  it('defaults to /etc/init.d on a real host', () => {
    expect(checkServices(sysv, ['cron']).command.text).toContain('[ -x /etc/init.d/"$s" ]');
  });
});

describe('checkServices under runit', () => {
  it('reads sv status lines as runit 2.1.2 sv.c prints them', () => {
    const check = checkServices(sysv, [{ name: 'courier-authdaemon', runit: true }, { name: 'x', runit: true }, { name: 'y', runit: true }, { name: 'z', runit: true }]);
    expect(check.command.text).toBe('sv status courier-authdaemon x y z');
    // sv's exit code counts the services it could not reach.
    expect(check.okExitCodes).toEqual([0, 1, 2, 3, 4]);
    const out = [
      'run: courier-authdaemon: (pid 1234) 56s',
      'down: x: 3s, normally up',
      'fail: y: unable to change to service directory: file does not exist',
      'fail: z: runsv not running',
    ].join('\n');
    expect(check.parser.parse(out)).toEqual([
      { name: 'courier-authdaemon', state: 'running', raw: 'run: courier-authdaemon: (pid 1234) 56s' },
      { name: 'x', state: 'stopped', raw: 'down: x: 3s, normally up' },
      { name: 'y', state: 'missing', raw: 'fail: y: unable to change to service directory: file does not exist' },
      { name: 'z', state: 'unknown', raw: 'fail: z: runsv not running' },
    ]);
  });

  it('refuses a runit service on a host without runit, and services of two managers in one command', () => {
    expect(() => checkServices(systemd, [{ name: 'x', runit: true }])).toThrow(/x runs under runit, but the host has no runit/);
    expect(() => checkServices(sysv, ['mysql', { name: 'courier-authdaemon', runit: true }])).toThrow(/mysql \(sysv\), courier-authdaemon \(runit\): one command handles the services of one manager/);
  });
});

describe('start, stop and restart', () => {
  it('systemd: one systemctl call for every unit', () => {
    expect(controlServices(systemd, 'restart', ['nginx', 'memcached']).command.text).toBe('systemctl restart nginx.service memcached.service');
  });

  it('upstart: the page’s commands, forgiving a job already as asked', () => {
    const start = controlServices(upstart, 'start', ['ovs-workers']);
    expect(start.command.text).toBe("{ start ovs-workers || status ovs-workers | grep -q ' start/running'; }");
    expect(start.reference).toBe('start ovs-workers');
    expect(controlServices(upstart, 'stop', ['a', 'b']).command.text).toBe("{ stop a || status a | grep -q ' stop/waiting'; } && { stop b || status b | grep -q ' stop/waiting'; }");
    expect(controlServices(upstart, 'restart', ['a']).command.text).toBe('{ restart a || start a; }');
  });

  it('init scripts through the initd path, runit through sv', () => {
    const paths = servicePaths({ initd: '/lab dir/init.d' });
    expect(controlServices(sysv, 'stop', ['mysql', 'cron'], paths).command.text).toBe("'/lab dir/init.d'/mysql stop && '/lab dir/init.d'/cron stop");
    expect(controlServices(sysv, 'start', [{ name: 'courier-authdaemon', runit: true }]).command.text).toBe('sv start courier-authdaemon');
  });
});

describe('disable and enable for a maintenance window', () => {
  it('systemd masks (and stops) and unmasks', () => {
    expect(disableServices(systemd, ['nova-compute']).command.text).toBe('systemctl mask --now nova-compute.service');
    expect(enableServices(systemd, ['nova-compute']).command.text).toBe('systemctl unmask nova-compute.service');
  });

  it('upstart writes and removes an .override holding manual, in the etcInit directory', () => {
    const paths = servicePaths({ etcInit: '/lab/hosts/c02/root/etc/init' });
    expect(disableServices(upstart, ['nova-compute'], paths).command.text).toBe(
      "echo manual > /lab/hosts/c02/root/etc/init/nova-compute.override && { stop nova-compute || status nova-compute | grep -q ' stop/waiting'; }",
    );
    expect(enableServices(upstart, ['nova-compute'], paths).command.text).toBe('rm -f /lab/hosts/c02/root/etc/init/nova-compute.override');
    expect(disableServices(upstart, ['nova-compute']).reference).toBe('stop nova-compute; echo manual > /etc/init/nova-compute.override');
  });

  it('init scripts turn their rc links off for runlevels 2-5 (pre-LSB scripts have no Default-Start); runit gets a down file', () => {
    expect(disableServices(sysv, ['spamassassin']).command.text).toBe('update-rc.d spamassassin disable 2 3 4 5 && /etc/init.d/spamassassin stop');
    expect(enableServices(sysv, ['spamassassin']).command.text).toBe('update-rc.d spamassassin enable 2 3 4 5');
    expect(disableServices(sysv, [{ name: 'courier-authdaemon', runit: true }]).command.text).toBe('touch /etc/service/courier-authdaemon/down && sv stop courier-authdaemon');
    expect(enableServices(sysv, [{ name: 'courier-authdaemon', runit: true }]).command.text).toBe('rm -f /etc/service/courier-authdaemon/down');
  });
});

describe('findProcesses', () => {
  it('asks pgrep for exact process names and reads `pid name` lines (procps-ng 4.0.2 pgrep.c, -l)', () => {
    const find = findProcesses(['mysqld', 'spamd', 'beam.smp']);
    expect(find.command.text).toBe("pgrep -l -x 'mysqld|spamd|beam\\.smp'");
    expect(find.okExitCodes).toEqual([0, 1]);
    expect(find.parser.parse('421 mysqld\n491 spamd\n498 spamd\n')).toEqual([
      { pid: 421, name: 'mysqld' },
      { pid: 491, name: 'spamd' },
      { pid: 498, name: 'spamd' },
    ]);
    expect(find.parser.parse('')).toEqual([]);
  });

  it('refuses a name the kernel could not hold or pgrep -x could not match', () => {
    expect(() => findProcesses(['neutron-openvswitch-agent'])).toThrow(/at most 15/);
    expect(() => findProcesses(['a b'])).toThrow(/no process name/);
  });
});

describe('one parser for every manager', () => {
  it('reads each manager’s answer before the step knows which will answer, and lists what it finds without names', () => {
    const states = serviceStates();
    const mixed = [
      'nginx.service loaded active running A high performance web server',
      'ovs-workers start/running, process 1234',
      'mysql\t3\tmysqld is not running ... failed!',
      'down: courier-authdaemon: 3s, normally up',
      '\tpost-start process 1357',
    ].join('\n');
    expect(states.parse(mixed)).toEqual([
      { name: 'nginx', state: 'running', raw: 'active (running)' },
      { name: 'ovs-workers', state: 'running', raw: 'start/running' },
      { name: 'mysql', state: 'stopped', raw: 'exit 3: mysqld is not running ... failed!' },
      { name: 'courier-authdaemon', state: 'stopped', raw: 'down: courier-authdaemon: 3s, normally up' },
    ]);
    expect(serviceStates(['nginx', { name: 'authdaemon', unit: 'courier-authdaemon' }, 'gone']).parse(mixed)).toEqual([
      { name: 'nginx', state: 'running', raw: 'active (running)' },
      { name: 'authdaemon', state: 'stopped', raw: 'down: courier-authdaemon: 3s, normally up' },
      { name: 'gone', state: 'missing', raw: 'not listed' },
    ]);
  });
});

describe('step parts for procedures', () => {
  const ctx = (facts: HostFacts, vars: Record<string, unknown> = {}) => ({ facts: () => facts, host: (name: string) => ({ name, address: '10.0.0.1', vars }) }) as unknown as StepContext;
  const node = () => 'node-3';

  it('serviceCheck: the command and variant follow the host’s facts; the page’s command, exit codes and capture are fixed', () => {
    const step = serviceCheck(node, ['ovs-workers']);
    expect(step.reference).toBe('status ovs-workers');
    expect(step.okExitCodes).toEqual([0, 1]);
    const command = step.command as (c: StepContext) => { text: string };
    const variant = step.variant as (c: StepContext) => string;
    expect(command(ctx(upstart)).text).toBe('initctl status ovs-workers');
    expect(variant(ctx(upstart))).toBe('upstart 1.12.1: initctl status');
    expect(command(ctx(systemd)).text).toBe('systemctl list-units --all --no-legend --plain ovs-workers.service');
    expect(step.capture!.parse('ovs-workers stop/waiting\n')).toEqual([{ name: 'ovs-workers', state: 'stopped', raw: 'stop/waiting' }]);
  });

  it('serviceAction: start, stop, restart, disable and enable on the host’s manager, with the host’s paths', () => {
    const command = (action: Parameters<typeof serviceAction>[1], facts: HostFacts, vars?: Record<string, unknown>) => (serviceAction(node, action, ['nova-compute']).command as (c: StepContext) => { text: string })(ctx(facts, vars)).text;
    expect(command('restart', systemd)).toBe('systemctl restart nova-compute.service');
    expect(command('disable', upstart, { etcInit: '/lab/etc/init' })).toBe("echo manual > /lab/etc/init/nova-compute.override && { stop nova-compute || status nova-compute | grep -q ' stop/waiting'; }");
    expect(command('enable', sysv, { initd: '/lab/init.d' })).toBe('update-rc.d nova-compute enable 2 3 4 5');
    expect(serviceAction(node, 'disable', ['nova-compute']).reference).toBe('stop nova-compute; echo manual > /etc/init/nova-compute.override');
    expect(serviceAction(node, 'start', ['a', 'b']).reference).toBe('start a; start b');
  });
});
