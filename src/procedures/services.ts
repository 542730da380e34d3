/**
 * Service control on the host's own service manager, for procedures: from a host's facts (see
 * facts.ts) the one-shot command that checks, starts, stops, restarts, or disables for a maintenance
 * window a set of services, with a parser from the real output to a neutral state. Each builder also
 * gives the page's own command (the upstart form the runbook pages use) as a reference, and names
 * the variant for the plan.
 *
 *   const check = checkServices(ctx.facts(node), ['ovs-workers']);
 *   { kind: 'ssh', …, command: check.command, okExitCodes: check.okExitCodes, capture: check.parser,
 *     reference: check.reference, variant: check.variant }
 *
 * Semantics are the same on every manager: `start` leaves a running service running and `stop` a
 * stopped one stopped (upstart's own `start`/`stop` refuse those, so its commands check the job's
 * status when they do), `restart` starts a stopped service, `disable` stops the service and keeps it
 * from being started until `enable`, which does not start it.
 */
import type { Parser } from './dsl.js';
import { describeFacts, type HostFacts } from './facts.js';
import { quote, ShellCommand } from './shell.js';

/** How a service stands, whatever runs it. */
export type ServiceState = 'running' | 'stopped' | 'failed' | 'missing' | 'unknown';

export interface ServiceStatus {
  name: string;
  state: ServiceState;
  /** The manager's own words: `active (running)`, `stop/waiting`, `exit 3: mysqld is not running ... failed!`, `down: x: 3s, normally up`. */
  raw: string;
}

/**
 * A service of a host: its name, or its placement when it is not the init system's own service of
 * that name. A service under runit is checked with `sv` whatever the init system.
 */
export type ServiceSpec = string | { name: string; runit?: boolean; unit?: string };

/**
 * Where the managers keep their files. Real hosts: the defaults. The lab keeps them in each host's
 * fake root and says where through inventory vars of the same names (see servicePaths).
 */
export interface ServicePaths {
  /** Init scripts. Default `/etc/init.d`. */
  initd: string;
  /** Upstart's job files (`<job>.conf`, `<job>.override`). Default `/etc/init`. */
  etcInit: string;
  /** runit's service directories. Default `/etc/service`. */
  svdir: string;
}

export const DEFAULT_PATHS: ServicePaths = { initd: '/etc/init.d', etcInit: '/etc/init', svdir: '/etc/service' };

/** The paths from a host's inventory vars `initd`, `etcInit` and `svdir`, each defaulting to the real host's. */
export function servicePaths(vars: Record<string, unknown>): ServicePaths {
  const pick = (k: keyof ServicePaths) => (typeof vars[k] === 'string' && vars[k] !== '' ? (vars[k] as string) : DEFAULT_PATHS[k]);
  return { initd: pick('initd'), etcInit: pick('etcInit'), svdir: pick('svdir') };
}

type Manager = 'systemd' | 'upstart' | 'sysv' | 'runit';

interface Placed {
  name: string;
  manager: Manager;
  /** The unit, job, init script or service directory. */
  unit: string;
}

function place(facts: HostFacts, services: readonly ServiceSpec[]): { manager: Manager; placed: Placed[] } {
  if (services.length === 0) throw new Error('no service named');
  const placed = services.map((s): Placed => {
    const spec = typeof s === 'string' ? { name: s } : s;
    if (spec.runit && !facts.runit) throw new Error(`${spec.name} runs under runit, but the host has no runit (sv)`);
    const manager: Manager = spec.runit ? 'runit' : facts.init;
    return { name: spec.name, manager, unit: spec.unit ?? (manager === 'systemd' ? `${spec.name}.service` : spec.name) };
  });
  const managers = new Set(placed.map((p) => p.manager));
  if (managers.size > 1) throw new Error(`${placed.map((p) => `${p.name} (${p.manager})`).join(', ')}: one command handles the services of one manager; use a step per manager`);
  return { manager: placed[0]!.manager, placed };
}

/** What the plan says runs: `systemd 252: systemctl list-units`. */
function variantOf(facts: HostFacts, manager: Manager, what: string): string {
  return `${manager === 'runit' ? 'runit' : describeFacts({ ...facts, runit: false })}: ${what}`;
}

const words = (xs: readonly string[]) => xs.map(quote).join(' ');
const each = (placed: readonly Placed[], f: (p: Placed) => string, sep = ' && ') => placed.map(f).join(sep);

// Parsers. Each is pinned by test/unit/procedures/services.test.ts to output quoted from the source
// or manual page of the program.

/**
 * `systemctl list-units --all --no-legend --plain <units>` (systemd v252 systemctl-list-units.c):
 * `<unit> <load> <active> <sub> <description>`. A unit the manager has not loaded is not listed.
 */
