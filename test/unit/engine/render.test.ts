import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Policy } from '../../../src/approvals/policy.js';
import { NotYetKnown } from '../../../src/engine/context.js';
import { bindingHash, buildPlan } from '../../../src/engine/render.js';
import type { RenderedStep } from '../../../src/engine/types.js';
import { Inventory } from '../../../src/inventory.js';
import { describeFacts, detectFacts, KnownAtRunTime, procedure, sh, type KnownFacts } from '../../../src/procedures/dsl.js';
import { defaultCatalog } from '../../../src/procedures/index.js';
import { fixtureConfig } from '../../helpers/fixtures.js';

const cfg = fixtureConfig();
const inventory = new Inventory(cfg.hosts);
const policy = new Policy(cfg);
const catalog = defaultCatalog();

describe('plans', () => {
  it('shows every step of ovs flush with its risk, and what is known only later', () => {
    const plan = buildPlan(catalog.require('ovs flush'), { node: 'node-3' }, inventory, (r) => policy.isGated('ovs flush', r));
    expect(plan[0]).toMatchObject({ path: 'detect', risk: 'read', host: 'node-3', gated: false });
    // Which Python runs the framework's script is known once node-3 is detected; the page's line shows meanwhile.
    expect(plan[1]).toMatchObject({ path: 'vdisks', risk: 'read', after: 'after detecting node-3', reference: 'sr_info = StorageRouterList.get_by_ip(ip); vdisks_by_guid = sr_info.vdisks_guids', gated: false });
    expect(plan[2]).toMatchObject({ path: 'flush', kind: 'forEach', risk: 'write', after: 'after "vdisks"' });
    expect(plan[2]!.children!.map((c) => c.path)).toEqual(['flush[*].snapshot', 'flush[*].in-backend', 'flush[*].delete-snapshot']);
    // A forEach item's command is known only at run time.
    expect(plan[2]!.children![0]).toMatchObject({ after: 'at run time' });
    expect(plan[2]!.children![0]!.command).toBeUndefined();
  });

  it('marks what is known only at run time with an error that carries no stack, and leaves the stack limit as it was', () => {
    const limit = Error.stackTraceLimit;
    const e = new KnownAtRunTime();
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toBe('known at run time');
    expect(e.stack!.split('\n')).toEqual(['KnownAtRunTime: known at run time']);
    expect(new NotYetKnown('vdisks')).toBeInstanceOf(KnownAtRunTime);
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new Error('x').stack!.split('\n').length).toBeGreaterThan(1);
  });

  it('gates the inspection once, as a group, and never gates finally steps', () => {
    const plan = buildPlan(catalog.require('nova inspect-disk'), { instance: 'instance-0000274a', host: 'c01' }, inventory, (r) => policy.isGated('nova inspect-disk', r));
    const inspect = plan.find((p) => p.path === 'inspect')!;
    expect(inspect).toMatchObject({ risk: 'sensitive', gated: true });
    expect(inspect.children!.every((c) => !c.gated)).toBe(true);
    expect(inspect.children!.find((c) => c.path === 'inspect.mount')).toMatchObject({ command: 'mount -o ro /dev/nbd0p1 /mnt/', reference: 'mount /dev/nbd0p1 /mnt/', host: 'c01' });
    expect(plan.filter((p) => p.finally).map((p) => [p.path, p.gated])).toEqual([['umount', false], ['disconnect', false], ['resume', false]]);
  });
});

describe('approval binding', () => {
  const step: RenderedStep = { path: 'inspect.suspend', title: 'Suspend', kind: 'ssh', risk: 'destructive', host: 'c01', address: 'lab@127.0.0.21:2222', command: 'virsh suspend 30' };

  it('is the same for the same rendered steps, whatever the titles say', () => {
    expect(bindingHash([step])).toBe(bindingHash([{ ...step, title: 'another title' }]));
  });

  it('changes when the command, the host address, the SQL or its parameters change', () => {
    const h = bindingHash([step]);
    expect(bindingHash([{ ...step, command: 'virsh suspend 31' }])).not.toBe(h);
    expect(bindingHash([{ ...step, address: 'lab@127.0.0.99:2222' }])).not.toBe(h);
    const sql: RenderedStep = { path: 's', title: 't', kind: 'sql', risk: 'destructive', database: 'nova', statement: 'UPDATE instances SET host = ? WHERE host = ?', params: ['c02', 'c01'] };
    expect(bindingHash([sql])).not.toBe(bindingHash([{ ...sql, params: ['c03', 'c01'] }]));
    expect(bindingHash([sql])).not.toBe(bindingHash([{ ...sql, expect: { max: 5 } }]));
  });
});

describe('steps that differ between real hosts', () => {
  const restart = procedure({
    pack: 'test',
    name: 'restart',
    summary: 'restart a service',
    usage: 'test restart <node>',
    examples: [],
    source: 'test',
    args: z.object({ node: z.string() }),
    positional: ['node'],
    hosts: { node: {} },
    steps: [
      detectFacts({ host: (ctx) => ctx.args.node }),
      {
        kind: 'ssh',
        id: 'restart',
        title: 'Restart the workers',
        risk: 'write',
        host: (ctx) => ctx.args.node,
        command: (ctx) => (ctx.facts(ctx.args.node).init === 'systemd' ? sh`systemctl restart ovs-workers` : sh`restart ovs-workers`),
        variant: (ctx) => describeFacts(ctx.facts(ctx.args.node)),
        reference: 'restart ovs-workers',
      },
      { kind: 'ssh', id: 'script', title: 'Ask the framework', risk: 'read', host: (ctx) => ctx.args.node, command: sh`python3 - vd-1`, stdin: 'import sys\nprint(sys.argv[1])\n' },
    ],
  });
  const plan = (facts?: Record<string, KnownFacts>) => buildPlan(restart, { node: 'node-3' }, inventory, () => false, facts);
  const known = (init: KnownFacts['init']): KnownFacts => ({ init, runit: false, ...(init === 'systemd' ? { initVersion: 'systemd 252' } : {}), detectedAt: '2026-11-30T10:00:00Z', source: 'cache' });

  it('before the host is detected, the plan says so and still shows the page\'s command', () => {
    expect(plan()[1]).toMatchObject({ path: 'restart', after: 'after detecting node-3', reference: 'restart ovs-workers' });
    expect(plan()[1]!.command).toBeUndefined();
  });

  it('with the host\'s facts, the plan shows the command that will run, its variant, and the page\'s command where it differs', () => {
    expect(plan({ 'node-3': known('systemd') })[1]).toMatchObject({ command: 'systemctl restart ovs-workers', variant: 'systemd 252', reference: 'restart ovs-workers' });
    const upstart = plan({ 'node-3': known('upstart') })[1]!;
    expect(upstart).toMatchObject({ command: 'restart ovs-workers', variant: 'upstart' });
    expect(upstart.reference).toBeUndefined();
  });

  it('a script read on stdin is in the plan and in what an approval is bound to', () => {
    expect(plan()[2]).toMatchObject({ command: 'python3 - vd-1', stdin: 'import sys\nprint(sys.argv[1])\n' });
    const s: RenderedStep = { path: 'script', title: 't', kind: 'ssh', risk: 'write', host: 'node-3', address: 'a', command: 'python3 - vd-1', stdin: 'print(1)\n' };
    expect(bindingHash([s])).not.toBe(bindingHash([{ ...s, stdin: 'print(2)\n' }]));
    expect(bindingHash([s])).toBe(bindingHash([{ ...s, reference: 'ovs vdisk list', variant: 'python3' }]));
  });
});
