import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { Inventory, InventoryHost } from '../inventory.js';
import { forEachItem, parse, procedure, sh, type LockSpec, type Step, type StepContext } from './dsl.js';

const MAINTENANCE = 'runbooks/openstack-maintenance-failures.txt';

/** The three rings of Object Storage, each with its builder file on the storage proxy. */
const RINGS = ['account', 'container', 'object'] as const;
type Ring = (typeof RINGS)[number];
/** The ports the rings' devices listen on (Swift's defaults, as the lab's rings were built with). */
const RING_PORTS: Record<Ring, number> = { account: 6202, container: 6201, object: 6200 };
const builder = (ring: Ring) => `/etc/swift/${ring}.builder`;
const RING_FILES = RINGS.map((r) => `/etc/swift/${r}.ring.gz`);

/** Where the rings are built: the first host in @swift-proxy. */
function proxy(ctx: StepContext | { inventory: Inventory }): string {
  const p = ctx.inventory.inGroups(['swift-proxy'])[0];
  if (!p) throw new Error('no host in @swift-proxy in runbook.yaml: the rings are built there');
  return p.name;
}

const storageNodes = (inventory: Inventory): InventoryHost[] => inventory.inGroups(['swift']);
const ipOf = (h: InventoryHost): string => String(h.vars.ip ?? h.address);
const fqdnOf = (h: InventoryHost): string => String(h.vars.fqdn ?? h.name);

type NodeArgs = { node: string; host?: string | undefined };

/** `<ip>` or a host name: the storage node it designates (its host name goes in `host`). */
async function resolveNode<A extends NodeArgs>(args: A, { inventory }: { inventory: Inventory }): Promise<A> {
  const nodes = storageNodes(inventory);
  const node = nodes.find((h) => h.name === args.node || ipOf(h) === args.node || fqdnOf(h) === args.node);
  if (!node) throw new UsageError(`"${args.node}" is not a storage node; the storage nodes (@swift) are: ${nodes.map((h) => `${h.name} (${ipOf(h)})`).join(', ') || '(none)'}`);
  return { ...args, host: node.name };
}

const nodeIp = (ctx: StepContext<NodeArgs>) => ipOf(ctx.host(ctx.args.host ?? ctx.args.node));
const itemOf = (ctx: StepContext) => String(forEachItem(ctx));
/** The rings are changed on the proxy: one run at a time there. */
const proxyLock = (ctx: StepContext): LockSpec[] => [{ host: proxy(ctx), mode: 'write' }];

/** "Next, redistribute the ring files to the other nodes", to each storage node `to` selects. */
function distribute(to: (ctx: StepContext<NodeArgs>) => InventoryHost[]) {
  return {
    kind: 'forEach' as const,
    id: 'distribute',
    title: 'Next, redistribute the ring files to the other nodes',
    risk: 'write' as const,
    items: (ctx: StepContext<NodeArgs>) => to(ctx).map(fqdnOf),
    key: (fqdn: string) => fqdn,
    concurrency: 1,
    steps: [{ kind: 'ssh' as const, id: 'scp', title: (ctx: StepContext) => `scp *.ring.gz ${itemOf(ctx)}:/etc/swift`, risk: 'write' as const, host: proxy, command: (ctx: StepContext) => sh`scp ${RING_FILES} ${`${itemOf(ctx)}:/etc/swift`}` }],
  };
}

/** One step per ring, as the page lists the commands (so the plan shows each one). */
function perRing<A>(id: string, risk: 'write', title: (ring: Ring, ctx: StepContext<A>) => string, command: (ring: Ring, ctx: StepContext<A>) => ReturnType<typeof sh>): Step<A>[] {
  return RINGS.map((ring) => ({ kind: 'ssh' as const, id: `${id}-${ring}`, title: (ctx: StepContext<A>) => title(ring, ctx), risk, host: proxy, command: (ctx: StepContext<A>) => command(ring, ctx) }));
}

const rebalance = <A>() => perRing<A>('rebalance', 'write', (ring) => `swift-ring-builder ${ring}.builder rebalance`, (ring) => sh`swift-ring-builder ${builder(ring)} rebalance`);