function parseListUnits(placed: readonly Placed[]): Parser<ServiceStatus[]> {
  return {
    name: 'systemctl list-units',
    parse: (stdout) => {
      const rows = new Map(
        stdout
          .split('\n')
          .map((l) => l.trim().replace(/^[●*x×○] /, '').split(/\s+/))
          .filter((f) => f.length >= 4)
          .map((f) => [f[0]!, { load: f[1]!, active: f[2]!, sub: f[3]! }]),
      );
      return placed.map((p) => {
        const r = rows.get(p.unit);
        if (r === undefined || r.load === 'not-found') return { name: p.name, state: 'missing', raw: r === undefined ? 'not loaded' : `${r.load} ${r.active} (${r.sub})` };
        const raw = `${r.load === 'loaded' ? '' : `${r.load}, `}${r.active} (${r.sub})`;
        const state: ServiceState = ['active', 'reloading'].includes(r.active) ? 'running' : r.active === 'failed' ? 'failed' : r.active === 'inactive' ? 'stopped' : 'unknown';
        return { name: p.name, state, raw };
      });
    },
  };
}

/** An upstart job_status() line (upstart 1.12 util/initctl.c; initctl(8) "status"): `job start/running, process 1234`. */
const UPSTART_LINE = /^(\S+)(?: \(\S*\))? (start|stop)\/([a-z-]+)(?:, .*)?$/;

function upstartState(goal: string, state: string): ServiceState {
  if (goal === 'start' && state === 'running') return 'running';
  if (goal === 'stop' && state === 'waiting') return 'stopped';
  return 'unknown';
}

/** `initctl status <job>` or `initctl list`: one job_status() line per job; a job upstart does not know is absent. */
function parseInitctl(placed: readonly Placed[]): Parser<ServiceStatus[]> {
  return {
    name: 'initctl status',
    parse: (stdout) => {
      const jobs = new Map<string, { goal: string; state: string; line: string }>();
      for (const line of stdout.split('\n')) {
        const m = UPSTART_LINE.exec(line.trim());
        if (m && !jobs.has(m[1]!)) jobs.set(m[1]!, { goal: m[2]!, state: m[3]!, line: line.trim() });
      }
      return placed.map((p) => {
        const j = jobs.get(p.unit);
        if (j === undefined) return { name: p.name, state: 'missing', raw: 'Unknown job' };
        return { name: p.name, state: upstartState(j.goal, j.state), raw: `${j.goal}/${j.state}` };
      });
    },
  };
}

/**
 * The init scripts' answers, one line each from initScriptCheck: `<script>\t<exit>\t<output>`. LSB
 * (and Debian's /lib/lsb/init-functions status_of_proc): 0 running, 1 dead with its pid file left, 2
 * dead with its lock file left, 3 not running, 4 unknown; a script without `status` prints its usage.
 */
function parseInitScripts(placed: readonly Placed[]): Parser<ServiceStatus[]> {
  return {
    name: 'init script status',
    parse: (stdout) => {
      const rows = new Map(
        stdout
          .split('\n')
          .map((l) => l.split('\t'))
          .filter((f) => f.length >= 3)
          .map((f) => [f[0]!, { rc: f[1]!, text: f.slice(2).join('\t').trim() }]),
      );
      return placed.map((p) => {
        const r = rows.get(p.unit);
        if (r === undefined) throw new Error(`no answer for ${p.unit} in the init scripts' output`);
        if (r.rc === 'missing') return { name: p.name, state: 'missing', raw: `no ${p.unit} init script` };
        const raw = `exit ${r.rc}${r.text ? `: ${r.text}` : ''}`;
        if (/usage:/i.test(r.text)) return { name: p.name, state: 'unknown', raw };
        const state: ServiceState = r.rc === '0' ? 'running' : r.rc === '3' ? 'stopped' : ['1', '2'].includes(r.rc) ? 'failed' : 'unknown';
        return { name: p.name, state, raw };
      });
    },
  };
}

/**
 * `sv status <dir>…` (runit 2.1.2 sv.c svstatus_print): `run: x: (pid 1234) 56s`, `down: x: 3s, normally
 * up`, `finish: …`; `fail: x: unable to change to service directory: file does not exist` for one
 * that is not there; `fail: x: runsv not running` / `warning: x: unable to open supervise/ok…` when
 * its supervisor is not running.
 */
