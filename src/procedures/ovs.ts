import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { Inventory, InventoryHost } from '../inventory.js';
import { detectFacts, forEachItem, parse, procedure, sh, type Parser, type PollStep, type ShellCommand, type SshStep, type Step, type StepContext } from './dsl.js';
import {
  ARAKOON_CLUSTERS,
  CREATE_SNAPSHOT,
  DELETE_SNAPSHOT,
  LIST_VDISKS,
  SNAPSHOT_IN_BACKEND,
  frameworkPython,
  needsPython,
  pythonVariant,
  scriptJson,
  type ArakoonClusters,
} from './ovs-framework.js';
import { describeNode, expectedServices, isMaster, MASTER_SYSTEM_SERVICES, vpoolsOf } from './ovs-services.js';
import { checkExitCodes, checkServices, serviceAction, serviceCheck, servicePaths, serviceStates, type ServiceStatus } from './services.js';

/** A vDisk as the framework's data-access layer gives it: the fields the runbook's flush script reads. */
interface VDisk {
  guid: string;
  name: string;
  volume_id: string;
}

/** What the listing script prints: the Storage Router, its vDisks, and the id that marks this flush's snapshots. */
interface VDiskListing {
  storagerouter: string;
  ip: string;
  flush_id: string;
  vdisks: VDisk[];
}

/** A vDisk with the Storage Router it is on and the flush it belongs to: flush steps read them from the item. */
type VDiskOn = VDisk & { node: string; flushId: string };

const SOURCE = 'runbooks/ovs-shutdown-and-restart.md';
/** What the procedures that go through the framework need on a Storage Router. */
const FRAMEWORK_HOST = 'Python 2.7 (or 3) with the Open vStorage framework at vars.ovsFramework (default /opt/OpenvStorage) and the volumedriver binding, as a user allowed to use them (root)';
/** What they were checked against. */
const CHECKED =
  "Open vStorage framework 2.7.4-fargo.1 (Ubuntu 14.04, upstart, etcd), 2.9.30 (Ubuntu 16.04, systemd, Arakoon configuration) and the 2019 click CLI, volumedriver b244eb00, arakoon 18439814, as the lab's doubles of them (written from their source); its Python under 3.11 in the lab and 2.7.18 by hand";
const TROUBLESHOOTING = 'runbooks/ovs-troubleshooting.md';
const SNAPSHOT = 'flush_snapshot';
const node = (ctx: StepContext<{ node: string }>) => ctx.args.node;
const vdisk = (ctx: StepContext) => forEachItem<VDiskOn>(ctx);
/** The forEach item as a node name (forEach over nodes). */
const itemNode = (ctx: StepContext) => forEachItem<string>(ctx);

const listing = scriptJson<VDiskListing>('the vDisks of the Storage Router', (l) =>
  typeof l?.flush_id === 'string' && Array.isArray(l.vdisks) && l.vdisks.every((d) => typeof d?.name === 'string' && typeof d.volume_id === 'string')
    ? undefined
    : "the script's answer has no flush_id and vdisks [{guid, name, volume_id}]",
);

/**
 * The page's flush script for one Storage Router ("Start an OVS shell", then the script with
 * `ips = None`), step for step through the framework's data-access layer: list the vDisks of the
 * router; per vDisk `create_snapshot(volume_id, "flush_snapshot")`, wait while
 * `info_snapshot(...).in_backend` is false (sleeping 5 s), then `delete_snapshot`. The snapshot steps
 * are safe to run again after a crash (ovs-framework.ts): the engine repeats them without asking.
 * `host` names the router: the procedure's argument (`ovs flush`) or the node item (`ovs shutdown`).
 */
