import { describe, expect, it } from 'vitest';
import type { KeptOutput } from '../../../src/procedures/dsl.js';
import { gather, outcomeOf, renderGathered } from '../../../src/procedures/gather.js';

const ok = (stdout: string, extra: Partial<KeptOutput> = {}): KeptOutput => ({ exitCode: 0, stdout, stderr: '', truncated: false, ...extra });

describe('gathering output clush -b style', () => {
  const results = [
    { host: 'node-1', status: 'succeeded' as const, output: ok('up 3 days\n') },
    { host: 'node-2', status: 'succeeded' as const, output: ok('up 3 days\n') },
    { host: 'node-3', status: 'succeeded' as const, output: ok('up 3 days\n') },
    { host: 'node-5', status: 'succeeded' as const, output: ok('up 3 days\n') },
    { host: 'node-4', status: 'succeeded' as const, output: ok('up 9 days\n') },
    { host: 'node-6', status: 'succeeded' as const, output: { exitCode: 1, stdout: '', stderr: 'ovs: simulated failure\n', truncated: false } },
    { host: 'c01', status: 'failed' as const, output: { exitCode: null, stdout: '', stderr: '', error: 'cannot connect to c01 (127.0.0.21:2222): connect ECONNREFUSED', truncated: false } },
    { host: 'c02', status: 'failed' as const, output: { exitCode: null, signal: 'TERM', stdout: 'partial\n', stderr: '', error: 'command on c02 ran past its 1000 ms timeout and was killed', truncated: false } },
    { host: 'controller', status: 'pending' as const },
  ];

  it('classifies each host', () => {
    expect(results.map(outcomeOf)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'exit', 'unreachable', 'timeout', 'not-run']);
  });

  it('groups identical outputs under one node set, largest first', () => {
    const g = gather(results);
    expect(g.groups.map((x) => [x.nodeset, x.hosts.length, x.text])).toEqual([
      ['node-[1-3,5]', 4, 'up 3 days'],
      ['c02', 1, 'partial'],
      ['node-4', 1, 'up 9 days'],
      ['node-6', 1, 'ovs: simulated failure'],
    ]);
    expect(g.failures).toEqual([{ what: 'exit code 1', hosts: ['node-6'] }]);
    expect(g.problems.map((p) => [p.outcome, p.host])).toEqual([['unreachable', 'c01'], ['timeout', 'c02']]);
    expect(g.notRun).toEqual([{ host: 'controller', status: 'pending' }]);
  });

  it('renders headers, failures, unreachable hosts and hosts not run', () => {
    const text = renderGathered(gather(results), 'uptime on node-[1-6]');
    expect(text).toContain('uptime on node-[1-6]\n9 hosts: 5 ok · 1 failed · 1 timed out · 1 unreachable · 1 not run');
    expect(text).toContain('---------------\nnode-[1-3,5] (4)\n---------------\nup 3 days');
    expect(text).toContain('Failed:\n  node-6 (1): exit code 1');
    expect(text).toContain('Unreachable:\n  c01: cannot connect to c01 (127.0.0.21:2222): connect ECONNREFUSED');
    expect(text).toContain('Timed out:\n  c02: command on c02 ran past');
    expect(text).toContain('Not run:\n  controller (1): never started');
  });

  it('says when a host kept only the end of a long output', () => {
    const text = renderGathered(gather([{ host: 'a1', status: 'succeeded', output: ok('x'.repeat(10), { truncated: true }) }]));
    expect(text).toMatch(/output cut/);
  });

  it('shows an empty output as such', () => {
    expect(renderGathered(gather([{ host: 'a1', status: 'succeeded', output: ok('') }]))).toContain('a1 (1)\n---------------\n(no output)');
  });
});
