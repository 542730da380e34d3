import { z } from 'zod';
import { UsageError } from '../errors.js';
import { detectFacts, forEachItem, parse, procedure, sh, type ShellCommand, type Step, type StepContext, type StepStatus } from './dsl.js';
import {
  client,
  clientVariant,
  controller,
  inventoryHostOfNova,
  listServers,
  MAINTENANCE,
  migrationEnded,
  mustRun,
  needsCredentials,
  novaHost,
  processRuns,
  placeholders,
  RECOVERY,
  serverList,
  serversSettle,
  withCredentials,
  type Migration,
  type Server,
  type ServerRow,
} from './openstack.js';
import { serviceAction, serviceCheck, type ServiceStatus } from './services.js';

interface Domain {
  id: string;
  name: string;
  state: string;
}

type InspectArgs = { instance: string; host?: string | undefined; uuid?: string | undefined };
/** Set by `resolve` from nova's instances table when not given. */
const compute = (ctx: StepContext<InspectArgs>): string => {
  if (!ctx.args.host) throw new Error('the compute host of the instance is not known');
  return ctx.args.host;
};

/**
 * The instance's disk: the libvirt driver names instance directories by uuid since Grizzly (nova
 * 76461c83d1; nova/virt/libvirt/utils.py get_instance_path), not `instance-xxxxxxxx` as the page.
 */
const disk = (ctx: StepContext<InspectArgs>) => `/var/lib/nova/instances/${ctx.args.uuid ?? '<uuid>'}/disk`;

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
 *
 * On a current host the disk is opened read-only and shared (`qemu-nbd -r --force-share`): QEMU ≥ 2.10
 * locks an image its (paused) guest holds, and the page says not to touch the files; the nbd module is
 * loaded with partitions first (`max_part`), or /dev/nbd0p1 never appears.
 */
