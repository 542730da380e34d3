/**
 * Service control on the host's own service manager, for procedures: from a host's facts (see
 * facts.ts) the one-shot command that checks, starts, stops, restarts, or disables for a maintenance
 * window a set of services, with a parser from the real output to a neutral state. Each builder also
 * gives the page's own command (the upstart form the runbook pages use) as a reference, and names
 * the variant for the plan. In a procedure, after a `detectFacts` step on the host:
 *
 *   { kind: 'ssh', id: 'workers', title: 'Are the workers running', risk: 'read', host: node,
 *     ...serviceCheck(node, ['ovs-workers']) }          // capture: [{ name, state, raw }]
 *   { kind: 'ssh', id: 'restart', title: 'Restart the workers', risk: 'write', host: node,
 *     ...serviceAction(node, 'restart', ['ovs-workers']) }
 *
 * Semantics are the same on every manager: `start` leaves a running service running and `stop` a
 * stopped one stopped (upstart's own `start`/`stop` refuse those, so its commands check the job's
 * status when they do), `restart` starts a stopped service, `disable` stops the service and keeps it
 * from being started until `enable`, which does not start it.
 */
import type { Parser, SshStep, StepContext } from './dsl.js';
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

const DEFAULT_PATHS: ServicePaths = { initd: '/etc/init.d', etcInit: '/etc/init', svdir: '/etc/service' };

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

/** The page's own command for an action: upstart's, as the runbook pages type it. */
function pageCommand(action: 'status' | ServiceVerb | 'disable' | 'enable', services: readonly ServiceSpec[]): string {
  const names = services.map((s) => (typeof s === 'string' ? s : s.name));
  const one = (n: string) => (action === 'disable' ? `stop ${n}; echo manual > /etc/init/${n}.override` : action === 'enable' ? `rm /etc/init/${n}.override` : `${action} ${n}`);
  return names.map(one).join('; ');
}

/** One command per service, each run only when the one before succeeded. */
const each = (placed: readonly Placed[], f: (p: Placed) => string) => placed.map(f).join(' && ');

// The parser. A step's capture is fixed when the procedure is written, before the host's facts are
// known, so one parser reads every manager's answer; test/unit/procedures/services.test.ts pins it
// to output quoted from each program's source or manual page.

/** `run: x: (pid 1234) 56s` (runit 2.1.2 sv.c svstatus_print; `fail:`/`warning:` when it cannot tell). */
const SV_LINE = /^(run|down|finish|fail|warning): (\S+): (.*)$/;
/** `<script>\t<exit>\t<output>`, a line of initScriptCheck. */
const INIT_SCRIPT_LINE = /^([^\t]+)\t([^\t]+)\t(.*)$/;
/** An upstart job_status() line (upstart 1.12 util/initctl.c; initctl(8) "status"): `job start/running, process 1234`. */
const UPSTART_LINE = /^(\S+)(?: \(\S*\))? (start|stop)\/([a-z-]+)(?:, .*)?$/;
/** A `systemctl list-units` row (systemd v252 systemctl-list-units.c), with or without the glyph column. */
const LIST_UNITS_LINE = /^(?:[●*x×○] )?\s*(\S+\.[a-z]+)\s+(\S+)\s+(\S+)\s+(\S+)(?:\s.*)?$/;

/** What one line of a check says of one service, keyed by the unit, job, script or directory it names. */
function readLine(line: string): [string, Omit<ServiceStatus, 'name'>] | undefined {
  let m = SV_LINE.exec(line);
  if (m) {
    const state: ServiceState = m[1] === 'run' ? 'running' : m[1] === 'fail' && /file does not exist$/.test(m[3]!) ? 'missing' : ['down', 'finish'].includes(m[1]!) ? 'stopped' : 'unknown';
    return [m[2]!, { state, raw: line }];
  }
  m = INIT_SCRIPT_LINE.exec(line);
  if (m) {
    const [, script, rc, text] = m;
    if (rc === 'missing') return [script!, { state: 'missing', raw: `no ${script} init script` }];
    const raw = `exit ${rc}${text!.trim() ? `: ${text!.trim()}` : ''}`;
    // LSB: 0 running, 1 dead with its pid file left, 2 dead with its lock file left, 3 not running,
    // 4 unknown; a script without `status` prints its usage.
    const state: ServiceState = /usage:/i.test(text!) ? 'unknown' : rc === '0' ? 'running' : rc === '3' ? 'stopped' : ['1', '2'].includes(rc!) ? 'failed' : 'unknown';
    return [script!, { state, raw }];
  }
  m = UPSTART_LINE.exec(line);
  if (m) {
    const [, job, goal, state] = m;
    return [job!, { state: goal === 'start' && state === 'running' ? 'running' : goal === 'stop' && state === 'waiting' ? 'stopped' : 'unknown', raw: `${goal}/${state}` }];
  }
  m = LIST_UNITS_LINE.exec(line);
  if (m) {
    const [, unit, load, active, sub] = m;
    if (load === 'not-found') return [unit!, { state: 'missing', raw: `${load} ${active} (${sub})` }];
    const state: ServiceState = ['active', 'reloading'].includes(active!) ? 'running' : active === 'failed' ? 'failed' : active === 'inactive' ? 'stopped' : 'unknown';
    return [unit!, { state, raw: `${load === 'loaded' ? '' : `${load}, `}${active} (${sub})` }];
  }
  return undefined;
}

