import { describe, expect, it } from 'vitest';
import { Policy } from '../../../src/approvals/policy.js';
import { NotYetKnown } from '../../../src/engine/context.js';
import { bindingHash, buildPlan } from '../../../src/engine/render.js';
import type { RenderedStep } from '../../../src/engine/types.js';
import { Inventory } from '../../../src/inventory.js';
import { KnownAtRunTime } from '../../../src/procedures/dsl.js';
import { defaultCatalog } from '../../../src/procedures/index.js';
import { fixtureConfig } from '../../helpers/fixtures.js';

const cfg = fixtureConfig();
const inventory = new Inventory(cfg.hosts);
const policy = new Policy(cfg);
const catalog = defaultCatalog();

describe('plans', () => {
  it('shows every step of ovs flush with its risk, and what is known only later', () => {
    const plan = buildPlan(catalog.require('ovs flush'), { node: 'node-3' }, inventory, (r) => policy.isGated('ovs flush', r));
    expect(plan[0]).toMatchObject({ path: 'vdisks', risk: 'read', host: 'node-3', command: 'ovs vdisk list', gated: false });
    expect(plan[1]).toMatchObject({ path: 'flush', kind: 'forEach', risk: 'write', after: 'after "vdisks"' });
    expect(plan[1]!.children!.map((c) => c.path)).toEqual(['flush[*].snapshot', 'flush[*].in-backend', 'flush[*].delete-snapshot']);
    // A forEach item's command is known only at run time.
    expect(plan[1]!.children![0]).toMatchObject({ after: 'at run time' });
    expect(plan[1]!.children![0]!.command).toBeUndefined();
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
    expect(inspect.children!.find((c) => c.path === 'inspect.mount')).toMatchObject({ command: 'mount /dev/nbd0p1 /mnt/', host: 'c01' });
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
