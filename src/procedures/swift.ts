import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { Inventory, InventoryHost } from '../inventory.js';
import { forEachItem, parse, procedure, sh, type LockSpec, type SshStep, type Step, type StepContext } from './dsl.js';
import { firstInGroup, MAINTENANCE } from './openstack.js';

/** The three rings of Object Storage, each with its builder file on the storage proxy. */
const RINGS = ['account', 'container', 'object'] as const;
type Ring = (typeof RINGS)[number];
/** Swift's default ports since 2.7.0 (swift cf48e75c2): used only when a node's devices were not recorded. */
const DEFAULT_PORTS: Record<Ring, number> = { account: 6202, container: 6201, object: 6200 };

/** Where the rings are built: the first host in @swift-proxy. */
function proxy(ctx: { inventory: Inventory }): string {
  return firstInGroup(ctx.inventory, 'swift-proxy', 'the rings are built there');
}

/** A host's ring directory: `vars.swiftRingDir`, else /etc/swift (the page's). */
const ringDir = (h: InventoryHost): string => (typeof h.vars.swiftRingDir === 'string' ? h.vars.swiftRingDir : '/etc/swift');
const proxyDir = (ctx: StepContext) => ringDir(ctx.host(proxy(ctx)));
const builder = (ctx: StepContext, ring: Ring) => `${proxyDir(ctx)}/${ring}.builder`;
/** Where remove-node records a node's devices for add-node: a file of the proxy's ring directory. */
const record = (ctx: StepContext, ip: string) => `${proxyDir(ctx)}/removed/${ip}.json`;

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
const itemOf = (ctx: StepContext) => forEachItem<InventoryHost>(ctx);
/** The rings are changed on the proxy: one run at a time there. */
const proxyLock = (ctx: StepContext): LockSpec[] => [{ host: proxy(ctx), mode: 'write' }];

/** "Next, redistribute the ring files to the other nodes", to each storage node `to` selects, into its ring directory. */
function distribute(to: (ctx: StepContext<NodeArgs>) => InventoryHost[]): Step<NodeArgs> {
  return {
    kind: 'forEach',
    id: 'distribute',
    title: 'Next, redistribute the ring files to the other nodes',
    risk: 'write',
    items: to,
    key: (h: InventoryHost) => fqdnOf(h),
    concurrency: 1,
    steps: [
      {
        kind: 'ssh',
        id: 'scp',
        title: (ctx) => `scp *.ring.gz ${fqdnOf(itemOf(ctx))}:${ringDir(itemOf(ctx))}`,
        risk: 'write',
        host: proxy,
        // BatchMode: an unknown host key or a password prompt fails at once instead of waiting for input.
        command: (ctx) => sh`scp -o BatchMode=yes ${RINGS.map((r) => `${proxyDir(ctx)}/${r}.ring.gz`)} ${`${fqdnOf(itemOf(ctx))}:${ringDir(itemOf(ctx))}`}`,
        reference: (ctx) => `scp *.ring.gz ${fqdnOf(itemOf(ctx))}:/etc/swift`,
      },
    ],
  };
}

/** One step per ring, as the page lists the commands (so the plan shows each one). */
function perRing<A>(id: string, title: (ring: Ring, ctx: StepContext<A>) => string, step: (ring: Ring) => Pick<SshStep<A>, 'command'> & Partial<SshStep<A>>): Step<A>[] {
  return RINGS.map((ring) => ({ kind: 'ssh' as const, id: `${id}-${ring}`, title: (ctx: StepContext<A>) => title(ring, ctx), risk: 'write' as const, host: proxy, ...step(ring) }));
}

/**
 * The outcome of `swift-ring-builder <b> rebalance` (swift/cli/ringbuilder.py rebalance): exit 0,
 * or exit 1 (EXIT_WARNING) after saving when dispersion > 0 or balance > 5, both print "Reassigned
 * N (…%) partitions" and saved the ring; exit 1 without that line ("No partitions could be
 * reassigned", min_part_hours; "Cowardly refusing to save rebalance as it did not change at least
 * 1%") saved nothing, and is a failure, as is exit 2 (an error).
 */
