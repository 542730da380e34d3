import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { Inventory } from '../inventory.js';
import { detectFacts, forEachItem, parse, procedure, raw, sh, type LockSpec, type Step, type StepContext } from './dsl.js';
import { cinderShape, type CinderShape } from './nova.js';
import { client, clientVariant, controller, firstInGroup, MAINTENANCE, mustRun, needsCredentials, placeholders, processRuns, projectClients, RECOVERY, serverList, serversSettle, withCredentials, type Server } from './openstack.js';
import { serviceAction } from './services.js';

/** The first host of a group, for procedures whose host may be left out. */
function firstIn(inventory: Inventory, group: string): string {
  try {
    return firstInGroup(inventory, group, 'give the host');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type HostArgs = { host?: string | undefined };
const host = (ctx: StepContext<HostArgs>) => ctx.args.host!;

/** A client check on the host, with its credentials (the page's `# source openrc` first). */
const works = (id: string, title: string, commands: { nova?: ReturnType<typeof sh>; openstack: ReturnType<typeof sh> }, reference: string): Step<HostArgs> => ({
  kind: 'ssh',
  id,
  title,
  risk: 'read',
  host,
  command: (ctx) => withCredentials(ctx, host(ctx), commands.nova && projectClients(ctx, host(ctx)) ? commands.nova : commands.openstack),
  reference: `source openrc; ${reference}`,
  variant: (ctx) => clientVariant(ctx, host(ctx)),
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
  guard: (ctx) => needsCredentials(ctx, host(ctx)),
  steps: [
    processRuns('nova', 'Is nova running?', host, ['nova-api', 'nova-scheduler', 'nova-conductor', 'nova-novncproxy'], 'nova-'),
    processRuns('glance', 'Is glance running?', host, ['glance-api'], 'glance-'),
    processRuns('keystone', 'Is keystone running?', host, ['keystone'], 'keystone'),
    // The kernel keeps 15 characters of a name: cinder-scheduler is cinder-schedule.
    processRuns('cinder', 'Is cinder running?', host, ['cinder-api', 'cinder-schedule', 'cinder-volume'], 'cinder'),
    // glanceclient 0.14.0 removed `glance index` (1dfce53, 2014): image-list is its successor.
    works('glance-index', 'Check that all services are functioning: glance', { nova: sh`glance image-list`, openstack: sh`openstack image list` }, 'glance index'),
    works('nova-list', 'nova list', { nova: sh`nova list`, openstack: sh`openstack server list` }, 'nova list'),
    works('project-list', 'openstack project list', { openstack: sh`openstack project list` }, 'openstack project list'),
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
  guard: (ctx) => needsCredentials(ctx, host(ctx)),
  steps: [
    processRuns('swift', 'Is the Object Storage service running?', host, ['swift-proxy-ser'], 'swift'),
    // swiftclient reads OS_* (an openrc), not clouds.yaml: with clouds.yaml, openstack shows the same account.
    works('stat', 'Also check that it is functioning: swift stat', { nova: sh`swift stat`, openstack: sh`openstack object store account show` }, 'swift stat'),
  ],
});

/**
 * The page's files: the database connection of nova, glance, cinder and keystone. The glance glob is
 * left to the host's shell (quoted, grep would look for a file named `glance-*.conf`); comments,
 * such as the packages' `#connection = <None>`, are not connections. The password part of each URL is
 * replaced on the host, before the output leaves it, so it is in no event, log or stored output.
 */
const CONFIG_FILES = raw('/etc/nova/nova.conf /etc/glance/glance-*.conf /etc/cinder/cinder.conf /etc/keystone/keystone.conf');

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
      command: sh`grep -hE ${'^[[:space:]]*(sql_)?connection[[:space:]]*='} ${CONFIG_FILES} | sed -E ${'s#(://[^:/@]+):[^@]*@#\\1:***@#'}`,
      reference: 'grep -hE "connection ?=" /etc/nova/nova.conf /etc/glance/glance-*.conf /etc/cinder/cinder.conf /etc/keystone/keystone.conf',
      capture: parse.map(parse.lines(), (lines) => {
        if (lines.length === 0) throw new Error('no connection string was found in the configuration files');
        // Refuse to keep anything that still looks like a password, whatever the sed did.
        if (lines.some((l) => /:\/\/[^:/@]+:(?!\*\*\*@)[^@]*@/.test(l))) throw new Error('a connection string still shows a password');
        return lines;
      }),
    },
  ],
});