/**
 * "Shutting Down a Storage Node" for a day or more: remove it from the account, container and object
 * rings, rebalance, and copy the ring files to the other storage nodes.
 */
export const removeNode = procedure({
  pack: 'swift',
  name: 'remove-node',
  summary: 'Take a storage node out of the storage cluster: remove it from the three rings, rebalance, copy the rings to the other nodes',
  usage: 'swift remove-node <ip address of storage node | host>',
  examples: ['swift remove-node 10.100.2.3', 'swift remove-node s03'],
  source: `${MAINTENANCE} (Shutting Down a Storage Node)`,
  args: z.object({ node: z.string().min(1), host: z.string().optional() }),
  positional: ['node'],
  internal: ['host'],
  hosts: { host: { groups: ['swift'] } },
  resolve: resolveNode,
  locks: proxyLock,
  notes: (ctx) => [`When ${ctx.args.host ?? ctx.args.node} is able to rejoin the cluster, add it back to the ring: swift add-node ${ctx.args.node}.`],
  steps: [
    ...perRing<NodeArgs>('remove', 'write', (ring, ctx) => `swift-ring-builder ${ring}.builder remove ${nodeIp(ctx)}`, (ring, ctx) => sh`swift-ring-builder ${builder(ring)} remove ${nodeIp(ctx)}`),
    ...rebalance<NodeArgs>(),
    distribute((ctx) => storageNodes(ctx.inventory).filter((h) => h.name !== ctx.args.host)),
  ],
});

type AddArgs = NodeArgs & { zone?: number | undefined; region: number; device: string; weight: number };

/**
 * Rejoining the cluster: add the node's disk back to the three rings with the options the cluster was
 * built with (region, zone, device, weight), rebalance, and copy the ring files to every storage node.
 */
export const addNode = procedure({
  pack: 'swift',
  name: 'add-node',
  summary: 'Add a storage node (back) to the three rings, rebalance, and copy the ring files to the storage nodes',
  usage: 'swift add-node <ip | host> [--zone N] [--region 1] [--device sdb] [--weight 100]',
  examples: ['swift add-node 10.100.2.3', 'swift add-node s03 --zone 3 --device sdb --weight 100'],
  source: `${MAINTENANCE} (Shutting Down a Storage Node; Adding an Object Storage Node)`,
  args: z.object({
    node: z.string().min(1),
    host: z.string().optional(),
    zone: z.number().int().positive().optional(),
    region: z.number().int().positive().default(1),
    device: z.string().regex(/^[a-z][a-z0-9]*$/, 'a device name looks like sdb').default('sdb'),
    weight: z.number().positive().default(100),
  }),
  positional: ['node'],
  internal: ['host'],
  hosts: { host: { groups: ['swift'] } },
  async resolve(args, tools) {
    const a = await resolveNode(args, tools);
    if (a.zone !== undefined) return a;
    const zone = Number(tools.inventory.get(a.host!)?.vars.zone);
    if (!Number.isInteger(zone) || zone < 1) throw new UsageError(`give --zone: ${a.host} has no vars.zone in runbook.yaml, and the zone must be the one the cluster was built with`);
    return { ...a, zone };
  },
  locks: proxyLock,
  notes: () => ['The exact syntax depends on the options the cluster was originally created with: check region, zone, device and weight against those commands.'],
  steps: [
    ...perRing<AddArgs>('add', 'write', (ring, ctx) => `swift-ring-builder ${ring}.builder add ${device(ring, ctx)} ${ctx.args.weight}`, (ring, ctx) => sh`swift-ring-builder ${builder(ring)} add ${device(ring, ctx)} ${ctx.args.weight}`),
    ...rebalance<AddArgs>(),
    distribute((ctx) => storageNodes(ctx.inventory)),
  ],
});

function device(ring: Ring, ctx: StepContext<AddArgs>): string {
  return `r${ctx.args.region}z${ctx.args.zone ?? '?'}-${nodeIp(ctx)}:${RING_PORTS[ring]}/${ctx.args.device}`;
}