export const inspectDisk = procedure({
  pack: 'nova',
  name: 'inspect-disk',
  summary: "Suspend an instance and mount its disk read-only with qemu-nbd to inspect it (approval first: it shows the user's data)",
  usage: 'nova inspect-disk <instance> [--host <compute>]',
  examples: ['nova inspect-disk instance-0000274a'],
  source: `${MAINTENANCE} (Inspecting and Recovering Data from Failed Instances)`,
  args: z.object({
    instance: z.string().regex(/^instance-[0-9a-f]{8}$/, 'an instance name looks like instance-0000274a'),
    host: z.string().optional(),
    uuid: z.string().optional(),
  }),
  positional: ['instance'],
  internal: ['uuid'],
  hosts: { host: { groups: ['compute'] } },
  async resolve(args, { query, inventory }) {
    // libvirt names instances instance-<id in hex>: the page's SELECT … WHERE id = CONV('15b9', 16, 10).
    const rows = await query('nova', 'SELECT host, uuid FROM instances WHERE id = CONV(?, 16, 10) AND deleted = 0', [args.instance.slice('instance-'.length)]);
    const row = rows[0];
    if (!row) throw new UsageError(`nova has no instance ${args.instance} (deleted = 0); check the name`);
    if (args.host) return { ...args, uuid: String(row.uuid) };
    const host = inventoryHostOfNova(inventory, String(row.host));
    if (!host) throw new UsageError(`nova says ${args.instance} runs on ${String(row.host)}, which is not a host in runbook.yaml; give --host <compute>`);
    return { ...args, host: host.name, uuid: String(row.uuid) };
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
        // kmod's modprobe of a loaded module does nothing and exits 0.
        { kind: 'ssh', id: 'nbd-module', title: 'Load the nbd module, with a device node per partition', risk: 'write', idempotent: true, host: compute, command: sh`modprobe nbd max_part=16` },
        {
          kind: 'ssh',
          id: 'connect',
          title: 'Connect the qemu-nbd device to the disk',
          risk: 'write',
          host: compute,
          command: (ctx) => sh`qemu-nbd -r --force-share -c /dev/nbd0 ${disk(ctx)}`,
          reference: (ctx) => `cd /var/lib/nova/instances/${ctx.args.instance}; qemu-nbd -c /dev/nbd0 \`pwd\`/disk`,
        },
        { kind: 'ssh', id: 'mount', title: 'Mount the qemu-nbd device', risk: 'write', host: compute, command: sh`mount -o ro /dev/nbd0p1 /mnt/`, reference: 'mount /dev/nbd0p1 /mnt/' },
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

/** nova stores compute hosts by FQDN in the page (`c01.example.com`): the inventory's `vars.fqdn`, else the name. */
export function fqdn(ctx: Pick<StepContext, 'host'>, name: string): string {
  const v = ctx.host(name).vars.fqdn;
  return typeof v === 'string' && v ? v : name;
}

const server = (ctx: StepContext) => forEachItem<Server>(ctx);
const noneLeft = (servers: Server[], host: string) =>
  servers.length === 0 ? undefined : `${servers.length} instance${servers.length > 1 ? 's are' : ' is'} still on ${host}: ${servers.map((s) => `${s.Name} (${s.ID})`).join(', ')}`;

/** `openstack server migration list --server <uuid> -f json`: nova's migration records of a server, newest first. */
const migrations = (ctx: StepContext, uuid: string) => client(ctx, { openstack: sh`openstack server migration list --server ${uuid} -f json` });

/** The state of one server: `openstack server show <uuid> -f json -c status -c OS-EXT-SRV-ATTR:host -c OS-EXT-STS:task_state`. */
const showServer = (ctx: StepContext, uuid: string) => client(ctx, { openstack: sh`openstack server show ${uuid} -f json -c status -c OS-EXT-SRV-ATTR:host -c OS-EXT-STS:task_state` });
type ServerState = { status: string; 'OS-EXT-SRV-ATTR:host': string | null; 'OS-EXT-STS:task_state': string | null };

type DrainArgs = { host: string; to: string; blockMigrate: boolean };

/**
 * Compute node planned maintenance: list the node's instances, live-migrate them one by one and wait
 * for each to arrive, check that none is left, then disable nova-compute in nova (so the scheduler
 * sends nothing there), stop it, and keep its service manager from starting it again (the page moves
 * the init files aside, against configuration management). `nova undrain` reverses the last part.
 */
export const drain = procedure({
  pack: 'nova',
  name: 'drain',
  summary: 'Live-migrate every instance off a compute node, then disable and stop nova-compute for maintenance',
  usage: 'nova drain <host> --to <host> [--block-migrate]',
  examples: ['nova drain c01 --to c02', 'nova drain c01 --to c02 --block-migrate'],
  source: `${MAINTENANCE} (Compute Node Failures and Maintenance: Planned Maintenance)`,
  args: z.object({ host: z.string().min(1), to: z.string().min(1), blockMigrate: z.boolean().default(false) }),
  positional: ['host'],
  hosts: { host: { groups: ['compute'] }, to: { groups: ['compute'] } },
  guard: (ctx) => (ctx.args.host === ctx.args.to ? `the instances of ${ctx.args.host} cannot be migrated to ${ctx.args.to} itself` : needsCredentials(ctx)),
  notes: (ctx) => [
    `Afterwards: shut down ${ctx.args.host}, perform your maintenance, and turn the node back on; then "nova undrain ${ctx.args.host}" reenables nova-compute.`,
    ctx.args.blockMigrate ? 'Block migration (--block-migrate): for clouds not using shared storage.' : 'Live migration needs shared storage for /var/lib/nova/instances; without it, use --block-migrate.',
  ],
  steps: [
    detectFacts({ host: (ctx: StepContext<DrainArgs>) => ctx.args.host }),
    {
      kind: 'ssh',
      id: 'list',
      title: (ctx: StepContext<DrainArgs>) => `First, get a list of instances that need to be moved off ${ctx.args.host}`,
      risk: 'read',
      host: controller,
      command: (ctx: StepContext<DrainArgs>) => listServers(ctx, novaHost(ctx, ctx.args.host)),
      reference: (ctx: StepContext<DrainArgs>) => `nova list --host ${fqdn(ctx, ctx.args.host)} --all-tenants`,
      capture: serverList,
    },
    {
      kind: 'forEach',
      id: 'migrate',
      title: (ctx: StepContext<DrainArgs>) => `Next, migrate them one by one to ${ctx.args.to}`,
      risk: 'write',
      items: (ctx) => ctx.capture<Server[]>('list'),
      key: (s: Server) => s.ID,
      label: (s: Server) => s.Name,
      concurrency: 1,
      steps: [
        {
          kind: 'ssh',
          id: 'live-migration',
          title: (ctx: StepContext<DrainArgs>) => `Live-migrate ${server(ctx).Name} to ${ctx.args.to}`,
          risk: 'write',
          host: controller,
          command: (ctx: StepContext<DrainArgs>): ShellCommand => {
            const to = novaHost(ctx, ctx.args.to);
            const id = server(ctx).ID;
            const block = ctx.args.blockMigrate;
            return client(ctx, {
              nova: block ? sh`nova live-migration --block-migrate ${id} ${to}` : sh`nova live-migration ${id} ${to}`,
              // --host with --live-migration needs compute API 2.30 (OSC MigrateServer).
              openstack: block ? sh`openstack --os-compute-api-version 2.30 server migrate --live-migration --host ${to} --block-migration ${id}` : sh`openstack --os-compute-api-version 2.30 server migrate --live-migration --host ${to} ${id}`,
            });
          },
          reference: (ctx: StepContext<DrainArgs>) => `nova live-migration ${ctx.args.blockMigrate ? '--block-migrate ' : ''}${server(ctx).ID} ${fqdn(ctx, ctx.args.to)}`,
          variant: (ctx) => clientVariant(ctx),
        },
        {
          kind: 'poll',
          id: 'arrived',
          title: (ctx: StepContext<DrainArgs>) => `Wait until ${server(ctx).Name} has arrived on ${ctx.args.to}`,
          risk: 'read',
          host: controller,
          // From compute API 2.34 a live migration's checks run after the 202: its migration record says how it ended.
          command: (ctx) => migrations(ctx, server(ctx).ID),
          capture: parse.json<Migration[]>(),
          until: (list: Migration[], ctx: StepContext<DrainArgs>) => {
            const ended = migrationEnded('live migration', server(ctx).Name)(list);
            if (ended && list[0]!['Dest Compute'] !== novaHost(ctx, ctx.args.to)) throw new Error(`${server(ctx).Name} went to ${list[0]!['Dest Compute']}, not ${ctx.args.to}`);
            return ended;
          },
          intervalMs: 5_000,
          timeoutMs: 30 * 60_000,
          waiting: (ctx) => `${server(ctx).Name} is still migrating…`,
        },
      ],
    },
    {
      kind: 'ssh',
      id: 'left',
      title: (ctx: StepContext<DrainArgs>) => `Check that no instance is left on ${ctx.args.host}`,
      risk: 'read',
      host: controller,
      command: (ctx: StepContext<DrainArgs>) => listServers(ctx, novaHost(ctx, ctx.args.host)),
      capture: serverList,
    },
    {
      kind: 'ssh',
      id: 'disable',
      title: (ctx: StepContext<DrainArgs>) => `Disable nova-compute of ${ctx.args.host} in nova, so that nothing is scheduled there`,
      risk: 'write',
      guard: (ctx: StepContext<DrainArgs>) => noneLeft(ctx.capture<Server[]>('left'), ctx.args.host),
      host: controller,
      command: (ctx: StepContext<DrainArgs>) => client(ctx, { openstack: sh`openstack compute service set --disable --disable-reason ${'planned maintenance'} ${novaHost(ctx, ctx.args.host)} nova-compute` }),
    },
    {
      kind: 'ssh',
      id: 'stop',
      title: 'After you have migrated all instances, ensure that the nova-compute service has stopped',
      risk: 'write',
      host: (ctx: StepContext<DrainArgs>) => ctx.args.host,
      ...serviceAction<DrainArgs>((ctx) => ctx.args.host, 'stop', ['nova-compute']),
    },
    {
      kind: 'ssh',
      id: 'hold',
      title: 'Temporarily keep configuration management (Puppet) from starting nova-compute again: the page moves its init files aside',
      risk: 'write',
      host: (ctx: StepContext<DrainArgs>) => ctx.args.host,
      ...serviceAction<DrainArgs>((ctx) => ctx.args.host, 'disable', ['nova-compute']),
      reference: 'mkdir /root/tmp; mv /etc/init/nova-compute.conf /root/tmp; mv /etc/init.d/nova-compute /root/tmp',
    },
  ],
});

/** The end of planned maintenance: let the service manager start nova-compute again, start it, and enable it in nova. */
export const undrain = procedure({
  pack: 'nova',
  name: 'undrain',
  summary: 'Reenable nova-compute after maintenance: let it start again, start it, enable it in nova',
  usage: 'nova undrain <host>',
  examples: ['nova undrain c01'],
  source: `${MAINTENANCE} (Compute Node Failures and Maintenance: Planned Maintenance)`,
  args: z.object({ host: z.string().min(1) }),
  positional: ['host'],
  hosts: { host: { groups: ['compute'] } },
  guard: (ctx) => needsCredentials(ctx),
  notes: (ctx) => [`You can now optionally migrate the instances back to ${ctx.args.host} (nova drain <other> --to ${ctx.args.host}).`],
  steps: [
    detectFacts({ host: (ctx: StepContext<{ host: string }>) => ctx.args.host }),
    {
      kind: 'ssh',
      id: 'release',
      title: 'Reenable the nova-compute service by undoing the previous commands',
      risk: 'write',
      host: (ctx) => ctx.args.host,
      ...serviceAction<{ host: string }>((ctx) => ctx.args.host, 'enable', ['nova-compute']),
      reference: 'mv /root/tmp/nova-compute.conf /etc/init; mv /root/tmp/nova-compute /etc/init.d/',
    },
    { kind: 'ssh', id: 'start', title: 'Then start the nova-compute service', risk: 'write', host: (ctx) => ctx.args.host, ...serviceAction<{ host: string }>((ctx) => ctx.args.host, 'start', ['nova-compute']) },
    mustRun<{ host: string }>('running', 'The nova-compute service is running', (ctx) => ctx.args.host, ['nova-compute']),
    {
      kind: 'ssh',
      id: 'enable',
      title: (ctx) => `Enable nova-compute of ${ctx.args.host} in nova`,
      risk: 'write',
      host: controller,
      command: (ctx) => client(ctx, { openstack: sh`openstack compute service set --enable ${novaHost(ctx, ctx.args.host)} nova-compute` }),
    },
    upPoll<{ host: string }>((ctx) => ctx.args.host),
  ],
});

/** A compute service as `openstack compute service list -f json` gives it. */
interface ComputeService {
  Host: string;
  Binary: string;
  Status: string;
  State: string;
}

/**
 * nova-compute reports to nova through the message bus: `State` is up only while its reports arrive
 * (nova/servicegroup/drivers/db.py), so it proves the AMQP connection the page greps the log for.
 */
function upPoll<A>(host: (ctx: StepContext<A>) => string): Step<A> {
  return {
    kind: 'poll',
    id: 'amqp',
    title: 'Also ensure that it has successfully connected to the AMQP server',
    risk: 'read',
    host: controller,
    command: (ctx) => client(ctx, { openstack: sh`openstack compute service list --host ${novaHost(ctx, host(ctx))} --service nova-compute -f json` }),
    reference: (ctx) => `grep AMQP /var/log/nova/nova-compute.log   # "Connected to AMQP server on …" (host ${host(ctx)})`,
    capture: parse.json<ComputeService[]>(),
    until: (list: ComputeService[]) => list.some((s) => s.State === 'up'),
    intervalMs: 5_000,
    timeoutMs: 3 * 60_000,
    waiting: (ctx) => `nova-compute of ${host(ctx)} has not reported yet…`,
  };
}

type HostArgs = { host: string };

/**
 * After a compute node reboots: nova-compute running and reporting (through the message bus), then
 * each of the node's instances started: a stopped one (nova marks them SHUTOFF once it sees them
 * down) with `start`, a running one with `reboot`; each waited for until it is ACTIVE.
 */
export const afterReboot = procedure({
  pack: 'nova',
  name: 'after-reboot',
  summary: 'After a compute node reboots: check nova-compute and its AMQP connection, then start each instance',
  usage: 'nova after-reboot <host>',
  examples: ['nova after-reboot c01'],
  source: `${MAINTENANCE} (After a Compute Node Reboots; Instances)`,
  args: z.object({ host: z.string().min(1) }),
  positional: ['host'],
  hosts: { host: { groups: ['compute'] } },
  guard: (ctx) => needsCredentials(ctx),
  steps: [
    detectFacts({ host: (ctx: StepContext<HostArgs>) => ctx.args.host }),
    { kind: 'ssh', id: 'status', title: 'First verify that it booted successfully: is the nova-compute service running?', risk: 'read', host: (ctx: StepContext<HostArgs>) => ctx.args.host, ...serviceCheck<HostArgs>((ctx) => ctx.args.host, ['nova-compute']) },
    {
      kind: 'ssh',
      id: 'start',
      title: 'Start the nova-compute service (it is not running)',
      risk: 'write',
      when: (ctx) => ctx.capture<ServiceStatus[]>('status').some((s) => s.state !== 'running'),
      host: (ctx: StepContext<HostArgs>) => ctx.args.host,
      ...serviceAction<HostArgs>((ctx) => ctx.args.host, 'start', ['nova-compute']),
    },
    mustRun<HostArgs>('running', 'Ensure that the nova-compute service is running', (ctx) => ctx.args.host, ['nova-compute']),
    processRuns<HostArgs>('ps', 'The nova-compute process runs', (ctx) => ctx.args.host, ['nova-compute'], 'nova-compute'),
    upPoll<HostArgs>((ctx) => ctx.args.host),
    {
      kind: 'ssh',
      id: 'list',
      title: (ctx: StepContext<HostArgs>) => `Create a list of instances that are hosted on ${ctx.args.host}`,
      risk: 'read',
      host: controller,
      command: (ctx: StepContext<HostArgs>) => listServers(ctx, novaHost(ctx, ctx.args.host)),
      reference: (ctx: StepContext<HostArgs>) => `nova list --host ${fqdn(ctx, ctx.args.host)} --all-tenants`,
      capture: serverList,
    },
    {
      kind: 'forEach',
      id: 'reboot',
      title: 'Use the nova command to start each instance',
      risk: 'write',
      items: (ctx) => ctx.capture<Server[]>('list'),
      key: (s: Server) => s.ID,
      label: (s: Server) => s.Name,
      concurrency: 1,
      continueOnError: true,
      steps: [
        {
          kind: 'ssh',
          id: 'start',
          title: (ctx) => `Start ${server(ctx).Name} (${server(ctx).Status})`,
          risk: 'write',
          host: controller,
          // A soft reboot is refused for a stopped instance (409, nova ALLOW_SOFT_REBOOT is ACTIVE only).
          command: (ctx) => {
            const id = server(ctx).ID;
            return server(ctx).Status === 'SHUTOFF' ? client(ctx, { nova: sh`nova start ${id}`, openstack: sh`openstack server start ${id}` }) : client(ctx, { nova: sh`nova reboot ${id}`, openstack: sh`openstack server reboot ${id}` });
          },
          reference: (ctx) => `nova reboot ${server(ctx).ID}`,
          variant: (ctx) => clientVariant(ctx),
        },
      ],
    },
    serversSettle<HostArgs>({
      id: 'active',
      title: 'Ensure that they start correctly: wait until each is ACTIVE',
      host: (ctx) => ctx.args.host,
      ids: (ctx) => ctx.capture<Server[]>('list').map((s) => s.ID),
      done: (s) => s.Status === 'ACTIVE' && s['Task State'] === null,
      waiting: 'not every instance is ACTIVE yet…',
    }),
  ],
});

type EvacuateArgs = { failed: string; to?: string | undefined };

/**
 * "Evacuate instances" (the recovery page's first option): nova rebuilds each instance of a failed
 * compute node on another, from shared storage or its image, and moves its ports, volume attachments
 * and placement allocations itself. nova accepts an evacuation only from a host whose nova-compute is
 * down (nova/compute/api.py evacuate: "Compute service of … is still in use"): the service is forced
 * down first, which is only safe when the node really is off.
 */
export const evacuate = procedure({
  pack: 'nova',
  name: 'evacuate',
  summary: 'Failed compute node: mark its nova-compute down and evacuate every instance to another node, waiting for each',
  usage: 'nova evacuate <failed-host> [--to <host>]',
  examples: ['nova evacuate c01', 'nova evacuate c01 --to c02'],
  source: `${RECOVERY} (Evacuate instances)`,
  args: z.object({ failed: z.string().min(1), to: z.string().min(1).optional() }),
  positional: ['failed'],
  hosts: { failed: { groups: ['compute'] }, to: { groups: ['compute'] } },
  // The failed node is only written to nova; the run holds the target.
  locks: (ctx) => [{ host: ctx.args.failed, mode: 'write' }, ...(ctx.args.to ? [{ host: ctx.args.to, mode: 'write' as const }] : [])],
  guard: (ctx) => (ctx.args.failed === ctx.args.to ? `the instances of ${ctx.args.failed} cannot be evacuated to ${ctx.args.failed} itself` : needsCredentials(ctx)),
  notes: (ctx) => [
    `${ctx.args.failed} must really be off (powered off or fenced): an instance evacuated from a node that still runs it is started twice, on the same disks.`,
    ctx.args.to ? `Every instance is rebuilt on ${ctx.args.to}.` : 'The scheduler chooses where each instance is rebuilt.',
  ],
  steps: [
    {
      kind: 'ssh',
      id: 'list',
      title: (ctx) => `Identify the VMs on ${ctx.args.failed} (openstack server list)`,
      risk: 'read',
      host: controller,
      command: (ctx) => listServers(ctx, novaHost(ctx, ctx.args.failed)),
      capture: serverList,
    },
    {
      kind: 'ssh',
      id: 'force-down',
      title: (ctx) => `Mark nova-compute of ${ctx.args.failed} down (forced) and disabled: ${ctx.args.failed} is off`,
      risk: 'destructive',
      guard: (ctx) => (ctx.capture<Server[]>('list').length === 0 ? `nova has no instance on ${ctx.args.failed}: nothing to evacuate` : undefined),
      host: controller,
      command: (ctx) => client(ctx, { openstack: sh`openstack compute service set --down --disable --disable-reason ${'failed host, instances evacuated'} ${novaHost(ctx, ctx.args.failed)} nova-compute` }),
    },
    {
      kind: 'forEach',
      id: 'evacuate',
      title: (ctx) => `Evacuate each instance${ctx.args.to ? ` to ${ctx.args.to}` : ''}`,
      risk: 'write',
      items: (ctx) => ctx.capture<Server[]>('list'),
      key: (s: Server) => s.ID,
      label: (s: Server) => s.Name,
      concurrency: 1,
      continueOnError: true,
      steps: [
        {
          kind: 'ssh',
          id: 'evacuate',
          title: (ctx) => `Evacuate ${server(ctx).Name}`,
          risk: 'write',
          host: controller,
          command: (ctx: StepContext<EvacuateArgs>) => {
            const id = server(ctx).ID;
            const to = ctx.args.to === undefined ? undefined : novaHost(ctx, ctx.args.to);
            const osc = to === undefined ? sh`openstack server evacuate ${id}` : sh`openstack --os-compute-api-version 2.29 server evacuate --host ${to} ${id}`;
            return client(ctx, { nova: to === undefined ? sh`nova evacuate ${id}` : sh`nova evacuate ${id} ${to}`, openstack: acceptEvacuateBug(withCredentials(ctx, controller(ctx), osc)) });
          },
          reference: (ctx: StepContext<EvacuateArgs>) => `nova evacuate ${server(ctx).ID}${ctx.args.to ? ` ${novaHost(ctx, ctx.args.to)}` : ''}`,
          variant: (ctx) => clientVariant(ctx),
        },
      ],
    },
    serversSettle<EvacuateArgs>({
      id: 'rebuilt',
      title: (ctx) => `Wait until each instance is rebuilt on its new host${ctx.args.to ? ` (${ctx.args.to})` : ''}`,
      ids: (ctx) => ctx.capture<Server[]>('list').map((s) => s.ID),
      done: (s) => s['Task State'] === null && s.Status !== 'REBUILD',
      waiting: 'instances are still being rebuilt…',
    }),
    {
      kind: 'report',
      id: 'where',
      title: 'Where each instance runs now, and in which state',
      risk: 'read',
      guard: (ctx: StepContext<EvacuateArgs>) => {
        const left = ctx.capture<ServerRow[]>('rebuilt').filter((r) => r.Host === novaHost(ctx, ctx.args.failed));
        return left.length === 0 ? undefined : `nova did not move ${left.map((r) => r.Name).join(', ')} off ${ctx.args.failed} (openstack server migration list --server <uuid> says why)`;
      },
      text: (ctx: StepContext<EvacuateArgs>) => {
        const ids = new Set(ctx.capture<Server[]>('list').map((s) => s.ID));
        return ctx.capture<ServerRow[]>('rebuilt').filter((r) => ids.has(r.ID)).map((r) => `${r.Name} (${r.ID}): ${r.Status} on ${r.Host}`).join('\n');
      },
    },
  ],
});

/**
 * python-openstackclient before 6.1.0 (Debian 12 ships 6.0.0) sends the evacuation, which nova accepts,
 * then fails to print it and exits 1 with this message (OSC 4592d2c78, "I don't think it has ever
 * worked"). That exit, with exactly that message, is the accepted evacuation; any other failure stays
 * one. The poll that follows checks the evacuation itself.
 */
function acceptEvacuateBug(command: ShellCommand): ShellCommand {
  return sh`out=$(${command} 2>&1); rc=$?; printf '%s\n' "$out" >&2; [ "$rc" = 0 ] || [ "$out" = ${"'TupleWithMeta' object has no attribute 'to_dict'"} ]`;
}

/** A row of the attachments of a host's instances (the page's join of nova.instances and cinder.volumes). */
export interface AttachedVolume {
  instance_uuid: string;
  volume_uuid: string;
  status: string;
  attach_status: string;
  mountpoint: string | null;
  display_name: string | null;
}

/** Where cinder keeps an attachment: `volume_attachment` (Kilo, 2015.1.0, and later) or the volume's own columns before. */
export type CinderShape = 'volume_attachment' | 'volumes';

const PAGE_VOLUMES_SQL =
  "select nova.instances.uuid as instance_uuid, cinder.volumes.id as volume_uuid, cinder.volumes.status, cinder.volumes.attach_status, cinder.volumes.mountpoint, cinder.volumes.display_name from cinder.volumes inner join nova.instances on cinder.volumes.instance_uuid=nova.instances.uuid where nova.instances.host = 'c01.example.com';";

/**
 * The page's SELECT on the schema the cloud really has: the attachment in `volume_attachment`
 * (cinder/db/models.py VolumeAttachment) on Kilo and later, in the volume's columns before; live rows
 * only (nova `deleted = 0`, cinder `deleted = 0`), schemas as configured, the host (and, when given,
 * the instances) bound.
 */
function volumesQuery(ctx: StepContext, shape: CinderShape, uuids?: string[]): string {
  const n = ctx.db('nova');
  const c = ctx.db('cinder');
  const only = uuids === undefined ? '' : ` and i.uuid in (${placeholders(uuids.length)})`;
  if (shape === 'volumes') {
    return `select i.uuid as instance_uuid, v.id as volume_uuid, v.status, v.attach_status, v.mountpoint, v.display_name from ${c}.volumes v inner join ${n}.instances i on v.instance_uuid = i.uuid and i.deleted = 0 where v.deleted = 0 and v.attach_status = 'attached' and i.host = ?${only}`;
  }
  return (
    `select i.uuid as instance_uuid, v.id as volume_uuid, v.status, a.attach_status, a.mountpoint, v.display_name ` +
    `from ${c}.volume_attachment a inner join ${c}.volumes v on v.id = a.volume_id and v.deleted = 0 inner join ${n}.instances i on i.uuid = a.instance_uuid and i.deleted = 0 ` +
    `where a.deleted = 0 and a.attach_status = 'attached' and i.host = ?${only}`
  );
}

/**
 * Which cinder shape the database has, read at intake so the plan says which SQL runs. A database
 * that does not answer then leaves it unknown: the run's first SQL step says why.
 */
export async function cinderShape(query: (db: string, sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>): Promise<CinderShape | undefined> {
  try {
    const rows = await query('cinder', "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'volume_attachment'");
    return Number(rows[0]?.n ?? 0) > 0 ? 'volume_attachment' : 'volumes';
  } catch {
    return undefined;
  }
}

const shapeVariant = (shape: CinderShape | undefined) =>
  shape === 'volumes' ? 'cinder before Kilo: the attachment in volumes' : shape === 'volume_attachment' ? 'cinder ≥ Kilo: volume_attachment' : "cinder's tables not read at intake: volume_attachment (≥ Kilo) assumed";

const volume = (ctx: StepContext) => forEachItem<AttachedVolume>(ctx);
/** `openstack volume show <id> -f json -c status -c attachments`: cinder's view of one volume. */
type VolumeState = { status: string; attachments: { server_id: string; device: string }[] };
const showVolume = (ctx: StepContext, id: string) => client(ctx, { openstack: sh`openstack volume show ${id} -f json -c status -c attachments` });

type ReattachArgs = { cinder?: CinderShape | undefined };

/**
 * "Volumes": the instances' volumes on a host, then detach each, wait until cinder says it is
 * detached (a detach is asynchronous: cinder refuses an attach while the volume is `detaching`), and
 * attach it again at its mount point, waiting until it is in use.
 */
function reattachSteps<A extends ReattachArgs>(host: (ctx: StepContext<A>) => string, uuids?: (ctx: StepContext<A>) => string[]): Step<A>[] {
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
      statement: (ctx) => volumesQuery(ctx, ctx.args.cinder ?? 'volume_attachment', uuids?.(ctx)),
      params: (ctx) => [novaHost(ctx, host(ctx)), ...(uuids?.(ctx) ?? [])],
      reference: PAGE_VOLUMES_SQL,
      variant: (ctx) => shapeVariant(ctx.args.cinder),
      capture: true,
    },
    {
      kind: 'forEach',
      id: 'reattach',
      title: 'Next, manually detach and reattach the volumes, at their mount points',
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
          command: (ctx) => client(ctx, { nova: sh`nova volume-detach ${volume(ctx).instance_uuid} ${volume(ctx).volume_uuid}`, openstack: sh`openstack server remove volume ${volume(ctx).instance_uuid} ${volume(ctx).volume_uuid}` }),
          reference: (ctx) => `nova volume-detach ${volume(ctx).instance_uuid} ${volume(ctx).volume_uuid}`,
          variant: (ctx) => clientVariant(ctx),
        },
        {
          kind: 'poll',
          id: 'detached',
          title: (ctx) => `Wait until volume ${volume(ctx).display_name ?? volume(ctx).volume_uuid} is detached (available)`,
          risk: 'read',
          host: controller,
          command: (ctx) => showVolume(ctx, volume(ctx).volume_uuid),
          capture: parse.json<VolumeState>(),
          until: (v: VolumeState, ctx) => {
            if (v.status.startsWith('error')) throw new Error(`volume ${volume(ctx).volume_uuid} went to ${v.status} while detaching`);
            return v.status === 'available';
          },
          intervalMs: 2_000,
          timeoutMs: 5 * 60_000,
          waiting: (ctx) => `volume ${volume(ctx).volume_uuid} is still detaching…`,
        },
        {
          kind: 'ssh',
          id: 'attach',
          title: (ctx) => `Reattach volume ${volume(ctx).display_name ?? volume(ctx).volume_uuid} at ${volume(ctx).mountpoint ?? '?'}`,
          risk: 'write',
          guard: (ctx) => (volume(ctx).mountpoint ? undefined : `cinder has no mount point for volume ${volume(ctx).volume_uuid}; reattach it by hand with the right /dev/vdX`),
          host: controller,
          command: (ctx) => {
            const v = volume(ctx);
            return client(ctx, { nova: sh`nova volume-attach ${v.instance_uuid} ${v.volume_uuid} ${v.mountpoint ?? ''}`, openstack: sh`openstack server add volume ${v.instance_uuid} ${v.volume_uuid} --device ${v.mountpoint ?? ''}` });
          },
          reference: (ctx) => `nova volume-attach ${volume(ctx).instance_uuid} ${volume(ctx).volume_uuid} ${volume(ctx).mountpoint ?? '/dev/vdX'}`,
          variant: (ctx) => clientVariant(ctx),
        },
        {
          kind: 'poll',
          id: 'attached',
          title: (ctx) => `Wait until volume ${volume(ctx).display_name ?? volume(ctx).volume_uuid} is in use by its instance`,
          risk: 'read',
          host: controller,
          command: (ctx) => showVolume(ctx, volume(ctx).volume_uuid),
          capture: parse.json<VolumeState>(),
          until: (v: VolumeState, ctx) => {
            if (v.status.startsWith('error') || v.status === 'available') throw new Error(`volume ${volume(ctx).volume_uuid} is ${v.status}: the attachment failed`);
            return v.status === 'in-use' && v.attachments.some((a) => a.server_id === volume(ctx).instance_uuid);
          },
          intervalMs: 2_000,
          timeoutMs: 5 * 60_000,
          waiting: (ctx) => `volume ${volume(ctx).volume_uuid} is still attaching…`,
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
  args: z.object({ host: z.string().min(1), cinder: z.enum(['volume_attachment', 'volumes']).optional() }),
  positional: ['host'],
  internal: ['cinder'],
  hosts: { host: { groups: ['compute'] } },
  resolve: async (args, { query }) => ({ ...args, cinder: await cinderShape(query) }),
  guard: (ctx) => needsCredentials(ctx),
  steps: reattachSteps<{ host: string; cinder?: CinderShape | undefined }>((ctx) => ctx.args.host),
});

type MoveArgs = { failed: string; to: string; toNode?: string | undefined; toComputeId?: number | undefined; computeId?: boolean | undefined; bindingStatus?: boolean | undefined; cinder?: CinderShape | undefined };
const moved = (ctx: StepContext) => ctx.capture<{ uuid: string }[]>('select').map((r) => r.uuid);
const counts = (ctx: StepContext) => ctx.capture<{ bindings: number | string; stale: number | string; levels: number | string; stale_levels: number | string }[]>('ports')[0]!;
const exactly = (n: number | string) => ({ min: Number(n), max: Number(n) });
/**
 * The INACTIVE bindings (t) to the target host of ports still bound to the failed one (s): a live
 * migration left them (multiple port bindings, neutron ≥ Rocky), and the page's UPDATE would hit
 * their primary key (port_id, host). Parameters: the failed host, the target.
 */
const STALE_BINDINGS = "ml2_port_bindings t join ml2_port_bindings s on s.port_id = t.port_id and s.host = ? where t.host = ? and t.status = 'INACTIVE'";
/** The levels (l) of those bindings. */
const STALE_LEVELS = `ml2_port_binding_levels l join ${STALE_BINDINGS.replace(' join ', ' on t.port_id = l.port_id and t.host = l.host join ')}`;
const staleParams = (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.failed), novaHost(ctx, ctx.args.to)];
/** Ports of instances (compute:*), not a distributed router's: DVR binds those on every host itself. */
const INSTANCE_PORTS = "port_id in (select id from ports where device_owner like 'compute:%')";

/** Does a table of a configured database have a column: the schema era, read at intake. */
async function hasColumn(query: (db: string, sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>, db: string, table: string, column: string): Promise<boolean> {
  const rows = await query(db, 'SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?', [table, column]);
  return Number(rows[0]?.n ?? 0) > 0;
}

/**
 * Total compute node failure, with shared storage for /var/lib/nova/instances, as the page does it in
 * the databases: the fallback to `nova evacuate` where nova cannot evacuate. Moves the instances
 * (host, and the hypervisor `node` the resource tracker looks them up by) and the ML2 port bindings
 * to another node, hard-reboots the instances there, then reattaches their volumes.
 */
export const moveInstances = procedure({
  pack: 'nova',
  name: 'move-instances',
  summary: 'Total compute node failure: move its instances to another node in the databases, hard-reboot them, reattach their volumes',
  usage: 'nova move-instances <failed> --to <host>',
  examples: ['nova move-instances c01 --to c02'],
  source: `${MAINTENANCE} (Total Compute Node Failure)`,
  args: z.object({
    failed: z.string().min(1),
    to: z.string().min(1),
    toNode: z.string().optional(),
    toComputeId: z.number().optional(),
    computeId: z.boolean().optional(),
    bindingStatus: z.boolean().optional(),
    cinder: z.enum(['volume_attachment', 'volumes']).optional(),
  }),
  positional: ['failed'],
  internal: ['toNode', 'toComputeId', 'computeId', 'bindingStatus', 'cinder'],
  hosts: { failed: { groups: ['compute'] }, to: { groups: ['compute'] } },
  async resolve(args, { query, inventory }) {
    const to = novaHost({ inventory }, args.to);
    const [node] = await query('nova', 'SELECT id, hypervisor_hostname FROM compute_nodes WHERE host = ? AND deleted = 0', [to]);
    if (!node) throw new UsageError(`nova has no compute node on ${to} (compute_nodes, deleted = 0): is nova-compute installed and registered there?`);
    return {
      ...args,
      toNode: String(node.hypervisor_hostname),
      toComputeId: Number(node.id),
      // instances.compute_id: nova 2023.2 (1acf2c98e646); ml2_port_bindings.status: neutron Ocata (a9c43481023c).
      computeId: await hasColumn(query, 'nova', 'instances', 'compute_id'),
      bindingStatus: await hasColumn(query, 'neutron', 'ml2_port_bindings', 'status'),
      cinder: await cinderShape(query),
    };
  },
  guard: (ctx) => (ctx.args.failed === ctx.args.to ? `the instances of ${ctx.args.failed} cannot be moved to ${ctx.args.failed} itself` : needsCredentials(ctx)),
  notes: (ctx) => [
    'Only with shared storage for /var/lib/nova/instances: the instances are relaunched from the files the failed node left there.',
    `"nova evacuate ${ctx.args.failed}${ctx.args.to ? ` --to ${ctx.args.to}` : ''}" does this through nova and is the page's first choice; this database fallback leaves behind what evacuation would have handled: the placement allocations stay on ${ctx.args.failed}'s resource provider (nova-manage placement heal_allocations / audit), the volumes' connection info in block_device_mapping names ${ctx.args.failed}'s connector (nova-manage volume_attachment refresh), and with ML2/OVN the port's requested-chassis is not moved until neutron resyncs.`,
  ],
  steps: [
    {
      kind: 'sql',
      id: 'select',
      title: (ctx: StepContext<MoveArgs>) => `Generate a list of instance UUIDs that are hosted on ${ctx.args.failed}`,
      risk: 'read',
      database: 'nova',
      statement: 'select uuid from instances where host = ? and deleted = 0',
      params: (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.failed)],
      capture: true,
    },
    {
      kind: 'sql',
      id: 'ports',
      title: (ctx: StepContext<MoveArgs>) => `Count the Networking service port bindings of the instances on ${ctx.args.failed} (ML2 plug-in)`,
      risk: 'read',
      database: 'neutron',
      statement: (ctx: StepContext<MoveArgs>) =>
        ctx.args.bindingStatus === false
          ? `select (select count(*) from ml2_port_bindings where host = ? and ${INSTANCE_PORTS}) as bindings, 0 as stale, (select count(*) from ml2_port_binding_levels where host = ? and ${INSTANCE_PORTS}) as levels, 0 as stale_levels`
          : `select (select count(*) from ml2_port_bindings where host = ? and ${INSTANCE_PORTS}) as bindings, ` +
            `(select count(*) from ml2_port_bindings t where t.host = ? and t.status = 'INACTIVE' and t.port_id in (select port_id from ml2_port_bindings where host = ?)) as stale, ` +
            `(select count(*) from ml2_port_binding_levels where host = ? and ${INSTANCE_PORTS}) as levels, ` +
            `(select count(*) from ml2_port_binding_levels l where l.host = ? and l.port_id in (select t.port_id from ml2_port_bindings t where t.host = ? and t.status = 'INACTIVE' and t.port_id in (select port_id from ml2_port_bindings where host = ?))) as stale_levels`,
      params: (ctx: StepContext<MoveArgs>) => {
        const [f, t] = [novaHost(ctx, ctx.args.failed), novaHost(ctx, ctx.args.to)];
        return ctx.args.bindingStatus === false ? [f, f] : [f, t, f, f, t, t, f];
      },
      capture: true,
    },
    {
      kind: 'group',
      id: 'move',
      title: (ctx: StepContext<MoveArgs>) => `Update the nova and Networking databases: the instances that used to be hosted on ${ctx.args.failed} are now hosted on ${ctx.args.to}`,
      risk: 'destructive',
      guard: (ctx: StepContext<MoveArgs>) => (moved(ctx).length === 0 ? `nova has no instance on ${ctx.args.failed} (deleted = 0): nothing to move` : undefined),
      steps: [
        {
          kind: 'sql',
          id: 'instances',
          title: (ctx: StepContext<MoveArgs>) => `Update the nova database: the instances of ${ctx.args.failed} are now hosted on ${ctx.args.to} (host, and the hypervisor node ${ctx.args.toNode ?? '?'})`,
          risk: 'destructive',
          database: 'nova',
          statement: (ctx: StepContext<MoveArgs>) => `update instances set host = ?, node = ?${ctx.args.computeId ? ', compute_id = ?' : ''} where host = ? and deleted = 0`,
          params: (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.to), ctx.args.toNode, ...(ctx.args.computeId ? [ctx.args.toComputeId] : []), novaHost(ctx, ctx.args.failed)],
          expect: (ctx) => exactly(moved(ctx).length),
          preview: { statement: 'select uuid, display_name, host, node, vm_state from instances where host = ? and deleted = 0', params: (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.failed)] },
          reference: (ctx: StepContext<MoveArgs>) => `update instances set host = '${fqdn(ctx, ctx.args.to)}' where host = '${fqdn(ctx, ctx.args.failed)}' and deleted = 0;`,
        },
        {
          kind: 'sql',
          id: 'stale-binding-levels',
          title: (ctx: StepContext<MoveArgs>) => `Remove the INACTIVE port bindings to ${ctx.args.to} left by unfinished live migrations (their levels), or the update below hits a duplicate key`,
          risk: 'destructive',
          when: (ctx: StepContext<MoveArgs>) => ctx.args.bindingStatus !== false,
          database: 'neutron',
          statement: `delete l from ${STALE_LEVELS}`,
          params: staleParams,
          expect: (ctx) => exactly(counts(ctx).stale_levels),
          preview: { statement: `select l.port_id, l.host, l.level, l.driver from ${STALE_LEVELS}`, params: staleParams },
        },
        {
          kind: 'sql',
          id: 'stale-bindings',
          title: (ctx: StepContext<MoveArgs>) => `Remove the INACTIVE port bindings to ${ctx.args.to} left by unfinished live migrations`,
          risk: 'destructive',
          when: (ctx: StepContext<MoveArgs>) => ctx.args.bindingStatus !== false,
          database: 'neutron',
          statement: `delete t from ${STALE_BINDINGS}`,
          params: staleParams,
          expect: (ctx) => exactly(counts(ctx).stale),
          preview: { statement: `select t.port_id, t.host, t.status, t.profile from ${STALE_BINDINGS}`, params: staleParams },
        },
        {
          kind: 'sql',
          id: 'port-bindings',
          title: (ctx: StepContext<MoveArgs>) => `Update the Networking database: the ports that used to be hosted on ${ctx.args.failed} (ml2_port_bindings)`,
          risk: 'destructive',
          database: 'neutron',
          statement: `update ml2_port_bindings set host = ? where host = ? and ${INSTANCE_PORTS}`,
          params: (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.to), novaHost(ctx, ctx.args.failed)],
          expect: (ctx) => exactly(counts(ctx).bindings),
          preview: { statement: (ctx: StepContext<MoveArgs>) => `select port_id, host, vif_type${ctx.args.bindingStatus === false ? '' : ', status'} from ml2_port_bindings where host = ? and ${INSTANCE_PORTS}`, params: (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.failed)] },
          reference: (ctx: StepContext<MoveArgs>) => `update ml2_port_bindings set host = '${fqdn(ctx, ctx.args.to)}' where host = '${fqdn(ctx, ctx.args.failed)}';`,
        },
        {
          kind: 'sql',
          id: 'port-binding-levels',
          title: (ctx: StepContext<MoveArgs>) => `Update the Networking database: ml2_port_binding_levels of ${ctx.args.failed}`,
          risk: 'destructive',
          database: 'neutron',
          statement: `update ml2_port_binding_levels set host = ? where host = ? and ${INSTANCE_PORTS}`,
          params: (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.to), novaHost(ctx, ctx.args.failed)],
          expect: (ctx) => exactly(Number(counts(ctx).levels)),
          preview: { statement: `select port_id, host, level, driver from ml2_port_binding_levels where host = ? and ${INSTANCE_PORTS}`, params: (ctx: StepContext<MoveArgs>) => [novaHost(ctx, ctx.args.failed)] },
          reference: (ctx: StepContext<MoveArgs>) => `update ml2_port_binding_levels set host = '${fqdn(ctx, ctx.args.to)}' where host = '${fqdn(ctx, ctx.args.failed)}';`,
        },
      ],
    },
    {
      kind: 'forEach',
      id: 'reboot',
      title: (ctx: StepContext<MoveArgs>) => `Reboot all instances that were on ${ctx.args.failed} while regenerating their XML files`,
      risk: 'write',
      items: (ctx) => moved(ctx).map((uuid) => ({ ID: uuid, Name: uuid, Status: '' })),
      key: (s: Server) => s.ID,
      concurrency: 1,
      steps: [
        {
          kind: 'ssh',
          id: 'hard',
          title: (ctx) => `Hard reboot ${server(ctx).ID}`,
          risk: 'write',
          host: controller,
          command: (ctx) => client(ctx, { nova: sh`nova reboot --hard ${server(ctx).ID}`, openstack: sh`openstack server reboot --hard ${server(ctx).ID}` }),
          reference: (ctx) => `nova reboot --hard ${server(ctx).ID}`,
          variant: (ctx) => clientVariant(ctx),
        },
      ],
    },
    serversSettle<MoveArgs>({
      id: 'active',
      title: (ctx) => `Wait until the instances are ACTIVE on ${ctx.args.to}`,
      ids: moved,
      done: (s) => s.Status === 'ACTIVE' && s['Task State'] === null,
      waiting: 'not every instance is ACTIVE yet…',
    }),
    ...reattachSteps<MoveArgs>((ctx) => ctx.args.to, moved),
  ],
});