/** A volume as `openstack volume list --all-projects -f json -c ID -c Name -c Status -c "Attached to"` gives it. */
interface VolumeRow {
  ID: string;
  Name: string;
  Status: string;
  'Attached to': { server_id: string; device: string }[];
}
/** An attachment to recreate: the page's file of "volume instance mount_point" lines. */
interface SavedVolume {
  volume: string;
  instance: string;
  mount_point: string;
}
const saved = (ctx: StepContext) => ctx.capture<SavedVolume[]>('volume-list');
const savedIds = (ctx: StepContext) => saved(ctx).map((v) => v.volume);
const volumeCount = (ctx: StepContext) => Number(ctx.capture<{ total: number }[]>('count')[0]?.total ?? 0);
const atMostAll = (ctx: StepContext) => ({ max: volumeCount(ctx) });

type RecoverArgs = { cinder?: CinderShape | undefined };
const current = (ctx: StepContext<RecoverArgs>) => ctx.args.cinder !== 'volumes';

/**
 * "Recover cloud after disaster", Begin recovery, in the page's order (it warns: do not add steps or
 * change their order): note the volume attachments, clean the stalled state in the databases,
 * restart every instance once, reattach the volumes from the saved list, then reboot from inside
 * where needed.
 *
 * The page's four UPDATEs are for a cinder that kept the attachment in `volumes`; they run on the
 * tables this cloud has (read at intake): on Kilo and later the attachments are soft-deleted in
 * `volume_attachment` as cinder does it (VolumeAttachment.delete_values), and `instance_id` was never
 * a cinder column (nova-volume's, Essex). nova keeps its own record of each attachment
 * (block_device_mapping), and from nova 17.0.0 refuses to attach a volume it still has one for
 * (compute/api.py _check_volume_already_attached): those mappings are soft-deleted too.
 */