function flushSteps(host: (ctx: StepContext<any>) => string): Step[] {
  const script = (stdin: string, args: (ctx: StepContext) => string[]) => ({
    host: (ctx: StepContext) => vdisk(ctx).node,
    command: (ctx: StepContext) => frameworkPython(ctx, vdisk(ctx).node, args(ctx)),
    stdin,
    variant: (ctx: StepContext) => pythonVariant(ctx, vdisk(ctx).node),
  });
  return [
    detectFacts({ host }),
    {
      kind: 'ssh',
      id: 'vdisks',
      title: 'Fetch the vDisks on the Storage Router',
      risk: 'read',
      host,
      guard: (ctx) => needsPython(ctx, host(ctx)),
      command: (ctx) => frameworkPython(ctx, host(ctx)),
      stdin: LIST_VDISKS,
      variant: (ctx) => pythonVariant(ctx, host(ctx)),
      reference: 'sr_info = StorageRouterList.get_by_ip(ip); vdisks_by_guid = sr_info.vdisks_guids',
      capture: listing,
    },
    {
      kind: 'forEach',
      id: 'flush',
      title: 'Flush each vDisk to the backend',
      risk: 'write',
      // The router the script ran on is the one the framework calls by this address: not another's vDisks.
      guard: (ctx) => {
        const l = ctx.capture<VDiskListing>('vdisks');
        const ip = ctx.host(host(ctx)).vars.ip;
        return ip === undefined || ip === l.ip
          ? undefined
          : `${host(ctx)} answers as Storage Router ${l.storagerouter} (${l.ip}) in the framework's model, while the inventory gives it the ip ${String(ip)}: fix vars.ip or the host's address before flushing`;
      },
      items: (ctx) => {
        const l = ctx.capture<VDiskListing>('vdisks');
        return l.vdisks.map((d): VDiskOn => ({ ...d, node: host(ctx), flushId: l.flush_id }));
      },
      key: (d: VDisk) => d.name,
      label: (d: VDisk) => d.name,
      concurrency: 8,
      steps: [
        {
          kind: 'ssh',
          id: 'snapshot',
          title: (ctx) => `Commencing flush to backend for volume '${vdisk(ctx).name}'`,
          risk: 'write',
          idempotent: true,
          ...script(CREATE_SNAPSHOT, (ctx) => [vdisk(ctx).volume_id, SNAPSHOT, vdisk(ctx).flushId]),
          reference: 'disk.storagedriver_client.create_snapshot(str(disk.volume_id), snapshot_name)',
          capture: scriptJson<{ created: boolean; replaced: boolean }>('the snapshot taken'),
          // Waits (5 s at a time, up to 10 minutes) while the vDisk's previous snapshot is not in the backend.
          timeoutMs: 15 * 60_000,
        },
        {
          kind: 'poll',
          id: 'in-backend',
          title: (ctx) => `Wait until the NON-disposable SCOs of '${vdisk(ctx).name}' are in the backend`,
          risk: 'read',
          ...script(SNAPSHOT_IN_BACKEND, (ctx) => [vdisk(ctx).volume_id, SNAPSHOT]),
          reference: 'disk.storagedriver_client.info_snapshot(str(disk.volume_id), snapshot_name).in_backend',
          capture: scriptJson<{ in_backend: boolean }>('the snapshot\'s in_backend'),
          until: (snap: { in_backend: boolean }) => snap.in_backend === true,
          intervalMs: 5_000,
          timeoutMs: 60 * 60_000,
          waiting: (ctx) => `Sleeping 5 seconds until NON-disposable SCO's for volume '${vdisk(ctx).name}' are flushed...`,
        },
        {
          kind: 'ssh',
          id: 'delete-snapshot',
          title: (ctx) => `Delete the flush snapshot: flush for volume '${vdisk(ctx).name}' has succeeded`,
          risk: 'write',
          idempotent: true,
          ...script(DELETE_SNAPSHOT, (ctx) => [vdisk(ctx).volume_id, SNAPSHOT, vdisk(ctx).flushId]),
          reference: 'disk.storagedriver_client.delete_snapshot(str(disk.volume_id), snapshot_name)',
          capture: scriptJson<{ deleted: boolean }>('the snapshot deleted'),
        },
      ],
    },
  ];
}

export const flush = procedure({
  pack: 'ovs',
  name: 'flush',
  summary: 'Flush the outstanding data of every vDisk of a Storage Router to the backend',
  usage: 'ovs flush <node>',
  examples: ['ovs flush node-3'],
  source: `${SOURCE} (Shutdown an environment: "Make sure the outstanding data is flushed to the backend")`,
  requires: { host: FRAMEWORK_HOST, checked: CHECKED },
  args: z.object({ node: z.string().min(1) }),
  positional: ['node'],
  hosts: { node: { groups: ['ovs'] } },
  steps: flushSteps(node),
});

// ---------------------------------------------------------------------------------------------
// The cluster: master and extra nodes, from the inventory groups `ovs-master` and `ovs-extra`.

const masters = (inv: Inventory) => inv.inGroups(['ovs']).filter(isMaster);
const extras = (inv: Inventory) => inv.inGroups(['ovs']).filter((h) => !isMaster(h));

/** The page's rule: "Do make sure there are always more than half of the master servers online." */
function mastersLeft(inv: Inventory, down: Iterable<string>): { left: number; total: number } {
  const gone = new Set(down);
  const all = masters(inv);
  return { left: all.filter((h) => !gone.has(h.name)).length, total: all.length };
}

function halfRule(inv: Inventory, down: string[]): string | undefined {
  const { left, total } = mastersLeft(inv, down);
  if (total === 0 || left * 2 > total) return undefined;
  return `shutting down ${down.filter((n) => masters(inv).some((m) => m.name === n)).join(', ')} would leave ${left} of the ${total} master nodes online; the page says "Do make sure there are always more than half of the master servers online". To shut the whole cluster down on purpose, run "ovs shutdown cluster".`;
}

type ShutdownArgs = { nodes: string[]; cluster?: boolean | undefined };

/** Extra nodes first, master nodes last ("Start with the extra nodes and power down the master nodes as last"). */
function shutdownOrder(ctx: StepContext<ShutdownArgs>): string[] {
  const hosts = ctx.args.nodes.map((n) => ctx.host(n));
  return [...hosts.filter((h) => !isMaster(h)), ...hosts.filter(isMaster)].map((h) => h.name);
}