type RecoverArgs = { uuid: string; to: string; from?: string | undefined; toNode?: string | undefined; toComputeId?: number | undefined; computeId?: boolean | undefined; bindingStatus?: boolean | undefined };
/** `[vnc] server_listen` (vncserver_listen before Queens) of the new host's nova.conf. */
const listenParser = parse.map(parse.lines(), (lines) => lines.map((l) => /=\s*(\S+)/.exec(l)?.[1] ?? '').filter(Boolean));

/**
 * "Manual recovery" of one VM of a failed compute node (with shared storage): point nova and the
 * VM's ports at the new host, then hard-reboot it there. The page's libvirt.xml edit has no
 * equivalent: nova regenerates the domain XML from its database at a hard reboot (since Grizzly,
 * nova b22c3302cc) and has not written libvirt.xml since Ocata (dccaf9cb88); the VNC address is the new
 * host's `[vnc] server_listen`, which is checked, and DHCPSERVER was nova-network's (neutron's DHCP
 * agent serves the port wherever it is bound).
 */
export const recoverInstance = procedure({
  pack: 'nova',
  name: 'recover-instance',
  summary: 'Manually recover one VM of a failed compute node onto another: move it in the nova and neutron databases, hard-reboot it',
  usage: 'nova recover-instance <uuid> --to <host>',
  examples: ['nova recover-instance 3f57699a-e773-4650-a443-b4b37eed5a06 --to c02'],
  source: `${RECOVERY} (Manual recovery)`,
  args: z.object({
    uuid: z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'an instance uuid looks like 3f57699a-e773-4650-a443-b4b37eed5a06'),
    to: z.string().min(1),
    from: z.string().optional(),
    toNode: z.string().optional(),
    toComputeId: z.number().optional(),
    computeId: z.boolean().optional(),
    bindingStatus: z.boolean().optional(),
  }),
  positional: ['uuid'],
  internal: ['from', 'toNode', 'toComputeId', 'computeId', 'bindingStatus'],
  hosts: { to: { groups: ['compute'] } },
  async resolve(args, { query, inventory }) {
    const [row] = await query('nova', 'SELECT host FROM instances WHERE uuid = ? AND deleted = 0', [args.uuid]);
    if (!row) throw new UsageError(`nova has no instance ${args.uuid} (deleted = 0)`);
    const [node] = await query('nova', 'SELECT id, hypervisor_hostname FROM compute_nodes WHERE host = ? AND deleted = 0', [novaHost({ inventory }, args.to)]);
    if (!node) throw new UsageError(`nova has no compute node on ${novaHost({ inventory }, args.to)} (compute_nodes, deleted = 0)`);
    return {
      ...args,
      from: String(row.host),
      toNode: String(node.hypervisor_hostname),
      toComputeId: Number(node.id),
      computeId: await hasColumn(query, 'nova', 'instances', 'compute_id'),
      bindingStatus: await hasColumn(query, 'neutron', 'ml2_port_bindings', 'status'),
    };
  },
  guard: (ctx) => (ctx.args.from === novaHost(ctx, ctx.args.to) ? `${ctx.args.uuid} is already on ${ctx.args.from}` : needsCredentials(ctx)),
  notes: () => [
    'Only with shared storage for /var/lib/nova/instances: the new host reads the instance\'s files.',
    'If problems persist: use virsh to recreate the network filter configuration, restart Compute services, or update the vm_state and power_state fields in the Compute database.',
  ],
  steps: [
    { kind: 'ssh', id: 'show', title: 'Identify the VM on the affected host (openstack server show)', risk: 'read', host: controller, command: (ctx) => client(ctx, { openstack: sh`openstack server show ${ctx.args.uuid} -f json` }), capture: parse.json() },
    {
      kind: 'sql',
      id: 'status',
      title: 'Query the Compute database for the status of the host',
      risk: 'read',
      database: 'nova',
      statement: "SELECT id, CONCAT('instance-', LPAD(LOWER(CONV(id, 10, 16)), 8, '0')) AS name, created_at, updated_at, deleted_at, power_state, vm_state, hostname, host, node, uuid, task_state FROM instances WHERE uuid = ? AND deleted = 0",
      params: (ctx) => [ctx.args.uuid],
      capture: true,
    },
    {
      kind: 'group',
      id: 'move',
      title: (ctx) => `Move the VM to ${ctx.args.to}`,
      risk: 'destructive',
      steps: [
        {
          kind: 'sql',
          id: 'instance',
          title: (ctx) => `Move the VM to ${ctx.args.to} (host, and the hypervisor node ${ctx.args.toNode ?? '?'})`,
          risk: 'destructive',
          database: 'nova',
          statement: (ctx) => `UPDATE instances SET host = ?, node = ?${ctx.args.computeId ? ', compute_id = ?' : ''} WHERE uuid = ? AND deleted = 0`,
          params: (ctx) => [novaHost(ctx, ctx.args.to), ctx.args.toNode, ...(ctx.args.computeId ? [ctx.args.toComputeId] : []), ctx.args.uuid],
          expect: { min: 1, max: 1 },
          preview: { statement: 'SELECT uuid, hostname, host, node, vm_state, power_state FROM instances WHERE uuid = ? AND deleted = 0', params: (ctx) => [ctx.args.uuid] },
          reference: (ctx) => `UPDATE instances SET host = '${novaHost(ctx, ctx.args.to)}' WHERE uuid = '${ctx.args.uuid}';`,
        },
        {
          kind: 'sql',
          id: 'stale-bindings',
          title: (ctx) => `Remove the VM's INACTIVE port bindings to ${ctx.args.to} left by an unfinished live migration (and their levels), or the update below hits a duplicate key`,
          risk: 'destructive',
          when: (ctx) => ctx.args.bindingStatus !== false,
          database: 'neutron',
          statement: "delete t, l from ml2_port_bindings t join ports p on p.id = t.port_id left join ml2_port_binding_levels l on l.port_id = t.port_id and l.host = t.host where t.host = ? and p.device_id = ? and t.status = 'INACTIVE'",
          params: (ctx) => [novaHost(ctx, ctx.args.to), ctx.args.uuid],
          preview: { statement: 'select b.port_id, b.host, b.vif_type, b.status from ml2_port_bindings b join ports p on p.id = b.port_id where p.device_id = ?', params: (ctx) => [ctx.args.uuid] },
        },
        {
          kind: 'sql',
          id: 'port-binding-hosts',
          title: (ctx) => `The VM's port bindings now name ${ctx.args.to}`,
          risk: 'destructive',
          database: 'neutron',
          statement: 'update ml2_port_bindings set host = ? where port_id in (select id from ports where device_id = ?)',
          params: (ctx) => [novaHost(ctx, ctx.args.to), ctx.args.uuid],
        },
        {
          kind: 'sql',
          id: 'port-binding-level-hosts',
          title: (ctx) => `The VM's port binding levels now name ${ctx.args.to}`,
          risk: 'destructive',
          database: 'neutron',
          statement: 'update ml2_port_binding_levels set host = ? where port_id in (select id from ports where device_id = ?)',
          params: (ctx) => [novaHost(ctx, ctx.args.to), ctx.args.uuid],
        },
      ],
    },
    {
      kind: 'ssh',
      id: 'vnc',
      title: (ctx) => `Update the VNC IP to 0.0.0.0: the VNC console listens where ${ctx.args.to}'s nova.conf says`,
      risk: 'read',
      host: (ctx) => ctx.args.to,
      command: sh`grep -E ${'^[[:space:]]*(server_listen|vncserver_listen)[[:space:]]*='} /etc/nova/nova.conf`,
      okExitCodes: [0, 1],
      capture: listenParser,
      reference: (ctx) => `sed -i 's/listen="[^"]*"/listen="0.0.0.0"/' /var/lib/nova/instances/${ctx.args.uuid}/libvirt.xml   # and DHCPSERVER: the new host's IP`,
    },
    {
      kind: 'ssh',
      id: 'reboot',
      title: 'Reboot the VM (a hard reboot regenerates its domain XML on the new host)',
      risk: 'write',
      guard: (ctx) => {
        const listen = ctx.capture<string[]>('vnc');
        return listen.length === 0 || listen.includes('0.0.0.0') ? undefined : `${ctx.args.to}'s nova.conf has [vnc] server_listen = ${listen.join(', ')}, not 0.0.0.0: the VM's console would not be reachable there; fix nova.conf (and restart nova-compute) first`;
      },
      host: controller,
      command: (ctx) => client(ctx, { openstack: sh`openstack server reboot --hard ${ctx.args.uuid}` }),
      reference: (ctx) => `openstack server reboot ${ctx.args.uuid}`,
    },
    {
      kind: 'poll',
      id: 'active',
      title: (ctx) => `Wait until the VM is ACTIVE on ${ctx.args.to}`,
      risk: 'read',
      host: controller,
      command: (ctx) => showServer(ctx, ctx.args.uuid),
      capture: parse.json<ServerState>(),
      until: (s: ServerState, ctx) => {
        if (s.status === 'ERROR') throw new Error(`${ctx.args.uuid} went to ERROR (openstack server show has the fault)`);
        return s.status === 'ACTIVE' && s['OS-EXT-STS:task_state'] === null;
      },
      intervalMs: 5_000,
      timeoutMs: 10 * 60_000,
    },
  ],
});

