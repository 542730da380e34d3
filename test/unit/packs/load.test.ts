import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PackError } from '../../../src/errors.js';
import { Inventory } from '../../../src/inventory.js';
import { loadCatalog, policyKeyProblems, type PackSource } from '../../../src/packs/index.js';
import { ShellCommand } from '../../../src/procedures/shell.js';

/** Packs are written where an operator keeps them: outside this checkout. */
const root = mkdtempSync(join(tmpdir(), 'runbook-packs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** Writes a pack directory of `files` and returns it as runbook.yaml would name it. */
function pack(files: Record<string, string>, replaces: string[] = []): PackSource {
  const dir = join(root, `pack-${++n}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return { path: dir, replaces, from: '/etc/runbook/runbook.yaml' };
}

const HELLO = `import { procedure, sh, z } from 'runbook-bot/dsl';

interface Greeting { text: string }
const greeting: Greeting = { text: 'hello' };

export const hello = procedure({
  pack: 'acme', name: 'hello',
  summary: 'Say hello on a host', usage: 'acme hello <host>', examples: ['acme hello web-1'], source: 'runbooks/acme.md',
  args: z.object({ host: z.string(), times: z.number().int().default(1) }), positional: ['host'],
  hosts: { host: {} },
  steps: [{ kind: 'ssh', id: 'say', title: (ctx) => \`Say hello on \${ctx.args.host}\`, risk: 'read', host: (ctx) => ctx.args.host, command: (ctx) => sh\`echo \${greeting.text} \${ctx.args.times}\` }],
});
export default [hello];
`;

const inventory = new Inventory({ 'web-1': { address: '127.0.0.1', port: 22, user: 'lab', groups: [], vars: {} } }, {});

async function problemsOf(sources: PackSource[]): Promise<string> {
  const err = await loadCatalog(sources).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PackError);
  const message = (err as PackError).message;
  // Said in sentences, never with a stack trace.
  expect(message).not.toMatch(/\n\s+at /);
  return message;
}

describe('packs from outside the checkout', () => {
  it('loads a TypeScript pack as written, beside the bot\'s own procedures, with the bot\'s own DSL', async () => {
    const src = pack({ 'index.ts': HELLO });
    const catalog = await loadCatalog([src]);
    expect(catalog.packs()).toContain('acme');
    expect(catalog.packs()).toContain('ovs');
    const { procedure, args } = catalog.parse('acme hello web-1 --times 2', inventory);
    expect(args).toEqual({ host: 'web-1', times: 2 });
    const step = procedure.steps[0]!;
    if (step.kind !== 'ssh' || typeof step.command !== 'function') throw new Error('unexpected step');
    // The pack's sh is the bot's: its commands are the class the engine reads.
    const command = step.command({ args } as never);
    expect(command).toBeInstanceOf(ShellCommand);
    expect(command.text).toBe('echo hello 2');
    expect(catalog.origin('acme hello')).toMatchObject({ file: join(src.path, 'index.ts'), pack: src.path, fingerprint: expect.stringMatching(/^sha256:[0-9a-f]{24}$/) });
    expect(catalog.origin('ovs flush').file).toBe('built-in');
  });

  it('loads a JavaScript module as it is, and a directory through its package.json main', async () => {
    const js = pack({ 'lib/procs.mjs': HELLO.replace('interface Greeting { text: string }\nconst greeting: Greeting', 'const greeting').replace("name: 'hello'", "name: 'hi'"), 'package.json': '{ "main": "lib/procs.mjs" }' });
    const catalog = await loadCatalog([js]);
    expect(catalog.origin('acme hi').file).toBe(join(js.path, 'lib/procs.mjs'));
  });

  it('gives the same fingerprint for the same definition, and another when a step changes', async () => {
    const a = await loadCatalog([pack({ 'index.ts': HELLO })]);
    const b = await loadCatalog([pack({ 'index.ts': HELLO })]);
    const c = await loadCatalog([pack({ 'index.ts': HELLO.replace('echo', 'printf') })]);
    expect(a.origin('acme hello').fingerprint).toBe(b.origin('acme hello').fingerprint);
    expect(c.origin('acme hello').fingerprint).not.toBe(a.origin('acme hello').fingerprint);
  });

  it('refuses a pack that redefines a procedure of the bot, unless runbook.yaml says it replaces it', async () => {
    const flush = HELLO.replace("pack: 'acme', name: 'hello'", "pack: 'ovs', name: 'flush'");
    const refused = pack({ 'index.ts': flush });
    expect(await problemsOf([refused])).toContain(`${refused.path}/index.ts: ovs flush: is one of the bot's own procedures: to replace it, say so in runbook.yaml (packs: [{ path: ${refused.path}, replaces: ["ovs flush"] }])`);
    const replacing = pack({ 'index.ts': flush }, ['ovs flush']);
    const catalog = await loadCatalog([replacing]);
    expect(catalog.origin('ovs flush')).toMatchObject({ file: `${replacing.path}/index.ts`, replaces: true });
    expect(catalog.get('ovs shutdown')).toBeDefined();
    // Replacing the whole pack drops the bot's other procedures of it.
    const whole = await loadCatalog([pack({ 'index.ts': flush }, ['ovs'])]);
    expect(whole.inPack('ovs').map((p) => p.name)).toEqual(['flush']);
  });

  it('says what a replacement names that does not exist', async () => {
    const src = pack({ 'index.ts': HELLO }, ['ovs flush', 'ovs flsh', 'nope']);
    const message = await problemsOf([src]);
    expect(message).toContain(`the pack ${src.path} replaces "ovs flush" but does not define it`);
    expect(message).toContain(`the pack ${src.path} replaces "ovs flsh", which is not a procedure of the bot's own (ovs flush`);
    expect(message).toContain(`the pack ${src.path} replaces "nope", which is not a pack of the bot's own`);
  });

  it('refuses one procedure defined by two packs, naming both files', async () => {
    const a = pack({ 'index.ts': HELLO });
    const b = pack({ 'index.ts': HELLO });
    expect(await problemsOf([a, b])).toContain(`${b.path}/index.ts: acme hello: is defined by ${a.path}/index.ts too`);
  });

  it('stops at a pack that does not parse, with its file and line', async () => {
    const src = pack({ 'index.ts': `import { procedure } from 'runbook-bot/dsl';\n\nconst broken = {;\n` });
    expect(await problemsOf([src])).toMatch(new RegExp(`${src.path}/index.ts:3: cannot parse: Unexpected token`));
  });

  it('stops at a pack that throws while loading, with the line in the pack', async () => {
    const src = pack({ 'index.ts': `const port: number = 22;\n\nthrow new Error(\`no port \${port}\`);\n` });
    expect(await problemsOf([src])).toContain(`${src.path}/index.ts:3: no port 22`);
  });

  it('says which procedure is wrong and why, every problem at once', async () => {
    const src = pack({
      'index.ts': `import { procedure, z } from 'runbook-bot/dsl';
export default [{
  pack: 'acme', name: 'Bad Name', summary: 'x', usage: 'x', examples: [], source: 'x',
  args: z.object({ 'host_name': z.string() }), positional: ['host'],
  steps: [{ kind: 'ssh', id: 'run', title: 'Run', risk: 'harmless', host: 'web-1', command: 'rm -rf /tmp/x' }],
}];`,
    });
    const message = await problemsOf([src]);
    expect(message).toContain('acme Bad Name: name "Bad Name" must be lower-case words joined by "-" (it is a chat command)');
    expect(message).toContain('acme Bad Name: argument "host_name" must be a camelCase name');
    expect(message).toContain('acme Bad Name: positional names "host", which is not an argument (host_name)');
    expect(message).toContain('acme Bad Name: step run: risk "harmless" is not one of read, write, destructive, sensitive');
    expect(message).toContain('acme Bad Name: step run: its command must be built with sh`…` (or a function returning one), never a plain string');
  });

  it('says so when a step id is wrong, naming the procedure', async () => {
    const src = pack({ 'index.ts': HELLO.replace("id: 'say'", "id: 'Say'") });
    expect(await problemsOf([src])).toMatch(new RegExp(`${src.path}/index.ts:\\d+: acme hello: step id "Say" must be lower-case words joined by "-"`));
  });

  it('names a pack path that does not exist, and where it was named', async () => {
    expect(await problemsOf([{ path: '/srv/packs/missing', replaces: [], from: 'RUNBOOK_PACKS' }])).toContain('/srv/packs/missing: no such file or directory (named in RUNBOOK_PACKS)');
  });

  it('names an import a pack cannot have', async () => {
    const src = pack({ 'index.ts': `import { thing } from 'left-pad-nowhere';\nexport default [thing];\n` });
    expect(await problemsOf([src])).toContain(`Cannot find module 'left-pad-nowhere'`);
  });

  it('keeps a pack within Discord\'s 25 subcommands per command', async () => {
    const many = Array.from({ length: 23 }, (_, i) => HELLO.split('export const hello = ')[1]!.split('export default')[0]!.replace("name: 'hello'", `name: 'p${i}'`).replace(/;\s*$/, ''));
    const src = pack({ 'index.ts': `import { procedure, sh, z } from 'runbook-bot/dsl';\nconst greeting = { text: 'hi' };\nexport default [${many.join(',\n')}];\n` });
    expect(await problemsOf([src])).toContain('pack acme has 23 procedures: with help, status and cancel that is 26 subcommands, and Discord allows 25 per command; split it into two packs');
  });

  it('names policy keys of runbook.yaml that match no loaded pack or procedure', async () => {
    const catalog = await loadCatalog([pack({ 'index.ts': HELLO })]);
    expect(policyKeyProblems({ procedures: { 'acme hello': {}, acme: {}, 'acme helo': {}, acne: {} } }, catalog)).toEqual([
      { path: 'policy.procedures."acme helo"', message: 'no procedure "acme helo" is loaded; did you mean "acme hello"?' },
      { path: 'policy.procedures."acne"', message: 'no pack "acne" is loaded; did you mean "acme"?' },
    ]);
  });
});