export const shutdown = procedure({
  pack: 'ovs',
  name: 'shutdown',
  summary: 'Shut Storage Routers down: stop the VMs, flush every vDisk to the backend, then shutdown -h now (extra nodes first, masters last)',
  usage: 'ovs shutdown <node…|cluster>',
  examples: ['ovs shutdown node-5 node-6', 'ovs shutdown cluster'],
  source: `${SOURCE} (Shutdown an environment)`,
  requires: { host: `${FRAMEWORK_HOST}; shutdown(8)`, checked: CHECKED },
  args: z.object({
    nodes: z.array(z.string().min(1)).min(1, 'name the nodes to shut down, or "cluster"'),
    cluster: z.boolean().optional(),
  }),
  positional: ['nodes'],
  /** `cluster` is not a host: the names are checked here, and `cluster` becomes every node, on purpose. */
  async resolve(args, { inventory }) {
    const ovs = inventory.inGroups(['ovs']).map((h) => h.name);
    if (args.nodes.includes('cluster')) {
      if (args.nodes.length > 1) throw new UsageError('say either "cluster" or the nodes to shut down, not both\nUsage: ovs shutdown <node…|cluster>');
      if (ovs.length === 0) throw new UsageError('runbook.yaml has no host in @ovs');
      return { nodes: ovs, cluster: true };
    }
    for (const n of args.nodes) {
      if (!ovs.includes(n)) throw new UsageError(`${inventory.has(n) ? `"${n}" is not in @ovs` : `unknown host "${n}"`}. The hosts in @ovs are: ${ovs.join(', ') || '(none)'}`);
    }
    // Only the word "cluster" says the whole cluster goes down on purpose.
    return { nodes: [...new Set(args.nodes)], cluster: false };
  },
  guard: (ctx) => (ctx.args.cluster ? undefined : halfRule(ctx.inventory, ctx.args.nodes)),
  locks: (ctx) => ctx.args.nodes.map((host) => ({ host, mode: 'write' as const })),
  notes: (ctx) => [
    ...(ctx.args.cluster
      ? [
          `The whole cluster goes down on purpose: all ${ctx.args.nodes.length} nodes, every master included, so Open vStorage is offline until "ovs restart" brings it back.`,
        ]
      : [`${mastersLeft(ctx.inventory, ctx.args.nodes).left} of the ${mastersLeft(ctx.inventory, []).total} master nodes stay online.`]),
    `Order of shutdown: ${shutdownOrder(ctx).join(', ')} (extra nodes first, master nodes last).`,
  ],
  steps: [
    {
      kind: 'manual',
      id: 'stop-vms',
      title: 'Stop all Virtual Machines on the compute nodes',
      // The person stops them: the inventory does not say how the VMs on these nodes are managed.
      risk: 'destructive',
      instructions: (ctx) =>
        `Stop all Virtual Machines on the compute nodes (${ctx.args.nodes.join(', ')}). The inventory does not say how these VMs are managed, so the bot cannot stop them: stop them, then press Done.`,
    },
    {
      kind: 'forEach',
      id: 'flush',
      title: 'Make sure the outstanding data is flushed to the backend',
      risk: 'write',
      items: (ctx) => shutdownOrder(ctx),
      key: (n: string) => n,
      concurrency: 3,
      steps: flushSteps(itemNode),
    },
    {
      kind: 'forEach',
      id: 'shutdown',
      title: 'Shutdown the nodes with shutdown -h now: the extra nodes first, the master nodes last',
      risk: 'destructive',
      items: (ctx) => shutdownOrder(ctx),
      key: (n: string) => n,
      concurrency: 1,
      steps: [
        {
          kind: 'ssh',
          id: 'halt',
          title: (ctx) => `Shutdown ${itemNode(ctx)} (${isMaster(ctx.host(itemNode(ctx))) ? 'master' : 'extra'} node)`,
          risk: 'destructive',
          host: itemNode,
          command: sh`shutdown -h now`,
          // Checked again right before each node goes down: the nodes this run already shut down, and this one.
          guard: (ctx) => {
            if ((ctx.args as ShutdownArgs).cluster) return undefined;
            const done = (ctx.args as ShutdownArgs).nodes.filter((n) => ctx.status(`shutdown[${n}].halt`) === 'succeeded');
            return halfRule(ctx.inventory, [...done, itemNode(ctx)]);
          },
        },
      ],
    },
  ],
});

// ---------------------------------------------------------------------------------------------
// Restart an environment, and the checks of the page.

const ADVICE_NGINX_MEMCACHED_RABBIT =
  'The page: "First fix the issues with Nginx, Memcached and RabbitMQ by checking the relevant logs. In case the RabbitMQ service isn\'t started, start the service on all nodes at the same time using `service rabbitmq-server start`."';
const ADVICE_ARAKOON =
  'The page: "Next, address issues with the Arakoon databases by checking the log. A typical issue is the lack of a master." (arakoon --who-master -config etcd://127.0.0.1:2379/ovs/arakoon/<DB_name>/config)';
const ADVICE_CELERY =
  'The page: "In case there is an issue with Celery, go to the support page in the GUI and check if the node ID is displayed. If needed, restart the workers." (restart ovs-workers)';
const ADVICE_VPOOL =
  'The page: "In case there are issues, check the Volume Driver logs under /var/log/ovs/volumedriver, /var/log/upstart/ovs-volumedriver_* and /var/log/upstart/ovs-volumerouter-consumer*. In case you can\'t solve the issue based upon the log, please create a bug (https://github.com/openvstorage/home/issues) and attach the error."';

/** Runs a check of the page; when it fails, its stderr ends with the page's advice for it (the step's error). */
function withAdvice(check: ShellCommand, advice: string): ShellCommand {
  return sh`${check} || { rc=$?; echo ${advice} >&2; exit $rc; }`;
}

type HostOf = (ctx: StepContext<any>) => string;

/**
 * What `ovs monitor services` shows, asked once of the node's own service manager (the monitor is a
 * loop that never ends): the framework's services the node should run (ovs-services.ts), in one
 * check. Its capture lists every service the manager answered for (`missing` is the comparison's).
 */
function frameworkServices(node: HostOf): Pick<SshStep, 'command' | 'variant' | 'reference' | 'okExitCodes' | 'capture'> {
  const check = (ctx: StepContext) => {
    const h = ctx.host(node(ctx));
    return checkServices(ctx.facts(h.name), expectedServices(h).map((s) => s.name), servicePaths(h.vars));
  };
  // systemctl list-units and initctl list exit 0 whatever the services' states; initctl status of a single job 1 when unknown.
  return { command: (ctx) => check(ctx).command, variant: (ctx) => check(ctx).variant, reference: 'ovs monitor services', okExitCodes: [0, 1], capture: serviceStates() };
}