export const rebalanced = parse.map(parse.text(), (out) => {
  const m = /^Reassigned (\d+) \(([\d.]+)%\) partitions\. Balance is now ([\d.]+)\.\s+Dispersion is now ([\d.]+)/m.exec(out);
  if (!m) throw new Error(`the ring was not rebalanced: ${out.split('\n').filter((l) => l.trim() && !/^-+$/.test(l)).slice(0, 2).join(' ') || 'no output'}`);
  return { reassigned: Number(m[1]), percent: Number(m[2]), balance: Number(m[3]), dispersion: Number(m[4]) };
});

const rebalance = <A>() =>
  perRing<A>(
    'rebalance',
    (ring) => `swift-ring-builder ${ring}.builder rebalance`,
    (ring) => ({ command: (ctx: StepContext<A>) => sh`swift-ring-builder ${builder(ctx as StepContext, ring)} rebalance`, okExitCodes: [0, 1], capture: rebalanced }),
  );

/** A ring device as `swift-ring-builder <b> search <value>` prints it (ringbuilder.py format_device table). */
export interface RingDevice {
  id: number;
  region: number;
  zone: number;
  ip: string;
  port: number;
  replicationIp: string;
  replicationPort: number;
  device: string;
  weight: number;
  meta: string;
}

export const searchDevices = parse.map(parse.lines(), (lines): RingDevice[] => {
  const rows = lines.filter((l) => /^\s+\d+\s+\d+\s+\d+\s/.test(l));
  return rows.map((l) => {
    const [id, region, zone, ip, port, replicationIp, replicationPort, device, weight, , , ...meta] = l.trim().split(/\s+/);
    return { id: Number(id), region: Number(region), zone: Number(zone), ip: ip!, port: Number(port), replicationIp: replicationIp!, replicationPort: Number(replicationPort), device: device!, weight: Number(weight), meta: meta.join(' ') };
  });
});

/**
 * "Shutting Down a Storage Node" for a day or more: note the node's devices in each ring (add-node
 * puts back exactly those), remove it from the account, container and object rings, rebalance, and
 * copy the ring files to the other storage nodes.
 */
export const removeNode = procedure({
  pack: 'swift',
  name: 'remove-node',
  summary: 'Take a storage node out of the storage cluster: record its devices, remove it from the three rings, rebalance, copy the rings to the other nodes',
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
    ...perRing<NodeArgs>(
      'devices',
      (ring, ctx) => `Note the devices of ${nodeIp(ctx)} in the ${ring} ring`,
      (ring) => ({ risk: 'read', command: (ctx: StepContext<NodeArgs>) => sh`swift-ring-builder ${builder(ctx, ring)} search ${nodeIp(ctx)}`, capture: searchDevices }),
    ),
    {
      kind: 'ssh',
      id: 'record',
      title: (ctx) => `Keep the devices of ${nodeIp(ctx)} on the proxy, for when it rejoins the cluster`,
      risk: 'write',
      host: proxy,
      command: (ctx) => {
        const devices = Object.fromEntries(RINGS.map((r) => [r, ctx.capture<RingDevice[]>(`devices-${r}`)]));
        const file = record(ctx, nodeIp(ctx));
        return sh`mkdir -p ${file.slice(0, file.lastIndexOf('/'))} && printf '%s\n' ${JSON.stringify(devices)} > ${file}`;
      },
    },
    ...perRing<NodeArgs>(
      'remove',
      (ring, ctx) => `swift-ring-builder ${ring}.builder remove ${nodeIp(ctx)}`,
      // --yes (swift a54095e56, 2016): a node with more than one device is asked about on stdin, which the bot never answers.
      (ring) => ({ command: (ctx: StepContext<NodeArgs>) => sh`swift-ring-builder ${builder(ctx, ring)} remove ${nodeIp(ctx)} --yes`, reference: (ctx: StepContext<NodeArgs>) => `swift-ring-builder ${ring}.builder remove ${nodeIp(ctx)}` }),
    ),
    ...rebalance<NodeArgs>(),
    distribute((ctx) => storageNodes(ctx.inventory).filter((h) => h.name !== ctx.args.host)),
  ],
});

