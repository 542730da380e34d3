import { describe, expect, it } from 'vitest';
import { gateMessage, messagesFor, planCard, statusLine, stepMessage, INLINE_OUTPUT } from '../../../src/adapters/messages.js';
import type { Gate, Run, StampedEvent } from '../../../src/engine/types.js';

function run(over: Partial<Run> = {}): Run {
  return {
    id: 'r-1', procedure: 'ovs flush', args: { node: 'node-3' }, requester: 'alice', origin: { adapter: 'slack' }, createdAt: '2026-11-22T12:00:00.000Z', updatedAt: '', status: 'running',
    plan: [
      { path: 'vdisks', title: 'Fetch the vDisks on the Storage Router', kind: 'ssh', risk: 'read', gated: false, host: 'node-3', command: 'ovs vdisk list' },
      { path: 'flush', title: 'Flush each vDisk to the backend', kind: 'forEach', risk: 'write', gated: false, after: 'after "vdisks"', children: [{ path: 'flush[*].snapshot', title: 'snapshot', kind: 'ssh', risk: 'write', gated: false }] },
    ],
    notes: [], locks: [{ host: 'node-3', mode: 'write' }],
    steps: {
      vdisks: { path: 'vdisks', title: 'Fetch the vDisks on the Storage Router', kind: 'ssh', risk: 'read', status: 'succeeded', attempts: 1 },
      flush: { path: 'flush', title: 'Flush each vDisk to the backend', kind: 'forEach', risk: 'write', status: 'running', attempts: 1, progress: { done: 12, total: 40, failed: 0 } },
    },
    captures: {}, expansions: {}, gates: {}, phase: 'main', ...over,
  };
}

const gate: Gate = {
  id: 'inspect@abc', kind: 'approval', stepPath: 'inspect', risk: 'sensitive', hash: 'abc', requestedAt: '2026-11-22T12:00:00.000Z', expiresAt: '2026-11-22T12:15:00.000Z', deciders: ['bob', 'carol'], status: 'open',
  steps: [{ path: 'inspect.suspend', title: 'Suspend the instance using the virsh command', kind: 'ssh', risk: 'destructive', host: 'c01', command: 'virsh suspend 30' }],
};

