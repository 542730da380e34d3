import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRunbookConfig } from '../../src/config/runbook-config.js';
import { CommandTimeoutError } from '../../src/errors.js';
import { SshPool } from '../../src/executors/ssh/pool.js';
import { readCalls, readHostState, setHostSetting, setService, type Vdisk } from '../../src/lab/index.js';
import { runtime } from '../../src/lab/tool-runtime.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { CREATE_SNAPSHOT } from '../../src/procedures/ovs-framework.js';
import { finished, testRuntime, waitForEvent } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

/**
 * The lab's Open vStorage simulators pinned to the upstream sources they follow, on a storage router
 * of each release line: node-1 and node-4 (2.9.x, systemd, configuration in Arakoon), node-3 (2.7
 * Fargo, upstart, configuration in etcd) and node-5 (the 2019 click CLI). Commands run as the ssh executor
 * runs them: no terminal, and no input (end-of-file at once) unless a script is sent.
 */
let t: TestLab;
let pool: SshPool;
const dir = () => t.lab.dir;

beforeAll(async () => {
  t = await startTestLab({ only: ['node-1', 'node-3', 'node-4', 'node-5'] });
  pool = new SshPool(loadRunbookConfig(t.lab.configPath).ssh);
});

afterAll(async () => {
  await pool?.close();
  await t?.down();
});

function ssh(host: string, command: string, opts: { stdin?: string; timeoutMs?: number } = {}) {
  const h = t.lab.hosts.find((x) => x.name === host)!;
  return pool.exec({ name: host, address: h.address, port: h.port, user: t.lab.user }, command, opts);
}

/** A script through the lab's doubles of the framework, as the procedures run it. */
function python(host: string, script: string, args = '') {
  const fw = String(t.lab.hosts.find((x) => x.name === host)!.vars.ovsFramework);
  return ssh(host, `cd ${fw} && PYTHONPATH=${fw}:${fw}/webapps\${PYTHONPATH:+:$PYTHONPATH} python3 - ${args}`, { stdin: `from __future__ import print_function\n${script}` });
}

const IPYTHON_EXIT = 'Do you really want to exit ([y]/n)? \n';

describe('the ovs launcher of the 2016–2018 releases (framework scripts/system/ovs @ 2.7.4-fargo.1 and 2.9.30)', () => {
  it('prints the help and exits 0 for a subcommand it does not have, such as the `ovs vdisk …` of the old automation', async () => {
    for (const host of ['node-1', 'node-3']) {
      const r = await ssh(host, 'ovs vdisk list');
      expect(r.exitCode).toBe(0);
      expect(r.stdout.split('\n').slice(0, 3)).toEqual(['Open vStorage CLI launcher', '--------------------------', 'Usage:']);
      expect(r.stdout).toContain('    - ovs collect logs ');
      expect((await ssh(host, 'ovs help')).stdout).toBe(r.stdout);
    }
  });

  it('`ovs` alone is IPython, which at the end of its input asks whether to exit, takes the default and exits 0', async () => {
    const fargo = await ssh('node-3', 'ovs');
    expect(fargo.exitCode).toBe(0);
    expect(fargo.stdout).toMatch(/^Python 2\.7\.6 .*\nType "copyright", "credits" or "license" for more information\.\n\nIPython 1\.2\.1 -- An enhanced Interactive Python\.\n/);
    // IPython 1.x/2.x write a newline on end-of-file before asking (interactiveshell.py `interact`, `exit`).
    expect(fargo.stdout.endsWith(`\nIn [1]: \n${IPYTHON_EXIT}`)).toBe(true);
    const v29 = await ssh('node-1', 'ovs', { stdin: 'print 1\nprint 2\n' });
    expect(v29.stdout).toContain('IPython 2.4.1 -- An enhanced Interactive Python.');
    expect(v29.stdout.endsWith(`In [1]: \nIn [2]: \nIn [3]: \n${IPYTHON_EXIT}`)).toBe(true);
    expect(v29.stderr).toContain('does not run what it reads');
  });

  it('`ovs collect logs` leaves /tmp/ovs-<hostname>-<%Y%m%d%H%M%S>-logs.tar.gz in the host, gzipped, and echoes its path', async () => {
    const r = await ssh('node-1', 'ovs collect logs');
    expect(r.exitCode).toBe(0);
    const archive = /^(\/tmp\/ovs-node-1-\d{14}-logs\.tar\.gz)\n$/.exec(r.stdout)?.[1];
    expect(archive).toBeDefined();
    expect(existsSync(archive!)).toBe(false);
    const tar = gunzipSync(readFileSync(runtime.realPath(dir(), 'node-1', archive!))).toString('latin1');
    // 2.9.30 first writes the journal of ovs-*, asd-* and alba-* units to /var/log/journald.log (60f68fde).
    expect(tar).toContain('var/log/journald.log');
    expect(tar).toContain('node-1 ovs-workers[');
    expect(tar).toContain('var/log/rabbitmq/rabbit@node-1.log');
    const fargo = await ssh('node-3', 'ovs collect logs');
    const upstart = gunzipSync(readFileSync(runtime.realPath(dir(), 'node-3', fargo.stdout.trim()))).toString('latin1');
    expect(upstart).toContain('var/log/upstart/ovs-workers.log');
    expect(upstart).not.toContain('journald.log');
  });
});

