import { z } from 'zod';
import { UsageError } from '../errors.js';
import { forEachItem, parse, procedure, sh, type ShellCommand, type Step, type StepContext, type StepStatus } from './dsl.js';

const MAINTENANCE = 'runbooks/openstack-maintenance-failures.txt';
const RECOVERY = 'runbooks/openstack-compute-node-recovery.rst';

interface Domain {
  id: string;
  name: string;
  state: string;
}

type InspectArgs = { instance: string; host?: string | undefined };
/** Set by `resolve` from nova's instances table when not given. */
const compute = (ctx: StepContext<InspectArgs>): string => {
  if (!ctx.args.host) throw new Error('the compute host of the instance is not known');
  return ctx.args.host;
};
const disk = (ctx: StepContext<InspectArgs>) => `/var/lib/nova/instances/${ctx.args.instance}/disk`;

/** The instance's row of `virsh list`; its internal ID is what virsh suspend and resume take. */
function domain(ctx: StepContext<InspectArgs>): Domain | undefined {
  return ctx.capture<Domain[]>('virsh-list').find((d) => d.name === ctx.args.instance);
}
function domainId(ctx: StepContext<InspectArgs>): string {
  const d = domain(ctx);
  if (!d) throw new Error(`${ctx.args.instance} is not in "virsh list" on ${ctx.args.host}`);
  return d.id;
}

/** A step whose command may have taken effect: finally steps undo exactly those. */
const attempted = (s: StepStatus) => s === 'succeeded' || s === 'interrupted' || s === 'running' || s === 'cancelled';

/**
 * "Inspecting and Recovering Data from Failed Instances": suspend the instance, connect its disk with
 * qemu-nbd, mount it and look; then, whatever happened, unmount, disconnect and resume, or OpenStack
 * Compute cannot manage the instance any longer. Viewing a user's data needs approval first.
 */
export const inspectDisk = procedure({
  pack: 'nova',
  name: 'inspect-disk',
  summary: "Suspend an instance and mount its disk with qemu-nbd to inspect it (approval first: it shows the user's data)",
  usage: 'nova inspect-disk <instance> [--host <compute>]',
  examples: ['nova inspect-disk instance-0000274a'],
  source: `${MAINTENANCE} (Inspecting and Recovering Data from Failed Instances)`,
  args: z.object({
    instance: z.string().regex(/^instance-[0-9a-f]{8}$/, 'an instance name looks like instance-0000274a'),
    host: z.string().optional(),
  }),
  positional: ['instance'],
  hosts: { host: { groups: ['compute'] } },
  async resolve(args, { query, inventory }) {
    if (args.host) return args;
    // libvirt names instances instance-<id in hex>: the page's SELECT … WHERE id = CONV('15b9', 16, 10).
    const rows = await query('nova', 'SELECT host, uuid FROM instances WHERE id = CONV(?, 16, 10) AND deleted = 0', [args.instance.slice('instance-'.length)]);
    const row = rows[0];
    if (!row) throw new UsageError(`nova has no instance ${args.instance} (deleted = 0); check the name, or give --host <compute>`);
    const host = inventory.find(String(row.host));
    if (!host) throw new UsageError(`nova says ${args.instance} runs on ${String(row.host)}, which is not a host in runbook.yaml; give --host <compute>`);
    return { ...args, host: host.name };
  },
  steps: [
    {
      kind: 'ssh',
      id: 'virsh-list',
      title: 'Take note of the internal ID of the instance (virsh list)',
      risk: 'read',
      host: compute,
      command: sh`virsh list`,
      capture: parse.matches<{ id: string; name: string; state: string }>(/^\s*(?<id>\d+)\s+(?<name>\S+)\s+(?<state>\S.*?)\s*$/m),
    },
    {
      kind: 'group',
      id: 'inspect',
      title: "Inspect the instance's disk: this accesses the user's content and data",
      risk: 'sensitive',
      guard: (ctx) => (domain(ctx) ? undefined : `${ctx.args.instance} is not running on ${ctx.args.host} (not in "virsh list")`),
      steps: [
        { kind: 'ssh', id: 'suspend', title: 'Suspend the instance using the virsh command', risk: 'destructive', host: compute, command: (ctx) => sh`virsh suspend ${domainId(ctx)}` },
        { kind: 'ssh', id: 'connect', title: 'Connect the qemu-nbd device to the disk', risk: 'write', host: compute, command: (ctx) => sh`qemu-nbd -c /dev/nbd0 ${disk(ctx)}` },
        { kind: 'ssh', id: 'mount', title: 'Mount the qemu-nbd device', risk: 'write', host: compute, command: sh`mount /dev/nbd0p1 /mnt/` },
        { kind: 'ssh', id: 'list', title: 'Access the contents of /mnt (the first partition of the disk)', risk: 'sensitive', host: compute, command: sh`ls -lh /mnt/` },
      ],
    },
  ],
  finally: [
    { kind: 'ssh', id: 'umount', title: 'Unmount the device after inspecting', risk: 'write', idempotent: true, host: compute, when: (ctx) => attempted(ctx.status('inspect.mount')), command: sh`umount /mnt` },
    { kind: 'ssh', id: 'disconnect', title: 'Disconnect the qemu-nbd device', risk: 'write', idempotent: true, host: compute, when: (ctx) => attempted(ctx.status('inspect.connect')), command: sh`qemu-nbd -d /dev/nbd0` },
    { kind: 'ssh', id: 'resume', title: 'Resume the instance', risk: 'write', idempotent: true, host: compute, when: (ctx) => attempted(ctx.status('inspect.suspend')), command: (ctx) => sh`virsh resume ${domainId(ctx)}` },
  ],
});

