import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { Client, type ClientChannel } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunbookConfig } from '../../src/config/runbook-config.js';
import {
  clearFaults,
  labDown,
  labStatus,
  labUp,
  readCalls,
  readHostState,
  setFault,
  setHostSetting,
  startHost,
  stopHost,
  type LabFault,
  type LabHost,
  type MountsState,
  type NbdState,
  type VirshState,
} from '../../src/lab/index.js';
import { labSsh, startTestLab, type SshResult, type TestLab } from '../helpers/lab.js';

let t: TestLab;
const dir = () => t.lab.dir;
const host = (name: string): LabHost => t.lab.hosts.find((h) => h.name === name)!;

beforeAll(async () => {
  t = await startTestLab({ only: ['node-1', 'node-4', 'c01'], extraHosts: 2 });
});

afterAll(async () => {
  await t?.down();
});

/** The system OpenSSH client with strict host key checking against the lab's known_hosts. */
const ssh = (name: string, command: string) => labSsh(t.lab, name, command);

/** ssh2 connected like the ssh executor: the client key, and the host key checked against known_hosts. */
function connect(name: string): Promise<Client> {
  const h = host(name);
  const knownHosts = readFileSync(join(dir(), 'client', 'known_hosts'), 'utf8');
  const expected = knownHosts
    .split('\n')
    .find((l) => l.startsWith(`[${h.address}]:${h.port} `))!
    .split(' ')[2]!;
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.on('ready', () => resolve(client)).on('error', reject);
    client.connect({
      host: h.address,
      port: h.port,
      username: t.lab.user,
      privateKey: readFileSync(join(dir(), 'client', 'id_ed25519')),
      hostVerifier: (key: Buffer) => key.toString('base64') === expected,
    });
  });
}

function exec(client: Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, stream) => (err ? reject(err) : resolve(stream))));
}

/** Output and exit status of a channel; signal is set when the command died of one. */
function collect(stream: ClientChannel): Promise<SshResult & { signal?: string }> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let code: number | null = null;
    let signal: string | undefined;
    stream.on('data', (d: Buffer) => (stdout += d.toString()));
    stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    stream.on('exit', (c: number | null, s?: string) => {
      code = c;
      signal = s;
    });
    stream.on('close', () => resolve({ code, stdout, stderr, signal }));
  });
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const callsOf = (name: string, prefix: string) => readCalls(dir(), name).filter((c) => c.argv.join(' ').startsWith(prefix));

