import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { editTokens } from '../../../src/auth/token-file.js';
import { newToken, TokenBook, TokenChecksBusyError, TokenVerifier, TOKEN_FORMAT } from '../../../src/auth/tokens.js';
import { parseRunbookConfig } from '../../../src/config/runbook-config.js';
import { silent } from '../../helpers/runtime.js';

const dir = mkdtempSync(join(tmpdir(), 'runbook-tokens-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FILE = `# who may act
ssh: { privateKeyPath: k, knownHostsPath: kh }
databases:
  nova: { url: "mysql://nova:\${NOVA_DB_PASSWORD}@db:3306/nova" }   # the password stays in the environment
people:
  alice: { roles: [operator], slack: U1 }   # on call
  # bob approves
  bob:
    roles: [operator, approver]   # both
policy:
  run: [ operator ]
`;

function fresh(name: string): string {
  const file = join(dir, name);
  writeFileSync(file, FILE, { mode: 0o640 });
  return file;
}

describe('personal tokens', () => {
  it('are rbk_<id>_<secret>, and runbook.yaml keeps only a salted scrypt hash', async () => {
    const { token, entry } = await newToken();
    expect(token).toMatch(TOKEN_FORMAT);
    expect(token.startsWith(`rbk_${entry.id}_`)).toBe(true);
    expect(entry.hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(entry.hash).not.toContain(token.slice(18));
    expect((await newToken()).entry.hash).not.toBe(entry.hash);
  });

  it('check out for their owner only; a wrong secret, an unknown id or another shape do not', async () => {
    const a = await newToken();
    const b = await newToken();
    const cfg = { alice: { roles: ['operator'], tokens: [a.entry] }, bob: { roles: ['approver'], tokens: [b.entry] } };
    const v = new TokenVerifier(new TokenBook(cfg, undefined, silent));
    expect(await v.verify(a.token)).toEqual({ person: 'alice', tokenId: a.entry.id });
    expect(await v.verify(a.token)).toEqual({ person: 'alice', tokenId: a.entry.id });
    expect(await v.verify(b.token)).toEqual({ person: 'bob', tokenId: b.entry.id });
    expect(await v.verify(`${a.token.slice(0, -1)}${a.token.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
    expect(await v.verify(`rbk_000000000000_${a.token.slice(18)}`)).toBeUndefined();
    expect(await v.verify('let-me-in')).toBeUndefined();
  });

  it('a flood of guesses is refused beyond a bounded number of checks, instead of piling up 16 MiB each', async () => {
    const a = await newToken();
    const v = new TokenVerifier(new TokenBook({ alice: { roles: ['operator'], tokens: [a.entry] } }, undefined, silent));
    const guesses = Array.from({ length: 60 }, (_, i) => v.verify(`rbk_${a.entry.id}_${String(i).padStart(43, 'x')}`).then((r) => r ?? 'refused', (e: unknown) => e));
    const results = await Promise.all(guesses);
    expect(results.filter((r) => r === 'refused').length).toBe(34);
    expect(results.filter((r) => r instanceof TokenChecksBusyError).length).toBe(26);
  });

  it('created, rotated and revoked in runbook.yaml, they count for the running bot, and the rest of the file stays as written', async () => {
    const file = fresh('rotate.yaml');
    const people = parseRunbookConfig(FILE, file, { NOVA_DB_PASSWORD: 'x' }).people;
    const book = new TokenBook(people, file, silent, 0);
    const v = new TokenVerifier(book);
    const first = await newToken();
    editTokens(file, 'alice', () => [first.entry]);
    expect(await v.verify(first.token)).toEqual({ person: 'alice', tokenId: first.entry.id });
    const second = await newToken();
    const { before, after } = editTokens(file, 'alice', (tokens) => [...tokens.filter(() => false), second.entry]);
    expect(before.map((t) => t.id)).toEqual([first.entry.id]);
    expect(after.map((t) => t.id)).toEqual([second.entry.id]);
    expect(await v.verify(first.token)).toBeUndefined();
    expect(v.stillValid({ person: 'alice', tokenId: first.entry.id })).toBe(false);
    expect(await v.verify(second.token)).toEqual({ person: 'alice', tokenId: second.entry.id });
    editTokens(file, 'alice', () => []);
    expect(readFileSync(file, 'utf8')).toBe(FILE.replace('  alice: { roles: [operator], slack: U1 }   # on call', '  alice:   # on call\n    roles: [operator]\n    slack: U1'));
  });

  it('an edit keeps comments, layout and the file mode, and names an unknown person', () => {
    const file = fresh('keep.yaml');
    editTokens(file, 'bob', (t) => t);
    expect(readFileSync(file, 'utf8')).toBe(FILE.replace('[operator, approver]   # both', '[operator, approver] # both'));
    expect(() => editTokens(file, 'zed', (t) => t)).toThrow(/unknown person "zed": people in .* are alice, bob/);
  });
});