/** A row of the nova client's `nova list` table. */
export interface Server {
  id: string;
  name: string;
  status: string;
  power: string;
}

const serverTable = parse.matches<Record<keyof Server, string>>(/^\|\s*(?<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s*\|\s*(?<name>[^|]*?)\s*\|\s*(?<status>[^|]*?)\s*\|\s*[^|]*?\s*\|\s*(?<power>[^|]*?)\s*\|/m);
/** `nova show`: the Property/Value table as an object. */
const propertyTable = parse.map(parse.matches<{ key: string; value: string }>(/^\|\s*(?<key>[\w:-]+)\s*\|\s*(?<value>.*?)\s*\|$/m), (rows) => Object.fromEntries(rows.map((r) => [r.key, r.value])) as Record<string, string>);

/** nova stores compute hosts by FQDN (`c01.example.com`): the inventory's `vars.fqdn`, else the name. */
export function fqdn(ctx: StepContext, name: string): string {
  const v = ctx.host(name).vars.fqdn;
  return typeof v === 'string' && v ? v : name;
}

/** Where the nova client runs (with the cloud's credentials): the first host in @controller. */
export function controller(ctx: StepContext): string {
  const c = ctx.inventory.inGroups(['controller'])[0];
  if (!c) throw new Error('no host in @controller in runbook.yaml: the nova client runs there');
  return c.name;
}

const server = (ctx: StepContext) => forEachItem<Server>(ctx);
const noneLeft = (servers: Server[], host: string) =>
  servers.length === 0 ? undefined : `${servers.length} instance${servers.length > 1 ? 's are' : ' is'} still on ${host}: ${servers.map((s) => `${s.name} (${s.id})`).join(', ')}`;

type DrainArgs = { host: string; to: string; blockMigrate: boolean };

/**
 * Compute node planned maintenance: list the node's instances, live-migrate them one by one, check
 * that none is left, then stop nova-compute and move its init files aside so that configuration
 * management cannot start it again during the maintenance. `nova undrain` reverses the last part.
 */
export const drain = procedure({
  pack: 'nova',
  name: 'drain',
  summary: 'Live-migrate every instance off a compute node, then stop nova-compute and move its init files aside for maintenance',
  usage: 'nova drain <host> --to <host> [--block-migrate]',
  examples: ['nova drain c01 --to c02', 'nova drain c01 --to c02 --block-migrate'],
  source: `${MAINTENANCE} (Compute Node Failures and Maintenance: Planned Maintenance)`,
  args: z.object({ host: z.string().min(1), to: z.string().min(1), blockMigrate: z.boolean().default(false) }),
  positional: ['host'],
  hosts: { host: { groups: ['compute'] }, to: { groups: ['compute'] } },
  guard: (ctx) => (ctx.args.host === ctx.args.to ? `the instances of ${ctx.args.host} cannot be migrated to ${ctx.args.to} itself` : undefined),
  notes: (ctx) => [
    `Afterwards: shut down ${ctx.args.host}, perform your maintenance, and turn the node back on; then "nova undrain ${ctx.args.host}" reenables nova-compute.`,
    ctx.args.blockMigrate ? 'Block migration (--block-migrate): for clouds not using shared storage.' : 'Live migration needs shared storage for /var/lib/nova/instances; without it, use --block-migrate.',
  ],
  steps: [
    {
      kind: 'ssh',
      id: 'list',
      title: (ctx: StepContext<DrainArgs>) => `First, get a list of instances that need to be moved off ${fqdn(ctx, ctx.args.host)}`,
      risk: 'read',
      host: controller,
      command: (ctx: StepContext<DrainArgs>) => sh`nova list --host ${fqdn(ctx, ctx.args.host)} --all-tenants`,
      capture: serverTable,
    },
    {
      kind: 'forEach',
      id: 'migrate',
      title: (ctx: StepContext<DrainArgs>) => `Next, migrate them one by one to ${fqdn(ctx, ctx.args.to)}`,
      risk: 'write',
      items: (ctx) => ctx.capture<Server[]>('list'),
      key: (s: Server) => s.id,
      label: (s: Server) => s.name,
      concurrency: 1,
      steps: [
        {
          kind: 'ssh',
          id: 'live-migration',
          title: (ctx: StepContext<DrainArgs>) => `Live-migrate ${server(ctx).name} to ${fqdn(ctx, ctx.args.to)}`,
          risk: 'write',
          host: controller,
          command: (ctx: StepContext<DrainArgs>): ShellCommand =>
            ctx.args.blockMigrate ? sh`nova live-migration --block-migrate ${server(ctx).id} ${fqdn(ctx, ctx.args.to)}` : sh`nova live-migration ${server(ctx).id} ${fqdn(ctx, ctx.args.to)}`,
        },
        {
          kind: 'poll',
          id: 'arrived',
          title: (ctx: StepContext<DrainArgs>) => `Wait until ${server(ctx).name} is ACTIVE on ${fqdn(ctx, ctx.args.to)}`,
          risk: 'read',
          host: controller,
          command: (ctx) => sh`nova show ${server(ctx).id}`,
          capture: propertyTable,
          until: (p: Record<string, string>, ctx: StepContext<DrainArgs>) => {
            if (p.status === 'ERROR') throw new Error(`${server(ctx).name} went to ERROR during the migration`);
            return p['OS-EXT-SRV-ATTR:host'] === fqdn(ctx, ctx.args.to) && p.status === 'ACTIVE';
          },
          intervalMs: 5_000,
          timeoutMs: 30 * 60_000,
          waiting: (ctx) => `${server(ctx).name} is still migrating…`,
        },
      ],
    },
    {
      kind: 'ssh',
      id: 'left',
      title: (ctx: StepContext<DrainArgs>) => `Check that no instance is left on ${fqdn(ctx, ctx.args.host)}`,
      risk: 'read',
      host: controller,
      command: (ctx: StepContext<DrainArgs>) => sh`nova list --host ${fqdn(ctx, ctx.args.host)} --all-tenants`,
      capture: serverTable,
    },
    {
      kind: 'ssh',
      id: 'stop',
      title: 'After you have migrated all instances, ensure that the nova-compute service has stopped',
      risk: 'write',
      guard: (ctx: StepContext<DrainArgs>) => noneLeft(ctx.capture<Server[]>('left'), ctx.args.host),
      host: (ctx: StepContext<DrainArgs>) => ctx.args.host,
      command: sh`stop nova-compute`,
    },
    {
      kind: 'ssh',
      id: 'mkdir',
      title: 'Temporarily move the init files, so that configuration management cannot start nova-compute: make /root/tmp',
      risk: 'write',
      idempotent: true,
      host: (ctx: StepContext<DrainArgs>) => ctx.args.host,
      command: sh`mkdir -p /root/tmp`,
    },
    { kind: 'ssh', id: 'move-conf', title: 'Move /etc/init/nova-compute.conf to /root/tmp', risk: 'write', host: (ctx: StepContext<DrainArgs>) => ctx.args.host, command: sh`mv /etc/init/nova-compute.conf /root/tmp` },
    { kind: 'ssh', id: 'move-init', title: 'Move /etc/init.d/nova-compute to /root/tmp', risk: 'write', host: (ctx: StepContext<DrainArgs>) => ctx.args.host, command: sh`mv /etc/init.d/nova-compute /root/tmp` },
  ],
});

const upstartRunning = parse.map(parse.text(), (s) => /\bstart\/running\b/.test(s));

/** The end of planned maintenance: put the init files back and start nova-compute. */
export const undrain = procedure({
  pack: 'nova',
  name: 'undrain',
  summary: 'Reenable nova-compute after maintenance: put its init files back and start it',
  usage: 'nova undrain <host>',
  examples: ['nova undrain c01'],
  source: `${MAINTENANCE} (Compute Node Failures and Maintenance: Planned Maintenance)`,
  args: z.object({ host: z.string().min(1) }),
  positional: ['host'],
  hosts: { host: { groups: ['compute'] } },
  notes: (ctx) => [`You can now optionally migrate the instances back to ${ctx.args.host} (nova live-migration <uuid> ${ctx.args.host}).`],
  steps: [
    { kind: 'ssh', id: 'restore-conf', title: 'Reenable the nova-compute service by undoing the previous commands: move nova-compute.conf back to /etc/init', risk: 'write', host: (ctx) => ctx.args.host, command: sh`mv /root/tmp/nova-compute.conf /etc/init` },
    { kind: 'ssh', id: 'restore-init', title: 'Move nova-compute back to /etc/init.d/', risk: 'write', host: (ctx) => ctx.args.host, command: sh`mv /root/tmp/nova-compute /etc/init.d/` },
    { kind: 'ssh', id: 'start', title: 'Then start the nova-compute service', risk: 'write', host: (ctx) => ctx.args.host, command: sh`start nova-compute` },
    {
      kind: 'poll',
      id: 'running',
      title: 'Ensure that the nova-compute service is running',
      risk: 'read',
      host: (ctx) => ctx.args.host,
      command: sh`status nova-compute`,
      capture: upstartRunning,
      until: (running: boolean) => running,
      intervalMs: 2_000,
      timeoutMs: 60_000,
    },
  ],
});

type HostArgs = { host: string };

/**
 * After a compute node reboots: nova-compute running and connected to AMQP, then `nova reboot` each of
 * the node's instances (none of them is running).
 */
export const afterReboot = procedure({
  pack: 'nova',
  name: 'after-reboot',
  summary: 'After a compute node reboots: check nova-compute and its AMQP connection, then start each instance with nova reboot',
  usage: 'nova after-reboot <host>',
  examples: ['nova after-reboot c01'],
  source: `${MAINTENANCE} (After a Compute Node Reboots; Instances)`,
  args: z.object({ host: z.string().min(1) }),
  positional: ['host'],
  hosts: { host: { groups: ['compute'] } },
  steps: [
    {
      kind: 'ssh',
      id: 'status',
      title: 'First verify that it booted successfully: is the nova-compute service running? (status nova-compute)',
      risk: 'read',
      host: (ctx: StepContext<HostArgs>) => ctx.args.host,
      command: sh`status nova-compute`,
      capture: upstartRunning,
    },
    {
      kind: 'ssh',
      id: 'start',
      title: 'Start the nova-compute service (it is not running)',
      risk: 'write',
      when: (ctx) => ctx.capture<boolean>('status') === false,
      host: (ctx: StepContext<HostArgs>) => ctx.args.host,
      command: sh`start nova-compute`,
    },
    {
      kind: 'poll',
      id: 'running',
      title: 'Ensure that the nova-compute service is running',
      risk: 'read',
      host: (ctx: StepContext<HostArgs>) => ctx.args.host,
      command: sh`status nova-compute`,
      capture: upstartRunning,
      until: (running: boolean) => running,
      intervalMs: 2_000,
      timeoutMs: 60_000,
    },
    {
      kind: 'ssh',
      id: 'ps',
      title: 'The nova-compute process runs (ps aux | grep nova-compute)',
      risk: 'read',
      host: (ctx: StepContext<HostArgs>) => ctx.args.host,
      command: sh`ps aux | grep nova-compute`,
      capture: parse.lines(),
    },
    {
      kind: 'ssh',
      id: 'amqp',
      title: 'Also ensure that it has successfully connected to the AMQP server',
      risk: 'read',
      host: (ctx: StepContext<HostArgs>) => ctx.args.host,
      command: sh`grep AMQP /var/log/nova/nova-compute`,
      // grep exits 1 when no line matches: the next step says so in the page's words.
      okExitCodes: [0, 1],
      capture: parse.map(parse.lines(), (lines) => lines.filter((l) => l.includes('Connected to AMQP server on'))),
    },
    {
      kind: 'ssh',
      id: 'list',
      title: (ctx: StepContext<HostArgs>) => `Create a list of instances that are hosted on ${fqdn(ctx, ctx.args.host)}`,
      risk: 'read',
      guard: (ctx: StepContext<HostArgs>) =>
        ctx.capture<string[]>('amqp').length > 0 ? undefined : `nova-compute on ${ctx.args.host} has not connected to the AMQP server (no "Connected to AMQP server on" in /var/log/nova/nova-compute); restart it before starting instances`,
      host: controller,
      command: (ctx: StepContext<HostArgs>) => sh`nova list --host ${fqdn(ctx, ctx.args.host)} --all-tenants`,
      capture: serverTable,
    },
    {
      kind: 'forEach',
      id: 'reboot',
      title: 'Use the nova command to start each instance',
      risk: 'write',
      items: (ctx) => ctx.capture<Server[]>('list'),
      key: (s: Server) => s.id,
      label: (s: Server) => s.name,
      concurrency: 1,
      steps: [{ kind: 'ssh', id: 'nova-reboot', title: (ctx) => `nova reboot ${server(ctx).name}`, risk: 'write', host: controller, command: (ctx) => sh`nova reboot ${server(ctx).id}` }],
    },
  ],
});

/** A row of the page's join of nova.instances and cinder.volumes. */
export interface AttachedVolume {
  instance_uuid: string;
  volume_uuid: string;
  status: string;
  attach_status: string;
  mountpoint: string | null;
  display_name: string | null;
}

/** The page's SELECT, with the schemas as configured and the host (and, when given, the instances) bound. */
function volumesQuery(ctx: StepContext, uuids?: string[]): string {
  const n = ctx.db('nova');
  const c = ctx.db('cinder');
  const only = uuids === undefined ? '' : ` and ${n}.instances.uuid in (${uuids.map(() => '?').join(', ') || 'NULL'})`;
  return (
    `select ${n}.instances.uuid as instance_uuid, ${c}.volumes.id as volume_uuid, ${c}.volumes.status, ${c}.volumes.attach_status, ${c}.volumes.mountpoint, ${c}.volumes.display_name ` +
    `from ${c}.volumes inner join ${n}.instances on ${c}.volumes.instance_uuid=${n}.instances.uuid where ${n}.instances.host = ?${only}`
  );
}

const volume = (ctx: StepContext) => forEachItem<AttachedVolume>(ctx);

/** "Volumes": the instances' volumes on a host, then detach and reattach each at its mount point. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- shared by procedures with different arguments
function reattachSteps(host: (ctx: StepContext<any>) => string, uuids?: (ctx: StepContext<any>) => string[]): Step[] {
  return [
    {
      kind: 'manual',
      id: 'booted',
      title: 'Be sure that the instances have successfully booted and are at a login screen',
      risk: 'read',
      instructions: (ctx) => `Be sure that every instance on ${host(ctx)} has successfully booted and is at a login screen (dashboard VNC console) before the volumes are detached and reattached; then press Done.`,
    },
    {
      kind: 'sql',
      id: 'volumes',
      title: 'Generate a list of instance and volume UUIDs',
      risk: 'read',
      database: 'cinder',
      statement: (ctx) => volumesQuery(ctx, uuids?.(ctx)),
      params: (ctx) => [host(ctx), ...(uuids?.(ctx) ?? [])],
      capture: true,
    },
    {
      kind: 'forEach',
      id: 'reattach',
      title: 'Detach and reattach the volumes, at their mount points',
      risk: 'write',
      items: (ctx) => ctx.capture<AttachedVolume[]>('volumes'),
      key: (v: AttachedVolume) => v.volume_uuid,
      label: (v: AttachedVolume) => `${v.display_name ?? v.volume_uuid} on ${v.instance_uuid}`,
      concurrency: 1,
      steps: [
        {
          kind: 'ssh',
          id: 'detach',
          title: (ctx) => `Detach volume ${volume(ctx).display_name ?? volume(ctx).volume_uuid}`,
          risk: 'write',
          host: controller,
          command: (ctx) => sh`nova volume-detach ${volume(ctx).instance_uuid} ${volume(ctx).volume_uuid}`,
        },
        {
          kind: 'ssh',
          id: 'attach',
          title: (ctx) => `Reattach volume ${volume(ctx).display_name ?? volume(ctx).volume_uuid} at ${volume(ctx).mountpoint ?? '?'}`,
          risk: 'write',
          guard: (ctx) => (volume(ctx).mountpoint ? undefined : `cinder has no mount point for volume ${volume(ctx).volume_uuid}; reattach it by hand with the right /dev/vdX`),
          host: controller,
          command: (ctx) => sh`nova volume-attach ${volume(ctx).instance_uuid} ${volume(ctx).volume_uuid} ${volume(ctx).mountpoint ?? ''}`,
        },
      ],
    },
  ];
}

/** "Volumes": reattach the volumes of the instances of a compute node. */
export const reattachVolumes = procedure({
  pack: 'nova',
  name: 'reattach-volumes',
  summary: 'Detach and reattach the volumes of the instances of a compute node at their mount points',
  usage: 'nova reattach-volumes <host>',
  examples: ['nova reattach-volumes c01'],
  source: `${MAINTENANCE} (Volumes)`,
  args: z.object({ host: z.string().min(1) }),
  positional: ['host'],
  hosts: { host: { groups: ['compute'] } },
  steps: reattachSteps((ctx) => fqdn(ctx, ctx.args.host)),
});

type MoveArgs = { failed: string; to: string };
const moved = (ctx: StepContext) => ctx.capture<{ uuid: string }[]>('select').map((r) => r.uuid);
const ports = (ctx: StepContext) => ctx.capture<{ bindings: number | string; levels: number | string }[]>('ports')[0]!;
const exactly = (n: number | string) => ({ min: Number(n), max: Number(n) });

/**
 * Total compute node failure, with shared storage for /var/lib/nova/instances: point nova and the
 * ML2 port bindings at another node, hard-reboot the instances there, then reattach their volumes.
 */
export const moveInstances = procedure({
  pack: 'nova',
  name: 'move-instances',
  summary: 'Total compute node failure: move its instances to another node in the databases, hard-reboot them, reattach their volumes',
  usage: 'nova move-instances <failed> --to <host>',
  examples: ['nova move-instances c01 --to c02'],
  source: `${MAINTENANCE} (Total Compute Node Failure)`,
  args: z.object({ failed: z.string().min(1), to: z.string().min(1) }),
  positional: ['failed'],
  hosts: { failed: { groups: ['compute'] }, to: { groups: ['compute'] } },
  guard: (ctx) => (ctx.args.failed === ctx.args.to ? `the instances of ${ctx.args.failed} cannot be moved to ${ctx.args.failed} itself` : undefined),
  notes: () => ['Only with shared storage for /var/lib/nova/instances: the instances are relaunched from the files the failed node left there.'],
  steps: [
    {
      kind: 'sql',
      id: 'select',
      title: (ctx: StepContext<MoveArgs>) => `Generate a list of instance UUIDs that are hosted on ${fqdn(ctx, ctx.args.failed)}`,
      risk: 'read',
      database: 'nova',
      statement: 'select uuid from instances where host = ? and deleted = 0',
      params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.failed)],
      capture: true,
    },
    {
      kind: 'sql',
      id: 'ports',
      title: (ctx: StepContext<MoveArgs>) => `Count the Networking service ports bound to ${fqdn(ctx, ctx.args.failed)} (ML2 plug-in)`,
      risk: 'read',
      database: 'neutron',
      statement: 'select (select count(*) from ml2_port_bindings where host = ?) as bindings, (select count(*) from ml2_port_binding_levels where host = ?) as levels',
      params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.failed), fqdn(ctx, ctx.args.failed)],
      capture: true,
    },
    {
      kind: 'group',
      id: 'move',
      title: (ctx: StepContext<MoveArgs>) => `Update the nova and Networking databases: everything hosted on ${fqdn(ctx, ctx.args.failed)} is now hosted on ${fqdn(ctx, ctx.args.to)}`,
      risk: 'destructive',
      guard: (ctx: StepContext<MoveArgs>) => (moved(ctx).length === 0 ? `nova has no instance on ${fqdn(ctx, ctx.args.failed)} (deleted = 0): nothing to move` : undefined),
      steps: [
        {
          kind: 'sql',
          id: 'instances',
          title: (ctx: StepContext<MoveArgs>) => `Update the nova database: the instances that used to be hosted on ${fqdn(ctx, ctx.args.failed)} are now hosted on ${fqdn(ctx, ctx.args.to)}`,
          risk: 'destructive',
          database: 'nova',
          statement: 'update instances set host = ? where host = ? and deleted = 0',
          params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.to), fqdn(ctx, ctx.args.failed)],
          expect: (ctx) => exactly(moved(ctx).length),
          preview: { statement: 'select uuid, display_name, host, vm_state from instances where host = ? and deleted = 0', params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.failed)] },
        },
        {
          kind: 'sql',
          id: 'port-bindings',
          title: (ctx: StepContext<MoveArgs>) => `Update the Networking database: the ports that used to be hosted on ${fqdn(ctx, ctx.args.failed)} (ml2_port_bindings)`,
          risk: 'destructive',
          database: 'neutron',
          statement: 'update ml2_port_bindings set host = ? where host = ?',
          params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.to), fqdn(ctx, ctx.args.failed)],
          expect: (ctx) => exactly(ports(ctx).bindings),
          preview: { statement: 'select port_id, host, vif_type, status from ml2_port_bindings where host = ?', params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.failed)] },
        },
        {
          kind: 'sql',
          id: 'port-binding-levels',
          title: (ctx: StepContext<MoveArgs>) => `Update the Networking database: ml2_port_binding_levels of ${fqdn(ctx, ctx.args.failed)}`,
          risk: 'destructive',
          database: 'neutron',
          statement: 'update ml2_port_binding_levels set host = ? where host = ?',
          params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.to), fqdn(ctx, ctx.args.failed)],
          expect: (ctx) => exactly(ports(ctx).levels),
          preview: { statement: 'select port_id, host, level, driver from ml2_port_binding_levels where host = ?', params: (ctx: StepContext<MoveArgs>) => [fqdn(ctx, ctx.args.failed)] },
        },
      ],
    },
    {
      kind: 'forEach',
      id: 'reboot',
      title: (ctx: StepContext<MoveArgs>) => `Reboot all instances that were on ${fqdn(ctx, ctx.args.failed)} while regenerating their XML files`,
      risk: 'write',
      items: (ctx) => moved(ctx),
      key: (uuid: string) => uuid,
      concurrency: 1,
      steps: [{ kind: 'ssh', id: 'hard', title: (ctx) => `nova reboot --hard ${nodeOf(ctx)}`, risk: 'write', host: controller, command: (ctx) => sh`nova reboot --hard ${nodeOf(ctx)}` }],
    },
    ...reattachSteps((ctx) => fqdn(ctx, ctx.args.to), moved),
  ],
});