type FixIdsArgs = { hosts: string[]; uid: number; gid: number; qemuUid?: number | undefined; libvirtdGid?: number | undefined };
/** The IDs a compute node has before the change, and its libvirt group's name: what `find -uid|-gid <old>` looks for. */
interface OldIds {
  novaUid: string;
  novaGid: string;
  qemuUid: string;
  libvirtGroup: string;
  libvirtGid: string;
}
/**
 * `id nova; id libvirt-qemu; getent group libvirt || getent group libvirtd`: Debian ≥ 10 and Ubuntu
 * ≥ 16.10 name the group `libvirt` (libvirt-daemon-system's postinst: `addgroup --system libvirt`),
 * older releases `libvirtd`, as the page does.
 */
const oldIdsParser = parse.map(parse.text(), (s): OldIds => {
  const nova = /uid=(\d+)\(nova\) gid=(\d+)/.exec(s);
  const qemu = /uid=(\d+)\(libvirt-qemu\)/.exec(s);
  const group = /^(libvirtd?):[^:]*:(\d+):/m.exec(s);
  if (!nova || !qemu || !group) throw new Error('missing the nova or libvirt-qemu user, or the libvirt (libvirtd) group');
  return { novaUid: nova[1]!, novaGid: nova[2]!, qemuUid: qemu[1]!, libvirtGroup: group[1]!, libvirtGid: group[2]! };
});
const nodeOf = (ctx: StepContext) => String(forEachItem(ctx));
/** Stops or starts the libvirt service the host has, on its own service manager. */
function libvirtControl(ctx: StepContext, verb: 'stop' | 'start'): ShellCommand {
  const { command } = serviceAction(nodeOf, verb, [libvirtService(ctx)]);
  return typeof command === 'function' ? command(ctx) : command;
}
/** The libvirt service the host has, read from it by the `libvirt` step. */
function libvirtService(ctx: StepContext): string {
  const found = ctx.capture<ServiceStatus[]>('libvirt').find((s) => s.state !== 'missing');
  if (!found) throw new Error(`${nodeOf(ctx)} has neither libvirtd nor libvirt-bin`);
  return found.name;
}
const old = (ctx: StepContext) => ctx.capture<OldIds>('ids');
type FixCtx = StepContext<FixIdsArgs>;
/**
 * `find / -uid|-gid <old> …` as the page has it, but not into /proc and /sys: GNU find walks /proc
 * too, and a process that exits meanwhile (a qemu thread, an ssh session) is an error that makes find
 * exit 1 after it has done its work (findutils find/ftsfind.c: an FTS_NS/FTS_DNR entry is reported
 * and the exit status becomes 1), so the step would fail on a busy host, again on every retry. Not
 * `-xdev`: the instances directory is often a shared (NFS) mount, whose files must change too.
 * `-exec … {} +` hands chown many files at once.
 */