type DiskArgs = { host: string; device: string };
const disk = (ctx: StepContext<DiskArgs>) => ctx.args.device;

/**
 * "Replacing a Swift Disk": unmount it, swap it (a person), check that the kernel saw the new disk,
 * format it whole with XFS, mount it again; Swift then replicates the data onto it.
 */
export const replaceDisk = procedure({
  pack: 'swift',
  name: 'replace-disk',
  summary: 'Replace a failed disk of a storage node: unmount, swap (by hand), mkfs.xfs, mount -a',
  usage: 'swift replace-disk <host> <device>',
  examples: ['swift replace-disk s02 /dev/sdb'],
  source: `${MAINTENANCE} (Replacing a Swift Disk)`,
  args: z.object({ host: z.string().min(1), device: z.string().regex(/^\/dev\/[a-z]+$/, 'a whole disk looks like /dev/sdb (no partitions on a swift disk)') }),
  positional: ['host', 'device'],
  hosts: { host: { groups: ['swift'] } },
  notes: () => ['The data of the failed drive must also be replicated to other drives of the Object Storage environment: Swift copies it back from the other replicas once the new disk is mounted.'],
  steps: [
    { kind: 'ssh', id: 'umount', title: 'First, unmount the disk', risk: 'write', host: (ctx) => ctx.args.host, command: (ctx) => sh`umount ${disk(ctx)}` },
    {
      kind: 'manual',
      id: 'swap',
      title: 'Physically remove the disk from the server and replace it with a working disk',
      risk: 'write',
      instructions: (ctx) => `Physically remove ${disk(ctx)} from ${ctx.args.host} and replace it with a working disk; press Done when the new disk is in.`,
    },
    {
      kind: 'ssh',
      id: 'dmesg',
      title: 'Ensure that the operating system has recognized the new disk (dmesg | tail)',
      risk: 'read',
      host: (ctx) => ctx.args.host,
      // The page pipes into tail; the last ten lines are taken here (the lab's tail reads only files).
      command: sh`dmesg`,
      capture: parse.map(parse.lines(), (lines) => lines.slice(-10).join('\n')),
    },
    {
      kind: 'manual',
      id: 'recognized',
      title: (ctx) => `You should see a message about ${disk(ctx)}: confirm the new disk is recognized`,
      risk: 'read',
      instructions: (ctx) => `dmesg | tail on ${ctx.args.host} says:\n${ctx.capture<string>('dmesg')}\nConfirm that it shows the new ${disk(ctx)} (press Done), or abort.`,
    },
    {
      kind: 'ssh',
      id: 'mkfs',
      title: 'Format the disk as a whole (no partitions on a swift disk)',
      risk: 'destructive',
      host: (ctx) => ctx.args.host,
      command: (ctx) => sh`mkfs.xfs ${disk(ctx)}`,
    },
    { kind: 'ssh', id: 'mount', title: 'Finally, mount the disk', risk: 'write', host: (ctx) => ctx.args.host, command: sh`mount -a` },
    {
      kind: 'ssh',
      id: 'mounted',
      title: (ctx) => `Check that ${disk(ctx)} is mounted`,
      risk: 'read',
      host: (ctx) => ctx.args.host,
      command: sh`mount`,
      capture: parse.map(parse.lines(), (lines) => lines.map((l) => l.split(' ')[0])),
    },
    {
      kind: 'report',
      id: 'replicating',
      title: 'Swift notices the new disk and that no data exists, and begins replicating the data to it',
      risk: 'read',
      guard: (ctx) => (ctx.capture<string[]>('mounted').includes(disk(ctx)) ? undefined : `${disk(ctx)} is not mounted on ${ctx.args.host} after mount -a (is it in /etc/fstab?)`),
      text: (ctx) => `${disk(ctx)} is formatted and mounted on ${ctx.args.host}: Swift replicates the data to it from the other existing replicas.`,
    },
  ],
});

export const swiftPack = [removeNode, addNode, replaceDisk];
