import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCalls, readHostState, type MountsState } from '../../src/lab/index.js';

import { runtime } from '../../src/lab/tool-runtime.js';
import { cli, runProgram, statuses } from '../helpers/cli.js';
import { labSsh, startTestLab, type TestLab } from '../helpers/lab.js';

import { startConsoleChat } from '../helpers/console-chat.js';
import { rebalanced, searchDevices, type RingDevice } from '../../src/procedures/swift.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

/** A ring's devices, as the real swift-ring-builder prints them (search r1 matches every device of region 1). */
async function devices(ring: string): Promise<RingDevice[]> {
  const { stdout } = await runProgram('swift-ring-builder', [join(ringDir(), `${ring}.builder`), 'search', 'r1']);
  return searchDevices.parse(stdout);
}
const ringDir = () => runtime.realPath(dir(), 'controller', '/etc/swift');
const ringFile = (host: string, ring: string) => readFileSync(runtime.realPath(dir(), host, `/etc/swift/${ring}.ring.gz`));
type Disks = Record<string, { filesystem: string | null; uuid?: string; label?: string }>;

let lab: TestLab;
const prefix = uniquePrefix();
const { runbook, follow } = cli(() => lab, prefix);
const dir = () => lab.lab.dir;
const calls = (host: string, start: string) => readCalls(dir(), host).filter((c) => c.argv.join(' ').startsWith(start));
function setState<T>(host: string, name: string, fn: (v: T) => void): void {
  runtime.updateJson(dir(), host, runtime.statePath(dir(), host, name), {} as T, fn);
}
const RINGS = ['account', 'container', 'object'] as const;
/** A step's exit code and the tail of its output, from the run's store. */
async function outputOf(runId: string, step: string) {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  try {
    const s = (await rt.store.load(runId)).steps[step]!;
    return { exitCode: s.exitCode, outputTail: s.outputTail };
  } finally {
    await rt.close();
  }
}
const PORTS = { account: 6202, container: 6201, object: 6200 };

beforeAll(async () => {
  lab = await startTestLab({ only: ['controller', 's01', 's02', 's03'] });
});

afterAll(async () => {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  await rt.cleanup();
  await lab?.down();
});