/**
 * The page's `service <name> status` of memcached, nginx or rabbitmq-server: a systemd unit on the
 * systemd releases; on Ubuntu 14.04 the Debian package's init script, which upstart runs through its
 * SysV compatibility (`initctl` does not know it).
 */
function systemService(node: HostOf, name: string): Pick<SshStep, 'command' | 'variant' | 'reference' | 'okExitCodes' | 'capture'> {
  const check = (ctx: StepContext) => {
    const h = ctx.host(node(ctx));
    const facts = ctx.facts(h.name);
    return checkServices(facts, [facts.init === 'upstart' ? { name, initd: true } : name], servicePaths(h.vars));
  };
  return { command: (ctx) => check(ctx).command, variant: (ctx) => check(ctx).variant, reference: `service ${name} status`, okExitCodes: checkExitCodes([name]), capture: serviceStates([name]) };
}

/** `ovs-workers active (running)`: a service's state in its manager's words. */
const stateLine = (s: { name: string; raw: string }) => `${s.name}: ${s.raw}`;

/**
 * The framework's services of a node against what it should run, from the capture of a
 * frameworkServices step (and the later check of a restarted service, when given). Lists each; fails
 * naming what is not running, with the page's advice in its order of fixing.
 */
function compareServices(h: InventoryHost, found: ServiceStatus[], later: ServiceStatus[] = [], system: ServiceStatus[] = []): string {
  const byName = new Map([...found, ...later].map((s) => [s.name, s]));
  const rows = expectedServices(h).map((e) => ({ ...e, status: byName.get(e.name) ?? { name: e.name, state: 'missing' as const, raw: 'not listed by the service manager' } }));
  const bad = [...rows.filter((r) => !r.optional && r.status.state !== 'running').map((r) => r.status), ...system.filter((s) => s.state !== 'running')];
  if (bad.length === 0) {
    // Only an optional service can be other than running here.
    const lines = [...rows, ...system.map((status) => ({ status, optional: undefined }))].map((r) => (r.status.state === 'running' ? `running  ${stateLine(r.status)}` : `absent   ${stateLine(r.status)} (${r.optional})`));
    return `Every service of ${describeNode(h)} runs:\n${lines.join('\n')}`;
  }
  const advice = [
    bad.some((s) => MASTER_SYSTEM_SERVICES.includes(s.name)) && ADVICE_NGINX_MEMCACHED_RABBIT,
    bad.some((s) => s.name.startsWith('ovs-arakoon-')) && ADVICE_ARAKOON,
    bad.some((s) => s.name === 'ovs-workers') && ADVICE_CELERY,
    bad.some((s) => /^ovs-(volumedriver|dtl|albaproxy)_/.test(s.name)) && ADVICE_VPOOL,
  ].filter(Boolean);
  throw new Error(`not running or missing on ${describeNode(h)}: ${bad.map(stateLine).join('; ')}.${advice.length ? ` ${advice.join(' ')}` : ''}`);
}

export const services = procedure({
  pack: 'ovs',
  name: 'services',
  summary: "Check the node's Open vStorage services, one shot through its own service manager, against the services the framework installs for its role, release line and vPools",
  usage: 'ovs services <node>',
  examples: ['ovs services node-4'],
  source: `${TROUBLESHOOTING} (The Open vStorage services)`,
  requires: { host: 'systemd, upstart or init.d scripts; vars.role, vars.vpools and vars.ovsRelease name the services', checked: CHECKED },
  args: z.object({ node: z.string().min(1) }),
  positional: ['node'],
  hosts: { node: { groups: ['ovs'] } },
  steps: [
    detectFacts({ host: node }),
    { kind: 'ssh', id: 'services', title: (ctx) => `List the Open vStorage services of ${describeNode(ctx.host(ctx.args.node))}`, risk: 'read', host: node, ...frameworkServices(node) },
    {
      kind: 'report',
      id: 'compare',
      title: 'Compare them with the services the framework installs on such a node',
      risk: 'read',
      text: (ctx) => compareServices(ctx.host(ctx.args.node), ctx.capture<ServiceStatus[]>('services')),
    },
  ],
});

/**
 * What `ovs collect logs` prints, by era: 2015-03 → 2018 the archive's path (`/tmp/ovs-<host>-<time>-logs.tar.gz`),
 * the 2019 click CLI `Files stored in /tmp/ovs-<router>-<time>-logs.tar`; the page's
 * `/var/tmp/ovs-{hostname}-logs.tar` is 2014's.
 */
const ARCHIVE = /(?<archive>\/(?:var\/)?tmp\/ovs-\S+-logs\.tar(?:\.gz)?)\s*$/m;

export const collectLogs = procedure({
  pack: 'ovs',
  name: 'collect-logs',
  summary: 'Gather all required logfiles of a node into an archive (ovs collect logs) and attach it to the thread',
  usage: 'ovs collect-logs <node>',
  examples: ['ovs collect-logs node-2'],
  source: `${TROUBLESHOOTING} (Open vStorage Logs)`,
  requires: { host: 'the ovs launcher (`ovs collect logs`: /tmp/ovs-<host>-<time>-logs.tar.gz since 2015, `Files stored in /tmp/ovs-<router>-<time>-logs.tar` with the 2019 click CLI), tar, gzip and cat', checked: CHECKED },
  args: z.object({ node: z.string().min(1) }),
  positional: ['node'],
  hosts: { node: { groups: ['ovs'] } },
  steps: [
    {
      kind: 'ssh',
      id: 'collect',
      title: 'Gather all required logfiles into an archive',
      risk: 'write',
      host: node,
      command: sh`ovs collect logs`,
      capture: parse.regex<{ archive: string }>(ARCHIVE),
      attach: (ctx) => ctx.capture<{ archive: string }>('collect').archive,
      // tar and gzip of every log of the node.
      timeoutMs: 15 * 60_000,
    },
  ],
});

