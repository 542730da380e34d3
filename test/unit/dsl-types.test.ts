import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = resolve('.');
const dir = mkdtempSync(join(tmpdir(), 'runbook-dsl-types-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The README's TypeScript examples that use the public API, as they are written there. */
function readmeExamples(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((code) => code.includes(`from 'runbook-bot/dsl'`));
}

/**
 * Compiles `files` as a pack outside the checkout: `runbook-bot` reached through node_modules
 * (as `npm link runbook-bot` or a dependency would), its types from the built package.
 */
async function typecheck(files: Record<string, string>): Promise<{ code: number; output: string }> {
  const project = mkdtempSync(join(dir, 'pack-'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules', 'runbook-bot'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(project, name), text);
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, typeRoots: [join(root, 'node_modules/@types')], types: ['node'] },
      include: ['*.ts'],
    }),
  );
  try {
    const { stdout } = await exec(join(root, 'node_modules/.bin/tsc'), ['-p', project]);
    return { code: 0, output: stdout };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, output: `${x.stdout}${x.stderr}` };
  }
}

describe('the public authoring API (runbook-bot/dsl)', () => {
  it('types arguments into nested steps and forEach items into the steps inside, and refuses what is wrong', async () => {
    const files = Object.fromEntries(readdirSync(join(root, 'test/types')).filter((f) => f.endsWith('.ts')).map((f) => [f, readFileSync(join(root, 'test/types', f), 'utf8')]));
    const r = await typecheck(files);
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });

  it('type-checks every README example that imports it, as written', async () => {
    const examples = readmeExamples();
    expect(examples.length).toBeGreaterThanOrEqual(2);
    const r = await typecheck(Object.fromEntries(examples.map((code, i) => [`readme-${i + 1}.ts`, code])));
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });

  it('fails on a type error, so a passing check means something', async () => {
    const r = await typecheck({ 'bad.ts': `import { procedure, z } from 'runbook-bot/dsl';\nprocedure({ pack: 'x', name: 'y', summary: '', usage: '', examples: [], source: '', args: z.object({ n: z.string() }), positional: ['n'], steps: [{ kind: 'manual', id: 'a', title: (ctx) => ctx.args.m, risk: 'read', instructions: '' }] });\n` });
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/bad\.ts\(2,\d+\).*Property 'm' does not exist/);
  });
});
