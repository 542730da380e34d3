import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KnownHosts, fingerprint, knownHostsName } from '../../../../src/executors/ssh/known-hosts.js';

const keyA = randomBytes(51);
const keyB = randomBytes(51);
const b64 = (k: Buffer) => k.toString('base64');

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  it('names hosts as OpenSSH does', () => {
    expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(knownHostsName('127.0.0.11', 2222)).toBe('[127.0.0.11]:2222');
  });

  it('accepts the listed key, refuses a changed one, and tells unknown hosts apart', () => {
    const kh = new KnownHosts(`# comment\n[127.0.0.11]:2222 ssh-ed25519 ${b64(keyA)}\n`);
    expect(kh.check('[127.0.0.11]:2222', keyA)).toBe('ok');
    expect(kh.check('[127.0.0.11]:2222', keyB)).toBe('mismatch');
    expect(kh.check('[127.0.0.12]:2222', keyA)).toBe('unknown');
  });

  it('reads hashed entries, comma lists and wildcards with negation', () => {
    const kh = new KnownHosts([`${hashed('[10.0.0.5]:2222')} ssh-ed25519 ${b64(keyA)}`, `web1,web2 ssh-rsa ${b64(keyB)}`, `*.example.com,!bad.example.com ssh-ed25519 ${b64(keyA)}`].join('\n'));
    expect(kh.check('[10.0.0.5]:2222', keyA)).toBe('ok');
    expect(kh.check('web2', keyB)).toBe('ok');
    expect(kh.check('c01.example.com', keyA)).toBe('ok');
    expect(kh.check('bad.example.com', keyA)).toBe('unknown');
  });

  it('refuses a revoked key even when it is also listed', () => {
    const kh = new KnownHosts(`@revoked * ssh-ed25519 ${b64(keyA)}\nhost ssh-ed25519 ${b64(keyA)}\n`);
    expect(kh.check('host', keyA)).toBe('mismatch');
  });

  it('prints fingerprints like ssh-keygen -l', () => {
    expect(fingerprint(Buffer.from('abc'))).toBe('SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0');
  });
});