type RecoverArgs = { uuid: string; to: string; from?: string | undefined };
const libvirtXml = (ctx: StepContext<RecoverArgs>) => `/var/lib/nova/instances/${ctx.capture<{ name: string }[]>('status')[0]?.name ?? '?'}/libvirt.xml`;
/** The host IP address of the new compute host (`vars.ip`, else its address in runbook.yaml). */
const hostIp = (ctx: StepContext<RecoverArgs>) => String(ctx.host(ctx.args.to).vars.ip ?? ctx.host(ctx.args.to).address);

/**
 * "Manual recovery" of one VM of a failed compute node (with shared storage): point nova at the new
 * host, fix its libvirt.xml (DHCPSERVER, VNC listen address), reboot it.
 */
export const recoverInstance = procedure({
  pack: 'nova',
  name: 'recover-instance',
  summary: 'Manually recover one VM of a failed compute node onto another: move it in the nova database, fix its libvirt.xml, reboot it',
  usage: 'nova recover-instance <uuid> --to <host>',
  examples: ['nova recover-instance 3f57699a-e773-4650-a443-b4b37eed5a06 --to c02'],
  source: `${RECOVERY} (Manual recovery)`,
  args: z.object({ uuid: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'an instance uuid looks like 3f57699a-e773-4650-a443-b4b37eed5a06'), to: z.string().min(1), from: z.string().optional() }),
  positional: ['uuid'],
  internal: ['from'],
  hosts: { to: { groups: ['compute'] } },
  async resolve(args, { query }) {
    const [row] = await query('nova', 'SELECT host FROM instances WHERE uuid = ? AND deleted = 0', [args.uuid]);
    if (!row) throw new UsageError(`nova has no instance ${args.uuid} (deleted = 0)`);
    return { ...args, from: String(row.host) };
  },
  guard: (ctx) => (ctx.args.from === fqdn(ctx, ctx.args.to) ? `${ctx.args.uuid} is already on ${ctx.args.from}` : undefined),
  notes: () => [
    'Only with shared storage for /var/lib/nova/instances: the new host reads the instance\'s files.',
    'If problems persist: use virsh to recreate the network filter configuration, restart Compute services, or update the vm_state and power_state fields in the Compute database.',
  ],
  steps: [
    { kind: 'ssh', id: 'show', title: 'Identify the VM on the affected host (openstack server show)', risk: 'read', host: controller, command: (ctx) => sh`openstack server show ${ctx.args.uuid}` },
    {
      kind: 'sql',
      id: 'status',
      title: 'Query the Compute database for the status of the host',
      risk: 'read',
      database: 'nova',
      statement: "SELECT id, CONCAT('instance-', LPAD(LOWER(CONV(id, 10, 16)), 8, '0')) AS name, created_at, updated_at, deleted_at, power_state, vm_state, hostname, host, uuid, task_state FROM instances WHERE uuid = ?",
      params: (ctx) => [ctx.args.uuid],
      capture: true,
    },
    {
      kind: 'sql',
      id: 'move',
      title: (ctx) => `Move the VM to ${fqdn(ctx, ctx.args.to)}`,
      risk: 'destructive',
      database: 'nova',
      statement: 'UPDATE instances SET host = ? WHERE uuid = ?',
      params: (ctx) => [fqdn(ctx, ctx.args.to), ctx.args.uuid],
      expect: { min: 1, max: 1 },
      preview: { statement: 'SELECT uuid, hostname, host, vm_state, power_state FROM instances WHERE uuid = ?', params: (ctx) => [ctx.args.uuid] },
    },
    {
      kind: 'ssh',
      id: 'dhcpserver',
      title: 'Change the DHCPSERVER value in libvirt.xml to the host IP address of the new compute host',
      risk: 'write',
      host: (ctx) => ctx.args.to,
      command: (ctx) => sh`sed -i ${`s|<parameter name="DHCPSERVER" value="[^"]*"/>|<parameter name="DHCPSERVER" value="${hostIp(ctx)}"/>|`} ${libvirtXml(ctx)}`,
    },
    {
      kind: 'ssh',
      id: 'vnc',
      title: 'Update the VNC IP to 0.0.0.0',
      risk: 'write',
      host: (ctx) => ctx.args.to,
      command: (ctx) => sh`sed -i ${'s|\\(<graphics type="vnc"[^>]*listen="\\)[^"]*"|\\10.0.0.0"|'} ${libvirtXml(ctx)}`,
    },
    {
      kind: 'ssh',
      id: 'check-xml',
      title: 'Check the changes in libvirt.xml',
      risk: 'read',
      host: (ctx) => ctx.args.to,
      command: (ctx) => sh`grep -E ${'DHCPSERVER|<graphics'} ${libvirtXml(ctx)}`,
      capture: parse.lines(),
    },
    {
      kind: 'ssh',
      id: 'reboot',
      title: 'Reboot the VM',
      risk: 'write',
      guard: (ctx) => {
        const lines = ctx.capture<string[]>('check-xml');
        const dhcp = lines.some((l) => l.includes(`name="DHCPSERVER" value="${hostIp(ctx)}"`));
        const vnc = lines.some((l) => l.includes('<graphics') && l.includes('listen="0.0.0.0"'));
        return dhcp && vnc ? undefined : `libvirt.xml does not have ${dhcp ? '' : `DHCPSERVER ${hostIp(ctx)}`}${!dhcp && !vnc ? ' and ' : ''}${vnc ? '' : 'the VNC IP 0.0.0.0'} after the edit; fix it by hand before rebooting`;
      },
      host: controller,
      command: (ctx) => sh`openstack server reboot ${ctx.args.uuid}`,
    },
  ],
});

