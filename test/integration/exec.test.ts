import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotAllowedError } from '../../src/errors.js';
import { clearFaults, readCalls, setFault, startHost, stopHost } from '../../src/lab/index.js';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { finished, testRuntime, uniquePrefix, waitForEvent, watch } from '../helpers/runtime.js';

const CLI = resolve('dist/cli.js');

let lab: Awaited<ReturnType<typeof startTestLab>>;
let rt: ReturnType<typeof testRuntime>;
const cliPrefix = uniquePrefix();

beforeAll(async () => {
  lab = await startTestLab({ only: ['node-1', 'node-2', 'node-3', 'node-4'], extraHosts: 2 });
  rt = testRuntime(lab.lab.configPath);
  rt.startWorker(2);
});

afterAll(async () => {
  await rt?.cleanup();
  if (lab) await testRuntime(lab.lab.configPath, { prefix: cliPrefix }).cleanup();
  await lab?.down();
});

const dir = () => lab.lab.dir;
const request = (text: string, person = 'alice') => rt.intake.request({ text, person, origin: { adapter: 'test' } });

const runbook = (...args: string[]) => runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: cliPrefix }, ...args);

describe('ops exec through the runtime', () => {
  it('runs a read-only command on every lab host, ungated, and gathers the output clush -b style', async () => {
    setFault(dir(), 'node-2', { match: 'ovs config get', action: 'fail', exitCode: 3, stderr: 'ovs: cannot reach the cluster' });
    await stopHost(dir(), 'lab-002');
    try {
      const req = await request('ops exec @all -- ovs config get /ovs/framework/logging');
      expect(req.args).toMatchObject({ hosts: ['node-1', 'node-2', 'node-3', 'node-4', 'lab-001', 'lab-002'], risk: 'read' });
      // Only the read variant is in the plan, ungated; the gathering is a finally step.
      expect(req.plan.map((p) => [p.path, p.risk, p.gated])).toEqual([
        ['read', 'read', false],
        ['gather', 'read', false],
      ]);
      expect(req.locks.every((l) => l.mode === 'read')).toBe(true);
      const events = await watch(rt, req.id);
      const r = await rt.store.load(req.id);
      expect(Object.values(r.gates)).toHaveLength(0);
      // The failing, the unreachable host and the one without Open vStorage fail their steps; every other host ran.
      expect(r.status).toBe('failed');
      expect(r.steps['read[node-2].exec']).toMatchObject({ status: 'failed', exitCode: 3, error: 'exit code 3: ovs: cannot reach the cluster' });
      expect(r.steps['read[lab-002].exec']?.status).toBe('failed');
      expect(r.steps['read[lab-001].exec']).toMatchObject({ status: 'failed', exitCode: 127 });
      for (const h of ['node-1', 'node-3', 'node-4']) expect(r.steps[`read[${h}].exec`]).toMatchObject({ status: 'succeeded', exitCode: 0 });

      const progress = events.filter((e) => e.type === 'step.progress' && e.path === 'read').map((e) => (e as { message: string }).message);
      expect(progress.at(-1)).toMatch(/^`ovs config get \/ovs\/framework\/logging` on lab-\[001-002\],node-\[1-4\] \(6 hosts\), read-only: 3\/6 done · 3 failed$/);

      const report = events.find((e) => e.type === 'step.finished' && e.path === 'gather') as { report?: string } | undefined;
      const text = report?.report ?? '';
      expect(r.captures.gather).toBe(text);
      expect(text).toContain('6 hosts: 3 ok · 2 failed · 1 unreachable');
      expect(text).toMatch(/---------------\nnode-\[1,3-4\] \(3\)\n---------------\n\{\n {4}"type": "console"\n\}\n/);
      expect(text).toContain('---------------\nnode-2 (1)\n---------------\novs: cannot reach the cluster');
      expect(text).toContain('Failed:\n  node-2 (1): exit code 3\n  lab-001 (1): exit code 127');
      expect(text).toMatch(/Unreachable:\n {2}lab-002: cannot connect to lab-002 .*/);
    } finally {
      clearFaults(dir(), 'node-2');
      await startHost(dir(), 'lab-002');
    }
  });

  it('gates a destructive command once for every host: refused for the requester, run after another person approves', async () => {
    const req = await request('ops exec node-[3-4] -- service ovs-workers restart');
    expect(req.args.risk).toBe('destructive');
    expect(req.plan.map((p) => [p.path, p.risk, p.gated])).toEqual([
      ['change', 'destructive', true],
      ['gather', 'read', false],
    ]);
    expect(req.locks).toEqual([
      { host: 'node-3', mode: 'write' },
      { host: 'node-4', mode: 'write' },
    ]);
    const opened = await waitForEvent(rt, req.id, (e) => e.type === 'gate.opened');
    if (opened.type !== 'gate.opened') throw new Error('unreachable');
    expect(opened.gate.steps.map((s) => [s.host, s.command])).toEqual([
      ['node-3', 'service ovs-workers restart'],
      ['node-4', 'service ovs-workers restart'],
    ]);
    expect(readCalls(dir(), 'node-3').filter((c) => c.argv.join(' ') === 'service ovs-workers restart')).toHaveLength(0);
    await expect(rt.decisions.decide(req.id, 'alice', 'approve', { gateId: opened.gate.id })).rejects.toBeInstanceOf(NotAllowedError);
    await rt.decisions.decide(req.id, 'bob', 'approve', { gateId: opened.gate.id });
    const r = await finished(rt, req.id);
    expect(r.status).toBe('succeeded');
    for (const h of ['node-3', 'node-4']) {
      expect(r.steps[`change[${h}].exec`]).toMatchObject({ status: 'succeeded', exitCode: 0, risk: 'destructive' });
      expect(readCalls(dir(), h).filter((c) => c.argv.join(' ') === 'service ovs-workers restart')).toHaveLength(1);
    }
    expect(r.captures.gather).toMatch(/^service ovs-workers restart on node-\[3-4\]\n2 hosts: 2 ok\n/);
  });

  it('refuses a forbidden command and a node set that names no host, before anything runs', async () => {
    await expect(request('ops exec node-1 -- rm -rf /')).rejects.toThrow(/forbidden by the policy/);
    await expect(request('ops exec node-[1-9] -- uptime')).rejects.toThrow(/unknown hosts node-\[5-9\] \(5\)/);
    await expect(request('ops exec @ovs-mastr -- uptime')).rejects.toThrow(/did you mean "@ovs-master"/);
  });

  it('parses /ops exec from chat, the command taking everything after --', async () => {
    const reply = await rt.chat.command('slack', 'U0ALICE', 'ops', 'exec node-[1-3] -- uptime', { adapter: 'test' });
    expect(reply.run?.args).toMatchObject({ targets: 'node-[1-3]', command: 'uptime', hosts: ['node-1', 'node-2', 'node-3'], risk: 'read' });
    const r = await finished(rt, reply.run!.id);
    expect(r.status).toBe('succeeded');
    expect(r.captures.gather).toMatch(/3 hosts: 3 ok/);
  });
});

