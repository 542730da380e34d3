import { describe, expect, it } from 'vitest';
import { describeFacts, parseFacts } from '../../../src/procedures/facts.js';

/** What the probe prints on a host: one `key=value` line per question (src/procedures/facts.ts). */
const answer = (kv: Record<string, string>) => ['pid1', 'upstart', 'systemd', 'sv', 'python2', 'python3'].map((k) => `${k}=${kv[k] ?? ''}`).join('\n') + '\n';

describe('host facts', () => {
  it('a host booted with systemd (PID 1 systemd; systemd src/systemctl version(): "systemd 252 (…)")', () => {
    const f = parseFacts(answer({ pid1: 'systemd', systemd: 'systemd 252 (252.22-1~deb12u1)', sv: '127', python3: '3.11.2' }));
    expect(f).toEqual({ init: 'systemd', initVersion: 'systemd 252', runit: false, python3: '3.11.2' });
    expect(describeFacts(f)).toBe('systemd 252');
  });

  it('an upstart host, even with systemctl installed beside it (upstart util/initctl.c: "init (upstart 1.12.1)")', () => {
    const f = parseFacts(answer({ pid1: 'init', upstart: 'init (upstart 1.12.1)', systemd: 'systemd 204', sv: '127', python2: '2.7.6', python3: '3.4.3' }));
    expect(f).toEqual({ init: 'upstart', initVersion: 'upstart 1.12.1', runit: false, python2: '2.7.6', python3: '3.4.3' });
  });

  it('init.d scripts with runit beside them (runit src/sv.c: usage exits 100)', () => {
    const f = parseFacts(answer({ pid1: 'init', sv: '100', python2: '2.5.2' }));
    expect(f).toEqual({ init: 'sysv', runit: true, python2: '2.5.2' });
    expect(describeFacts(f)).toBe('init.d scripts + runit');
  });

  it('a missing interpreter or an unreadable version is no version', () => {
    expect(parseFacts(answer({ pid1: 'systemd', sv: '127', python2: 'Python 2.7.18', python3: '' }))).toEqual({ init: 'systemd', runit: false });
  });

  it('refuses output that is not the probe\'s', () => {
    expect(() => parseFacts('pid1=systemd\n')).toThrow(/no "upstart=" line/);
  });
});