type FixIdsArgs = { hosts: string[]; uid: number; gid: number; qemuUid?: number | undefined; libvirtdGid?: number | undefined };
/** The IDs a compute node has before the change: what `find -uid|-gid <old>` looks for. */
interface OldIds {
  novaUid: string;
  novaGid: string;
  qemuUid: string;
  libvirtdGid: string;
}
const oldIdsParser = parse.map(parse.text(), (s): OldIds => {
  const nova = /uid=(\d+)\(nova\) gid=(\d+)/.exec(s);
  const qemu = /uid=(\d+)\(libvirt-qemu\)/.exec(s);
  const libvirtd = /^libvirtd:[^:]*:(\d+):/m.exec(s);
  if (!nova || !qemu || !libvirtd) throw new Error('missing the nova or libvirt-qemu user, or the libvirtd group');
  return { novaUid: nova[1]!, novaGid: nova[2]!, qemuUid: qemu[1]!, libvirtdGid: libvirtd[1]! };
});
const nodeOf = (ctx: StepContext) => String(forEachItem(ctx));
const old = (ctx: StepContext) => ctx.capture<OldIds>('ids');
type FixCtx = StepContext<FixIdsArgs>;
const noFiles = (what: string) =>
  parse.map(parse.lines(), (files) => {
    if (files.length > 0) throw new Error(`files still owned by the old ${what}: ${files.join(', ')}`);
    return files;
  });

