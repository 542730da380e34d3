import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCalls, readHostState, type MountsState } from '../../src/lab/index.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { cli, statuses } from '../helpers/cli.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

interface Device {
  id: number;
  zone: number;
  ip: string;
  port: number;
  device: string;
  weight: number;
}
type Rings = Record<'account' | 'container' | 'object', { devices: Device[]; rebalances: number }>;
type Disks = Record<string, { filesystem: string | null; uuid?: string }>;

let lab: TestLab;
const prefix = uniquePrefix();
const { runbook, follow } = cli(() => lab, prefix);
const dir = () => lab.lab.dir;
const rings = () => readHostState<Rings>(dir(), 'controller', 'rings')!;
const calls = (host: string, start: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(start));
/** The IPs in a ring file copied to a storage node. */
const ringFileIps = (host: string, ring: string) => (JSON.parse(readFileSync(runtime.realPath(dir(), host, `/etc/swift/${ring}.ring.gz`), 'utf8')) as { devices: Device[] }).devices.map((d) => d.ip).sort();
function setState<T>(host: string, name: string, fn: (v: T) => void): void {
  runtime.updateJson(dir(), host, runtime.statePath(dir(), host, name), {} as T, fn);
}

beforeAll(async () => {
  lab = await startTestLab({ only: ['controller', 's01', 's02', 's03'] });
});

afterAll(async () => {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  await rt.cleanup();
  await lab?.down();
});

describe('swift remove-node and add-node', () => {
  it('removes a storage node from the three rings, rebalances them and copies the ring files to the other nodes', async () => {
    const { code, run } = await follow('swift remove-node 10.100.2.3');
    expect(code).toBe(0);
    expect(run.status).toBe('succeeded');
    for (const ring of ['account', 'container', 'object'] as const) {
      expect(rings()[ring].devices.map((d) => d.ip)).toEqual(['10.100.2.1', '10.100.2.2']);
      expect(rings()[ring].rebalances).toBe(2);
      expect(calls('controller', `swift-ring-builder /etc/swift/${ring}.builder remove 10.100.2.3`)).toHaveLength(1);
      expect(ringFileIps('s01', ring)).toEqual(['10.100.2.1', '10.100.2.2']);
      expect(ringFileIps('s02', ring)).toEqual(['10.100.2.1', '10.100.2.2']);
      // The node taken out keeps the rings it had; it is shut down.
      expect(ringFileIps('s03', ring)).toEqual(['10.100.2.1', '10.100.2.2', '10.100.2.3']);
    }
    expect(calls('controller', 'scp').map((c) => c.argv.at(-1))).toEqual(['s01.example.com:/etc/swift', 's02.example.com:/etc/swift']);
  });

  it('a node that is not in the rings fails at the first remove and nothing is rebalanced or copied', async () => {
    const rebalances = calls('controller', 'swift-ring-builder /etc/swift/account.builder rebalance').length;
    const scps = calls('controller', 'scp').length;
    const { run } = await follow('swift remove-node s03');
    expect(run.status).toBe('failed');
    expect(statuses(run)['remove-account']).toBe('failed');
    expect(run.error).toMatch(/No matching devices found/);
    expect(calls('controller', 'swift-ring-builder /etc/swift/account.builder rebalance')).toHaveLength(rebalances);
    expect(calls('controller', 'scp')).toHaveLength(scps);
  });

  it('plans the page\'s commands, with the node\'s IP, before anything runs', async () => {
    const r = await runbook('run', 'swift remove-node s02', '--as', 'alice', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/swift-ring-builder \/etc\/swift\/container\.builder remove 10\.100\.2\.2/);
    expect(r.stdout).toMatch(/swift-ring-builder \/etc\/swift\/object\.builder rebalance/);
    expect(r.stdout).toMatch(/Next, redistribute the ring files to the other nodes \[write\] \(2 items\)/);
    const disk = await runbook('run', 'swift replace-disk s02 /dev/sdb', '--as', 'alice', '--dry-run');
    expect(disk.stdout).toMatch(/\[DESTRUCTIVE, needs approval\] on s02: mkfs\.xfs \/dev\/sdb/);
  });

  it('refuses an address that is no storage node', async () => {
    const r = await runbook('run', 'swift remove-node 10.9.9.9', '--as', 'alice');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"10\.9\.9\.9" is not a storage node; the storage nodes \(@swift\) are: s01 \(10\.100\.2\.1\)/);
  });

  it('adds the node back with its zone, rebalances and copies the rings to every storage node', async () => {
    const { run } = await follow('swift add-node s03');
    expect(run.status).toBe('succeeded');
    for (const ring of ['account', 'container', 'object'] as const) {
      const back = rings()[ring].devices.find((d) => d.ip === '10.100.2.3');
      expect(back).toMatchObject({ zone: 3, device: 'sdb', weight: 100 });
      for (const host of ['s01', 's02', 's03']) expect(ringFileIps(host, ring)).toEqual(['10.100.2.1', '10.100.2.2', '10.100.2.3']);
    }
    expect(calls('controller', 'swift-ring-builder /etc/swift/object.builder add r1z3-10.100.2.3:6200/sdb 100')).toHaveLength(1);
  });
});