function findOwned(test: '-uid' | '-gid', id: string, exec?: { cmd: 'chown' | 'chgrp'; to: string }): ShellCommand {
  const walk = sh`find / \\( -path /proc -o -path /sys \\) -prune -o ${test} ${id}`;
  return exec ? sh`${walk} -exec ${exec.cmd} ${exec.to} {} +` : sh`${walk} -print`;
}
const pageFind = (test: '-uid' | '-gid', id: string, exec?: { cmd: 'chown' | 'chgrp'; to: string }) => `find / ${test} ${id}${exec ? ` -exec ${exec.cmd} ${exec.to} {} \\;` : ''}`;

const noFiles = (what: string) =>
  parse.map(parse.lines(), (files) => {
    if (files.length > 0) throw new Error(`files still owned by the old ${what}: ${files.join(', ')}`);
    return files;
  });

/**
 * "Recover from a UID/GID mismatch", on each nova-compute host: stop the services (usermod refuses to
 * change the UID of a user with running processes: shadow's usermod, user_busy, exit 8), set the same
 * IDs everywhere, give every file the old IDs own to the user or group again, start the services, then
 * a find that shows no file kept an old ID. One approval per host covers what changes there, once its
 * old IDs are known. The libvirt-qemu UID changes only with no guest running (each runs as that user).
 */