/**
 * "Recover from a UID/GID mismatch", on each nova-compute host: the same IDs everywhere, every file
 * the old IDs own given to the user or group again, then a find that shows no file kept an old ID.
 * One approval per host covers what changes there, once its old IDs are known.
 */
export const fixIds = procedure({
  pack: 'nova',
  name: 'fix-ids',
  summary: 'UID/GID mismatch: set the nova (and libvirt-qemu/libvirtd) IDs on compute nodes and give their files back to them',
  usage: 'nova fix-ids <host…> --uid <nova uid> --gid <nova gid> [--qemu-uid <libvirt-qemu uid>] [--libvirtd-gid <libvirtd gid>]',
  examples: ['nova fix-ids c01 c02 --uid 112 --gid 120 --qemu-uid 119 --libvirtd-gid 119'],
  source: `${RECOVERY} (Recover from a UID/GID mismatch)`,
  args: z.object({
    hosts: z.array(z.string()).min(1),
    uid: z.number().int().min(1),
    gid: z.number().int().min(1),
    qemuUid: z.number().int().min(1).optional(),
    libvirtdGid: z.number().int().min(1).optional(),
  }),
  positional: ['hosts'],
  hosts: { hosts: { groups: ['compute'] } },
  notes: () => ['Choose UIDs or GIDs that are not in use for other users or groups: usermod and groupmod refuse one in use, and the run stops there.'],
  steps: [
    {
      kind: 'forEach',
      id: 'node',
      title: 'On each nova-compute host',
      risk: 'write',
      items: (ctx: FixCtx) => ctx.args.hosts,
      key: (h: string) => h,
      concurrency: 1,
      steps: [
        { kind: 'ssh', id: 'ids', title: 'Note the old IDs of nova, libvirt-qemu and libvirtd', risk: 'read', host: nodeOf, command: sh`id nova; id libvirt-qemu; getent group libvirtd`, capture: oldIdsParser },
        {
          kind: 'group',
          id: 'fix',
          title: (ctx: FixCtx) => `Set the IDs on ${nodeOf(ctx)} and change all files that the old IDs own`,
          risk: 'destructive',
          steps: [
            { kind: 'ssh', id: 'set-uid', title: (ctx: FixCtx) => `Set the nova UID to ${ctx.args.uid}`, risk: 'write', host: nodeOf, command: (ctx: FixCtx) => sh`usermod -u ${ctx.args.uid} nova` },
            { kind: 'ssh', id: 'set-qemu-uid', title: (ctx: FixCtx) => `Set the libvirt-qemu UID to ${ctx.args.qemuUid ?? '(unchanged)'}`, risk: 'write', when: (ctx: FixCtx) => ctx.args.qemuUid !== undefined, host: nodeOf, command: (ctx: FixCtx) => sh`usermod -u ${ctx.args.qemuUid ?? 0} libvirt-qemu` },
            { kind: 'ssh', id: 'set-gid', title: (ctx: FixCtx) => `Set the nova group to ${ctx.args.gid}`, risk: 'write', host: nodeOf, command: (ctx: FixCtx) => sh`groupmod -g ${ctx.args.gid} nova` },
            { kind: 'ssh', id: 'set-libvirtd-gid', title: (ctx: FixCtx) => `Set the libvirtd group to ${ctx.args.libvirtdGid ?? '(unchanged)'}`, risk: 'write', when: (ctx: FixCtx) => ctx.args.libvirtdGid !== undefined, host: nodeOf, command: (ctx: FixCtx) => sh`groupmod -g ${ctx.args.libvirtdGid ?? 0} libvirtd` },
            { kind: 'ssh', id: 'stop-nova', title: 'Stop the services on the compute node: nova-compute', risk: 'write', host: nodeOf, command: sh`service nova-compute stop` },
            { kind: 'ssh', id: 'stop-libvirt', title: 'Stop the services on the compute node: libvirt-bin', risk: 'write', host: nodeOf, command: sh`service libvirt-bin stop` },
            { kind: 'ssh', id: 'chown-nova', title: (ctx) => `Change all files that the nova user owns (old UID ${old(ctx).novaUid})`, risk: 'destructive', host: nodeOf, command: (ctx) => sh`find / -uid ${old(ctx).novaUid} -exec chown nova {} \\;` },
            { kind: 'ssh', id: 'chgrp-nova', title: (ctx) => `Change all files that the nova group owns (old GID ${old(ctx).novaGid})`, risk: 'destructive', host: nodeOf, command: (ctx) => sh`find / -gid ${old(ctx).novaGid} -exec chgrp nova {} \\;` },
            { kind: 'ssh', id: 'chown-qemu', title: (ctx) => `Repeat for the libvirt-qemu files (old UID ${old(ctx).qemuUid})`, risk: 'destructive', when: (ctx: FixCtx) => ctx.args.qemuUid !== undefined, host: nodeOf, command: (ctx) => sh`find / -uid ${old(ctx).qemuUid} -exec chown libvirt-qemu {} \\;` },
            { kind: 'ssh', id: 'chgrp-libvirtd', title: (ctx) => `Repeat for the libvirtd files (old GID ${old(ctx).libvirtdGid})`, risk: 'destructive', when: (ctx: FixCtx) => ctx.args.libvirtdGid !== undefined, host: nodeOf, command: (ctx) => sh`find / -gid ${old(ctx).libvirtdGid} -exec chgrp libvirtd {} \\;` },
            { kind: 'ssh', id: 'start-libvirt', title: 'Restart the services: libvirt-bin', risk: 'write', host: nodeOf, command: sh`service libvirt-bin start` },
            { kind: 'ssh', id: 'start-nova', title: 'Restart the services: nova-compute', risk: 'write', host: nodeOf, command: sh`service nova-compute start` },
          ],
        },
        {
          kind: 'ssh',
          id: 'verify-uid',
          title: (ctx) => `To verify that all files use the correct IDs, run find: nothing may keep the old nova UID ${old(ctx).novaUid}`,
          risk: 'read',
          when: (ctx: FixCtx) => Number(old(ctx).novaUid) !== ctx.args.uid,
          host: nodeOf,
          command: (ctx) => sh`find / -uid ${old(ctx).novaUid}`,
          capture: noFiles('nova UID'),
        },
        {
          kind: 'ssh',
          id: 'verify-gid',
          title: (ctx) => `Nothing may keep the old nova GID ${old(ctx).novaGid}`,
          risk: 'read',
          when: (ctx: FixCtx) => Number(old(ctx).novaGid) !== ctx.args.gid,
          host: nodeOf,
          command: (ctx) => sh`find / -gid ${old(ctx).novaGid}`,
          capture: noFiles('nova GID'),
        },
        {
          kind: 'ssh',
          id: 'verify-ids',
          title: 'The nova user has its new IDs',
          risk: 'read',
          host: nodeOf,
          command: sh`id nova`,
          capture: parse.regex(/uid=(?<uid>\d+)\(nova\) gid=(?<gid>\d+)/),
        },
      ],
    },
  ],
});

export const novaPack = [inspectDisk, drain, undrain, afterReboot, moveInstances, reattachVolumes, recoverInstance, fixIds];