describe('swift add-node of a node already in the rings', () => {
  it('fails at the first add, and nothing is rebalanced or copied', async () => {
    const before = rings();
    const scps = calls('controller', 'scp').length;
    const { run } = await follow('swift add-node 10.100.2.1');
    expect(run.status).toBe('failed');
    expect(statuses(run)['add-account']).toBe('failed');
    expect(run.error).toMatch(/Device 10\.100\.2\.1:6202\/sdb already uses 10\.100\.2\.1:6202\/sdb/);
    expect(rings()).toEqual(before);
    expect(calls('controller', 'scp')).toHaveLength(scps);
  });
});

describe('swift replace-disk', () => {
  const swapDisk = (host: string) => () => {
    // What the person does in the lab: a blank disk goes in, and the kernel says so.
    setState<Disks>(host, 'disks', (d) => void (d['/dev/sdb'] = { filesystem: null }));
    setState<string[]>(host, 'dmesg', (lines) => void lines.push('[86402.118817] sd 2:0:1:0: [sdb] 1953525168 512-byte logical blocks: (1.00 TB/932 GiB)', '[86402.120934] sd 2:0:1:0: [sdb] Attached SCSI disk'));
  };

  it('unmounts the failed disk, waits for the swap, formats the new disk with XFS after approval and mounts it', async () => {
    const oldUuid = readHostState<Disks>(dir(), 's02', 'disks')!['/dev/sdb']!.uuid;
    const manual: string[] = [];
    const { run } = await follow('swift replace-disk s02 /dev/sdb', {
      approveAs: 'bob',
      done: 'carol',
      onManual: (p) => {
        manual.push(p);
        if (p === 'swap') swapDisk('s02')();
      },
    });
    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(manual).toEqual(['swap', 'recognized']);
    expect(run.steps.find((s) => s.id === 'mkfs')).toMatchObject({ risk: 'destructive', status: 'succeeded' });
    const disk = readHostState<Disks>(dir(), 's02', 'disks')!['/dev/sdb']!;
    expect(disk.filesystem).toBe('xfs');
    expect(disk.uuid).not.toBe(oldUuid);
    expect(readHostState<MountsState>(dir(), 's02', 'mounts')!['/srv/node/sdb']).toEqual({ device: '/dev/sdb', source: '/dev/sdb' });
    expect(readCalls(dir(), 's02').map((c) => c.argv.join(' ')).filter((c) => /^(umount|mkfs|mount)/.test(c))).toEqual(['umount /dev/sdb', 'mkfs.xfs /dev/sdb', 'mount -a', 'mount']);
  });

  it('mkfs.xfs refuses a disk that was not swapped (it still holds a file system), and the run stops there', async () => {
    const { run } = await follow('swift replace-disk s01 /dev/sdb', { approveAs: 'bob', done: 'carol' });
    expect(run.status).toBe('failed');
    expect(statuses(run).mkfs).toBe('failed');
    expect(run.error).toMatch(/mkfs.xfs: Use the -f option to force overwrite/);
    expect(calls('s01', 'mount -a')).toHaveLength(0);
    expect(readHostState<Disks>(dir(), 's01', 'disks')!['/dev/sdb']!.filesystem).toBe('xfs');
    // The disk stays unmounted, as the page left it: the operator decides what next.
    expect(readHostState<MountsState>(dir(), 's01', 'mounts')!['/srv/node/sdb']).toBeUndefined();
  });

  it('the format needs another person than the requester', async () => {
    const { code, run } = await follow('swift replace-disk s03 /dev/sdb', { approveAs: 'alice', done: 'carol', onManual: (p) => (p === 'swap' ? swapDisk('s03')() : undefined) });
    expect(code).toBe(3);
    expect(run.status).toBe('cancelled');
    expect(calls('s03', 'mkfs.xfs')).toHaveLength(0);
  });
});
