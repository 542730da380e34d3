import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { Inventory } from '../inventory.js';
import { forEachItem, parse, procedure, sh, type LockSpec, type Step, type StepContext } from './dsl.js';
import { controller, type Server } from './nova.js';

const MAINTENANCE = 'runbooks/openstack-maintenance-failures.txt';
const RECOVERY = 'runbooks/openstack-compute-node-recovery.rst';

const serverTable = parse.matches<Record<keyof Server, string>>(/^\|\s*(?<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s*\|\s*(?<name>[^|]*?)\s*\|\s*(?<status>[^|]*?)\s*\|\s*[^|]*?\s*\|\s*(?<power>[^|]*?)\s*\|/m);

/** The first host of a group, for procedures whose host may be left out. */
function firstIn(inventory: Inventory, group: string): string {
  const h = inventory.inGroups([group])[0];
  if (!h) throw new UsageError(`no host in @${group} in runbook.yaml`);
  return h.name;
}

type HostArgs = { host?: string | undefined };
const host = (ctx: StepContext<HostArgs>) => ctx.args.host!;

/** `ps aux | grep <pattern>`: the step fails (grep exits 1) when no such process runs. */
const psGrep = (id: string, pattern: string, what: string): Step<HostArgs> => ({
  kind: 'ssh',
  id,
  title: `Is ${what} running? (ps aux | grep ${pattern})`,
  risk: 'read',
  host,
  command: sh`ps aux | grep ${pattern}`,
  capture: parse.lines(),
});

/** "After a Cloud Controller or Storage Proxy Reboots": the processes, then the clients. */
export const checkController = procedure({
  pack: 'cloud',
  name: 'check-controller',
  summary: 'After a cloud controller reboots: are nova, glance, keystone and cinder running and working?',
  usage: 'cloud check-controller [<host>]',
  examples: ['cloud check-controller', 'cloud check-controller controller'],
  source: `${MAINTENANCE} (After a Cloud Controller or Storage Proxy Reboots)`,
  args: z.object({ host: z.string().optional() }),
  positional: ['host'],
  hosts: { host: { groups: ['controller'] } },
  resolve: async (args, { inventory }) => ({ ...args, host: args.host ?? firstIn(inventory, 'controller') }),
  notes: () => ['The lab runs the clients with the credentials of the host; on a real controller, "source openrc" comes first.'],
  steps: [
    psGrep('nova', 'nova-', 'nova'),
    psGrep('glance', 'glance-', 'glance'),
    psGrep('keystone', 'keystone', 'keystone'),
    psGrep('cinder', 'cinder', 'cinder'),
    { kind: 'ssh', id: 'glance-index', title: 'Check that all services are functioning: glance index', risk: 'read', host, command: sh`glance index` },
    { kind: 'ssh', id: 'nova-list', title: 'nova list', risk: 'read', host, command: sh`nova list` },
    { kind: 'ssh', id: 'project-list', title: 'openstack project list', risk: 'read', host, command: sh`openstack project list` },
  ],
});

/** The storage proxy after a reboot: has the Object Storage service resumed, and does it work? */
export const checkStorage = procedure({
  pack: 'cloud',
  name: 'check-storage',
  summary: 'After a storage proxy reboots: is the Object Storage service running and functioning?',
  usage: 'cloud check-storage [<host>]',
  examples: ['cloud check-storage'],
  source: `${MAINTENANCE} (After a Cloud Controller or Storage Proxy Reboots)`,
  args: z.object({ host: z.string().optional() }),
  positional: ['host'],
  hosts: { host: { groups: ['swift-proxy'] } },
  resolve: async (args, { inventory }) => ({ ...args, host: args.host ?? firstIn(inventory, 'swift-proxy') }),
  steps: [
    psGrep('swift', 'swift', 'the Object Storage service'),
    { kind: 'ssh', id: 'stat', title: 'Also check that it is functioning: swift stat', risk: 'read', host, command: sh`swift stat` },
  ],
});

/**
 * The page's files: the database connection of nova, glance, cinder and keystone. The password part
 * of each URL is replaced on the host, before the output leaves it, so it is in no event, log or
 * stored output.
 */
const CONFIG_FILES = ['/etc/nova/nova.conf', '/etc/glance/glance-*.conf', '/etc/cinder/cinder.conf', '/etc/keystone/keystone.conf'];

export const dbConnections = procedure({
  pack: 'cloud',
  name: 'db-connections',
  summary: 'Show how nova, glance, cinder and keystone reach their databases (passwords masked)',
  usage: 'cloud db-connections [<host>]',
  examples: ['cloud db-connections'],
  source: `${MAINTENANCE} (Database Connectivity)`,
  args: z.object({ host: z.string().optional() }),
  positional: ['host'],
  hosts: { host: { groups: ['controller'] } },
  resolve: async (args, { inventory }) => ({ ...args, host: args.host ?? firstIn(inventory, 'controller') }),
  notes: () => ['The connection strings take this format: mysql+pymysql://<username>:<password>@<hostname>/<database name>; the password is shown as ***.'],
  steps: [
    {
      kind: 'ssh',
      id: 'grep',
      title: 'Display the SQL connection string for nova, glance, cinder, and keystone',
      risk: 'read',
      host,
      // The glob stays a word for the remote shell (the lab's grep expands it in the host's files).
      command: sh`grep -hE ${'connection ?='} ${CONFIG_FILES} | sed -E ${'s#(://[^:/@]+):[^@]*@#\\1:***@#'}`,
      capture: parse.map(parse.lines(), (lines) => {
        if (lines.length === 0) throw new Error('no connection string was found in the configuration files');
        // Refuse to keep anything that still looks like a password, whatever the sed did.
        if (lines.some((l) => /:\/\/[^:/@]+:(?!\*\*\*@)[^@]*@/.test(l))) throw new Error('a connection string still shows a password');
        return lines;
      }),
    },
  ],
});

interface SavedVolume {
  volume: string;
  instance: string;
  mount_point: string;
}
const saved = (ctx: StepContext) => ctx.capture<SavedVolume[]>('saved');
const volumeCount = (ctx: StepContext) => Number(ctx.capture<{ total: number }[]>('count')[0]?.total ?? 0);
const atMostAll = (ctx: StepContext) => ({ max: volumeCount(ctx) });
const PREVIEW = { statement: 'select id, display_name, status, attach_status, mountpoint, instance_id from volumes' };

/**
 * "Recover cloud after disaster", Begin recovery, in the page's order (it warns: do not add steps or
 * change their order): note the volume attachments, clean cinder's stalled state, reboot every
 * instance once, reattach the volumes from the saved list, then reboot from inside where needed.
 */
export const recoverVolumes = procedure({
  pack: 'cloud',
  name: 'recover-volumes',
  summary: "After a power loss: clean cinder's stalled volume state, restart every instance once, reattach the volumes",
  usage: 'cloud recover-volumes',
  examples: ['cloud recover-volumes'],
  source: `${RECOVERY} (Recover cloud after disaster: Begin recovery)`,
  args: z.object({}),
  positional: [],
  locks: (ctx) => [{ host: controller(ctx), mode: 'write' }],
  notes: () => ['Do not add any steps or change the order of steps in this procedure (the page\'s warning).'],
  steps: [
    { kind: 'ssh', id: 'volume-list', title: 'Check the current relationship between the volume and its instance (openstack volume list)', risk: 'read', host: controller, command: sh`openstack volume list` },
    {
      kind: 'sql',
      id: 'saved',
      title: 'Save the attached volumes (volume ID, instance, mount point), so that you can recreate the attachment',
      risk: 'read',
      database: 'cinder',
      statement: 'select id as volume, instance_uuid as instance, mountpoint as mount_point from volumes where attach_status = ? and instance_uuid is not null and deleted = 0',
      params: ['attached'],
      capture: true,
    },
    { kind: 'sql', id: 'count', title: 'Count the volumes (the bound of the updates)', risk: 'read', database: 'cinder', statement: 'select count(*) as total from volumes', capture: true },
    {
      kind: 'group',
      id: 'clean',
      title: 'Update the database to clean the stalled state, for every volume',
      risk: 'destructive',
      steps: [
        { kind: 'sql', id: 'mountpoint', title: 'update volumes set mountpoint=NULL', risk: 'destructive', database: 'cinder', statement: 'update volumes set mountpoint=NULL', expect: atMostAll, preview: PREVIEW },
        { kind: 'sql', id: 'status', title: 'update volumes set status="available" where status <>"error_deleting"', risk: 'destructive', database: 'cinder', statement: 'update volumes set status=? where status <> ?', params: ['available', 'error_deleting'], expect: atMostAll, preview: PREVIEW },
        { kind: 'sql', id: 'attach-status', title: 'update volumes set attach_status="detached"', risk: 'destructive', database: 'cinder', statement: 'update volumes set attach_status=?', params: ['detached'], expect: atMostAll, preview: PREVIEW },
        { kind: 'sql', id: 'instance-id', title: 'update volumes set instance_id=0', risk: 'destructive', database: 'cinder', statement: 'update volumes set instance_id=?', params: [0], expect: atMostAll, preview: PREVIEW },
      ],
    },
    { kind: 'ssh', id: 'volume-list-after', title: 'Use openstack volume list command to list all volumes', risk: 'read', host: controller, command: sh`openstack volume list` },
    { kind: 'ssh', id: 'servers', title: 'List the instances to restart', risk: 'read', host: controller, command: sh`nova list --all-tenants`, capture: serverTable },
    {
      kind: 'forEach',
      id: 'reboot',
      title: 'Restart the instances (once each: DO NOT reboot a second time)',
      risk: 'write',
      items: (ctx) => ctx.capture<Server[]>('servers'),
      key: (s: Server) => s.id,
      label: (s: Server) => s.name,
      concurrency: 1,
      steps: [
        {
          kind: 'ssh',
          id: 'server-reboot',
          title: (ctx) => `openstack server reboot ${forEachItem<Server>(ctx).name}`,
          risk: 'write',
          // Never again after a crash without a person's word: a second reboot is what the page forbids.
          idempotent: false,
          host: controller,
          command: (ctx) => sh`openstack server reboot ${forEachItem<Server>(ctx).id}`,
        },
      ],
    },
    {
      kind: 'forEach',
      id: 'reattach',
      title: 'Reattach the volumes to their respective instances, from the saved list',
      risk: 'write',
      items: saved,
      key: (v: SavedVolume) => v.volume,
      label: (v: SavedVolume) => `${v.volume} on ${v.instance}`,
      concurrency: 1,
      steps: [
        {
          kind: 'ssh',
          id: 'add-volume',
          title: (ctx) => `ATTACHING VOLUME FOR INSTANCE - ${forEachItem<SavedVolume>(ctx).instance}`,
          risk: 'write',
          host: controller,
          command: (ctx) => {
            const v = forEachItem<SavedVolume>(ctx);
            return sh`openstack server add volume ${v.instance} ${v.volume} --device ${v.mount_point}`;
          },
        },
      ],
    },
    {
      kind: 'manual',
      id: 'reboot-inside',
      title: 'Log in to the instances with SSH and reboot them',
      risk: 'write',
      instructions:
        'If some services depend on the volume or if a volume has an entry in fstab, you can now restart the instance. Restart directly from the instance itself and not through nova: # shutdown -r now. Press Done when this is done (or not needed).',
    },
  ],
});

/** The page's example service restoration priority list, with the services of each line. */
interface Tier {
  priority: number;
  services: string;
  /** Started and checked on the controller (`service <name> start`, then `status`). */
  controller?: string[];
  /** Started and checked on every compute node. */
  compute?: string[];
  /** What a person does and confirms (no command of the page does it). */
  manual?: string;
  /** A check the page asks for after this tier, done by a person. */
  check?: string;
}

export const PRIORITIES: readonly Tier[] = [
  { priority: 1, services: 'Internal network connectivity', manual: 'Restore internal network connectivity between the cloud hosts.' },
  { priority: 2, services: 'Backing storage services', manual: 'Restore the backing storage services.' },
  { priority: 3, services: 'Public network connectivity for user virtual machines', manual: 'Restore public network connectivity for user virtual machines.' },
  // nova-network's part is done by neutron-server in this cloud.
  { priority: 4, services: 'nova-compute, nova-network, cinder hosts', compute: ['nova-compute'], controller: ['neutron-server', 'cinder-volume'] },
  { priority: 5, services: 'User virtual machines', manual: 'Start the user virtual machines (for each compute node: nova after-reboot <host>).' },
  { priority: 10, services: 'Message queue and database services', controller: ['rabbitmq-server', 'mysql'], check: 'Just after starting the database, check its integrity.' },
  { priority: 15, services: 'Keystone services', controller: ['keystone'] },
  { priority: 20, services: 'cinder-scheduler', controller: ['cinder-scheduler'] },
  { priority: 21, services: 'Image Catalog and Delivery services', controller: ['glance-api', 'glance-registry'] },
  { priority: 22, services: 'nova-scheduler services', controller: ['nova-scheduler', 'nova-conductor'] },
  { priority: 98, services: 'cinder-api', controller: ['cinder-api'] },
  { priority: 99, services: 'nova-api services', controller: ['nova-api', 'nova-consoleauth', 'nova-novncproxy'], check: 'After starting the nova services, verify that the hypervisor matches the database and fix any mismatches.' },
  { priority: 100, services: 'Dashboard node', controller: ['apache2'] },
];

/** Start a service and check that it runs: `service <name> status` exits 0 only when it does. */
function startAndCheck(id: string, name: string, on: (ctx: StepContext) => string): Step[] {
  return [
    { kind: 'ssh', id: `start-${id}`, title: (ctx) => `service ${name} start on ${on(ctx)}`, risk: 'write', idempotent: true, host: on, command: sh`service ${name} start` },
    { kind: 'ssh', id: `check-${id}`, title: (ctx) => `${name} is running on ${on(ctx)}`, risk: 'read', host: on, command: sh`service ${name} status` },
  ];
}

const computes = (ctx: StepContext) => ctx.inventory.inGroups(['compute']).map((h) => h.name);

function tierSteps(t: Tier): Step[] {
  const steps: Step[] = [];
  if (t.manual) steps.push({ kind: 'manual', id: 'restore', title: t.services, risk: 'write', instructions: `${t.manual} Press Done when it is restored.` });
  for (const s of t.controller ?? []) steps.push(...startAndCheck(s, s, controller));
  for (const s of t.compute ?? []) {
    steps.push({
      kind: 'forEach',
      id: `on-computes-${s}`,
      title: `${s} on every compute node`,
      risk: 'write',
      items: computes,
      key: (h: string) => h,
      concurrency: 4,
      steps: startAndCheck(s, s, (ctx) => String(forEachItem(ctx))),
    });
  }
  if (t.check) steps.push({ kind: 'manual', id: 'check', title: t.check, risk: 'read', instructions: `${t.check} Press Done when it is checked.` });
  return steps;
}

/**
 * "Handling a Complete Failure": restore the services in the order of the example priority list,
 * each line started and checked before the next one starts.
 */
export const restore = procedure({
  pack: 'cloud',
  name: 'restore',
  summary: 'After a complete failure: restore the services in the order of the priority list, checking each before the next',
  usage: 'cloud restore',
  examples: ['cloud restore'],
  source: `${MAINTENANCE} (Handling a Complete Failure: Example service restoration priority list)`,
  args: z.object({}),
  positional: [],
  locks: (ctx): LockSpec[] => [controller(ctx), ...computes(ctx)].map((h) => ({ host: h, mode: 'write' })),
  notes: () => [
    'Despite being listed as a single-line item, each step requires significant work: restore user-affected services as soon as possible, but not before a stable environment is in place.',
    'Object Storage is not on the list: check it afterwards with cloud check-storage.',
  ],
  steps: PRIORITIES.map(
    (t): Step => ({
      kind: 'group',
      id: `priority-${t.priority}`,
      title: `${t.priority} ${t.services}`,
      risk: 'write',
      steps: tierSteps(t),
    }),
  ),
});

export const cloudPack = [checkController, checkStorage, dbConnections, recoverVolumes, restore];