describe('a step running a program that waits for input', () => {
  /** `ops exec <host> --timeout 600 -- <command>`, approved by bob; the run when it ends. */
  async function exec(rt: ReturnType<typeof testRuntime>, host: string, command: string) {
    const req = await rt.intake.request({ text: `ops exec ${host} --timeout 600 -- ${command}`, person: 'alice', origin: { adapter: 'test' } });
    const opened = await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    if (opened.type !== 'gate.opened') throw new Error('unreachable');
    await rt.decisions.decide(req.id, 'bob', 'approve', { gateId: opened.gate.id });
    return (await finished(rt, req.id)).steps[`change[${host}].exec`]!;
  }

  it('ends at once on end-of-file, not at its 10-minute timeout: the shell the page starts, and a prompt that needs an answer', async () => {
    const rt = testRuntime(t.lab.configPath);
    rt.startWorker(2);
    try {
      // "Start an OVS shell": IPython reads end-of-file, takes the default answer to its exit question, exits 0.
      const shell = await exec(rt, 'node-3', 'ovs');
      expect(shell).toMatchObject({ status: 'succeeded', exitCode: 0 });
      expect(shell.outputTail).toContain('Do you really want to exit ([y]/n)?');
      // The framework's own prompts are raw_input(): at end-of-file Python raises, and the step says so.
      const prompt = await exec(rt, 'node-3', `python3 -c 'input("Are you sure you want to remove node 10.100.1.6? (y/[n]) ")'`);
      expect(prompt).toMatchObject({ status: 'failed', exitCode: 1, error: 'exit code 1: EOFError: EOF when reading a line' });
    } finally {
      await rt.cleanup();
    }
  });
});

describe('the click CLI of 2019 (framework ovs/cli @ 6e985c34, click 7.0)', () => {
  it('answers an unknown command with click\'s usage error, exit 2', async () => {
    const r = await ssh('node-5', 'ovs vdisk list');
    expect(r).toMatchObject({ exitCode: 2, stdout: '', stderr: 'Usage: entry.py [OPTIONS] COMMAND [ARGS]...\nTry "entry.py --help" for help.\n\nError: No such command "vdisk".\n' });
    expect((await ssh('node-5', 'ovs help')).exitCode).toBe(2);
    expect((await ssh('node-5', 'ovs collect')).stderr).toContain('Error: Missing argument "LOGS".');
  });

  it('`ovs` alone is IPython 5\'s embed(): at end of input it asks on the prompt\'s line and exits 0', async () => {
    const r = await ssh('node-5', 'ovs');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('IPython 5.8.0 -- An enhanced Interactive Python.');
    expect(r.stdout.endsWith(`\nIn [1]: ${IPYTHON_EXIT}`)).toBe(true);
  });

  it('`ovs collect logs` stores a gzipped tar named .tar and says "Files stored in …" (ovs/cli/misc/misc.py)', async () => {
    const r = await ssh('node-5', 'ovs collect logs');
    const archive = /^Files stored in (\/tmp\/ovs-node-5-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-logs\.tar)\n$/.exec(r.stdout)?.[1];
    expect(archive).toBeDefined();
    const tar = gunzipSync(readFileSync(runtime.realPath(dir(), 'node-5', archive!))).toString('latin1');
    // The file logging target: the troubleshooting page's /var/log/ovs/ layout; syslog is excluded.
    expect(tar).toContain('var/log/ovs/celery.log');
    expect(tar).not.toContain('var/log/syslog');
  });

  it('`ovs config get` prints a key of the configuration, nothing for a key that is not set', async () => {
    expect(JSON.parse((await ssh('node-5', 'ovs config get /ovs/framework/logging')).stdout)).toEqual({ type: 'file' });
    expect(JSON.parse((await ssh('node-1', 'ovs config get /ovs/framework/logging')).stdout)).toEqual({ type: 'console' });
    expect(await ssh('node-3', 'ovs config get /ovs/nothing')).toMatchObject({ exitCode: 0, stdout: '' });
    expect((await ssh('node-3', 'ovs config list /ovs/arakoon')).stdout).toBe('ovsdb\nvoldrv\n');
  });
});

