import { describe, expect, it } from 'vitest';
import { Policy } from '../../../src/approvals/policy.js';
import type { Gate } from '../../../src/engine/types.js';
import { NotAllowedError } from '../../../src/errors.js';
import { fixtureConfig } from '../../helpers/fixtures.js';

const run = { id: 'r-1', procedure: 'nova inspect-disk', requester: 'bob' };

function gate(kind: Gate['kind'], policy: Policy): Gate {
  return { id: 'g', kind, stepPath: 'inspect', risk: 'sensitive', hash: 'h', steps: [], requestedAt: '', deciders: policy.deciders(kind, run), status: 'open' };
}

describe('approval policy', () => {
  const policy = new Policy(fixtureConfig());

  it('a requester cannot approve their own sensitive step, even as an approver', () => {
    expect(() => policy.assertCanDecide(run, gate('approval', policy), 'bob', 'approve')).toThrow(/bob requested run r-1 and cannot approve its own sensitive step: another person must decide \(carol\)/);
  });

  it('an approver who is not the requester may approve', () => {
    expect(() => policy.assertCanDecide(run, gate('approval', policy), 'carol', 'approve')).not.toThrow();
  });

  it('a person without an approving role is told which roles it needs, and who may', () => {
    expect(() => policy.assertCanDecide(run, gate('approval', policy), 'alice', 'approve')).toThrow(/alice may not approve .* needs one of the roles approver, admin, and alice has operator\. Who may: carol\.$/);
  });

  it('the requester may confirm their own manual step', () => {
    expect(() => policy.assertCanDecide(run, gate('manual', policy), 'bob', 'done')).not.toThrow();
    expect(() => policy.assertCanDecide(run, gate('manual', policy), 'dave', 'done')).toThrow(NotAllowedError);
  });

  it('offers only the choices of the gate kind', () => {
    expect(() => policy.assertCanDecide(run, gate('interrupted', policy), 'carol', 'approve')).toThrow(/takes retry, skip, abort/);
  });

  it('only roles allowed to run a procedure may start it, and the refusal says who may', () => {
    expect(() => policy.assertCanRun('dave', 'ovs flush')).toThrow(/dave may not run "ovs flush": it needs one of the roles operator, admin, and dave has viewer\. Who may: alice, bob\./);
    expect(policy.assertCanRun('alice', 'ovs flush').id).toBe('alice');
  });

  it('per-procedure rules override per-pack rules and the defaults', () => {
    const p = new Policy(fixtureConfig('policy:\n  procedures:\n    nova: { run: [approver] }\n    "nova inspect-disk": { gate: [destructive] }\n'));
    expect(() => p.assertCanRun('alice', 'nova inspect-disk')).toThrow(NotAllowedError);
    expect(p.isGated('nova inspect-disk', 'sensitive')).toBe(false);
    expect(p.isGated('ovs flush', 'sensitive')).toBe(true);
  });

  it('maps chat users to people', () => {
    const p = new Policy({ ...fixtureConfig(), people: { alice: { roles: ['operator'], slack: 'U1', discord: '42' } } });
    expect(p.byPlatform('slack', 'U1')?.id).toBe('alice');
    expect(p.byPlatform('discord', '42')?.id).toBe('alice');
    expect(p.byPlatform('slack', 'U9')).toBeUndefined();
  });

  it('maps sign-in e-mail addresses (in any case) and operating-system users to people', () => {
    const p = new Policy(fixtureConfig('  erin: { roles: [admin], email: Erin@Example.com, unix: [erin, root] }\n  fred: { roles: [operator], unix: fred }\n'));
    expect(p.byEmail('erin@example.COM')?.id).toBe('erin');
    expect(p.byEmail('nobody@example.com')).toBeUndefined();
    expect(p.byUnix('root')?.id).toBe('erin');
    expect(p.byUnix('fred')?.id).toBe('fred');
    expect(p.byUnix('alice')).toBeUndefined();
  });

  it('without unix mappings the CLI acts as the person named, and must name one', () => {
    expect(policy.actingAs('root', 'ops-1', 'alice')).toEqual({ person: expect.objectContaining({ id: 'alice' }) });
    expect(() => policy.actingAs('root', 'ops-1', undefined)).toThrow(/--as <person>/);
  });

  it('with unix mappings the CLI acts as the mapped person, and only an admin may name another', () => {
    const p = new Policy(fixtureConfig('  erin: { roles: [admin], unix: erin }\n  fred: { roles: [operator], unix: fred }\n'));
    expect(p.actingAs('fred', 'ops-1', undefined).person.id).toBe('fred');
    expect(p.actingAs('fred', 'ops-1', 'fred')).toEqual({ person: expect.objectContaining({ id: 'fred' }) });
    expect(() => p.actingAs('fred', 'ops-1', 'alice')).toThrow(/fred on ops-1 is fred and may not act as alice: only an admin may act for someone else/);
    const forAlice = p.actingAs('erin', 'ops-1', 'alice');
    expect(forAlice.person.id).toBe('alice');
    expect(forAlice.actor?.id).toBe('erin');
    expect(() => p.actingAs('mallory', 'ops-1', 'alice')).toThrow(/operating-system user mallory on ops-1 is not mapped to a person/);
  });

  it('an unknown person is named back cut short, with the people there are', () => {
    expect(() => policy.requirePerson('x'.repeat(100_000))).toThrow(/^unknown person "x{64}…": people in runbook.yaml are alice, bob, carol, dave$/);
  });
});