const DB_NAME = z.string().regex(/^[A-Za-z0-9_-]+$/, 'an Arakoon database name is letters, digits, "_" or "-" (e.g. ovsdb, voldrv)');
/** The page's command, in the etcd era it was written in. */
const pageWhoMaster = (db: string) => `arakoon --who-master -config etcd://127.0.0.1:2379/ovs/arakoon/${db}/config`;
/** Which configuration store a URL is of, said in the plan. */
const storeOf = (url: string) => (url.startsWith('etcd://') ? 'configuration in etcd (2016 releases)' : url.startsWith('arakoon://') ? 'configuration in the Arakoon cluster of arakoon_cacc.ini' : 'configuration in a file');

/**
 * The node's Arakoon clusters and their configuration URLs, read through the framework (detect its
 * Python first): the steps `detect` and `clusters` on `host`.
 */
function arakoonSteps(host: (ctx: StepContext<any>) => string): Step[] {
  return [
    detectFacts({ host }),
    {
      kind: 'ssh',
      id: 'clusters',
      title: (ctx) => `Read the Arakoon databases and their configuration from ${host(ctx)}`,
      risk: 'read',
      host,
      guard: (ctx) => needsPython(ctx, host(ctx)),
      command: (ctx) => frameworkPython(ctx, host(ctx)),
      stdin: ARAKOON_CLUSTERS,
      variant: (ctx) => pythonVariant(ctx, host(ctx)),
      reference: 'ovs config list /ovs/arakoon',
      capture: scriptJson<ArakoonClusters>('the Arakoon clusters', (a) => (Array.isArray(a?.clusters) && typeof a.storagerouters === 'object' ? undefined : "the script's answer has no clusters and storagerouters")),
    },
  ];
}

/** `arakoon --who-master` of one database, with the URL the node's framework gives it. */
function whoMasterStep(id: string, host: (ctx: StepContext<any>) => string, db: (ctx: StepContext<any>) => string): Step {
  const url = (ctx: StepContext) => {
    const c = ctx.capture<ArakoonClusters>('clusters').clusters.find((x) => x.name === db(ctx));
    if (c === undefined) throw new Error(`no Arakoon cluster ${db(ctx)}`);
    return c.url;
  };
  return {
    kind: 'ssh',
    id,
    title: (ctx) => `Which node is the master of the Arakoon database ${db(ctx)}`,
    risk: 'read',
    host,
    guard: (ctx) => {
      const names = ctx.capture<ArakoonClusters>('clusters').clusters.map((c) => c.name);
      return names.includes(db(ctx)) ? undefined : `${host(ctx)}'s configuration has no Arakoon database "${db(ctx)}"; it has ${names.join(', ') || 'none'}`;
    },
    command: (ctx) => withAdvice(sh`arakoon --who-master -config ${url(ctx)}`, ADVICE_ARAKOON),
    reference: (ctx) => pageWhoMaster(db(ctx)),
    variant: (ctx) => storeOf(url(ctx)),
    capture: parse.text(),
  };
}

/** The master's machine id, and the Storage Router it is. */
function masterName(ctx: StepContext, whoMaster: string): string {
  const id = ctx.capture<string>(whoMaster);
  const name = ctx.capture<ArakoonClusters>('clusters').storagerouters[id];
  return name ? `${name} (machine id ${id})` : `machine id ${id}, which is no Storage Router of the framework's model`;
}

export const whoMaster = procedure({
  pack: 'ovs',
  name: 'who-master',
  summary: 'Ask which node is the master of an Arakoon database (a typical issue is the lack of a master)',
  usage: 'ovs who-master <database> [--node <node>]',
  examples: ['ovs who-master ovsdb', 'ovs who-master voldrv --node node-2'],
  source: `${SOURCE} (Restart an environment: the Arakoon databases)`,
  requires: { host: `${FRAMEWORK_HOST}; the arakoon client`, checked: CHECKED },
  args: z.object({ database: DB_NAME, node: z.string().optional() }),
  positional: ['database'],
  hosts: { node: { groups: ['ovs'] } },
  resolve: async (args, { inventory }) => {
    if (args.node) return args;
    const first = masters(inventory)[0] ?? inventory.inGroups(['ovs'])[0];
    if (!first) throw new UsageError('runbook.yaml has no host in @ovs');
    return { ...args, node: first.name };
  },
  steps: [
    ...arakoonSteps((ctx) => ctx.args.node!),
    whoMasterStep('who-master', (ctx) => ctx.args.node!, (ctx) => ctx.args.database),
    { kind: 'report', id: 'master', title: (ctx) => `The master of ${ctx.args.database}`, risk: 'read', text: (ctx) => `The master of the Arakoon database ${ctx.args.database} is ${masterName(ctx, 'who-master')}.` },
  ],
});

/** A node just powered on: poll until it answers SSH (a check that cannot connect counts as "not yet"). */
const waitForSsh: PollStep = {
  kind: 'poll',
  id: 'ssh',
  title: (ctx) => `Wait until ${itemNode(ctx)} answers SSH`,
  risk: 'read',
  host: itemNode,
  command: sh`true`,
  capture: parse.text(),
  until: () => true,
  untilReachable: true,
  intervalMs: 5_000,
  timeoutMs: 15 * 60_000,
  waiting: (ctx) => `${itemNode(ctx)} does not answer SSH yet; checking again in 5 seconds`,
};