describe('runbook exec (CLI)', () => {
  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build it first (npx tsc -p tsconfig.build.json)`);
  });

  it('prints the gathered report on stdout', async () => {
    const r = await runbook('exec', '@ovs-master', '--as', 'alice', '--', 'ovs', 'config', 'list', '/ovs/arakoon');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ovs config list \/ovs\/arakoon on node-\[1-3\]\n3 hosts: 3 ok\n---------------\nnode-\[1-3\] \(3\)\n---------------\novsdb\nvoldrv\n/);
    expect(r.stderr).toMatch(/3\/3 done/);
  });

  it('--json carries the report; a destructive command approved by another person runs', async () => {
    const r = await runbook('exec', 'node-4', '--as', 'alice', '--approve-as', 'bob', '--json', '--', 'service', 'ovs-workers', 'restart');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ procedure: 'ops exec', status: 'succeeded', args: { targets: 'node-4', command: 'service ovs-workers restart', risk: 'destructive' } });
    expect(out.steps).toContainEqual({ id: 'change[node-4].exec', title: 'service ovs-workers restart on node-4', risk: 'destructive', status: 'succeeded', exitCode: 0 });
    expect(out.report).toMatch(/1 host: 1 ok/);
  });

  it('a destructive command approved by the requester is refused: exit 3, nothing runs', async () => {
    const before = readCalls(dir(), 'node-1').filter((c) => c.argv[0] === 'service').length;
    const r = await runbook('exec', 'node-1', '--as', 'alice', '--approve-as', 'alice', '--json', '--', 'service', 'ovs-workers', 'restart');
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).status).toBe('cancelled');
    expect(readCalls(dir(), 'node-1').filter((c) => c.argv[0] === 'service').length).toBe(before);
  });

  it('--timeout kills a host that takes too long and --concurrency limits the hosts asked at once', async () => {
    const r = await runbook('exec', 'lab-001,node-1', '--as', 'alice', '--approve-as', 'bob', '--json', '--timeout', '1', '--concurrency', '1', '--', 'lab-sleep', '30');
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.args).toMatchObject({ timeout: 1, concurrency: 1 });
    expect(out.report).toMatch(/2 hosts: .*1 timed out/);
    // One at a time, and a change starts no further host once one failed: only the first host ran.
    const ran = ['lab-001', 'node-1'].filter((h) => readCalls(dir(), h).some((c) => c.argv[0] === 'lab-sleep'));
    expect(ran).toHaveLength(1);
    expect(await runbook('exec', 'node-1', '--as', 'alice', '--timeout', 'soon', '--', 'uptime')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--timeout takes a whole number of seconds, not "soon"/) });
  });

  it('needs the command after --', async () => {
    const r = await runbook('exec', 'node-1', '--as', 'alice');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/needs the command after "--"/);
  });
});