describe('neutral messages', () => {
  it('the plan card shows requester, targets, run id, every step with its risk, and a live status', () => {
    const card = planCard(run());
    expect(card).toMatchObject({ key: 'plan', place: 'channel' });
    expect(card.blocks).toContainEqual({ type: 'fields', fields: [{ label: 'Requested by', value: '@alice' }, { label: 'Targets', value: 'node-3' }, { label: 'Run', value: 'r-1' }, { label: 'Status', value: 'running 1/2 · Flush each vDisk to the backend 12/40' }] });
    const list = card.blocks.find((b) => b.type === 'list');
    expect(list && list.type === 'list' && list.items.map((i) => i.text)).toEqual([
      '✅ Fetch the vDisks on the Storage Router [read] · node-3 · `ovs vdisk list`',
      '▶️ Flush each vDisk to the backend [write] · (after "vdisks") · 12/40',
      '· snapshot [write]',
    ]);
  });

  it('an approval request shows the exact command, who may decide (never the requester), the expiry and the buttons', () => {
    const m = gateMessage(gate, { id: 'r-1', requester: 'alice', procedure: 'nova inspect-disk' });
    expect(m).toMatchObject({ key: 'gate:inspect@abc', place: 'thread', broadcast: true, tone: 'warn' });
    expect(m.blocks).toContainEqual({ type: 'code', text: 'c01$ virsh suspend 30' });
    expect(m.blocks).toContainEqual({ type: 'fields', fields: [{ label: 'Requested by', value: '@alice' }, { label: 'May decide', value: '@bob, @carol' }, { label: 'Expires', value: '12:15 UTC' }] });
    const buttons = m.blocks.find((b) => b.type === 'buttons');
    expect(buttons && buttons.type === 'buttons' && buttons.buttons.map((b) => [b.action, b.needsReason ?? false])).toEqual([['approve', false], ['reject', true]]);
  });

  it('a decided gate replaces its buttons with who decided and when', () => {
    const m = gateMessage({ ...gate, status: 'decided', decision: 'approve', decidedBy: 'bob', decidedAt: '2026-11-22T12:03:00.000Z' }, { id: 'r-1', requester: 'alice', procedure: 'nova inspect-disk' });
    expect(m.blocks.some((b) => b.type === 'buttons')).toBe(false);
    expect(m.blocks.at(-1)).toEqual({ type: 'context', text: 'Approved by @bob at 12:03 UTC' });
  });

  it('the steps one crash interrupted are one decision: Retry all, Skip all, Abort, each step listed with what was decided of it', () => {
    const steps = ['vd-1', 'vd-2', 'vd-3'].map((v) => ({ path: `flush[${v}].snapshot`, title: `Commencing flush to backend for volume '${v}'`, kind: 'ssh' as const, risk: 'write' as const, host: 'node-3', command: `ovs vdisk create-snapshot ${v} flush_snapshot` }));
    const crash: Gate = { id: 'interrupted@1', kind: 'interrupted', stepPath: steps[0]!.path, risk: 'write', hash: 'h', requestedAt: '2026-11-22T12:00:00.000Z', deciders: ['bob', 'carol'], status: 'open', steps, stepDecisions: { 'flush[vd-2].snapshot': { decision: 'retry', by: 'carol', at: '2026-11-22T12:01:00.000Z' } } };
    const m = gateMessage(crash, { id: 'r-1', requester: 'alice', procedure: 'ovs flush' });
    expect(m.summary).toBe("3 steps interrupted: their worker stopped: Commencing flush to backend for volume 'vd-1' (ovs vdisk create-snapshot vd-1 flush_snapshot) and 2 more · run r-1");
    const buttons = m.blocks.find((b) => b.type === 'buttons');
    expect(buttons && buttons.type === 'buttons' && buttons.buttons.map((b) => b.label)).toEqual(['Retry all', 'Skip all', 'Abort']);
    expect(m.blocks).toContainEqual({ type: 'text', text: "**Commencing flush to backend for volume 'vd-2'** [write] on node-3 · retried by @carol" });
  });

  it('a run waiting for its hosts says which run holds them, and a voided gate loses its buttons', () => {
    const waiting = run({ status: 'waiting', waitingFor: { locks: { hosts: ['node-3'], heldBy: [{ run: 'r-0', procedure: 'ovs flush', requester: 'bob' }] } } });
    expect(statusLine(waiting)).toBe('waiting for node-3, held by run r-0 (ovs flush, bob) 1/2 · Flush each vDisk to the backend 12/40');
    const voided = gateMessage({ ...gate, status: 'void', reason: 'the run was cancelled' }, { id: 'r-1', requester: 'alice', procedure: 'nova inspect-disk' });
    expect(voided.blocks.some((b) => b.type === 'buttons')).toBe(false);
    expect(voided.blocks.at(-1)).toEqual({ type: 'context', text: 'No longer valid: the run was cancelled' });
  });

  it('output longer than a message allows goes to a file, never cut silently', () => {
    const long = Array.from({ length: 400 }, (_, i) => `line ${i}`).join('\n');
    const e: StampedEvent = { type: 'step.finished', runId: 'r-1', at: '', path: 'inspect.list', title: 'ls', status: 'succeeded', kind: 'ssh', risk: 'sensitive', exitCode: 0, outputTail: long };
    const m = stepMessage(e);
    expect(m.file).toEqual({ name: 'inspect.list.log', content: long });
    const code = m.blocks.find((b) => b.type === 'code');
    expect(code && code.type === 'code' && code.text.length).toBeLessThanOrEqual(INLINE_OUTPUT);
    expect(code && code.type === 'code' && code.text.endsWith('line 399')).toBe(true);
  });

  it('a step posts once when it starts and is updated under the same key when it ends', () => {
    const started = messagesFor({ type: 'step.started', runId: 'r-1', at: '', path: 'vdisks', title: 'Fetch', kind: 'ssh', risk: 'read', host: 'node-3', command: 'ovs vdisk list', attempt: 1 }, run());
    const ended = messagesFor({ type: 'step.finished', runId: 'r-1', at: '', path: 'vdisks', title: 'Fetch', kind: 'ssh', risk: 'read', status: 'succeeded', exitCode: 0, durationMs: 120 }, run());
    expect(started.messages[0]!.key).toBe(ended.messages[0]!.key);
    expect(ended.messages[0]!.summary).toBe('✅ Fetch succeeded · exit 0 · 120 ms');
  });

  it('the status line says how a run ended', () => {
    expect(statusLine(run({ status: 'failed', finishedAt: '2026-11-22T12:00:03.000Z', error: 'step "x" failed' }))).toBe('failed · 1/2 steps · 3.0 s · step "x" failed');
  });
});
