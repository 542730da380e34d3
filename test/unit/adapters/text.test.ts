import { describe, expect, it } from 'vitest';
import { eventText } from '../../../src/adapters/console/text.js';
import type { Decision, Gate, StampedEvent } from '../../../src/engine/types.js';

const gate = (kind: Gate['kind']): Gate => ({ id: 'g', kind, stepPath: 's', risk: 'write', hash: 'h', steps: [], requestedAt: '2026-11-22T12:00:00.000Z', deciders: ['bob'], status: 'decided' });
const decided = (kind: Gate['kind'], decision: Decision): StampedEvent => ({ type: 'gate.decided', runId: 'r-1', at: '', gate: gate(kind), decision, by: 'alice' });

describe('the terminal lines of runbook run', () => {
  it('say what each decision did, in words', () => {
    expect(eventText(decided('manual', 'done'))).toBe('✔ manual step done by alice');
    expect(eventText(decided('approval', 'approve'))).toBe('✔ approval approved by alice');
    expect(eventText(decided('interrupted', 'retry'))).toBe('✔ interrupted step retried by alice');
    expect(eventText(decided('interrupted', 'skip'))).toBe('✘ interrupted step skipped by alice');
    expect(eventText(decided('definition', 'abort'))).toBe('✘ changed procedure aborted by alice');
    expect(eventText(decided('approval', 'expire'))).toBe('✘ approval expired by alice');
  });

  it('name the runs in a lock wait with what they run and who asked, and say no worker is held', () => {
    const e: StampedEvent = { type: 'lock.waiting', runId: 'r-1', at: '', hosts: ['c01'], heldBy: ['r-0'], holders: [{ run: 'r-0', procedure: 'nova inspect-disk', requester: 'bob' }] };
    expect(eventText(e)).toBe('… waiting for c01, held by run r-0 (nova inspect-disk, bob) (no worker is held meanwhile)');
  });
});