function parseSv(placed: readonly Placed[]): Parser<ServiceStatus[]> {
  return {
    name: 'sv status',
    parse: (stdout) => {
      const lines = stdout.split('\n').map((l) => l.trim());
      return placed.map((p) => {
        const line = lines.find((l) => new RegExp(`^(run|down|finish|fail|warning): ${p.unit.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `).test(l));
        if (line === undefined) throw new Error(`no answer for ${p.unit} in sv's output`);
        const kind = line.slice(0, line.indexOf(':'));
        const state: ServiceState = kind === 'run' ? 'running' : kind === 'down' || kind === 'finish' ? 'stopped' : /file does not exist$/.test(line) && kind === 'fail' ? 'missing' : 'unknown';
        return { name: p.name, state, raw: line };
      });
    },
  };
}

export interface ServiceCheck {
  command: ShellCommand;
  /** Exit codes of a check that worked: a service that is not running is an answer, not an error. */
  okExitCodes: number[];
  parser: Parser<ServiceStatus[]>;
  /** Which variant runs, for the plan (`systemd 252: systemctl list-units`). */
  variant: string;
  /** The page's own command (upstart's `status <job>`), shown beside the one that runs. */
  reference: string;
}

/**
 * One-shot check of services: `systemctl list-units --all --no-legend --plain <units>`, `initctl
 * status <job>` (`initctl list` for several), each init script's `status` with its exit code, or
 * `sv status`.
 */
export function checkServices(facts: HostFacts, services: readonly ServiceSpec[], paths: ServicePaths = DEFAULT_PATHS): ServiceCheck {
  const { manager, placed } = place(facts, services);
  const units = placed.map((p) => p.unit);
  const reference = each(placed, (p) => `status ${p.name}`, '; ');
  switch (manager) {
    case 'systemd':
      return { command: cmd(`systemctl list-units --all --no-legend --plain ${words(units)}`), okExitCodes: [0], parser: parseListUnits(placed), variant: variantOf(facts, manager, 'systemctl list-units'), reference };
    case 'upstart':
      return placed.length === 1
        ? { command: cmd(`initctl status ${quote(units[0]!)}`), okExitCodes: [0, 1], parser: parseInitctl(placed), variant: variantOf(facts, manager, 'initctl status'), reference }
        : { command: cmd('initctl list'), okExitCodes: [0], parser: parseInitctl(placed), variant: variantOf(facts, manager, 'initctl list'), reference };
    case 'sysv':
      return { command: cmd(initScriptCheck(paths.initd, units)), okExitCodes: [0], parser: parseInitScripts(placed), variant: variantOf(facts, manager, "the init scripts' status"), reference };
    default:
      return { command: cmd(`sv status ${words(units)}`), okExitCodes: Array.from({ length: placed.length + 1 }, (_, i) => i), parser: parseSv(placed), variant: variantOf(facts, manager, 'sv status'), reference };
  }
}

/**
 * Each script's `status`, its exit code and its output on one line; `missing` when there is no such
 * executable script. A script without `status` answers with its usage, which the parser tells apart.
 */
function initScriptCheck(initd: string, scripts: readonly string[]): string {
  return `for s in ${words(scripts)}; do if [ -x ${quote(initd)}/"$s" ]; then out=$(${quote(initd)}/"$s" status 2>&1); rc=$?; else out=; rc=missing; fi; printf '%s\\t%s\\t%s\\n' "$s" "$rc" "$(echo $out)"; done`;
}

function cmd(text: string): ShellCommand {
  return new ShellCommand(text, text);
}

export interface ServiceAction {
  command: ShellCommand;
  variant: string;
  /** The page's own command (the upstart form), shown beside the one that runs. */
  reference: string;
}

export type ServiceVerb = 'start' | 'stop' | 'restart';

/**
 * Starts, stops or restarts services: `systemctl <verb> <units>`, upstart's `start|stop|restart <job>`
 * (made as forgiving as the others: see the module's comment), each init script, or `sv <verb>`.
 */
export function controlServices(facts: HostFacts, verb: ServiceVerb, services: readonly ServiceSpec[], paths: ServicePaths = DEFAULT_PATHS): ServiceAction {
  const { manager, placed } = place(facts, services);
  const reference = each(placed, (p) => `${verb} ${p.name}`, '; ');
  let text: string;
  switch (manager) {
    case 'systemd':
      text = `systemctl ${verb} ${words(placed.map((p) => p.unit))}`;
      break;
    case 'upstart':
      text = each(placed, (p) => upstartVerb(verb, p.unit));
      break;
    case 'sysv':
      text = each(placed, (p) => `${quote(paths.initd)}/${quote(p.unit)} ${verb}`);
      break;
    default:
      text = `sv ${verb} ${words(placed.map((p) => p.unit))}`;
  }
  const what = { systemd: `systemctl ${verb}`, upstart: verb, sysv: `the init scripts' ${verb}`, runit: `sv ${verb}` }[manager];
  return { command: cmd(text), variant: variantOf(facts, manager, what), reference };
}

