import { describe, expect, it } from 'vitest';
import { gateMessage, stepMessage, type Message } from '../../../src/adapters/messages.js';
import { escapeMrkdwn, MAX_BLOCKS, mergeBodies, slackStyle, toSlack } from '../../../src/adapters/slack/block-kit.js';
import type { Gate, StampedEvent } from '../../../src/engine/types.js';

const style = slackStyle((p) => ({ alice: 'U0ALICE', bob: 'U0BOB' })[p]);

const gate: Gate = {
  id: 'inspect@abc', kind: 'approval', stepPath: 'inspect', risk: 'sensitive', hash: 'abc', requestedAt: '2026-11-22T12:00:00.000Z', expiresAt: '2026-11-22T12:15:00.000Z', deciders: ['alice', 'bob'], status: 'open',
  steps: [{ path: 'inspect.suspend', title: 'Suspend the instance using the virsh command', kind: 'ssh', risk: 'destructive', host: 'c01', command: 'virsh suspend 30 && echo <ok>' }],
};

const finished = (outputTail: string): Extract<StampedEvent, { type: 'step.finished' }> => ({ type: 'step.finished', runId: 'r-1', at: '2026-11-22T12:00:01.000Z', path: 'vdisks', title: 'Fetch the vDisks', status: 'succeeded', kind: 'ssh', risk: 'read', host: 'node-3', exitCode: 0, durationMs: 1200, outputTail });

const texts = (m: ReturnType<typeof toSlack>) => JSON.stringify(m.blocks);

describe('slack block kit', () => {
  it('escapes &, < and > but keeps mentions and dates', () => {
    expect(escapeMrkdwn('a < b && c > d <@U0BOB> <!date^1^{time}|12:00 UTC>')).toBe('a &lt; b &amp;&amp; c &gt; d <@U0BOB> <!date^1^{time}|12:00 UTC>');
  });

  it('an approval request: the command in a code block, mentions of who may decide, the expiry, and Approve / Reject buttons', () => {
    const body = toSlack(gateMessage(gate, { id: 'r-1', requester: 'alice', procedure: 'nova inspect-disk' }, style));
    expect(body.blocks[0]).toMatchObject({ type: 'header' });
    expect(texts(body)).toContain('```c01$ virsh suspend 30 &amp;&amp; echo &lt;ok&gt;```');
    expect(texts(body)).toContain('<@U0BOB>');
    expect(texts(body)).toContain('<!date^1795349700^{time}|12:15 UTC>');
    const actions = body.blocks.find((b) => b.type === 'actions') as { elements: { action_id: string; value: string; style?: string }[] };
    expect(actions.elements.map((e) => [e.action_id, e.style])).toEqual([['runbook.approve', 'primary'], ['runbook.reject', 'danger']]);
    expect(JSON.parse(actions.elements[0]!.value)).toEqual({ runId: 'r-1', gateId: 'inspect@abc' });
  });

  it('bold becomes mrkdwn bold, and output keeps its last lines within a section', () => {
    const long = Array.from({ length: 400 }, (_, i) => `line ${i}`).join('\n');
    const m = stepMessage(finished(long));
    expect(m.file).toBeDefined();
    const body = toSlack(m);
    expect(texts(body)).toContain('*Fetch the vDisks* succeeded');
    for (const b of body.blocks) if (b.type === 'section' && b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);
    expect(texts(body)).toContain('line 399');
  });

  it('never exceeds 50 blocks, saying what was left out', () => {
    const m: Message = { key: 'k', place: 'thread', tone: 'info', summary: 's', blocks: Array.from({ length: 80 }, (_, i) => ({ type: 'context' as const, text: `c${i}` })) };
    const body = toSlack(m);
    expect(body.blocks).toHaveLength(MAX_BLOCKS);
    expect(JSON.stringify(body.blocks.at(-1))).toContain('31 more blocks left out');
  });

  it('merges thread messages into one, compacting them when their blocks would not fit', () => {
    const small = Array.from({ length: 3 }, (_, i) => toSlack(stepMessage(finished(`out ${i}`))));
    const merged = mergeBodies(small);
    expect(merged.blocks.filter((b) => b.type === 'divider')).toHaveLength(2);
    const many = Array.from({ length: 20 }, (_, i) => toSlack(stepMessage({ ...finished(`out ${i}\n`.repeat(50)), title: `step ${i}` })));
    const compact = mergeBodies(many);
    expect(compact.blocks.length).toBeLessThanOrEqual(MAX_BLOCKS);
    expect(JSON.stringify(compact.blocks).length).toBeLessThanOrEqual(40_000);
    for (let i = 0; i < 20; i++) expect(JSON.stringify(compact.blocks)).toContain(`*step ${i}* succeeded`);
  });
});