describe('swift remove-node and add-node, with the real swift-ring-builder', () => {
  it('records the node\'s devices, removes them with --yes (two per ring), rebalances and copies the ring files to the other nodes', async () => {
    const s03Before = RINGS.map((r) => ringFile('s03', r));
    const { code, run } = await follow('swift remove-node 10.100.2.3');
    expect(run.status).toBe('succeeded');
    expect(code).toBe(0);
    for (const ring of RINGS) {
      expect((await devices(ring)).map((d) => d.ip).sort()).toEqual(['10.100.2.1', '10.100.2.1', '10.100.2.2', '10.100.2.2']);
      expect(ringFile('s01', ring).equals(readFileSync(join(ringDir(), `${ring}.ring.gz`)))).toBe(true);
      expect(ringFile('s02', ring).equals(readFileSync(join(ringDir(), `${ring}.ring.gz`)))).toBe(true);
    }
    // The node taken out keeps the rings it had; it is shut down.
    expect(RINGS.map((r) => ringFile('s03', r))).toEqual(s03Before);
    const record = JSON.parse(readFileSync(join(ringDir(), 'removed', '10.100.2.3.json'), 'utf8')) as Record<string, RingDevice[]>;
    for (const ring of RINGS) expect(record[ring]!.map((d) => `${d.zone} ${d.ip}:${d.port}/${d.device} ${d.weight}`)).toEqual([`3 10.100.2.3:${PORTS[ring]}/sdb 100`, `3 10.100.2.3:${PORTS[ring]}/sdc 100`]);
    expect(calls('controller', 'scp').map((c) => c.argv.at(-1))).toEqual([`s01.example.com:/etc/swift`, `s02.example.com:/etc/swift`]);
  });

  it('a node that is not in the rings fails at the first search: nothing is removed, rebalanced or copied', async () => {
    const scps = calls('controller', 'scp').length;
    const { run } = await follow('swift remove-node s03');
    expect(run.status).toBe('failed');
    expect(statuses(run)['devices-account']).toBe('failed');
    // swift-ring-builder says why on stdout, with EXIT_ERROR.
    expect(await outputOf(run.id, 'devices-account')).toMatchObject({ exitCode: 2, outputTail: expect.stringContaining('No matching devices found') });
    expect(statuses(run)['remove-account']).toBe('pending');
    expect(calls('controller', 'scp')).toHaveLength(scps);
  });

  it('refuses an address that is no storage node', async () => {
    const r = await runbook('run', 'swift remove-node 10.9.9.9', '--as', 'alice');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/"10\.9\.9\.9" is not a storage node; the storage nodes \(@swift\) are: s01 \(10\.100\.2\.1\)/);
  });

  it('a day later, from the console: adds back exactly the recorded devices, rebalances and copies the rings to every storage node', async () => {
    // min_part_hours (1 h) has passed since the removal's rebalance, as swift's own command says.
    for (const ring of RINGS) expect((await labSsh(lab.lab, 'controller', `swift-ring-builder ${join(ringDir(), `${ring}.builder`)} pretend_min_part_hours_passed`)).code).toBe(0);
    const chat = await startConsoleChat(lab.lab.configPath);
    try {
      const { run, thread } = await chat.run('alice', '/swift add-node s03');
      expect(run.status).toBe('succeeded');
      expect(thread).toContain('swift-ring-builder object.builder add the devices of 10.100.2.3');
    } finally {
      await chat.close();
    }
    for (const ring of RINGS) {
      const back = (await devices(ring)).filter((d) => d.ip === '10.100.2.3');
      expect(back.map((d) => `${d.region} ${d.zone} ${d.port} ${d.replicationIp}:${d.replicationPort} ${d.device} ${d.weight}`)).toEqual([`1 3 ${PORTS[ring]} 10.100.2.3:${PORTS[ring]} sdb 100`, `1 3 ${PORTS[ring]} 10.100.2.3:${PORTS[ring]} sdc 100`]);
      for (const host of ['s01', 's02', 's03']) expect(ringFile(host, ring).equals(readFileSync(join(ringDir(), `${ring}.ring.gz`)))).toBe(true);
    }
    expect(existsSync(join(ringDir(), 'removed', '10.100.2.3.json'))).toBe(false);
  });

  it('a new device added within min_part_hours: the rebalance saves nothing (exit 1), which is a failure, and no ring is copied', async () => {
    const scps = calls('controller', 'scp').length;
    const { run } = await follow('swift add-node s03 --device sdd');
    expect(run.status).toBe('failed');
    expect(statuses(run)['rebalance-account']).toBe('failed');
    expect(run.error).toMatch(/the ring was not rebalanced: No partitions could be reassigned\. The time between rebalances must be at least min_part_hours/);
    expect(calls('controller', 'scp')).toHaveLength(scps);
  });
});

describe('swift add-node of a device already in the rings', () => {
  it('fails at the first add, and nothing is rebalanced or copied', async () => {
    const scps = calls('controller', 'scp').length;
    const { run } = await follow('swift add-node 10.100.2.1 --device sdb');
    expect(run.status).toBe('failed');
    expect(statuses(run)['add-account']).toBe('failed');
    expect(await outputOf(run.id, 'add-account')).toMatchObject({ exitCode: 2, outputTail: expect.stringMatching(/already uses 10\.100\.2\.1:6202\/sdb/) });
    expect(calls('controller', 'scp')).toHaveLength(scps);
  });
});