type AddArgs = NodeArgs & { zone?: number | undefined; region: number; device?: string | undefined; weight: number };
const recorded = (ctx: StepContext<AddArgs>) => ctx.capture<Record<Ring, RingDevice[]> | null>('recorded');
const explicit = (ctx: StepContext<AddArgs>) => ctx.args.device !== undefined;

/** The `add` arguments for a ring: the devices recorded at removal, or the one the options describe. */
function devicesToAdd(ctx: StepContext<AddArgs>, ring: Ring): string[] {
  if (explicit(ctx)) return [`r${ctx.args.region}z${ctx.args.zone ?? '?'}-${nodeIp(ctx)}:${DEFAULT_PORTS[ring]}/${ctx.args.device}`, String(ctx.args.weight)];
  const rec = recorded(ctx);
  if (rec === null) throw new Error(`no devices of ${nodeIp(ctx)} were recorded (was it removed with swift remove-node?): give --zone, --device and --weight`);
  return rec[ring].flatMap((d) => [`r${d.region}z${d.zone}-${d.ip}:${d.port}R${d.replicationIp}:${d.replicationPort}/${d.device}${d.meta ? `_${d.meta}` : ''}`, String(d.weight)]);
}

/**
 * Rejoining the cluster: add the node's devices back to the three rings exactly as they were (ports,
 * devices, weights recorded by remove-node), or as the options say for a new node, rebalance, and
 * copy the ring files to every storage node.
 */
export const addNode = procedure({
  pack: 'swift',
  name: 'add-node',
  summary: 'Add a storage node (back) to the three rings, rebalance, and copy the ring files to the storage nodes',
  usage: 'swift add-node <ip | host> [--zone N --device sdb [--region 1] [--weight 100]]',
  examples: ['swift add-node 10.100.2.3', 'swift add-node s03 --zone 3 --device sdb --weight 100'],
  source: `${MAINTENANCE} (Shutting Down a Storage Node; Adding an Object Storage Node)`,
  args: z.object({
    node: z.string().min(1),
    host: z.string().optional(),
    zone: z.number().int().positive().optional(),
    region: z.number().int().positive().default(1),
    device: z.string().regex(/^[a-z][a-z0-9]*$/, 'a device name looks like sdb').optional(),
    weight: z.number().positive().default(100),
  }),
  positional: ['node'],
  internal: ['host'],
  hosts: { host: { groups: ['swift'] } },
  async resolve(args, tools) {
    const a = await resolveNode(args, tools);
    if (a.device === undefined || a.zone !== undefined) return a;
    const zone = Number(tools.inventory.get(a.host!)?.vars.zone);
    if (!Number.isInteger(zone) || zone < 1) throw new UsageError(`give --zone: ${a.host} has no vars.zone in runbook.yaml, and the zone must be the one the cluster was built with`);
    return { ...a, zone };
  },
  locks: proxyLock,
  notes: (ctx) => [
    explicit(ctx)
      ? `A device per ring from the options, on Swift's default ports (6202, 6201, 6200): check region, zone, device, weight and ports against the commands the cluster was created with.`
      : 'The devices the node had when swift remove-node took it out, with their ports and weights.',
  ],
  steps: [
    {
      kind: 'ssh',
      id: 'recorded',
      title: (ctx) => `The devices ${nodeIp(ctx)} had in the rings`,
      risk: 'read',
      when: (ctx) => !explicit(ctx),
      host: proxy,
      // cat exits 1 when no record exists: the add says what to give instead.
      command: (ctx) => sh`cat ${record(ctx, nodeIp(ctx))}`,
      okExitCodes: [0, 1],
      capture: parse.map(parse.text(), (s) => (s === '' ? null : (JSON.parse(s) as Record<Ring, RingDevice[]>))),
    },
    ...perRing<AddArgs>(
      'add',
      (ring, ctx) => `swift-ring-builder ${ring}.builder add ${explicit(ctx) ? devicesToAdd(ctx, ring).join(' ') : `the devices of ${nodeIp(ctx)}`}`,
      (ring) => ({ command: (ctx: StepContext<AddArgs>) => sh`swift-ring-builder ${builder(ctx, ring)} add ${devicesToAdd(ctx, ring)}` }),
    ),
    ...rebalance<AddArgs>(),
    distribute((ctx) => storageNodes(ctx.inventory)),
    {
      kind: 'ssh',
      id: 'forget',
      title: (ctx) => `${nodeIp(ctx)} is back: drop its record`,
      risk: 'write',
      when: (ctx) => !explicit(ctx),
      host: proxy,
      command: (ctx) => sh`rm -f ${record(ctx, nodeIp(ctx))}`,
    },
  ],
});

