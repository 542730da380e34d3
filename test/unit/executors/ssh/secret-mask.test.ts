import { describe, expect, it } from 'vitest';
import { SecretMask } from '../../../../src/executors/ssh/output.js';

/** Feeds `chunks` through a mask as a command's stdout would arrive, and returns all it let through. */
function through(secrets: string[], chunks: string[]): string {
  const mask = new SecretMask(secrets);
  return chunks.map((c) => mask.push('stdout', c)).join('') + mask.end('stdout');
}

describe('secrets in a command\'s output', () => {
  it('are shown as *** wherever they appear', () => {
    expect(through(['tok_live_42'], ['logged in with tok_live_42\n', 'again: tok_live_42 tok_live_42\n'])).toBe('logged in with ***\nagain: *** ***\n');
  });

  it('are hidden also when split across chunks, however the stream cuts them', () => {
    const out = 'x tok_live_42 y\n';
    for (let cut = 0; cut <= out.length; cut++) {
      for (let cut2 = cut; cut2 <= out.length; cut2++) expect(through(['tok_live_42'], [out.slice(0, cut), out.slice(cut, cut2), out.slice(cut2)])).toBe('x *** y\n');
    }
  });

  it('hold back only what could begin a secret, and give it back when it does not', () => {
    const mask = new SecretMask(['secret']);
    expect(mask.push('stdout', 'a sec')).toBe('a ');
    expect(mask.push('stdout', 'ond')).toBe('second');
    expect(mask.push('stdout', 'se')).toBe('');
    expect(mask.end('stdout')).toBe('se');
  });

  it('hide the longer of two secrets that share a start, whole', () => {
    expect(through(['abc', 'abcdef'], ['abcdef abc'])).toBe('*** ***');
  });
});