/**
 * upstart refuses to start a running job ("Job is already running") and to stop or restart one
 * that is not ("Unknown instance"); these forms succeed where the job already is as asked.
 */
function upstartVerb(verb: ServiceVerb, job: string): string {
  const j = quote(job);
  if (verb === 'start') return `{ start ${j} || status ${j} | grep -q ' start/running'; }`;
  if (verb === 'stop') return `{ stop ${j} || status ${j} | grep -q ' stop/waiting'; }`;
  return `{ restart ${j} || start ${j}; }`;
}

/**
 * For a maintenance window: stops services and keeps anything (boot, configuration management)
 * from starting them: `systemctl mask --now`, an upstart `.override` with `manual`, the init
 * scripts' rc links turned off (`update-rc.d <script> disable 2 3 4 5`), runit's `down` file.
 */
export function disableServices(facts: HostFacts, services: readonly ServiceSpec[], paths: ServicePaths = DEFAULT_PATHS): ServiceAction {
  const { manager, placed } = place(facts, services);
  const reference = each(placed, (p) => `stop ${p.name}; echo manual > /etc/init/${p.name}.override`, '; ');
  let text: string;
  switch (manager) {
    case 'systemd':
      text = `systemctl mask --now ${words(placed.map((p) => p.unit))}`;
      break;
    case 'upstart':
      text = each(placed, (p) => `echo manual > ${quote(`${paths.etcInit}/${p.unit}.override`)} && ${upstartVerb('stop', p.unit)}`);
      break;
    case 'sysv':
      // Runlevels given: a pre-LSB script has no Default-Start for update-rc.d to read.
      text = each(placed, (p) => `update-rc.d ${quote(p.unit)} disable 2 3 4 5 && ${quote(paths.initd)}/${quote(p.unit)} stop`);
      break;
    default:
      text = each(placed, (p) => `touch ${quote(`${paths.svdir}/${p.unit}/down`)} && sv stop ${quote(p.unit)}`);
  }
  const what = { systemd: 'systemctl mask --now', upstart: 'a .override with manual', sysv: 'update-rc.d disable', runit: 'a down file' }[manager];
  return { command: cmd(text), variant: variantOf(facts, manager, what), reference };
}

/** Undoes disableServices: the services may start again (at boot too). It does not start them. */
export function enableServices(facts: HostFacts, services: readonly ServiceSpec[], paths: ServicePaths = DEFAULT_PATHS): ServiceAction {
  const { manager, placed } = place(facts, services);
  const reference = each(placed, (p) => `rm /etc/init/${p.name}.override`, '; ');
  let text: string;
  switch (manager) {
    case 'systemd':
      text = `systemctl unmask ${words(placed.map((p) => p.unit))}`;
      break;
    case 'upstart':
      text = `rm -f ${words(placed.map((p) => `${paths.etcInit}/${p.unit}.override`))}`;
      break;
    case 'sysv':
      text = each(placed, (p) => `update-rc.d ${quote(p.unit)} enable 2 3 4 5`);
      break;
    default:
      text = `rm -f ${words(placed.map((p) => `${paths.svdir}/${p.unit}/down`))}`;
  }
  const what = { systemd: 'systemctl unmask', upstart: 'the .override removed', sysv: 'update-rc.d enable', runit: 'the down file removed' }[manager];
  return { command: cmd(text), variant: variantOf(facts, manager, what), reference };
}

export interface FoundProcess {
  pid: number;
  name: string;
}

/**
 * Which of the named programs run, by the name the kernel keeps (`mysqld`, `spamd`, `authdaemond`,
 * `inetd`: not the service's name): `pgrep -l -x 'mysqld|spamd'`, which never lists itself (unlike
 * `ps aux | grep`). Exit 1 when none runs.
 */
export function findProcesses(names: readonly string[]): { command: ShellCommand; okExitCodes: number[]; parser: Parser<FoundProcess[]> } {
  if (names.length === 0) throw new Error('no process named');
  const bad = names.find((n) => !/^[A-Za-z0-9_.:+-]{1,15}$/.test(n));
  if (bad !== undefined) throw new Error(`"${bad}" is no process name pgrep -x can match (at most 15 letters, digits and _.:+-)`);
  return {
    command: cmd(`pgrep -l -x ${quote(names.map((n) => n.replace(/[.+]/g, '\\$&')).join('|'))}`),
    okExitCodes: [0, 1],
    parser: {
      name: 'pgrep -l',
      parse: (stdout) =>
        stdout
          .split('\n')
          .map((l) => /^(\d+) (\S+)$/.exec(l.trim()))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => ({ pid: Number(m[1]), name: m[2]! })),
    },
  };
}