export const recoverVolumes = procedure({
  pack: 'cloud',
  name: 'recover-volumes',
  summary: "After a power loss: clean cinder's and nova's stalled volume state, restart every instance once, reattach the volumes",
  usage: 'cloud recover-volumes',
  examples: ['cloud recover-volumes'],
  source: `${RECOVERY} (Recover cloud after disaster: Begin recovery)`,
  args: z.object({ cinder: z.enum(['volume_attachment', 'volumes']).optional() }),
  positional: [],
  internal: ['cinder'],
  resolve: async (args, { query }) => ({ ...args, cinder: await cinderShape(query) }),
  locks: (ctx) => [{ host: controller(ctx), mode: 'write' }],
  guard: (ctx) => needsCredentials(ctx),
  notes: (ctx) => [
    "Do not add any steps or change the order of steps in this procedure (the page's warning).",
    ctx.args.cinder === undefined
      ? "cinder's tables could not be read at intake: volume_attachment (Kilo and later) is assumed."
      : current(ctx)
        ? 'cinder ≥ Kilo: the attachments are in volume_attachment, and are cleaned there.'
        : 'cinder before Kilo: the attachments are columns of volumes, as the page has them.',
  ],
  steps: [
    {
      kind: 'ssh',
      id: 'volume-list',
      title: 'Check the current relationship between the volume and its instance (openstack volume list), so that you can recreate the attachment',
      risk: 'read',
      host: controller,
      command: (ctx) => client(ctx, { openstack: sh`openstack volume list --all-projects -f json -c ID -c Name -c Status -c ${'Attached to'}` }),
      reference: 'openstack volume list',
      capture: parse.map(parse.json<VolumeRow[]>(), (rows) => rows.flatMap((v) => v['Attached to'].map((a) => ({ volume: v.ID, instance: a.server_id, mount_point: a.device })))),
    },
    { kind: 'sql', id: 'count', title: 'Count the volumes (the bound of the updates)', risk: 'read', database: 'cinder', statement: 'select count(*) as total from volumes where deleted = 0', capture: true },
    {
      kind: 'group',
      id: 'clean',
      title: 'Update the database to clean the stalled state, for every volume',
      risk: 'destructive',
      steps: [
        {
          kind: 'sql',
          id: 'mountpoint',
          title: 'update volumes set mountpoint=NULL',
          risk: 'destructive',
          database: 'cinder',
          statement: (ctx) =>
            current(ctx)
              ? "update volume_attachment set attach_status = 'detached', deleted = 1, deleted_at = UTC_TIMESTAMP(), detach_time = UTC_TIMESTAMP() where deleted = 0"
              : 'update volumes set mountpoint = NULL, attached_host = NULL, attach_time = NULL where deleted = 0',
          reference: 'update volumes set mountpoint=NULL;',
          variant: (ctx) => (current(ctx) ? 'cinder ≥ Kilo: volume_attachment' : 'cinder before Kilo: volumes'),
          preview: { statement: (ctx) => (current(ctx) ? 'select id, volume_id, instance_uuid, mountpoint, attach_status from volume_attachment where deleted = 0' : 'select id, display_name, mountpoint, attached_host from volumes where deleted = 0') },
        },
        {
          kind: 'sql',
          id: 'status',
          title: 'update volumes set status="available" where status <>"error_deleting"',
          risk: 'destructive',
          database: 'cinder',
          statement: 'update volumes set status = ? where status <> ? and deleted = 0',
          params: ['available', 'error_deleting'],
          expect: atMostAll,
          preview: { statement: 'select id, display_name, status, attach_status from volumes where deleted = 0' },
        },
        {
          kind: 'sql',
          id: 'attach-status',
          title: 'update volumes set attach_status="detached"',
          risk: 'destructive',
          database: 'cinder',
          statement: 'update volumes set attach_status = ? where deleted = 0',
          params: ['detached'],
          expect: atMostAll,
        },
        {
          kind: 'sql',
          id: 'instance-id',
          title: 'update volumes set instance_id=0',
          risk: 'destructive',
          // There is nothing to clear on Kilo and later: the instance was the attachment's.
          when: (ctx) => !current(ctx),
          database: 'cinder',
          statement: 'update volumes set instance_uuid = NULL where deleted = 0',
          reference: 'update volumes set instance_id=0;   # instance_id was never a cinder column: instance_uuid',
          expect: atMostAll,
        },
        {
          kind: 'sql',
          id: 'block-device-mappings',
          title: "Clean nova's record of the same attachments (block_device_mapping), or nova refuses to attach the volumes again",
          risk: 'destructive',
          when: (ctx) => saved(ctx).length > 0,
          database: 'nova',
          statement: (ctx) => `update block_device_mapping set deleted = id, deleted_at = UTC_TIMESTAMP() where destination_type = 'volume' and deleted = 0 and volume_id in (${placeholders(savedIds(ctx).length)})`,
          params: (ctx) => savedIds(ctx),
          expect: (ctx) => ({ max: savedIds(ctx).length }),
          preview: { statement: (ctx) => `select id, instance_uuid, volume_id, device_name from block_device_mapping where destination_type = 'volume' and deleted = 0 and volume_id in (${placeholders(savedIds(ctx).length)})`, params: (ctx) => savedIds(ctx) },
        },
      ],
    },
    { kind: 'ssh', id: 'volume-list-after', title: 'Use openstack volume list command to list all volumes', risk: 'read', host: controller, command: (ctx) => client(ctx, { openstack: sh`openstack volume list --all-projects` }) },
    { kind: 'ssh', id: 'servers', title: 'List the instances to restart', risk: 'read', host: controller, command: (ctx) => client(ctx, { openstack: sh`openstack server list --all-projects --limit -1 -f json -c ID -c Name -c Status` }), capture: serverList },
    {
      kind: 'forEach',
      id: 'reboot',
      title: 'Restart the instances (once each: DO NOT reboot a second time)',
      risk: 'write',
      items: (ctx) => ctx.capture<Server[]>('servers'),
      key: (s: Server) => s.ID,
      label: (s: Server) => s.Name,
      concurrency: 1,
      continueOnError: true,
      steps: [
        {
          kind: 'ssh',
          id: 'server-reboot',
          title: (ctx) => `openstack server reboot ${forEachItem<Server>(ctx).Name}`,
          risk: 'write',
          // Never again after a crash without a person's word: a second reboot is what the page forbids.
          idempotent: false,
          host: controller,
          // nova reboots softly only an ACTIVE instance (409 otherwise); after a power loss most are SHUTOFF.
          command: (ctx) => {
            const s = forEachItem<Server>(ctx);
            return client(ctx, { openstack: s.Status === 'ACTIVE' ? sh`openstack server reboot ${s.ID}` : sh`openstack server reboot --hard ${s.ID}` });
          },
          reference: (ctx) => `openstack server reboot ${forEachItem<Server>(ctx).ID}`,
        },
      ],
    },
    serversSettle({
      id: 'rebooted',
      title: 'Wait until nova has done rebooting them (whether they come up or not)',
      ids: (ctx) => ctx.capture<Server[]>('servers').map((s) => s.ID),
      done: (s) => s['Task State'] === null,
      // The page: "It does not matter if not all instances come up successfully."
      errorFails: false,
      waiting: 'nova is still rebooting instances…',
    }),
    {
      kind: 'forEach',
      id: 'reattach',
      title: 'Reattach the volumes to their respective instances, from the saved list',
      risk: 'write',
      items: saved,
      key: (v: SavedVolume) => v.volume,
      label: (v: SavedVolume) => `${v.volume} on ${v.instance}`,
      concurrency: 1,
      continueOnError: true,
      steps: [
        {
          kind: 'ssh',
          id: 'add-volume',
          title: (ctx) => `ATTACHING VOLUME FOR INSTANCE - ${forEachItem<SavedVolume>(ctx).instance}`,
          risk: 'write',
          host: controller,
          command: (ctx) => {
            const v = forEachItem<SavedVolume>(ctx);
            return client(ctx, { openstack: sh`openstack server add volume ${v.instance} ${v.volume} --device ${v.mount_point}` });
          },
          reference: (ctx) => `openstack server add volume ${forEachItem<SavedVolume>(ctx).instance} ${forEachItem<SavedVolume>(ctx).volume} ${forEachItem<SavedVolume>(ctx).mount_point}`,
        },
        {
          kind: 'poll',
          id: 'in-use',
          title: (ctx) => `Wait until volume ${forEachItem<SavedVolume>(ctx).volume} is in use again (the page's sleep 2)`,
          risk: 'read',
          host: controller,
          command: (ctx) => client(ctx, { openstack: sh`openstack volume show ${forEachItem<SavedVolume>(ctx).volume} -f json -c status` }),
          capture: parse.json<{ status: string }>(),
          until: (v: { status: string }, ctx) => {
            if (v.status.startsWith('error') || v.status === 'available') throw new Error(`volume ${forEachItem<SavedVolume>(ctx).volume} is ${v.status}: the attachment failed`);
            return v.status === 'in-use';
          },
          intervalMs: 2_000,
          timeoutMs: 5 * 60_000,
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
  /** Started and checked on the controller, with its own service manager. */
  controller?: string[];
  /** Started and checked on every compute node. */
  compute?: string[];
  /** Services of the line that current releases no longer have, and since when. */
  removed?: Record<string, string>;
  /** What a person does and confirms (no command of the page does it). */
  manual?: string;
  /** A check the page asks for after this tier, done by a person. */
  check?: string;
}

export const PRIORITIES: readonly Tier[] = [
  { priority: 1, services: 'Internal network connectivity', manual: 'Restore internal network connectivity between the cloud hosts.' },
  { priority: 2, services: 'Backing storage services', manual: 'Restore the backing storage services.' },
  { priority: 3, services: 'Public network connectivity for user virtual machines', manual: 'Restore public network connectivity for user virtual machines.' },
  // nova-network's part is done by neutron-server in this cloud (nova-network was removed in nova 21.0.0, Ussuri).
  { priority: 4, services: 'nova-compute, nova-network, cinder hosts', compute: ['nova-compute'], controller: ['neutron-server', 'cinder-volume'] },
  { priority: 5, services: 'User virtual machines', manual: 'Start the user virtual machines (for each compute node: nova after-reboot <host>).' },
  { priority: 10, services: 'Message queue and database services', controller: ['rabbitmq-server', 'mysql'], check: 'Just after starting the database, check its integrity.' },
  { priority: 15, services: 'Keystone services', controller: ['keystone'] },
  { priority: 20, services: 'cinder-scheduler', controller: ['cinder-scheduler'] },
  { priority: 21, services: 'Image Catalog and Delivery services', controller: ['glance-api'], removed: { 'glance-registry': 'deprecated in glance 16.0.0 (Queens) and removed since; no Debian 12 package' } },
  { priority: 22, services: 'nova-scheduler services', controller: ['nova-scheduler', 'nova-conductor'] },
  { priority: 98, services: 'cinder-api', controller: ['cinder-api'] },
  {
    priority: 99,
    services: 'nova-api services',
    controller: ['nova-api', 'nova-novncproxy'],
    removed: { 'nova-consoleauth': 'removed in nova 20.0.0 (Train, 2398b78df5)' },
    check: 'After starting the nova services, verify that the hypervisor matches the database and fix any mismatches.',
  },
  { priority: 100, services: 'Dashboard node', controller: ['apache2'] },
];

/** Start a service with the host's own service manager, then check that it runs. */
function startAndCheck(id: string, name: string, on: (ctx: StepContext) => string): Step[] {
  return [
    { kind: 'ssh', id: `start-${id}`, title: (ctx) => `Start ${name} on ${on(ctx)}`, risk: 'write', idempotent: true, host: on, ...serviceAction(on, 'start', [name]) },
    mustRun(`check-${id}`, `${name} is running`, on, [name]),
  ];
}

const computes = (ctx: StepContext) => ctx.inventory.inGroups(['compute']).map((h) => h.name);

function tierSteps(t: Tier): Step[] {
  const steps: Step[] = [];
  if (t.manual) steps.push({ kind: 'manual', id: 'restore', title: t.services, risk: 'write', instructions: `${t.manual} Press Done when it is restored.` });
  for (const s of t.controller ?? []) steps.push(...startAndCheck(s, s, controller));
  for (const [s, why] of Object.entries(t.removed ?? {})) steps.push({ kind: 'report', id: `gone-${s}`, title: `${s}: nothing to start`, risk: 'read', text: () => `${s} is not a service of current releases: ${why}.` });
  for (const s of t.compute ?? []) {
    steps.push({
      kind: 'forEach',
      id: `on-computes-${s}`,
      title: `${s} on every compute node`,
      risk: 'write',
      items: computes,
      key: (h: string) => h,
      concurrency: 4,
      steps: [detectFacts({ host: (ctx) => String(forEachItem(ctx)) }), ...startAndCheck(s, s, (ctx) => String(forEachItem(ctx)))],
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
  steps: [
    detectFacts({ host: controller }),
    ...PRIORITIES.map(
      (t): Step => ({
        kind: 'group',
        id: `priority-${t.priority}`,
        title: `${t.priority} ${t.services}`,
        risk: 'write',
        steps: tierSteps(t),
      }),
    ),
  ],
});

export const cloudPack = [checkController, checkStorage, dbConnections, recoverVolumes, restore];
