import { z } from 'zod';
import type { InventoryHost } from '../inventory.js';
import { detectFacts, forEachItem, parse, procedure, sh, type Parser, type ShellCommand, type SshStep, type Step, type StepContext } from './dsl.js';
import { controlServices, findProcesses, servicePaths, type ServiceSpec, type ServiceVerb } from './services.js';

const SOURCE = 'runbooks/afs-fileserver-reboot.txt';

/**
 * The page's services ("nscd mysql postgres apache2 domtool-server cron spamassassin
 * courier-authdaemon openbsd-inetd"), as they are on a Debian host: the init script's name (the
 * page's name, but for postgres, whose script is versioned on Debian lenny, `postgresql-8.3`, and
 * `postgresql` since squeeze: found on the host) and the names the kernel gives their processes,
 * which killall and pgrep match: mysqld under mysqld_safe (mysql-server), postmaster (PostgreSQL 8.3;
 * postgres from 8.4), spamd (spamassassin), authdaemond under courierlogger (courier-authlib), inetd
 * (openbsd-inetd). domtool-server is HCoop's own (could not be verified).
 */
export const AFS_SERVICES: readonly { page: string; processes: readonly string[] }[] = [
  { page: 'nscd', processes: ['nscd'] },
  { page: 'mysql', processes: ['mysqld_safe', 'mysqld'] },
  { page: 'postgres', processes: ['postmaster', 'postgres'] },
  { page: 'apache2', processes: ['apache2'] },
  { page: 'domtool-server', processes: ['domtool-server'] },
  { page: 'cron', processes: ['cron'] },
  { page: 'spamassassin', processes: ['spamd'] },
  { page: 'courier-authdaemon', processes: ['courierlogger', 'authdaemond'] },
  { page: 'openbsd-inetd', processes: ['inetd'] },
];

type AfsService = (typeof AFS_SERVICES)[number];

/** Postgres "is known to need one, two or more restarts before it really starts properly": at most this many. */
export const POSTGRES_RESTARTS = 3;

/** The page's own check, shown beside the one that runs: pgrep by name never finds itself, nor depends on the title 8.3 gives. */
const POSTGRES_CHECK_PAGE = "ps aux | egrep 'postmaste()r' > /dev/null || echo 'Postgres not running!'";
const POSTGRES = AFS_SERVICES.find((s) => s.page === 'postgres')!;

type Args = { host: string };
const server = (ctx: StepContext<Args>) => ctx.args.host;
const service = (ctx: StepContext) => forEachItem<AfsService>(ctx);
const other = (ctx: StepContext) => forEachItem<Other>(ctx);

/** Services the host runs under runit (`vars.runit`); the others are init.d scripts. */
function runit(h: InventoryHost): string[] {
  return Array.isArray(h.vars.runit) ? h.vars.runit.map(String) : [];
}

/**
 * The init scripts of postgres on the host, `<initd>/postgresql*` (versioned on lenny): listed with
 * the shell's own glob and test, so nothing but the directory is read.
 */
function postgresScripts(h: InventoryHost): ShellCommand {
  const initd = servicePaths(h.vars).initd;
  return sh`for f in ${initd}/postgresql*; do [ -x "$f" ] && printf '%s\n' "\${f##*/}"; done; true`;
}

/** What runs a page's service on the host: its runit service, its init script(s). */
function specs(ctx: StepContext<Args>, s: AfsService): ServiceSpec[] {
  if (runit(ctx.host(ctx.args.host)).includes(s.page)) return [{ name: s.page, runit: true }];
  if (s === POSTGRES) return ctx.capture<string[]>('scripts');
  return [s.page];
}

/** The page's line for an action: `/etc/init.d/SERVICE_NAME stop` (init.d approach), `sv stop SERVICE_NAME` (runit approach). */
function pageLine(ctx: StepContext<Args>, s: AfsService, verb: ServiceVerb): string {
  return runit(ctx.host(ctx.args.host)).includes(s.page) ? `sv ${verb} ${s.page}` : `/etc/init.d/${s.page} ${verb}`;
}

/** Starts, stops or restarts a page's service with what runs it on the host. */
function control(verb: ServiceVerb, s: (ctx: StepContext<Args>) => AfsService): Pick<SshStep<Args>, 'command' | 'variant' | 'reference'> {
  const build = (ctx: StepContext<Args>) => controlServices(ctx.facts(ctx.args.host), verb, specs(ctx, s(ctx)), servicePaths(ctx.host(ctx.args.host).vars));
  return { command: (ctx) => build(ctx).command, variant: (ctx) => build(ctx).variant, reference: (ctx) => pageLine(ctx, s(ctx), verb) };
}