describe('ovs monitor services (framework ovs/extensions/services/upstart.py @ 2.7.4-fargo.1; framework-extensions src/services/interfaces/systemd.py @ dfa64392)', () => {
  it('never exits, and without a terminal prints nothing: Python 2 block-buffers a pipe and one screen is less than the 4096-byte block', async () => {
    const before = readCalls(dir(), 'node-1').length;
    const r = await ssh('node-1', 'ovs monitor services', { timeoutMs: 2_500 }).catch((e: unknown) => e);
    expect(r).toBeInstanceOf(CommandTimeoutError);
    expect((r as CommandTimeoutError & { result: { stdout: string } }).result.stdout).toBe('');
    await until('the killed monitor is logged', () => readCalls(dir(), 'node-1').length > before);
    expect(readCalls(dir(), 'node-1').at(-1)).toMatchObject({ argv: ['ovs', 'monitor', 'services'], exit: 143 });
  });

  /** The monitor on a terminal (util-linux `script` gives it one), until its first screen is out. */
  async function onTerminal(host: string): Promise<string> {
    const child = spawn('script', ['-qc', `${join(dir(), 'bin', 'ovs')} monitor services`, '/dev/null'], { env: { ...process.env, LAB_DIR: dir(), LAB_HOST: host } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await until(`the first screen on ${host}`, () => /non-running processes\r?\n=+\r?\n\r?\n/i.test(out));
    } finally {
      child.kill('SIGKILL');
    }
    return out.replace(/\r/g, '');
  }

  it('on a terminal prints the upstart layout on an upstart host and the systemd one on a systemd host', async () => {
    const upstart = await onTerminal('node-3');
    expect(upstart.startsWith('\x1b[2J\x1b[H\nOVS running processes\n=====================\n\n')).toBe(true);
    expect(upstart).toMatch(/\novs-watcher-framework +start\/running\n/);
    expect(upstart).toContain('ovs-dtl_vpool1             start/running\n');
    const systemd = await onTerminal('node-1');
    expect(systemd.startsWith('\x1b[2J\x1b[H\nRunning processes\n=================\n\n')).toBe(true);
    expect(systemd).toMatch(/\novs-workers +active +\d+ <unknown>\n/);
    expect(systemd).toContain('\n\n\nNon-running processes\n=====================\n\n');
  });
});

describe('arakoon --who-master -config <url> (openvstorage/arakoon @ 18439814)', () => {
  const master1 = () => readFileSync(runtime.realPath(dir(), 'node-1', '/etc/openvstorage_id'), 'utf8').trim();

  it('prints the master\'s node name (a machine id) for the etcd URL of the Fargo era and the arakoon:// URL after it', async () => {
    const etcd = await ssh('node-3', 'arakoon --who-master -config etcd://127.0.0.1:2379/ovs/arakoon/ovsdb/config');
    expect(etcd).toMatchObject({ exitCode: 0, stdout: `${master1()}\n` });
    const ini = encodeURIComponent('/opt/OpenvStorage/config/arakoon_cacc.ini');
    const arakoon = await ssh('node-1', `arakoon --who-master -config 'arakoon://cacc/ovs/arakoon/ovsdb/config?ini=${ini}'`);
    expect(arakoon).toMatchObject({ exitCode: 0, stdout: `${master1()}\n` });
  });

  it('dies as OCaml does on an exception nothing catches: exit 2, "Fatal error: exception …"', async () => {
    // No etcd (and no etcdctl) once the configuration moved to Arakoon (framework c61df62c, 2017-01).
    const noEtcd = await ssh('node-1', 'arakoon --who-master -config etcd://127.0.0.1:2379/ovs/arakoon/ovsdb/config');
    expect(noEtcd).toMatchObject({ exitCode: 2, stderr: 'Fatal error: exception Arakoon_etcd.ProcessFailure(_)\n' });
    const unknown = await ssh('node-1', "arakoon --who-master -config 'arakoon://cacc/ovs/arakoon/nope/config?ini=%2Fopt%2FOpenvStorage%2Fconfig%2Farakoon_cacc.ini'");
    expect(unknown).toMatchObject({ exitCode: 2, stderr: 'Fatal error: exception Arakoon_exc.Exception(4, "ovs/arakoon/nope/config")\n' });
    runtime.updateJson<Record<string, { master: string | null }>, void>(dir(), 'node-3', runtime.statePath(dir(), 'node-3', 'arakoon'), {}, (a) => {
      a.voldrv!.master = null;
    });
    const noMaster = await ssh('node-3', 'arakoon --who-master -config etcd://127.0.0.1:2379/ovs/arakoon/voldrv/config');
    expect(noMaster).toMatchObject({ exitCode: 2, stdout: '', stderr: 'Fatal error: exception Failure("No Master")\n' });
  });
});

describe('the framework\'s data-access layer and the volumedriver binding (tools/python)', () => {
  it('finds the local Storage Router and its vDisks as the page\'s script does', async () => {
    const r = await python('node-3', 'from ovs.extensions.generic.system import System\nfrom ovs.dal.hybrids.vdisk import VDisk\nfrom ovs.dal.lists.storagerouterlist import StorageRouterList\nsr = System.get_my_storagerouter()\nprint(sr.name, sr.ip, sr.node_type, StorageRouterList.get_by_ip(sr.ip).name, StorageRouterList.get_by_ip("10.9.9.9"))\nprint(" ".join(VDisk(g).name for g in sr.vdisks_guids))');
    expect(r.stdout).toBe(`node-3 10.100.1.3 MASTER node-3 None\n${readHostState<Vdisk[]>(dir(), 'node-3', 'vdisks')!.map((v) => v.name).join(' ')}\n`);
  });

  it('raises the binding\'s exceptions in the volumedriver\'s order (StorageRouterClient.cpp @ b244eb00, Volume.cpp createSnapshot)', async () => {
    setHostSetting(dir(), 'node-1', 'pendingChecks', 1);
    const vid = readHostState<Vdisk[]>(dir(), 'node-1', 'vdisks')![0]!.volume_id;
    const script = [
      'import sys',
      'from ovs.dal.lists.vdisklist import VDiskList',
      'from volumedriver.storagerouter import storagerouterclient as src',
      'vid = sys.argv[1]',
      'c = VDiskList.get_vdisk_by_volume_id(vid).storagedriver_client',
      'def attempt(f, *a):',
      '    try:',
      '        return f(*a)',
      '    except Exception as e:',
      '        return "%s.%s: %s" % (type(e).__module__, type(e).__name__, e)',
      'print(len(c.list_snapshots(vid)))',
      'print(c.create_snapshot(vid, "flush_snapshot"))',
      'print(attempt(c.create_snapshot, vid, "flush_snapshot"))',
      'print(c.info_snapshot(vid, "flush_snapshot").in_backend, c.info_snapshot(vid, "flush_snapshot").in_backend)',
      'print(attempt(c.create_snapshot, vid, "flush_snapshot"))',
      'print(c.list_snapshots(vid)[-1], c.delete_snapshot(vid, "flush_snapshot"))',
      'print(attempt(c.delete_snapshot, vid, "flush_snapshot"))',
      'print(attempt(c.info_snapshot, "no-such-volume", "flush_snapshot"))',
      'print(VDiskList.get_vdisk_by_volume_id("no-such-volume"))',
    ].join('\n');
    const r = await python('node-1', script, vid);
    const mod = 'volumedriver.storagerouter.storagerouterclient';
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual([
      '1',
      'flush_snapshot',
      // The previous snapshot is checked before the name (Volume::createSnapshot).
      `${mod}.PreviousSnapshotNotOnBackendException: Last snapshot not on backend, can't create a new one`,
      'False True',
      `${mod}.SnapshotNameAlreadyExistsException: flush_snapshot`,
      'flush_snapshot None',
      `${mod}.SnapshotNotFoundException: Snapshot does not exist`,
      `${mod}.ObjectNotFoundException: no-such-volume`,
      'None',
      '',
    ]);
    expect(readHostState<Vdisk[]>(dir(), 'node-1', 'vdisks')![0]!.snapshots.map((s) => s.name)).not.toContain('flush_snapshot');
  });

  it("the flush's snapshot script, run again with the same flush id, finds the snapshot it made; with another id it replaces it", async () => {
    setHostSetting(dir(), 'node-1', 'pendingChecks', 0);
    const vid = readHostState<Vdisk[]>(dir(), 'node-1', 'vdisks')![1]!.volume_id;
    const fw = String(t.lab.hosts.find((x) => x.name === 'node-1')!.vars.ovsFramework);
    const snapshot = (flushId: string) => ssh('node-1', `cd ${fw} && PYTHONPATH=${fw}:${fw}/webapps\${PYTHONPATH:+:$PYTHONPATH} python3 - ${vid} flush_snapshot ${flushId}`, { stdin: CREATE_SNAPSHOT });
    const made = () => readCalls(dir(), 'node-1').filter((c) => c.argv.slice(0, 4).join(' ') === `storagerouterclient create_snapshot ${vid} flush_snapshot` && c.exit === 0).length;
    const before = made();
    expect((await snapshot('aaaa')).stdout).toBe('{"created": true, "replaced": false}\n');
    expect((await snapshot('aaaa')).stdout).toBe('{"created": false, "replaced": false}\n');
    expect(made() - before).toBe(1);
    const other = await snapshot('bbbb');
    expect(other.stdout).toBe('{"created": true, "replaced": true}\n');
    expect(other.stderr).toContain("Deleted the flush_snapshot an earlier flush left on volume 'vd-1-02' (it was in the backend)");
    expect(made() - before).toBe(2);
  });

  it('gives the configuration URL of the node\'s store (Configuration.get_configuration_path, etcd at 2.7.4-fargo.1, Arakoon at 2.9.30)', async () => {
    const script = 'from ovs.extensions.generic.configuration import Configuration\nprint(sorted(Configuration.list("/ovs/arakoon")))\nprint(Configuration.get_configuration_path("/ovs/arakoon/ovsdb/config"))';
    expect((await python('node-3', script)).stdout).toBe("['ovsdb', 'voldrv']\netcd://127.0.0.1:2379/ovs/arakoon/ovsdb/config\n");
    expect((await python('node-1', script)).stdout).toBe("['ovsdb', 'voldrv']\narakoon://cacc/ovs/arakoon/ovsdb/config?ini=%2Fopt%2FOpenvStorage%2Fconfig%2Farakoon_cacc.ini\n");
  });
});

describe("the vPool test of 'Restart an environment' (a volumedriver FUSE mount at /mnt/<vpool>)", () => {
  it('truncate, touch and rm act on the mount; with the volumedriver down the mount answers ENOTCONN; nothing is written outside the lab', async () => {
    const r = await ssh('node-4', 'truncate -s 10G /mnt/vpool1/test.raw && touch /mnt/vpool1/myvm.xml && rm /mnt/vpool1/test.raw; rm /mnt/vpool1/test.raw; echo rc=$?');
    expect(r).toMatchObject({ stdout: 'rc=1\n', stderr: "rm: cannot remove '/mnt/vpool1/test.raw': No such file or directory\n" });
    expect(readHostState(dir(), 'node-4', 'files-written')).toEqual({ '/mnt/vpool1/myvm.xml': 0 });
    expect((await ssh('node-4', 'rm -f /mnt/vpool1/myvm.xml /mnt/vpool1/nothing')).exitCode).toBe(0);
    expect(readHostState(dir(), 'node-4', 'files-written')).toEqual({});
    expect((await ssh('node-4', 'touch /etc/runbook-lab-ovs-test')).exitCode).toBe(1);
    expect(existsSync('/etc/runbook-lab-ovs-test')).toBe(false);
    setService(dir(), 'node-4', 'ovs-volumedriver_vpool1', 'stopped');
    try {
      const down = await ssh('node-4', 'truncate -s 10G /mnt/vpool1/test.raw');
      expect(down).toMatchObject({ exitCode: 1, stderr: "truncate: cannot open '/mnt/vpool1/test.raw' for writing: Transport endpoint is not connected\n" });
    } finally {
      setService(dir(), 'node-4', 'ovs-volumedriver_vpool1', 'running');
    }
  });
});

describe('journalctl (systemd v229 src/journal/journalctl.c, short output)', () => {
  it('prints the last entries of a unit on a systemd host; an upstart host has no journalctl', async () => {
    const r = await ssh('node-1', 'journalctl -u ovs-workers -n 2 --no-pager');
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^-- Logs begin at .*, end at .*\. --$/);
    expect(lines.slice(1)).toHaveLength(2);
    for (const l of lines.slice(1)) expect(l).toMatch(/^[A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d node-1 ovs-workers\[\d+\]: /);
    expect((await ssh('node-1', 'journalctl -u ovs-nothing --no-pager')).stdout).toBe('-- No entries --\n');
    expect((await ssh('node-3', 'journalctl -u ovs-workers')).exitCode).toBe(127);
  });
});