describe('lab hosts', () => {
  it('log in an unprivileged lab user whose PATH starts with the lab tools', async () => {
    const r = await ssh('node-1', 'whoami; id -u; echo "$PATH"; echo "$LAB_HOST"; command -v ovs');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const [user, uid, path, labHost, ovs] = r.stdout.trim().split('\n');
    expect(user).toBe(t.lab.user);
    expect(user).not.toBe('root');
    expect(uid).not.toBe('0');
    expect(path!.startsWith(`${join(dir(), 'bin')}:`)).toBe(true);
    expect(labHost).toBe('node-1');
    expect(ovs).toBe(join(dir(), 'bin', 'ovs'));
  });

  it('sit at fixed loopback addresses, the extra hosts after the named ones, on one port', () => {
    expect(t.lab.hosts.map((h) => [h.name, h.address])).toEqual([
      ['node-1', '127.0.0.11'],
      ['node-4', '127.0.0.14'],
      ['c01', '127.0.0.18'],
      ['lab-001', '127.0.0.26'],
      ['lab-002', '127.0.0.27'],
    ]);
    expect(new Set(t.lab.hosts.map((h) => h.port)).size).toBe(1);
    expect(host('node-4')).toMatchObject({ groups: ['ovs', 'ovs-extra'], vars: { ip: '10.100.1.4', vpools: ['vpool1'], role: 'extra', ovsRelease: '2.9' } });
    // A path var names the host's fake root, where the lab installed the framework's doubles.
    expect(host('node-4').vars.ovsFramework).toBe(join(dir(), 'hosts', 'node-4', 'root', 'opt', 'OpenvStorage'));
    expect(existsSync(join(String(host('node-4').vars.ovsFramework), 'ovs', 'dal', 'hybrids', 'vdisk.py'))).toBe(true);
    expect(host('c01')).toMatchObject({ groups: ['openstack', 'compute'], vars: { fqdn: 'c01.example.com', ip: '10.100.3.1' } });
    expect(host('lab-002').groups).toEqual(['generic']);
  });

  it('accept ssh2 with a strict host key check and 10 sessions on one connection', async () => {
    const client = await connect('lab-001');
    try {
      const results = await Promise.all(Array.from({ length: 10 }, async (_, i) => collect(await exec(client, `echo ${i}; echo "$LAB_HOST"`))));
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}\nlab-001\n`));
    } finally {
      client.end();
    }
  });

  it('refuse a client that does not know their host key', async () => {
    const h = host('node-1');
    const refused = new Promise<Error>((resolve) => {
      const client = new Client();
      client.on('error', resolve).on('ready', () => client.end());
      client.connect({ host: h.address, port: h.port, username: t.lab.user, privateKey: readFileSync(join(dir(), 'client', 'id_ed25519')), hostVerifier: () => false });
    });
    expect((await refused).message).toMatch(/host key|verification/i);
  });

  it('cannot write outside the lab, and absolute paths given to tools land in the fake root', async () => {
    const r = await ssh('c01', 'touch /etc/runbook-lab-test; echo "touch=$?"; ls /etc/runbook-lab-test; echo "ls=$?"; mount /etc/passwd /mnt; echo "mount=$?"; qemu-nbd -c /dev/nbd0 /etc/passwd; echo "nbd=$?"');
    expect(r.stdout).toContain('touch=1');
    expect(r.stderr).toContain("touch: cannot touch '/etc/runbook-lab-test': Permission denied");
    expect(existsSync('/etc/runbook-lab-test')).toBe(false);
    expect(r.stdout).toContain('ls=2');
    expect(r.stderr).toContain(join(dir(), 'hosts', 'c01', 'root', 'etc'));
    expect(r.stdout).toContain('mount=32');
    expect(r.stdout).toContain('nbd=1');
    expect(readHostState<MountsState>(dir(), 'c01', 'mounts') ?? {}).toEqual({});
  });
});

describe('qemu-nbd inspection on c01', () => {
  // QEMU 7.2 qemu-nbd.c and block/file-posix.c (image locking since 2.10); the kernel's nbd driver (max_part).
  it('suspends, loads nbd, connects read-only and shared, mounts read-only, lists, then undoes it all as the runbook shows', async () => {
    const list = await ssh('c01', 'virsh list');
    expect(list.stdout).toBe(
      [' Id Name                 State', '----------------------------------', '  1 instance-00000981    running', '  2 instance-000009f5    running', ' 30 instance-0000274a    running', '', ''].join('\n'),
    );
    expect((await ssh('c01', 'virsh suspend 30')).stdout).toBe('Domain 30 suspended\n\n');
    expect(readHostState<VirshState>(dir(), 'c01', 'virsh')!.domains.find((d) => d.id === 30)!.state).toBe('paused');

    // The directory is the instance's uuid (nova since Grizzly), with no libvirt.xml (not written since Ocata).
    const uuid = '3f57699a-e773-4650-a443-b4b37eed5a06';
    const files = await ssh('c01', `ls /var/lib/nova/instances/${uuid}`);
    expect(files.stdout.split('\n').filter(Boolean)).toEqual(['console.log', 'disk', 'disk.info']);
    const disk = `/var/lib/nova/instances/${uuid}/disk`;
    const noModule = await ssh('c01', `qemu-nbd -r --force-share -c /dev/nbd0 ${disk}`);
    expect(noModule).toMatchObject({ code: 1, stderr: 'qemu-nbd: Failed to open /dev/nbd0: No such file or directory\n' });
    expect((await ssh('c01', 'modprobe nbd max_part=16 && modprobe nbd max_part=16')).code).toBe(0);
    // The paused guest holds its image: read-write, QEMU refuses.
    const locked = await ssh('c01', `qemu-nbd -c /dev/nbd0 ${disk}`);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toBe(`qemu-nbd: Failed to blk_new_open '${disk}': Failed to get "write" lock\nIs another process using the image [${disk}]?\n`);
    expect((await ssh('c01', `qemu-nbd -r --force-share -c /dev/nbd0 ${disk}`)).code).toBe(0);
    expect(readHostState<NbdState>(dir(), 'c01', 'nbd')).toEqual({ '/dev/nbd0': disk });
    const busy = await ssh('c01', `qemu-nbd -r --force-share -c /dev/nbd0 /var/lib/nova/instances/b3c5f1a2-6d0e-4c8b-9a51-2f7e8d4c0981/disk`);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toContain('Device or resource busy');

    expect((await ssh('c01', 'mount -o ro /dev/nbd0p1 /mnt/')).code).toBe(0);
    expect(readHostState<MountsState>(dir(), 'c01', 'mounts')).toEqual({ '/mnt': { device: '/dev/nbd0p1', source: disk, ro: true } });
    expect((await ssh('c01', 'mount')).stdout).toBe('/dev/nbd0p1 on /mnt type ext4 (ro,relatime)\n');
    const ls = await ssh('c01', 'ls -lh /mnt/');
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^total /);
    expect(ls.stdout).toMatch(/ bin -> usr\/bin\n/);
    for (const entry of ['boot', 'etc', 'home', 'lost+found', 'usr', 'var']) expect(ls.stdout).toMatch(new RegExp(` ${entry.replace('+', '\\+')}\\n`));
    expect((await ssh('c01', 'ls /mnt/etc')).stdout).toBe('fstab\nhostname\n');

    expect((await ssh('c01', 'umount /mnt')).code).toBe(0);
    const notMounted = await ssh('c01', 'umount /mnt');
    expect(notMounted.code).toBe(32);
    expect(notMounted.stderr).toContain('not mounted');
    expect((await ssh('c01', 'qemu-nbd -d /dev/nbd0')).stdout).toBe('/dev/nbd0 disconnected\n');
    expect(readHostState<NbdState>(dir(), 'c01', 'nbd')).toEqual({});

    expect((await ssh('c01', 'virsh list --name')).stdout).toBe('instance-00000981\ninstance-000009f5\ninstance-0000274a\n\n');
    expect((await ssh('c01', 'virsh resume 30')).stdout).toBe('Domain 30 resumed\n\n');
    const again = await ssh('c01', 'virsh resume 30');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('error: Requested operation is not valid: domain is not paused');
  });

  it('refuses to mount a device that is not connected', async () => {
    const r = await ssh('c01', 'mount /dev/nbd5p1 /mnt/');
    expect(r.code).toBe(32);
    expect(readHostState<MountsState>(dir(), 'c01', 'mounts')).toEqual({});
  });
});

describe('accounts and files on c01', () => {
  it('usermod refuses to change the UID of a user with processes, as shadow does (user_busy, exit 8)', async () => {
    const busy = await ssh('c01', 'usermod -u 112 nova');
    expect(busy).toMatchObject({ code: 8, stderr: 'usermod: user nova is currently used by process 1342\n' });
    expect((await ssh('c01', 'id nova')).stdout).toBe('uid=108(nova) gid=113(nova) groups=113(nova)\n');
    // Debian ≥ 10 names libvirt's group libvirt (libvirt-daemon-system's postinst), not libvirtd.
    expect((await ssh('c01', 'getent group libvirt; getent group libvirtd; echo $?')).stdout).toBe('libvirt:x:115:\n2\n');
  });

  it('find / walks /proc unless pruned, and exits 1 after its work when a process vanished meanwhile (findutils find/ftsfind.c, FTS_NS)', async () => {
    const all = await ssh('c01', 'find / -gid 113');
    expect(all.code).toBe(1);
    expect(all.stdout).toContain('/var/lib/nova\n');
    expect(all.stderr).toBe("find: '/proc/31877/task/31877/fdinfo/7': No such file or directory\n");
    const pruned = await ssh('c01', 'find / \\( -path /proc -o -path /sys \\) -prune -o -gid 113 -print');
    expect(pruned).toMatchObject({ code: 0, stdout: all.stdout, stderr: '' });
    // Only the forms the lab knows: anything else is refused, never half understood.
    expect((await ssh('c01', 'find / -prune -gid 113')).code).toBe(1);
  });

  it('grep leaves a quoted glob alone, as the shell would (GNU grep opens its operands as given)', async () => {
    const quoted = await ssh('c01', "grep -h host '/etc/nova/*.conf' | cat");
    expect(quoted.stderr).toBe('grep: /etc/nova/*.conf: No such file or directory\n');
    const bare = await ssh('c01', 'grep -h host /etc/nova/*.conf | cat');
    expect(bare.stdout).toBe('host = c01\n');
  });
});

describe('faults', () => {
  it('fail: prints the given stderr, exits with the given code and changes nothing', async () => {
    setFault(dir(), 'c01', { match: 'virsh suspend', action: 'fail', exitCode: 3, stderr: 'error: internal error: simulated' });
    try {
      const r = await ssh('c01', 'virsh suspend 1');
      expect(r).toMatchObject({ code: 3, stderr: 'error: internal error: simulated\n', stdout: '' });
      expect(readHostState<VirshState>(dir(), 'c01', 'virsh')!.domains.find((d) => d.id === 1)!.state).toBe('running');
      expect((await ssh('c01', 'virsh list')).code).toBe(0);
    } finally {
      clearFaults(dir(), 'c01');
    }
  });

  it('times: applies that many times, once each even when invocations race, then is used up', async () => {
    setFault(dir(), 'node-4', { match: 'ovs config', action: 'fail', times: 3 });
    const results = await Promise.all(Array.from({ length: 8 }, () => ssh('node-4', 'ovs config get /ovs/framework/logging')));
    expect(results.filter((r) => r.code === 1)).toHaveLength(3);
    expect(results.filter((r) => r.code === 0)).toHaveLength(5);
    expect(JSON.parse(readFileSync(join(dir(), 'hosts', 'node-4', 'faults.json'), 'utf8'))).toEqual([]);
  });

  it('match is by whole words from the start of the invocation', async () => {
    setFault(dir(), 'node-1', { match: 'ovs config li', action: 'fail' });
    setFault(dir(), 'node-1', { match: 'ovs config list', action: 'fail', exitCode: 9 });
    try {
      expect((await ssh('node-1', 'ovs config list /ovs/arakoon')).code).toBe(9);
      expect((await ssh('node-1', 'ovs config get /ovs/framework/logging')).code).toBe(0);
    } finally {
      clearFaults(dir());
    }
  });

  it('slow: waits delayMs, then behaves normally', async () => {
    setFault(dir(), 'node-1', { match: 'ovs config list', action: 'slow', delayMs: 700, times: 1 });
    const started = Date.now();
    const r = await ssh('node-1', 'ovs config list /ovs/arakoon');
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ovsdb\nvoldrv\n');
  });

  it('hang: the command runs until it is signalled, and the call is logged with 128 + signal', async () => {
    const fault: LabFault = { match: 'virsh resume', action: 'hang' };
    setFault(dir(), 'c01', fault);
    const client = await connect('c01');
    try {
      const before = callsOf('c01', 'virsh resume').length;
      const stream = await exec(client, 'virsh resume 2');
      const result = collect(stream);
      await new Promise((r) => setTimeout(r, 700));
      expect(callsOf('c01', 'virsh resume')).toHaveLength(before);
      stream.signal('TERM');
      const r = await result;
      expect(r.code ?? r.signal).toBeTruthy();
      const calls = callsOf('c01', 'virsh resume');
      expect(calls).toHaveLength(before + 1);
      expect(calls.at(-1)!.exit).toBe(143);
    } finally {
      client.end();
      clearFaults(dir(), 'c01');
    }
  });

  it('apply to lab-sleep too, which otherwise sleeps and dies on SIGHUP', async () => {
    setFault(dir(), 'lab-001', { match: 'lab-sleep', action: 'fail', times: 1 });
    expect((await ssh('lab-001', 'lab-sleep 0')).code).toBe(1);
    expect((await ssh('lab-001', 'lab-sleep 0.2')).code).toBe(0);
    const client = await connect('lab-001');
    try {
      const stream = await exec(client, 'lab-sleep 30');
      const result = collect(stream);
      // Node takes a moment to boot before the tool's signal handlers exist (a busy machine, longer):
      // the signal goes once the kernel says the tool catches SIGHUP.
      await until(() => readdirSync('/proc').some((p) => /^\d+$/.test(p) && readCmdline(Number(p)).includes('lab-sleep\0' + '30') && catchesHup(Number(p))), 30_000);
      stream.signal('HUP');
      await result;
      expect(callsOf('lab-001', 'lab-sleep 30').at(-1)!.exit).toBe(129);
    } finally {
      client.end();
    }
  });
});

/** Whether the process has a handler for SIGHUP (bit 1 of SigCgt in /proc/<pid>/status). */
function catchesHup(pid: number): boolean {
  try {
    const mask = /SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

describe('calls.log', () => {
  it('records every invocation with its arguments and exit code, in order', async () => {
    const before = readCalls(dir(), 'lab-002').length;
    await ssh('lab-002', "lab-sleep 0; lab-sleep nope; ovs help; virsh list; hostname >/dev/null; uptime >/dev/null");
    const calls = readCalls(dir(), 'lab-002').slice(before);
    expect(calls.map((c) => [c.argv, c.exit])).toEqual([
      [['lab-sleep', '0'], 0],
      [['lab-sleep', 'nope'], 2],
      // No Open vStorage on a generic host: the shell's 127, as for any program it does not have.
      [['ovs', 'help'], 127],
      [['virsh', 'list'], 0],
    ]);
    expect(calls[0]!.t).toBeLessThanOrEqual(calls[3]!.t);
  });
});

describe('runbook.yaml', () => {
  it('is valid, names every host with the lab user, the lab keys, the lab databases and the people', () => {
    const cfg = parseRunbookConfig(readFileSync(t.lab.configPath, 'utf8'), t.lab.configPath, {});
    expect(Object.keys(cfg.hosts)).toEqual(t.lab.hosts.map((h) => h.name));
    expect(cfg.hosts['c01']).toEqual({ address: '127.0.0.18', port: host('c01').port, user: t.lab.user, groups: ['openstack', 'compute'], vars: { fqdn: 'c01.example.com', ip: '10.100.3.1' } });
    expect(cfg.ssh.privateKeyPath).toBe(join(dir(), 'client', 'id_ed25519'));
    expect(cfg.ssh.knownHostsPath).toBe(join(dir(), 'client', 'known_hosts'));
    expect(cfg.databases['nova']!.url).toBe(`${t.lab.mysqlUrl}/${t.lab.databases.nova}`);
    expect(Object.keys(cfg.databases).sort()).toEqual(['cinder', 'neutron', 'nova']);
    expect(cfg.people['bob']).toEqual({ roles: ['operator', 'approver'], slack: 'U0BOB', discord: '100000000000000002' });
    expect(Object.keys(cfg.people)).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(cfg.policy.approvalExpiryMinutes).toBe(15);
    const knownHosts = readFileSync(cfg.ssh.knownHostsPath, 'utf8').trim().split('\n');
    expect(knownHosts).toHaveLength(t.lab.hosts.length);
    expect(knownHosts[0]).toMatch(new RegExp(`^\\[127\\.0\\.0\\.11\\]:${host('node-1').port} ssh-ed25519 AAAA`));
  });
});

describe('databases', () => {
  // The tables are upstream's (nova, cinder: their migrations applied on MariaDB; neutron: its models).
  it('have the real tables of the current release, seeded like a real cloud', async () => {
    const conn = await mysql.createConnection({ uri: t.lab.mysqlUrl, dateStrings: true });
    try {
      const { nova, cinder, neutron } = t.lab.databases;
      const columns = async (db: string, table: string) => (await conn.query<mysql.RowDataPacket[]>('SELECT column_name AS c FROM information_schema.columns WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position', [db, table]))[0].map((r) => r.c as string);
      expect(await columns(nova, 'instances')).toHaveLength(54);
      expect(await columns(nova, 'instances')).toEqual(expect.arrayContaining(['host', 'node', 'compute_id', 'cleaned', 'launched_on', 'internal_id']));
      expect(await columns(cinder, 'volumes')).not.toEqual(expect.arrayContaining(['instance_uuid']));
      expect(await columns(cinder, 'volume_attachment')).toEqual(expect.arrayContaining(['instance_uuid', 'attached_host', 'mountpoint', 'attach_status', 'connection_info', 'connector']));
      const [keys] = await conn.query<mysql.RowDataPacket[]>("SELECT index_name AS k FROM information_schema.statistics WHERE table_schema = ? AND table_name = 'instances' AND index_name IN ('instances_host_node_deleted_idx', 'instances_host_deleted_cleaned_idx') GROUP BY index_name ORDER BY k", [nova]);
      expect(keys.map((r) => r.k)).toEqual(['instances_host_deleted_cleaned_idx', 'instances_host_node_deleted_idx']);
      // host is nova's service host (the short name), node the hypervisor; soft delete sets deleted = id.
      const [live] = await conn.query<mysql.RowDataPacket[]>(`SELECT id, host, node FROM \`${nova}\`.instances WHERE host = 'c01' AND deleted = 0 ORDER BY id`);
      expect(live.map((r) => [r.id, r.host, r.node])).toEqual([0x981, 0x9f5, 0x274a].map((id) => [id, 'c01', 'c01.example.com']));
      const [deleted] = await conn.query<mysql.RowDataPacket[]>(`SELECT id, deleted FROM \`${nova}\`.instances WHERE deleted <> 0`);
      expect(deleted).toEqual([{ id: 0x7d1, deleted: 0x7d1 }]);
      // The attachments, nova's view and cinder's.
      const [attachments] = await conn.query<mysql.RowDataPacket[]>(`SELECT a.mountpoint, a.attach_status, a.attached_host, v.status FROM \`${cinder}\`.volume_attachment a JOIN \`${cinder}\`.volumes v ON v.id = a.volume_id WHERE a.deleted = 0 ORDER BY a.mountpoint`);
      expect(attachments).toEqual([
        { mountpoint: '/dev/vdb', attach_status: 'attached', attached_host: 'c01', status: 'in-use' },
        { mountpoint: '/dev/vdc', attach_status: 'attached', attached_host: 'c01', status: 'in-use' },
      ]);
      const [bdms] = await conn.query<mysql.RowDataPacket[]>(`SELECT device_name FROM \`${nova}\`.block_device_mapping WHERE destination_type = 'volume' AND deleted = 0 ORDER BY device_name`);
      expect(bdms.map((r) => r.device_name)).toEqual(['/dev/vdb', '/dev/vdc']);
      // One port keeps an INACTIVE binding to c02 from a live migration that did not finish.
      const [bindings] = await conn.query<mysql.RowDataPacket[]>(`SELECT host, status, COUNT(*) AS n FROM \`${neutron}\`.ml2_port_bindings GROUP BY host, status ORDER BY host, status`);
      expect(bindings).toEqual([
        { host: '', status: 'ACTIVE', n: 1 },
        { host: 'c01', status: 'ACTIVE', n: 3 },
        { host: 'c02', status: 'ACTIVE', n: 2 },
        { host: 'c02', status: 'INACTIVE', n: 1 },
      ]);
      const [dvr] = await conn.query<mysql.RowDataPacket[]>(`SELECT host FROM \`${neutron}\`.ml2_distributed_port_bindings ORDER BY host`);
      expect(dvr.map((r) => r.host)).toEqual(['c01', 'c02']);
    } finally {
      await conn.end();
    }
  });
});