/** Which of a service's processes run (pgrep -x by the kernel's names). */
const processesOf = (s: AfsService) => findProcesses(s.processes);

/** `pgrep -l`'s lines, whatever the names asked. */
const PGREP_LINES = processesOf(POSTGRES).parser;

/** Postgres steps: check by process, then up to POSTGRES_RESTARTS restarts, each followed by the check again. */
function postgresSteps(): Step<Args>[] {
  const check = processesOf(POSTGRES);
  const checkStep = (id: string, title: string, when?: Step<Args>['when']): Step<Args> => ({
    kind: 'ssh',
    id,
    title,
    risk: 'read',
    host: server,
    ...(when ? { when } : {}),
    command: check.command,
    okExitCodes: check.okExitCodes,
    capture: check.parser,
    reference: POSTGRES_CHECK_PAGE,
  });
  const steps: Step<Args>[] = [checkStep('postgres-check', 'DOUBLE-CHECK that Postgres in particular is started properly')];
  for (let i = 1; i <= POSTGRES_RESTARTS; i++) {
    const before = i === 1 ? 'postgres-check' : `postgres-check-${i - 1}`;
    steps.push(
      {
        kind: 'ssh',
        id: `postgres-restart-${i}`,
        title: `Postgres is not running: restart it (restart ${i} of at most ${POSTGRES_RESTARTS})`,
        risk: 'write',
        host: server,
        when: (ctx) => ctx.status(before) === 'succeeded' && ctx.capture<unknown[]>(before).length === 0,
        ...control('restart', () => POSTGRES),
      },
      checkStep(`postgres-check-${i}`, `Check Postgres again after restart ${i}`, (ctx) => ctx.status(`postgres-restart-${i}`) === 'succeeded'),
    );
  }
  return steps;
}

/** What the last Postgres check that ran found: a process of it. */
function postgresRunning(ctx: StepContext<Args>): boolean {
  for (let i = POSTGRES_RESTARTS; i >= 0; i--) {
    const id = i === 0 ? 'postgres-check' : `postgres-check-${i}`;
    if (ctx.status(id) === 'succeeded') return ctx.capture<unknown[]>(id).length > 0;
  }
  return false;
}

/** A restart of a service on another machine: `vars.restartAfterFileserver` of each other AFS host. */
interface Other {
  host: string;
  service: string;
}

/** The restart of a service on another machine, with that machine's own service manager. */
function restartOther(ctx: StepContext) {
  const o = other(ctx);
  return controlServices(ctx.facts(o.host), 'restart', runit(ctx.host(o.host)).includes(o.service) ? [{ name: o.service, runit: true }] : [o.service], servicePaths(ctx.host(o.host).vars));
}

/**
 * What `bos status <host>` tells. OpenAFS's bos (src/bozo/bos.c `StatServer`) exits 0 even when the
 * host's bosserver does not answer yet, right after a boot: it prints only "bos: failed to contact
 * host's bosserver". So the salvager is judged only once the fileserver instance (`fs`, or `dafs`
 * for the demand-attach fileserver) is listed; while it salvages, its auxiliary status says
 * "salvaging file system" (src/bozo/fsbnodeops.c `fs_getstring`).
 */
interface BosStatus {
  answered: boolean;
  salvaging: boolean;
}

const bosStatus: Parser<BosStatus> = {
  name: 'bos status',
  parse: (s) => ({ answered: /^Instance d?fs,/m.test(s), salvaging: /Auxiliary status is: salvaging/i.test(s) }),
};

