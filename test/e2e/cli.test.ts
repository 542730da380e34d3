import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCalls, readHostState, type VirshState } from '../../src/lab/index.js';
import { runCli, runProgram } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

const CLI = resolve('dist/cli.js');

let lab: Awaited<ReturnType<typeof startTestLab>>;
const prefix = uniquePrefix();

/** Runs `runbook …` as an operator would, against this file's lab and Redis prefix. */
const runbook = (...args: string[]) => runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix }, ...args);

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: npm test builds it first (npm run build)`);
  lab = await startTestLab({ only: ['node-3', 'c01'] });
});

afterAll(async () => {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  await rt.cleanup();
  await lab?.down();
});

describe('runbook CLI', () => {
  it('runbook run "ovs flush node-3" --as alice --json succeeds with a step per vDisk', async () => {
    const r = await runbook('run', 'ovs flush node-3', '--as', 'alice', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ procedure: 'ovs flush', status: 'succeeded' });
    const vdisks = readHostState<{ name: string }[]>(lab.lab.dir, 'node-3', 'vdisks')!;
    for (const v of vdisks) {
      expect(out.steps).toContainEqual({ id: `flush[${v.name}].snapshot`, title: `Commencing flush to backend for volume '${v.name}'`, risk: 'write', status: 'succeeded', exitCode: 0 });
    }
    expect(r.stderr).toMatch(/✓ run r-\w+ succeeded/);
  });

  it('inspect-disk approved by another person succeeds', async () => {
    const r = await runbook('run', 'nova inspect-disk instance-0000274a', '--as', 'alice', '--approve-as', 'bob', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('succeeded');
    expect(out.steps.map((s: { id: string; status: string }) => `${s.id}:${s.status}`)).toEqual([
      'virsh-list:succeeded',
      'inspect:succeeded',
      'inspect.suspend:succeeded',
      'inspect.nbd-module:succeeded',
      'inspect.connect:succeeded',
      'inspect.mount:succeeded',
      'inspect.list:succeeded',
      'umount:succeeded',
      'disconnect:succeeded',
      'resume:succeeded',
    ]);
  });

  it('inspect-disk with --approve-as the requester is refused, and nothing past the gate runs', async () => {
    const suspends = readCalls(lab.lab.dir, 'c01').filter((c) => c.argv.join(' ').startsWith('virsh suspend')).length;
    const r = await runbook('run', 'nova inspect-disk instance-0000274a', '--as', 'alice', '--approve-as', 'alice', '--json');
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('cancelled');
    expect(out.error).toMatch(/^approval refused: alice requested run r-\w+ and cannot approve its own sensitive step/);
    expect(readCalls(lab.lab.dir, 'c01').filter((c) => c.argv.join(' ').startsWith('virsh suspend')).length).toBe(suspends);
    expect(readHostState<VirshState>(lab.lab.dir, 'c01', 'virsh')!.domains.find((d) => d.id === 30)!.state).toBe('running');
  });

  it('--dry-run prints the plan and runs nothing', async () => {
    const before = readCalls(lab.lab.dir, 'node-3').length;
    const r = await runbook('run', 'ovs flush node-3', '--as', 'alice', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/1\. Detect the service manager and Python on node-3 \[read\] on node-3: detect: /);
    // The earlier run detected node-3: the plan names the variant that runs, and the page's line it stands for.
    expect(r.stdout).toMatch(/2\. Fetch the vDisks on the Storage Router \[read\] on node-3: cd \S+ && .* python3 - <<script\n +variant: python3 [\d.]+, framework in \S+\n +page: sr_info = StorageRouterList\.get_by_ip\(ip\); vdisks_by_guid = sr_info\.vdisks_guids\n/);
    expect(readCalls(lab.lab.dir, 'node-3').length).toBe(before);
  });

  it('says exactly what is wrong with bad input, with exit code 2', async () => {
    const unknownHost = await runbook('run', 'ovs flush node-33', '--as', 'alice');
    expect(unknownHost.code).toBe(2);
    expect(unknownHost.stderr).toMatch(/unknown host "node-33"; did you mean "node-3"/);
    const noPerson = await runbook('run', 'ovs flush node-3');
    expect(noPerson.code).toBe(2);
    expect(noPerson.stderr).toMatch(/say who is asking with --as <person>/);
    const notAllowed = await runbook('run', 'ovs flush node-3', '--as', 'dave');
    expect(notAllowed.code).toBe(3);
    expect(notAllowed.stderr).toMatch(/dave may not run "ovs flush"/);
  });

  it('list, show, approve and cancel work from the command line', async () => {
    const started = runbook('run', 'nova inspect-disk instance-0000274a', '--as', 'alice', '--json');
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      const list = JSON.parse((await runbook('list', '--json')).stdout) as { id: string; status: string; procedure: string }[];
      id = list.find((r) => r.procedure === 'nova inspect-disk' && r.status === 'waiting')?.id;
      if (!id) await new Promise((r) => setTimeout(r, 200));
    }
    expect(id).toBeDefined();
    const show = await runbook('show', id!);
    expect(show.stdout).toMatch(/APPROVAL NEEDED \(sensitive\)/);
    expect(show.stdout).toMatch(/c01\$ virsh suspend 30/);
    const self = await runbook('approve', id!, '--as', 'alice');
    expect(self.code).toBe(3);
    const ok = await runbook('approve', id!, '--as', 'carol');
    expect(ok.code).toBe(0);
    const done = await started;
    expect(JSON.parse(done.stdout).status).toBe('succeeded');
    const again = await runbook('cancel', id!, '--as', 'alice');
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/has already ended \(succeeded\)/);
  });

  it('runbook list | head -3 ends quietly, as other command-line tools do', async () => {
    const rt = testRuntime(lab.lab.configPath, { prefix: uniquePrefix() });
    try {
      const { run } = await rt.intake.prepare({ text: 'ovs flush node-3', person: 'alice', origin: { adapter: 'cli' } });
      // More lines than a pipe holds: the list is still writing when head has stopped reading.
      for (let i = 0; i < 1_500; i++) await rt.store.create({ ...run, id: `${run.id}${i}` }, []);
      const r = await runProgram('sh', ['-c', `"${process.execPath}" "${CLI}" list --limit 1500 | head -3`], { RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: rt.prefix });
      expect(r.stdout.trim().split('\n')).toHaveLength(3);
      expect(r.stderr).toBe('');
    } finally {
      await rt.cleanup();
    }
  });
});