type DiskArgs = { host: string; device: string };
const disk = (ctx: StepContext<DiskArgs>) => ctx.args.device;

/** An /etc/fstab line: what it mounts (a device path, or LABEL= / UUID=) and where. */
interface FstabLine {
  source: string;
  target: string;
}
const fstabLines = parse.map(parse.lines(), (lines): FstabLine[] =>
  lines.flatMap((l) => {
    const [source, target] = l.trim().split(/\s+/);
    return source && target && !source.startsWith('#') ? [{ source, target: target.replace(/(.)\/+$/, '$1') }] : [];
  }),
);

/**
 * The line that mounts this disk: by its device path, or at /srv/node/<name> (swift's `devices`
 * directory, whose entries the rings name) by label or UUID. A new file system must carry that label
 * or UUID, or `mount -a` cannot find it: OpenStack-Ansible formats swift disks with labels, other
 * sites put blkid's UUID in fstab; swift's install guide uses the device path, as the page does.
 */
function fstabEntry(ctx: StepContext<DiskArgs>): { by: 'device' | 'label' | 'uuid'; value: string; target: string } | undefined {
  const device = disk(ctx);
  const line = ctx.capture<FstabLine[]>('fstab').find((l) => l.source === device || l.target === `/srv/node/${device.slice('/dev/'.length)}`);
  if (!line) return undefined;
  const tag = /^(LABEL|UUID)="?([^"]+)"?$/.exec(line.source);
  if (tag) return { by: tag[1] === 'LABEL' ? 'label' : 'uuid', value: tag[2]!, target: line.target };
  return line.source === device ? { by: 'device', value: device, target: line.target } : undefined;
}

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
    {
      kind: 'ssh',
      id: 'fstab',
      title: (ctx) => `How /etc/fstab mounts ${disk(ctx)} (mount -a must find the new disk the same way)`,
      risk: 'read',
      host: (ctx) => ctx.args.host,
      command: sh`cat /etc/fstab`,
      capture: fstabLines,
    },
    {
      kind: 'report',
      id: 'fstab-entry',
      title: 'The disk has its line in /etc/fstab',
      risk: 'read',
      guard: (ctx) =>
        fstabEntry(ctx) ? undefined : `no line of /etc/fstab on ${ctx.args.host} mounts ${disk(ctx)} (by its path, or by label or UUID at /srv/node/${disk(ctx).slice('/dev/'.length)}): mount -a would not mount the new disk; nothing was changed`,
      text: (ctx) => {
        const e = fstabEntry(ctx)!;
        return `${disk(ctx)} is mounted at ${e.target} by ${e.by === 'device' ? 'its device path' : `${e.by === 'label' ? 'label' : 'UUID'} ${e.value}`}${e.by === 'device' ? '' : ': the new file system gets the same, so that mount -a finds it'}.`;
      },
    },
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
      command: (ctx) => {
        const e = fstabEntry(ctx);
        if (e?.by === 'label') return sh`mkfs.xfs -L ${e.value} ${disk(ctx)}`;
        // -m uuid= needs xfsprogs ≥ 4.3 (Ubuntu 16.04 and later); fstab by UUID came with those releases.
        if (e?.by === 'uuid') return sh`mkfs.xfs -m ${`uuid=${e.value}`} ${disk(ctx)}`;
        return sh`mkfs.xfs ${disk(ctx)}`;
      },
      variant: (ctx) => {
        const e = fstabEntry(ctx);
        return e?.by === 'label' ? `fstab mounts it by LABEL=${e.value}` : e?.by === 'uuid' ? `fstab mounts it by UUID=${e.value}` : 'fstab mounts it by device path';
      },
      reference: (ctx) => `mkfs.xfs ${disk(ctx)}`,
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