/** The state of one service a check named (serviceStates gives one entry per service asked). */
const stateOf = (ctx: StepContext, stepId: string) => ctx.capture<ServiceStatus[]>(stepId)[0]!;

/** `restart ovs-workers` with the host's manager; the page's advice when it fails. */
function restartWorkersStep(id: string, title: string, host: HostOf, when?: Step['when']): Step {
  const restart = serviceAction(host, 'restart', ['ovs-workers']);
  return {
    kind: 'ssh',
    id,
    title,
    risk: 'write',
    host,
    ...(when ? { when } : {}),
    ...restart,
    command: (ctx: StepContext) => withAdvice((restart.command as (c: StepContext) => ShellCommand)(ctx), ADVICE_CELERY),
  };
}

export const restartWorkers = procedure({
  pack: 'ovs',
  name: 'restart-workers',
  summary: 'Restart the Celery workers of a node (restart ovs-workers, through its service manager) and check that they run',
  usage: 'ovs restart-workers <node>',
  examples: ['ovs restart-workers node-4'],
  source: `${SOURCE} (Restart an environment: "In case there is an issue with Celery")`,
  requires: { host: 'systemd, upstart or init.d scripts', checked: CHECKED },
  args: z.object({ node: z.string().min(1) }),
  positional: ['node'],
  hosts: { node: { groups: ['ovs'] } },
  steps: [
    detectFacts({ host: node }),
    { kind: 'ssh', id: 'status', title: 'Are the workers running (status ovs-workers)', risk: 'read', host: node, ...serviceCheck(node, ['ovs-workers']) },
    // A stopped job is started: upstart's own `restart` refuses it ("Unknown instance"), services.ts does not.
    restartWorkersStep('restart', 'If needed, restart the workers', node),
    { kind: 'ssh', id: 'check', title: 'Check that ovs-workers runs (status ovs-workers)', risk: 'read', host: node, ...serviceCheck(node, ['ovs-workers']) },
    {
      kind: 'report',
      id: 'running',
      title: 'The workers run again',
      risk: 'read',
      text: (ctx) => {
        const s = stateOf(ctx, 'check');
        if (s.state !== 'running') throw new Error(`ovs-workers is ${s.raw} after the restart on ${ctx.args.node}. ${ADVICE_CELERY}`);
        return `ovs-workers on ${ctx.args.node}: ${s.raw} (was ${stateOf(ctx, 'status').raw})`;
      },
    },
  ],
});

/** Log names of the troubleshooting page: the Framework's, and the Volumedriver's per vPool. */
const FRAMEWORK_LOGS = ['api.log', 'arakoon.log', 'celery.log', 'dal.log', 'django.log', 'extensions.log', 'lib.log'];
const VOLUMEDRIVER_LOG = /^(?:foc_)?([A-Za-z0-9_-]+)\.log$/;

type TailArgs = { node: string; log: string; lines?: number | undefined };

/** The page's path of a log: /var/log/ovs/ for the Framework, /var/log/ovs/volumedriver/ for the Volumedriver. */
function logPath(ctx: StepContext<TailArgs>): string {
  if (FRAMEWORK_LOGS.includes(ctx.args.log)) return `/var/log/ovs/${ctx.args.log}`;
  return `/var/log/ovs/volumedriver/${ctx.args.log}`;
}

/**
 * The service that writes a log of the page when the framework logs to its service manager: the API
 * and Django run in ovs-webapp-api, the rest of the Framework in the Celery workers; the Volumedriver
 * of a vPool is ovs-volumedriver_<vpool>, its Failover Cache ovs-dtl_<vpool> since 2015-09.
 */
function unitOf(log: string): string {
  if (log === 'api.log' || log === 'django.log') return 'ovs-webapp-api';
  if (FRAMEWORK_LOGS.includes(log)) return 'ovs-workers';
  const vpool = VOLUMEDRIVER_LOG.exec(log)?.[1] ?? '';
  return log.startsWith('foc_') ? `ovs-dtl_${vpool}` : `ovs-volumedriver_${vpool}`;
}

/** `/ovs/framework/logging`: `{"type": "console"}` (the framework's default), `file` or `redis`. */
interface LoggingTarget {
  type: string;
  host?: string;
  port?: number;
}

const loggingTarget: Parser<LoggingTarget> = {
  name: 'the logging target',
  parse: (s) => {
    // The launcher prints nothing for a key that is not set: the framework then logs to the console.
    if (s.trim() === '') return { type: 'console' };
    const t = JSON.parse(s) as LoggingTarget;
    if (typeof t?.type !== 'string') throw new Error(`/ovs/framework/logging has no type: ${s.trim().slice(0, 200)}`);
    return t;
  },
};

const lines = (ctx: StepContext<TailArgs>) => ctx.args.lines ?? 100;

/** Where the log is, by the framework's logging target and the host's service manager; undefined when nowhere a shell can read. */
function tailCommand(ctx: StepContext<TailArgs>): { command: ShellCommand; variant: string } | undefined {
  const target = ctx.capture<LoggingTarget>('logging');
  if (target.type === 'file') return { command: sh`tail -n ${lines(ctx)} ${logPath(ctx)}`, variant: 'logging to files' };
  if (target.type !== 'console') return undefined;
  const unit = unitOf(ctx.args.log);
  const init = ctx.facts(ctx.args.node).init;
  if (init === 'systemd') return { command: sh`journalctl -u ${unit} -n ${lines(ctx)} --no-pager`, variant: `logging to the console: the systemd journal of ${unit}` };
  if (init === 'upstart') return { command: sh`tail -n ${lines(ctx)} ${`/var/log/upstart/${unit}.log`}`, variant: `logging to the console: upstart's log of ${unit}` };
  return undefined;
}