export const fixIds = procedure({
  pack: 'nova',
  name: 'fix-ids',
  summary: 'UID/GID mismatch: set the nova (and libvirt-qemu / libvirt group) IDs on compute nodes and give their files back to them',
  usage: 'nova fix-ids <host…> --uid <nova uid> --gid <nova gid> [--qemu-uid <libvirt-qemu uid>] [--libvirtd-gid <libvirt group gid>]',
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
        detectFacts({ host: nodeOf }),
        {
          kind: 'ssh',
          id: 'ids',
          title: 'Note the old IDs of nova, libvirt-qemu and the libvirt group',
          risk: 'read',
          host: nodeOf,
          command: sh`id nova; id libvirt-qemu; getent group libvirt || getent group libvirtd`,
          reference: 'id nova; id libvirt-qemu; getent group libvirtd',
          capture: oldIdsParser,
        },
        {
          kind: 'ssh',
          id: 'libvirt',
          title: "libvirt's service name on the host (libvirtd; libvirt-bin on Ubuntu before 18.10)",
          risk: 'read',
          host: nodeOf,
          ...serviceCheck(nodeOf, ['libvirtd', 'libvirt-bin']),
        },
        {
          kind: 'ssh',
          id: 'guests',
          title: 'No guest may run while the libvirt-qemu UID changes (virsh list --name)',
          risk: 'read',
          when: (ctx: FixCtx) => ctx.args.qemuUid !== undefined,
          host: nodeOf,
          command: sh`virsh list --name`,
          capture: parse.map(parse.lines(), (names) => {
            if (names.length > 0) throw new Error(`guests still run as libvirt-qemu: ${names.join(', ')}; migrate or shut them down first`);
            return names;
          }),
        },
        {
          kind: 'group',
          id: 'fix',
          title: (ctx: FixCtx) => `Stop the services on ${nodeOf(ctx)}, set the IDs and change all files that the old IDs own, restart the services`,
          risk: 'destructive',
          steps: [
            { kind: 'ssh', id: 'stop-nova', title: 'Stop the services on the compute node: nova-compute', risk: 'write', host: nodeOf, ...serviceAction(nodeOf, 'stop', ['nova-compute']) },
            { kind: 'ssh', id: 'stop-libvirt', title: (ctx) => `Stop the services on the compute node: ${libvirtService(ctx)}`, risk: 'write', host: nodeOf, command: (ctx) => libvirtControl(ctx, 'stop') },
            { kind: 'ssh', id: 'set-uid', title: (ctx: FixCtx) => `Set the nova UID to ${ctx.args.uid}`, risk: 'write', host: nodeOf, command: (ctx: FixCtx) => sh`usermod -u ${ctx.args.uid} nova` },
            { kind: 'ssh', id: 'set-qemu-uid', title: (ctx: FixCtx) => `Set the libvirt-qemu UID to ${ctx.args.qemuUid ?? '(unchanged)'}`, risk: 'write', when: (ctx: FixCtx) => ctx.args.qemuUid !== undefined, host: nodeOf, command: (ctx: FixCtx) => sh`usermod -u ${ctx.args.qemuUid ?? 0} libvirt-qemu` },
            { kind: 'ssh', id: 'set-gid', title: (ctx: FixCtx) => `Set the nova group to ${ctx.args.gid}`, risk: 'write', host: nodeOf, command: (ctx: FixCtx) => sh`groupmod -g ${ctx.args.gid} nova` },
            {
              kind: 'ssh',
              id: 'set-libvirtd-gid',
              title: (ctx: FixCtx) => `Set the ${old(ctx).libvirtGroup} group to ${ctx.args.libvirtdGid ?? '(unchanged)'}`,
              risk: 'write',
              when: (ctx: FixCtx) => ctx.args.libvirtdGid !== undefined,
              host: nodeOf,
              command: (ctx: FixCtx) => sh`groupmod -g ${ctx.args.libvirtdGid ?? 0} ${old(ctx).libvirtGroup}`,
            },
            { kind: 'ssh', id: 'chown-nova', title: (ctx) => `Change all files that the nova user owns (old UID ${old(ctx).novaUid})`, risk: 'destructive', host: nodeOf, command: (ctx) => findOwned('-uid', old(ctx).novaUid, { cmd: 'chown', to: 'nova' }), reference: (ctx) => pageFind('-uid', old(ctx).novaUid, { cmd: 'chown', to: 'nova' }) },
            { kind: 'ssh', id: 'chgrp-nova', title: (ctx) => `Change all files that the nova group owns (old GID ${old(ctx).novaGid})`, risk: 'destructive', host: nodeOf, command: (ctx) => findOwned('-gid', old(ctx).novaGid, { cmd: 'chgrp', to: 'nova' }), reference: (ctx) => pageFind('-gid', old(ctx).novaGid, { cmd: 'chgrp', to: 'nova' }) },
            { kind: 'ssh', id: 'chown-qemu', title: (ctx) => `Repeat for the libvirt-qemu files (old UID ${old(ctx).qemuUid})`, risk: 'destructive', when: (ctx: FixCtx) => ctx.args.qemuUid !== undefined, host: nodeOf, command: (ctx) => findOwned('-uid', old(ctx).qemuUid, { cmd: 'chown', to: 'libvirt-qemu' }), reference: (ctx) => pageFind('-uid', old(ctx).qemuUid, { cmd: 'chown', to: 'libvirt-qemu' }) },
            {
              kind: 'ssh',
              id: 'chgrp-libvirtd',
              title: (ctx) => `Repeat for the ${old(ctx).libvirtGroup} group's files (old GID ${old(ctx).libvirtGid})`,
              risk: 'destructive',
              when: (ctx: FixCtx) => ctx.args.libvirtdGid !== undefined,
              host: nodeOf,
              command: (ctx) => findOwned('-gid', old(ctx).libvirtGid, { cmd: 'chgrp', to: old(ctx).libvirtGroup }),
              reference: (ctx) => pageFind('-gid', old(ctx).libvirtGid, { cmd: 'chgrp', to: 'libvirtd' }),
            },
            { kind: 'ssh', id: 'start-libvirt', title: (ctx) => `Restart the services: ${libvirtService(ctx)}`, risk: 'write', host: nodeOf, command: (ctx) => libvirtControl(ctx, 'start') },
            { kind: 'ssh', id: 'start-nova', title: 'Restart the services: nova-compute', risk: 'write', host: nodeOf, ...serviceAction(nodeOf, 'start', ['nova-compute']) },
          ],
        },
        {
          kind: 'ssh',
          id: 'verify-uid',
          title: (ctx) => `To verify that all files use the correct IDs, run find: nothing may keep the old nova UID ${old(ctx).novaUid}`,
          risk: 'read',
          when: (ctx: FixCtx) => Number(old(ctx).novaUid) !== ctx.args.uid,
          host: nodeOf,
          command: (ctx) => findOwned('-uid', old(ctx).novaUid),
          reference: (ctx) => pageFind('-uid', old(ctx).novaUid),
          capture: noFiles('nova UID'),
        },
        {
          kind: 'ssh',
          id: 'verify-gid',
          title: (ctx) => `Nothing may keep the old nova GID ${old(ctx).novaGid}`,
          risk: 'read',
          when: (ctx: FixCtx) => Number(old(ctx).novaGid) !== ctx.args.gid,
          host: nodeOf,
          command: (ctx) => findOwned('-gid', old(ctx).novaGid),
          reference: (ctx) => pageFind('-gid', old(ctx).novaGid),
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

export const novaPack = [inspectDisk, drain, undrain, afterReboot, evacuate, moveInstances, reattachVolumes, recoverInstance, fixIds];
