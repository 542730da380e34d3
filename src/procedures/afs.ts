import { z } from 'zod';
import type { InventoryHost } from '../inventory.js';
import { forEachItem, KnownAtRunTime, parse, procedure, sh, type Parser, type ShellCommand, type Step, type StepContext } from './dsl.js';

const SOURCE = 'runbooks/afs-fileserver-reboot.txt';

/** The page's list: "nscd mysql postgres apache2 domtool-server cron spamassassin courier-authdaemon openbsd-inetd". */
export const AFS_SERVICES = ['nscd', 'mysql', 'postgres', 'apache2', 'domtool-server', 'cron', 'spamassassin', 'courier-authdaemon', 'openbsd-inetd'];

/** Postgres "is known to need one, two or more restarts before it really starts properly": at most this many. */
export const POSTGRES_RESTARTS = 3;

/** The page's own check, word for word. */
const POSTGRES_CHECK = sh`ps aux | egrep 'postmaste()r' > /dev/null || echo 'Postgres not running!'`;
const POSTGRES_DOWN = 'Postgres not running!';

type Args = { host: string };
const server = (ctx: StepContext<Args>) => ctx.args.host;
/** The service of a forEach item; undefined while planning, where the step then shows as known at run time. */
const service = (ctx: StepContext): string => {
  if (typeof ctx.item !== 'string') throw new KnownAtRunTime();
  return ctx.item;
};
const other = (ctx: StepContext) => forEachItem<Other>(ctx);

/** Services the host runs under runit (`vars.runit`); the others are init.d scripts. */
function runit(h: InventoryHost): string[] {
  return Array.isArray(h.vars.runit) ? h.vars.runit.map(String) : [];
}
const usesRunit = (ctx: StepContext<Args>, name: string) => runit(ctx.host(ctx.args.host)).includes(name);

/**
 * `/etc/init.d/SERVICE_NAME stop` (init.d approach) or `sv stop SERVICE_NAME` (runit approach).
 * The init.d scripts are called through `service`, which runs the same script with a clean
 * environment (and which the lab simulates; an absolute /etc/init.d path would reach the real machine).
 */
function control(ctx: StepContext<Args>, name: string, action: 'start' | 'stop' | 'restart'): ShellCommand {
  return usesRunit(ctx, name) ? sh`sv ${action} ${name}` : sh`service ${name} ${action}`;
}

/** "It is important to verify that the service is really down": init.d status says 3 (not running), sv says down. */
function verifyDown(ctx: StepContext<Args>, name: string): ShellCommand {
  const still = `${name} is still running: it must really be down (the page: "especially in case of courier-authdaemon which won't want to restart cleanly … if a previous improperly initialized instance is running")`;
  if (usesRunit(ctx, name)) return sh`st=$(sv status ${name}); echo "$st"; case "$st" in down:*) ;; *) echo ${still} >&2; exit 1 ;; esac`;
  return sh`service ${name} status; rc=$?; [ $rc -eq 3 ] || { echo ${still} >&2; exit 1; }`;
}

/** Postgres steps: check, then up to POSTGRES_RESTARTS restarts, each followed by the check again. */
function postgresSteps(): Step<Args>[] {
  const steps: Step<Args>[] = [
    {
      kind: 'ssh',
      id: 'postgres-check',
      title: 'DOUBLE-CHECK that Postgres in particular is started properly',
      risk: 'read',
      host: server,
      command: POSTGRES_CHECK,
      capture: parse.text(),
    },
  ];
  for (let i = 1; i <= POSTGRES_RESTARTS; i++) {
    const before = i === 1 ? 'postgres-check' : `postgres-check-${i - 1}`;
    steps.push(
      {
        kind: 'ssh',
        id: `postgres-restart-${i}`,
        title: `Postgres is not running: restart it (restart ${i} of at most ${POSTGRES_RESTARTS})`,
        risk: 'write',
        host: server,
        when: (ctx) => ctx.status(before) === 'succeeded' && ctx.capture<string>(before).includes(POSTGRES_DOWN),
        command: (ctx) => control(ctx, 'postgres', 'restart'),
      },
      {
        kind: 'ssh',
        id: `postgres-check-${i}`,
        title: `Check Postgres again after restart ${i}`,
        risk: 'read',
        host: server,
        when: (ctx) => ctx.status(`postgres-restart-${i}`) === 'succeeded',
        command: POSTGRES_CHECK,
        capture: parse.text(),
      },
    );
  }
  return steps;
}

/** What the last Postgres check that ran said. */
function postgresRunning(ctx: StepContext<Args>): boolean {
  for (let i = POSTGRES_RESTARTS; i >= 0; i--) {
    const id = i === 0 ? 'postgres-check' : `postgres-check-${i}`;
    if (ctx.status(id) === 'succeeded') return !ctx.capture<string>(id).includes(POSTGRES_DOWN);
  }
  return false;
}

/** A restart of a service on another machine: `vars.restartAfterFileserver` of each other AFS host. */
interface Other {
  host: string;
  service: string;
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
    {
      kind: 'group',
      id: 'shutdown',
      title: (ctx) => `Shutdown all services that depend on AFS, then reboot ${ctx.args.host}`,
      risk: 'destructive',
      steps: [
        {
          kind: 'forEach',
          id: 'stop',
          title: 'Shutdown all services possible, primarily those that depend on AFS',
          risk: 'write',
          items: () => AFS_SERVICES,
          key: (s: string) => s,
          concurrency: 1,
          steps: [
            { kind: 'ssh', id: 'stop', title: (ctx) => `Stop ${service(ctx)}`, risk: 'write', host: server, command: (ctx) => control(ctx, service(ctx), 'stop') },
            // killall answers 1 ("no process found") when the stop already ended every process.
            { kind: 'ssh', id: 'killall', title: (ctx) => `killall ${service(ctx)} (to be sure it's down)`, risk: 'write', host: server, command: (ctx) => sh`killall ${service(ctx)}`, okExitCodes: [0, 1] },
            { kind: 'ssh', id: 'down', title: (ctx) => `Verify that ${service(ctx)} is really down`, risk: 'read', host: server, command: (ctx) => verifyDown(ctx, service(ctx)) },
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
      key: (s: string) => s,
      concurrency: 1,
      steps: [{ kind: 'ssh', id: 'start', title: (ctx) => `Start ${service(ctx)}`, risk: 'write', host: server, command: (ctx) => control(ctx, service(ctx), 'start') }],
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
          : `Postgres is still not running after ${POSTGRES_RESTARTS} restarts ("ps aux | egrep 'postmaste()r'" finds no postmaster); domtool-server uses Postgres. Look at the Postgres logs on ${ctx.args.host}.`,
      command: (ctx) => control(ctx, 'domtool-server', 'restart'),
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
        {
          kind: 'ssh',
          id: 'restart',
          title: (ctx) => `Restart ${other(ctx).service} on ${other(ctx).host}`,
          risk: 'write',
          host: (ctx) => other(ctx).host,
          command: (ctx) => sh`service ${other(ctx).service} restart`,
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