export const tail = procedure({
  pack: 'ovs',
  name: 'tail',
  summary: "Show the end of an Open vStorage log of a node: where the framework writes it (/var/log/ovs/, the systemd journal or upstart's log)",
  usage: 'ovs tail <node> <log> [--lines N]',
  examples: ['ovs tail node-1 celery.log', 'ovs tail node-4 vpool1.log --lines 50'],
  source: `${TROUBLESHOOTING} (Open vStorage Logs)`,
  requires: { host: 'the ovs launcher (`ovs config get`), and where the framework logs: tail for files, journalctl on systemd, /var/log/upstart on upstart', checked: CHECKED },
  args: z.object({
    node: z.string().min(1),
    log: z
      .string()
      .refine((l) => FRAMEWORK_LOGS.includes(l) || VOLUMEDRIVER_LOG.test(l), `the logs are ${FRAMEWORK_LOGS.join(', ')}, and per vPool <vpool>.log (Volumedriver) and foc_<vpool>.log (Failover Cache)`),
    lines: z.number().int().min(1).max(10_000).optional(),
  }),
  positional: ['node', 'log'],
  hosts: { node: { groups: ['ovs'] } },
  guard: (ctx) => {
    if (FRAMEWORK_LOGS.includes(ctx.args.log)) return undefined;
    const vpool = VOLUMEDRIVER_LOG.exec(ctx.args.log)?.[1] ?? '';
    const vpools = vpoolsOf(ctx.host(ctx.args.node));
    return vpools.includes(vpool) ? undefined : `${ctx.args.node} serves no vPool "${vpool}" (its vPools: ${vpools.join(', ') || 'none'}); the Volumedriver logs are <vpool>.log and foc_<vpool>.log`;
  },
  steps: [
    detectFacts({ host: node }),
    {
      kind: 'ssh',
      id: 'logging',
      title: 'Where does the framework log (ovs config get /ovs/framework/logging)',
      risk: 'read',
      host: node,
      command: sh`ovs config get /ovs/framework/logging`,
      capture: loggingTarget,
    },
    {
      kind: 'ssh',
      id: 'tail',
      title: (ctx) => `Show the end of ${ctx.args.log}`,
      risk: 'read',
      host: node,
      guard: (ctx) => {
        if (tailCommand(ctx)) return undefined;
        const t = ctx.capture<LoggingTarget>('logging');
        return t.type === 'redis'
          ? `${ctx.args.node}'s framework logs to Redis (${t.host ?? '?'}:${t.port ?? '?'}), not to a file or its service manager: read ${ctx.args.log} there`
          : `${ctx.args.node}'s framework logs to "${t.type}" under ${ctx.facts(ctx.args.node).init === 'sysv' ? 'init.d scripts, which keep no log of their own' : 'a service manager the bot does not know'}`;
      },
      command: (ctx) => tailCommand(ctx)!.command,
      variant: (ctx) => tailCommand(ctx)!.variant,
      reference: (ctx) => sh`tail -n ${lines(ctx)} ${logPath(ctx)}`.display,
    },
  ],
});

type NodeItem = string;
/** The first master node: where the cluster-wide checks ask. */
const firstMaster = (ctx: StepContext) => masters(ctx.inventory)[0]!.name;
const host = (ctx: StepContext) => ctx.host(itemNode(ctx));
/** A master-only check inside the per-node checks. */
const onMaster = (ctx: StepContext) => isMaster(host(ctx));

/** One service check of the page on a master: `service <name> status`, with the host's manager. */
function serviceStatus(id: string, name: string): Step {
  return { kind: 'ssh', id, title: `service ${name} status`, risk: 'read', host: itemNode, when: onMaster, ...systemService(itemNode, name) };
}

