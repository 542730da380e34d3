import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

interface Entry {
  patterns: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
  revoked: boolean;
}

/** How OpenSSH names a host in known_hosts: `addr` on port 22, `[addr]:port` otherwise. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** SHA256 fingerprint as `ssh-keygen -l` prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

function globToRegExp(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i');
}

/** A parsed OpenSSH known_hosts file: plain, wildcard and hashed (`|1|salt|hash`) entries, `@revoked` markers. */
export class KnownHosts {
  private readonly entries: Entry[] = [];

  constructor(text: string) {
    for (const rawLine of text.split('\n')) {
      const line = rawLine.trim();
      if (!line || line.startsWith('#')) continue;
      const parts = line.split(/\s+/);
      let revoked = false;
      if (parts[0]?.startsWith('@')) {
        const marker = parts.shift();
        if (marker === '@revoked') revoked = true;
        else continue; // @cert-authority: certificates are not used here
      }
      const [hosts, keyType, keyB64] = parts;
      if (!hosts || !keyType || !keyB64) continue;
      const key = Buffer.from(keyB64, 'base64');
      if (hosts.startsWith('|1|')) {
        const [, , salt, hash] = hosts.split('|');
        if (!salt || !hash) continue;
        this.entries.push({ patterns: [], hashed: { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') }, keyType, key, revoked });
      } else {
        this.entries.push({ patterns: hosts.split(','), keyType, key, revoked });
      }
    }
  }

  static load(path: string): KnownHosts {
    return new KnownHosts(readFileSync(path, 'utf8'));
  }

  private matches(entry: Entry, name: string): boolean {
    if (entry.hashed) {
      return createHmac('sha1', entry.hashed.salt).update(name).digest().equals(entry.hashed.hash);
    }
    let hit = false;
    for (const p of entry.patterns) {
      if (p.startsWith('!')) {
        if (globToRegExp(p.slice(1)).test(name)) return false;
      } else if (globToRegExp(p).test(name)) hit = true;
    }
    return hit;
  }

  /**
   * `ok` when the key is listed for the host; `mismatch` when the host is listed with other keys
   * (or this key is revoked); `unknown` when the host is not listed at all.
   */
  check(name: string, key: Buffer): 'ok' | 'mismatch' | 'unknown' {
    let listed = false;
    let ok = false;
    for (const e of this.entries) {
      if (!this.matches(e, name)) continue;
      if (e.revoked) {
        if (e.key.equals(key)) return 'mismatch';
        continue;
      }
      listed = true;
      if (e.key.equals(key)) ok = true;
    }
    return ok ? 'ok' : listed ? 'mismatch' : 'unknown';
  }
}
