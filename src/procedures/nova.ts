import { z } from 'zod';
import { UsageError } from '../errors.js';
import { parse, procedure, sh, type StepContext, type StepStatus } from './dsl.js';

const MAINTENANCE = 'runbooks/openstack-maintenance-failures.txt';

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

export const novaPack = [inspectDisk];