export const restart = procedure({
  pack: 'ovs',
  name: 'restart',
  summary: 'Restart an Open vStorage environment: the backend, the masters one by one, the extras, then the checks of the page',
  usage: 'ovs restart',
  examples: ['ovs restart'],
  source: `${SOURCE} (Restart an environment)`,
  requires: { host: `systemd, upstart or init.d scripts; rabbitmqctl on masters; ${FRAMEWORK_HOST} and the arakoon client on the first master`, checked: CHECKED },
  args: z.object({}),
  positional: [],
  locks: (ctx) => ctx.inventory.inGroups(['ovs']).map((h) => ({ host: h.name, mode: 'write' as const })),
  steps: [
    {
      kind: 'manual',
      id: 'backend',
      title: 'Restart the backend storage nodes (if applicable)',
      risk: 'write',
      instructions: 'Restart the backend storage nodes (if applicable), then press Done. The inventory does not list them, so the bot cannot.',
    },
    {
      kind: 'forEach',
      id: 'masters',
      title: 'Start all master nodes one by one',
      risk: 'write',
      items: (ctx) => masters(ctx.inventory).map((h) => h.name),
      key: (n: NodeItem) => n,
      concurrency: 1,
      steps: [
        {
          kind: 'manual',
          id: 'power-on',
          title: (ctx) => `Start master node ${itemNode(ctx)}`,
          risk: 'write',
          instructions: (ctx) => `Start (power on) the master node ${itemNode(ctx)}, then press Done; the bot then waits until it answers SSH before the next master ("one by one").`,
        },
        waitForSsh,
      ],
    },
    {
      kind: 'manual',
      id: 'extras-power-on',
      title: 'Start all extra nodes',
      risk: 'write',
      when: (ctx) => extras(ctx.inventory).length > 0,
      instructions: (ctx) => `Start (power on) all extra nodes: ${extras(ctx.inventory).map((h) => h.name).join(', ')}, then press Done.`,
    },
    {
      kind: 'forEach',
      id: 'extras',
      title: 'Wait until every extra node answers SSH',
      risk: 'read',
      items: (ctx) => extras(ctx.inventory).map((h) => h.name),
      key: (n: NodeItem) => n,
      concurrency: 8,
      steps: [
        waitForSsh,
      ],
    },
    {
      kind: 'forEach',
      id: 'checks',
      title: 'Login with ssh into each node and check whether all services are running',
      risk: 'write',
      items: (ctx) => ctx.inventory.inGroups(['ovs']).map((h) => h.name),
      key: (n: NodeItem) => n,
      concurrency: 6,
      steps: [
        detectFacts({ host: itemNode }),
        { kind: 'ssh', id: 'monitor', title: 'ovs monitor services', risk: 'read', host: itemNode, ...frameworkServices(itemNode) },
        serviceStatus('memcached', 'memcached'),
        serviceStatus('nginx', 'nginx'),
        serviceStatus('rabbitmq', 'rabbitmq-server'),
        { kind: 'ssh', id: 'cluster-status', title: 'rabbitmqctl cluster_status', risk: 'read', host: itemNode, when: onMaster, command: withAdvice(sh`rabbitmqctl cluster_status`, ADVICE_NGINX_MEMCACHED_RABBIT) },
        { kind: 'ssh', id: 'list-queues', title: 'rabbitmqctl list_queues', risk: 'read', host: itemNode, when: onMaster, command: withAdvice(sh`rabbitmqctl list_queues`, ADVICE_NGINX_MEMCACHED_RABBIT) },
        restartWorkersStep('restart-workers', 'The Celery workers are down: restart the workers', itemNode, (ctx) => ctx.capture<ServiceStatus[]>('monitor').find((s) => s.name === 'ovs-workers')?.state !== 'running'),
        { kind: 'ssh', id: 'workers', title: 'Check that the workers run again', risk: 'read', host: itemNode, when: (ctx) => ctx.status('restart-workers') === 'succeeded', ...serviceCheck(itemNode, ['ovs-workers']) },
        {
          kind: 'report',
          id: 'all-running',
          title: 'Check that every service the framework installs on this node runs',
          risk: 'read',
          text: (ctx) =>
            compareServices(
              host(ctx),
              ctx.capture<ServiceStatus[]>('monitor'),
              ctx.status('workers') === 'succeeded' ? ctx.capture<ServiceStatus[]>('workers') : [],
              onMaster(ctx) ? ['memcached', 'nginx', 'rabbitmq'].flatMap((id) => ctx.capture<ServiceStatus[]>(id)) : [],
            ),
        },
      ],
    },
    {
      kind: 'group',
      id: 'arakoon',
      title: 'Next, address issues with the Arakoon databases: check that each has a master',
      risk: 'read',
      steps: [
        ...arakoonSteps(firstMaster),
        {
          kind: 'forEach',
          id: 'databases',
          title: 'arakoon --who-master of each Arakoon database',
          risk: 'read',
          items: (ctx) => ctx.capture<ArakoonClusters>('clusters').clusters.map((c) => c.name),
          key: (db: string) => db,
          concurrency: 4,
          steps: [whoMasterStep('who-master', firstMaster, (ctx) => forEachItem<string>(ctx))],
        },
      ],
    },
    {
      kind: 'forEach',
      id: 'vpools',
      title: 'Move down the stack to verify if the vPool is functioning',
      risk: 'write',
      items: (ctx) => ctx.inventory.inGroups(['ovs']).flatMap((h) => vpoolsOf(h).map((vpool) => ({ node: h.name, vpool }))),
      key: (x: { node: string; vpool: string }) => `${x.node}.${x.vpool}`,
      label: (x: { node: string; vpool: string }) => `${x.vpool} on ${x.node}`,
      concurrency: 6,
      steps: [
        {
          kind: 'ssh',
          id: 'truncate',
          title: (ctx) => `truncate -s 10G /mnt/${forEachItem<{ vpool: string }>(ctx).vpool}/test.raw`,
          risk: 'write',
          host: (ctx) => forEachItem<{ node: string }>(ctx).node,
          command: (ctx) => withAdvice(sh`truncate -s 10G ${`/mnt/${forEachItem<{ vpool: string }>(ctx).vpool}/test.raw`}`, ADVICE_VPOOL),
        },
        {
          kind: 'ssh',
          id: 'touch',
          title: (ctx) => `touch /mnt/${forEachItem<{ vpool: string }>(ctx).vpool}/myvm.xml`,
          risk: 'write',
          host: (ctx) => forEachItem<{ node: string }>(ctx).node,
          command: (ctx) => withAdvice(sh`touch ${`/mnt/${forEachItem<{ vpool: string }>(ctx).vpool}/myvm.xml`}`, ADVICE_VPOOL),
        },
        {
          kind: 'ssh',
          id: 'clean-up',
          // Not on the page: the test files would stay, test.raw a 10 GiB vDisk of the vPool.
          title: (ctx) => `Remove the test files again from /mnt/${forEachItem<{ vpool: string }>(ctx).vpool}`,
          risk: 'write',
          host: (ctx) => forEachItem<{ node: string }>(ctx).node,
          command: (ctx) => sh`rm -f ${`/mnt/${forEachItem<{ vpool: string }>(ctx).vpool}/test.raw`} ${`/mnt/${forEachItem<{ vpool: string }>(ctx).vpool}/myvm.xml`}`,
        },
      ],
    },
  ],
});

export const ovsPack = [flush, shutdown, restart, services, collectLogs, whoMaster, restartWorkers, tail];