describe('swift-ring-builder rebalance, as the procedures read it (swift/cli/ringbuilder.py rebalance)', () => {
  it('exit 1 after saving with a dispersion warning is a rebalance; exit 1 with nothing reassigned is not', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'ring-'));
    const b = join(tmp, 'object.builder');
    const srb = async (...args: string[]) => runProgram('swift-ring-builder', [b, ...args]).then((r) => ({ code: r.code, out: r.stdout }));
    try {
      await srb('create', '10', '3', '1');
      for (const z of [1, 2, 3]) for (const d of ['sdb', 'sdc']) await srb('add', `r1z${z}-10.0.0.${z}:6200/${d}`, '100');
      await srb('rebalance');
      await srb('pretend_min_part_hours_passed');
      // One disk of a three-zone, three-replica ring out: saved, with "Dispersion … not optimally dispersed" and EXIT_WARNING.
      await srb('remove', 'd5', '--yes');
      const warned = await srb('rebalance');
      expect(warned.code).toBe(1);
      expect(warned.out).toContain('NOTE: Dispersion of');
      expect(rebalanced.parse(warned.out)).toMatchObject({ reassigned: expect.any(Number), dispersion: expect.any(Number) });
      expect(existsSync(join(tmp, 'object.ring.gz'))).toBe(true);
      const refused = await srb('rebalance');
      expect(refused.code).toBe(1);
      expect(() => rebalanced.parse(refused.out)).toThrow(/the ring was not rebalanced: No partitions could be reassigned\./);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
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

  it('where fstab mounts the disk by label (OpenStack-Ansible), the new file system gets that label, and mount -a finds it', async () => {
    // s01's disk was not swapped in the test above, which left it unmounted: mounted again, then swapped.
    expect((await labSsh(lab.lab, 's01', 'mount -a')).code).toBe(0);
    const { run } = await follow('swift replace-disk s01 /dev/sdb', { approveAs: 'bob', done: 'carol', onManual: (p) => (p === 'swap' ? swapDisk('s01')() : undefined) });
    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(calls('s01', 'mkfs.xfs').at(-1)!.argv.join(' ')).toBe('mkfs.xfs -L sdb /dev/sdb');
    expect(readHostState<Disks>(dir(), 's01', 'disks')!['/dev/sdb']).toMatchObject({ filesystem: 'xfs', label: 'sdb' });
    expect(readHostState<MountsState>(dir(), 's01', 'mounts')!['/srv/node/sdb']).toEqual({ device: '/dev/sdb', source: '/dev/sdb' });
  });

  it('where fstab mounts it by UUID, the new file system takes the old UUID; a plain mkfs.xfs would leave it unmounted', async () => {
    const uuid = readHostState<Disks>(dir(), 's03', 'disks')!['/dev/sdc']!.uuid!;
    // s03's sdb was swapped (blank) by the test above: its fstab UUID goes back on it, as if formatted right.
    const sdbUuid = /^UUID=(\S+) \/srv\/node\/sdb /m.exec(readFileSync(runtime.realPath(dir(), 's03', '/etc/fstab'), 'utf8'))![1]!;
    setState<Disks>('s03', 'disks', (d) => void (d['/dev/sdb'] = { filesystem: 'xfs', uuid: sdbUuid }));
    // What the page's own mkfs.xfs leaves on such a node: a new UUID, which mount -a cannot find.
    setState<Disks>('s03', 'disks', (d) => void (d['/dev/sdc'] = { filesystem: null }));
    await labSsh(lab.lab, 's03', 'umount /dev/sdc; mkfs.xfs /dev/sdc');
    const plain = await labSsh(lab.lab, 's03', 'mount -a');
    expect(plain.code).toBe(32);
    expect(plain.stderr).toBe(`mount: /srv/node/sdc: can't find UUID=${uuid}.\n`);
    expect(readHostState<MountsState>(dir(), 's03', 'mounts')!['/srv/node/sdb']).toEqual({ device: '/dev/sdb', source: '/dev/sdb' });

    // The failed disk as it was (mounted), then swapped during the run.
    setState<Disks>('s03', 'disks', (d) => void (d['/dev/sdc'] = { filesystem: 'xfs', uuid }));
    expect((await labSsh(lab.lab, 's03', 'mount -a')).code).toBe(0);
    const swap = (p: string) => (p === 'swap' ? setState<Disks>('s03', 'disks', (d) => void (d['/dev/sdc'] = { filesystem: null })) : undefined);
    const { run } = await follow('swift replace-disk s03 /dev/sdc', { approveAs: 'bob', done: 'carol', onManual: swap });
    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(calls('s03', 'mkfs.xfs -m').map((c) => c.argv.join(' '))).toEqual([`mkfs.xfs -m uuid=${uuid} /dev/sdc`]);
    expect(readHostState<MountsState>(dir(), 's03', 'mounts')!['/srv/node/sdc']).toEqual({ device: '/dev/sdc', source: '/dev/sdc' });
  });

  it('refuses, before unmounting anything, a disk that no fstab line mounts', async () => {
    const { run } = await follow('swift replace-disk s02 /dev/sdd', { approveAs: 'bob', done: 'carol' });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/no line of \/etc\/fstab on s02 mounts \/dev\/sdd .*nothing was changed/);
    expect(calls('s02', 'umount /dev/sdd')).toEqual([]);
  });
});