describe('labUp, stopHost and startHost', () => {
  it('stopHost makes a host unreachable; labUp (idempotent) and startHost bring it back', async () => {
    await stopHost(dir(), 'node-4');
    expect((await ssh('node-4', 'true')).code).toBe(255);
    expect((await ssh('node-1', 'true')).code).toBe(0);

    const again = await labUp({ dir: dir(), only: ['node-1', 'node-4', 'c01'], extraHosts: 2 });
    expect(again).toEqual(t.lab);
    expect((await ssh('node-4', 'true')).code).toBe(0);

    await stopHost(dir(), 'node-4');
    await startHost(dir(), 'node-4');
    expect((await ssh('node-4', 'true')).code).toBe(0);
    expect(await labStatus(dir())).toEqual(t.lab);
  });

  it('refuses to reuse a running lab for other hosts', async () => {
    await expect(labUp({ dir: dir(), only: ['node-1'] })).rejects.toThrow(/other hosts/);
  });

  it('refuses a directory that is neither empty nor a lab', async () => {
    const other = mkdtempSync(join(tmpdir(), 'not-a-lab-'));
    try {
      writeFileSync(join(other, 'precious'), 'x');
      await expect(labUp({ dir: other, port: 0 })).rejects.toThrow(/not empty/);
      expect(readdirSync(other)).toEqual(['precious']);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('labDown', () => {
  it('kills every process of the lab, drops its databases and removes its state', async () => {
    const small = await startTestLab({ only: ['node-2'] });
    const d = small.lab.dir;
    try {
      const h = small.lab.hosts[0]!;
      const client = new Client();
      await new Promise<void>((resolve, reject) => {
        client.on('ready', resolve).on('error', reject);
        client.connect({ host: h.address, port: h.port, username: small.lab.user, privateKey: readFileSync(join(d, 'client', 'id_ed25519')) });
      });
      client.on('error', () => undefined);
      client.exec('lab-sleep 60', () => undefined);
      const labPids = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && readCmdline(Number(p)).includes(d));
      await until(() => labPids().some((p) => readCmdline(Number(p)).includes('lab-sleep')));

      await labDown(d);

      expect(labPids()).toEqual([]);
      expect(readdirSync(d)).toEqual([]);
      expect(await labStatus(d)).toBeUndefined();
      const conn = await mysql.createConnection({ uri: small.lab.mysqlUrl });
      try {
        const [dbs] = await conn.query<mysql.RowDataPacket[]>('SHOW DATABASES LIKE ?', [`${small.lab.databases.nova.slice(0, -'nova'.length)}%`]);
        expect(dbs).toEqual([]);
      } finally {
        await conn.end();
      }
      client.end();
      await labDown(d);
    } finally {
      await small.down();
    }
  });
});