/**
 * The states a check printed, whichever manager answered (checkServices' commands): for each
 * service named, in order, `missing` when its manager did not list it (systemctl list-units and
 * initctl list leave out what they do not know; `initctl status` says "Unknown job" on stderr).
 * Without names: every service the output lists, by the name it gives (a unit without `.service`).
 */
export function serviceStates(services?: readonly ServiceSpec[]): Parser<ServiceStatus[]> {
  return {
    name: 'service states',
    parse: (stdout) => {
      const found = new Map<string, Omit<ServiceStatus, 'name'>>();
      for (const line of stdout.split('\n')) {
        // Not the tabs: an init script's line ends in one when the script said nothing.
        const r = readLine(line.replace(/[ \r]+$/, ''));
        if (r && !found.has(r[0])) found.set(r[0], r[1]);
      }
      if (services === undefined) return [...found].map(([key, s]) => ({ name: key.replace(/\.service$/, ''), ...s }));
      return services.map((spec) => {
        const { name, unit } = typeof spec === 'string' ? { name: spec, unit: undefined } : spec;
        const s = [unit, name, `${name}.service`].map((k) => (k === undefined ? undefined : found.get(k))).find((x) => x !== undefined);
        return { name, ...(s ?? { state: 'missing' as const, raw: 'not listed' }) };
      });
    },
  };
}

/** The exit codes of a check that worked: a service not running is an answer, not an error (sv counts the ones it cannot reach). */
export function checkExitCodes(services: readonly ServiceSpec[]): number[] {
  return Array.from({ length: Math.max(1, services.length) + 1 }, (_, i) => i);
}

export interface ServiceCheck {
  command: ShellCommand;
  /** checkExitCodes(services): a service that is not running is an answer, not an error. */
  okExitCodes: number[];
  /** serviceStates(services): the same whatever the manager, so a step can fix it before the facts are known. */
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
  const reference = pageCommand('status', services);
  const same = { okExitCodes: checkExitCodes(services), parser: serviceStates(services), reference };
  switch (manager) {
    case 'systemd':
      return { command: cmd(`systemctl list-units --all --no-legend --plain ${words(units)}`), variant: variantOf(facts, manager, 'systemctl list-units'), ...same };
    case 'upstart':
      return placed.length === 1
        ? { command: cmd(`initctl status ${quote(units[0]!)}`), variant: variantOf(facts, manager, 'initctl status'), ...same }
        : { command: cmd('initctl list'), variant: variantOf(facts, manager, 'initctl list'), ...same };
    case 'sysv':
      return { command: cmd(initScriptCheck(paths.initd, units)), variant: variantOf(facts, manager, "the init scripts' status"), ...same };
    default:
      return { command: cmd(`sv status ${words(units)}`), variant: variantOf(facts, manager, 'sv status'), ...same };
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
  const reference = pageCommand(verb, services);
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
  const reference = pageCommand('disable', services);
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
  const reference = pageCommand('enable', services);
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

/** A step's host, as its other functions see it. */
type HostOf<A> = (ctx: StepContext<A>) => string;

function onHost<A>(ctx: StepContext<A>, host: HostOf<A>): { facts: HostFacts; paths: ServicePaths } {
  const name = host(ctx);
  return { facts: ctx.facts(name), paths: servicePaths(ctx.host(name).vars ?? {}) };
}

/**
 * The parts of an ssh step that checks services with the host's own manager: the command and its
 * variant once the host's facts are known, the page's command (`status <job>`) from the start, and a
 * capture that reads any manager's answer.
 */
export function serviceCheck<A>(host: HostOf<A>, services: readonly ServiceSpec[]): Pick<SshStep<A>, 'command' | 'variant' | 'reference' | 'okExitCodes' | 'capture'> {
  const check = (ctx: StepContext<A>) => {
    const { facts, paths } = onHost(ctx, host);
    return checkServices(facts, services, paths);
  };
  return {
    command: (ctx) => check(ctx).command,
    variant: (ctx) => check(ctx).variant,
    reference: pageCommand('status', services),
    okExitCodes: checkExitCodes(services),
    capture: serviceStates(services),
  };
}

/** The parts of an ssh step that starts, stops, restarts, disables or enables services with the host's own manager. */
export function serviceAction<A>(host: HostOf<A>, action: ServiceVerb | 'disable' | 'enable', services: readonly ServiceSpec[]): Pick<SshStep<A>, 'command' | 'variant' | 'reference'> {
  const build = (ctx: StepContext<A>) => {
    const { facts, paths } = onHost(ctx, host);
    if (action === 'disable') return disableServices(facts, services, paths);
    if (action === 'enable') return enableServices(facts, services, paths);
    return controlServices(facts, action, services, paths);
  };
  return { command: (ctx) => build(ctx).command, variant: (ctx) => build(ctx).variant, reference: pageCommand(action, services) };
}
