import { describe, expect, it } from 'vitest';
import { checkInput, MAX_COMMAND_CHARS } from '../../src/input.js';
import { UsageError } from '../../src/errors.js';

describe('what a person can send', () => {
  it('a 100 kB command is refused with its length, not repeated back', () => {
    const text = `ovs flush ${'a'.repeat(100_000)}`;
    expect(() => checkInput(text, 'the command', MAX_COMMAND_CHARS)).toThrow(new UsageError('the command is 100,010 characters long; at most 8,192 are accepted'));
  });

  it('control characters and line breaks are refused, naming the character and where it is', () => {
    expect(() => checkInput('ovs flush node-3\u001b[2J', 'the command', 100)).toThrow(/holds a control character \(U\+001B at position 17\)/);
    expect(() => checkInput('ops exec node-1 -- uptime\nrm -rf /', 'the command', 100)).toThrow(/holds a line break \(U\+000A at position 26\)/);
    expect(() => checkInput('a\u0000b', 'the command', 100)).toThrow(/U\+0000/);
  });

  it('an invisible direction mark, which could make an approver read another command, is refused', () => {
    expect(() => checkInput('ops exec node-1 -- echo \u202Eadmin', 'the command', 100)).toThrow(/invisible direction mark, which can make text read differently from what runs, \(U\+202E/);
  });

  it('tabs, and line breaks where text may have them, pass', () => {
    expect(() => checkInput('ovs\tflush node-3', 'the command', 100)).not.toThrow();
    expect(() => checkInput('the disk\nis full', 'the reason', 100, { newlines: true })).not.toThrow();
    expect(() => checkInput('crème brûlée — ünïcode', 'the reason', 100)).not.toThrow();
  });
});