export const reboot = procedure({
  pack: 'afs',
  name: 'reboot',
  summary: 'Reboot the AFS fileserver: stop what depends on AFS, reboot, wait for the salvager, start everything and re-check the other machines',
  usage: 'afs reboot <host>',
  examples: ['afs reboot deleuze'],
  source: `${SOURCE} (RebootingDeleuze)`,
  requires: {
    host: 'init.d scripts (vars.initd, default /etc/init.d) and runit\'s sv for the services in vars.runit, pgrep and killall, OpenAFS\'s bos; on the other machines their own service manager',
    checked: 'Debian sysvinit init scripts with and without LSB status, runit 2.1.2, procps-ng 4.0.2, psmisc, and OpenAFS 1.4.12 bos (src/bozo/bos.c, fsbnodeops.c), as the lab\'s doubles of them',
  },
  args: z.object({ host: z.string().min(1) }),
  positional: ['host'],
  hosts: { host: { groups: ['afs-fileserver'] } },
  notes: (ctx) => [
    `${ctx.args.host} is the main server: while it reboots, AFS (and with it user lookups) is unavailable on ${ctx.inventory
      .inGroups(['afs'])
      .filter((h) => h.name !== ctx.args.host)
      .map((h) => h.name)
      .join(', ') || 'the other machines'}.`,
  ],
  locks: (ctx) => ctx.inventory.inGroups(['afs']).map((h) => ({ host: h.name, mode: 'write' as const })),
  steps: [
    {
      kind: 'manual',
      id: 'preparations',
      title: 'Preparations',
      risk: 'read',
      instructions: (ctx) =>
        [
          `1) Have root shell open on the other machines (i.e. ${ctx.inventory
            .inGroups(['afs'])
            .filter((h) => h.name !== ctx.args.host)
            .map((h) => h.name)
            .join(', ')}). In general this should not be necessary, but in the January 2010 outage, after a period of Deleuze inavailability, Mire stopped accepting new logins so we had no way to restart services except a reboot.`,
          '2) Have KvmAccess, IpAddresses and RebootingMireSp wiki pages handy.',
          '3) Have HCoop passwords list handy.',
          `The bot reboots ${ctx.args.host} with "reboot" over SSH; if it is hung, the bot cannot: hook up to the IPKVM and invoke the SysRq reboot from its console instead.`,
          'Press Done when ready.',
        ].join('\n'),
    },
    detectFacts({ host: server }),
    {
      kind: 'ssh',
      id: 'scripts',
      title: (ctx) => `Find the init script of postgres on ${ctx.args.host} (versioned on Debian lenny)`,
      risk: 'read',
      host: server,
      command: (ctx) => postgresScripts(ctx.host(ctx.args.host)),
      capture: parse.lines(),
    },
    {
      kind: 'group',
      id: 'shutdown',
      title: (ctx) => `Shutdown all services that depend on AFS, then reboot ${ctx.args.host}`,
      risk: 'destructive',
      guard: (ctx) =>
        runit(ctx.host(ctx.args.host)).includes('postgres') || ctx.capture<string[]>('scripts').length > 0
          ? undefined
          : `${ctx.args.host} has no postgresql init script in ${servicePaths(ctx.host(ctx.args.host).vars).initd} (vars.initd): which script runs Postgres there?`,
      steps: [
        {
          kind: 'forEach',
          id: 'stop',
          title: 'Shutdown all services possible, primarily those that depend on AFS',
          risk: 'write',
          items: () => AFS_SERVICES,
          key: (s: AfsService) => s.page,
          concurrency: 1,
          steps: [
            { kind: 'ssh', id: 'stop', title: (ctx) => `Stop ${service(ctx).page}`, risk: 'write', host: server, ...control('stop', service) },
            {
              kind: 'ssh',
              id: 'killall',
              title: (ctx) => `killall ${service(ctx).page} (to be sure it's down)`,
              risk: 'write',
              host: server,
              // killall matches the kernel's process names, not the service's; it answers 1 ("no process found") when the stop ended them all.
              command: (ctx) => sh`killall ${service(ctx).processes}`,
              reference: (ctx) => `killall ${service(ctx).page}`,
              okExitCodes: [0, 1],
            },
            {
              kind: 'poll',
              id: 'down',
              title: (ctx) => `Verify that ${service(ctx).page} is really down`,
              risk: 'read',
              host: server,
              // pgrep exits 1 when it finds nothing: here the answer awaited, not an error.
              command: (ctx) => sh`${processesOf(service(ctx)).command} || [ $? -eq 1 ]`,
              capture: PGREP_LINES,
              until: (found: unknown[]) => found.length === 0,
              intervalMs: 1_000,
              timeoutMs: 60_000,
              waiting: (ctx) =>
                `${service(ctx).page} is still running (${service(ctx).processes.join(', ')}): it must really be down (the page: "especially in case of courier-authdaemon which won't want to restart cleanly … if a previous improperly initialized instance is running"); checking again in a second`,
            },
          ],
        },
        {
          kind: 'ssh',
          id: 'booted',
          title: (ctx) => `Note when ${ctx.args.host} last booted`,
          risk: 'read',
          host: server,
          command: sh`last -F -n 1 reboot`,
          capture: parse.lines() as Parser<string[]>,
        },
        { kind: 'ssh', id: 'reboot', title: (ctx) => `Reboot ${ctx.args.host}`, risk: 'destructive', host: server, command: sh`reboot` },
      ],
    },
    {
      kind: 'poll',
      id: 'back',
      title: (ctx) => `Wait until ${ctx.args.host} has rebooted and answers SSH again`,
      risk: 'read',
      host: server,
      command: sh`last -F -n 1 reboot`,
      capture: parse.lines(),
      // A later boot than the one noted before: not the old system still answering on its way down.
      until: (lines: string[], ctx) => lines[0] !== undefined && lines[0] !== ctx.capture<string[]>('shutdown.booted')[0],
      untilReachable: true,
      intervalMs: 5_000,
      timeoutMs: 30 * 60_000,
      waiting: (ctx) => `${ctx.args.host} has not come back yet; checking again in 5 seconds`,
    },
    {
      kind: 'poll',
      id: 'salvager',
      title: (ctx) => `Wait until "bos status ${ctx.args.host}" no longer reports the salvager running`,
      risk: 'read',
      host: server,
      command: (ctx) => sh`bos status ${ctx.args.host}`,
      capture: bosStatus,
      until: (status: BosStatus) => status.answered && !status.salvaging,
      intervalMs: 30_000,
      timeoutMs: 60 * 60_000,
      waiting: (ctx) =>
        ctx.capture<BosStatus>('salvager').answered
          ? `The fileserver on ${ctx.args.host} is salvaging: all volumes of the partition are inaccessible until it is done. The salvager will take about 20 minutes; checking "bos status ${ctx.args.host}" again in 30 seconds.`
          : `The bosserver on ${ctx.args.host} does not answer yet (it is still starting after the boot), so the salvager cannot be judged; checking "bos status ${ctx.args.host}" again in 30 seconds.`,
    },
    {
      kind: 'forEach',
      id: 'start',
      title: 'Start all those services that were stopped, watching for any errors',
      risk: 'write',
      items: () => AFS_SERVICES,
      key: (s: AfsService) => s.page,
      concurrency: 1,
      steps: [{ kind: 'ssh', id: 'start', title: (ctx) => `Start ${service(ctx).page}`, risk: 'write', host: server, ...control('start', service) }],
    },
    ...postgresSteps(),
    {
      kind: 'ssh',
      id: 'domtool-server',
      title: 'After Postgres, restart domtool-server (it uses Postgres)',
      risk: 'write',
      host: server,
      guard: (ctx) =>
        postgresRunning(ctx)
          ? undefined
          : `Postgres is still not running after ${POSTGRES_RESTARTS} restarts (no ${POSTGRES.processes.join(' or ')} process); domtool-server uses Postgres. Look at the Postgres logs on ${ctx.args.host}.`,
      ...control('restart', () => AFS_SERVICES.find((s) => s.page === 'domtool-server')!),
    },
    {
      kind: 'ssh',
      id: 'domtool-test',
      title: 'Do a test configuration of a domain with domtool to ensure that all domtool servers are working',
      risk: 'write',
      host: server,
      guard: (ctx) => (typeof ctx.host(ctx.args.host).vars.domtoolTest === 'string' ? undefined : `the inventory gives no test domain configuration for ${ctx.args.host} (vars.domtoolTest)`),
      command: (ctx) => sh`domtool ${String(ctx.host(ctx.args.host).vars.domtoolTest)}`,
    },
    {
      kind: 'forEach',
      id: 'others',
      title: 'Other systems: restart domtool-slave on all machines that have it, and what else the outage affects',
      risk: 'write',
      items: (ctx) =>
        ctx.inventory
          .inGroups(['afs'])
          .filter((h) => h.name !== ctx.args.host)
          .flatMap((h) => (Array.isArray(h.vars.restartAfterFileserver) ? h.vars.restartAfterFileserver.map(String) : []).map((s): Other => ({ host: h.name, service: s }))),
      key: (o: Other) => `${o.host}.${o.service}`,
      label: (o: Other) => `${o.service} on ${o.host}`,
      concurrency: 4,
      steps: [
        detectFacts({ host: (ctx) => other(ctx).host }),
        {
          kind: 'ssh',
          id: 'restart',
          title: (ctx) => `Restart ${other(ctx).service} on ${other(ctx).host}`,
          risk: 'write',
          host: (ctx) => other(ctx).host,
          command: (ctx) => restartOther(ctx).command,
          variant: (ctx) => restartOther(ctx).variant,
          reference: (ctx) => `service ${other(ctx).service} restart`,
        },
      ],
    },
    {
      kind: 'manual',
      id: 're-check',
      title: (ctx) => `After rebooting ${ctx.args.host}, re-check everything`,
      risk: 'read',
      instructions: (ctx) =>
        `So the bottom line is, after rebooting ${ctx.args.host}, re-check everything: the web server (restart it, or even reboot it if SSH stops taking logins), DNS updates on outpost, logins on the other machines. Press Done when everything works.`,
    },
  ],
});

export const afsPack = [reboot];
