import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

let lab: Awaited<ReturnType<typeof startTestLab>>;
const prefix = uniquePrefix();

const runbook = (env: NodeJS.ProcessEnv, ...args: string[]) => runCli({ RUNBOOK_PREFIX: prefix, ...env }, ...args);

beforeAll(async () => {
  lab = await startTestLab({ only: ['node-3', 'c01'] });
});

afterAll(async () => {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  await rt.cleanup();
  await lab?.down();
});

describe('runbook config', () => {
  it('check passes when every host and database answers with the right key', async () => {
    const r = await runbook({}, 'config', 'check', '--file', lab.lab.configPath);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok {4}host node-3 .*: reachable, host key matches; (systemd|upstart|init\.d scripts)/);
    expect(r.stdout).toMatch(/ok {4}database nova: answers/);
    expect(r.stdout).toMatch(/kept what 2 hosts run \(service manager, Python\) for the plans of redis:/);
    expect(r.stdout).toMatch(/every host and database answers$/m);
    // What it learnt is what the next plans read (src/engine/store.ts cachedFacts).
    const rt = testRuntime(lab.lab.configPath, { prefix });
    try {
      const cached = await rt.store.cachedFacts(['node-3', 'c01', 'node-1']);
      expect(Object.keys(cached).sort()).toEqual(['c01', 'node-3']);
      expect(cached['node-3']).toMatchObject({ source: 'cache', python3: expect.stringMatching(/^3\.\d+\.\d+$/) });
    } finally {
      await rt.close();
    }
  });

  it('check reports a bad host key and exits 1', async () => {
    const cfgText = readFileSync(lab.lab.configPath, 'utf8');
    const kh = /knownHostsPath: (.+)/.exec(cfgText)![1]!.trim();
    const lines = readFileSync(kh, 'utf8').trim().split('\n');
    const node3 = lab.lab.hosts.find((h) => h.name === 'node-3')!;
    const c01Key = lines.find((l) => l.startsWith(`[${lab.lab.hosts.find((h) => h.name === 'c01')!.address}]`))!.split(' ').slice(1).join(' ');
    const bad = join(lab.lab.dir, 'known_hosts.bad');
    writeFileSync(bad, lines.map((l) => (l.startsWith(`[${node3.address}]`) ? `[${node3.address}]:${node3.port} ${c01Key}` : l)).join('\n') + '\n');
    const file = join(lab.lab.dir, 'runbook.badkey.yaml');
    writeFileSync(file, cfgText.replace(kh, bad));
    const r = await runbook({}, 'config', 'check', '--file', file);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL {2}host node-3 .*: HOST KEY OF node-3 .* HAS CHANGED/);
    expect(r.stdout).toMatch(/ok {4}host c01/);
  });

  it('check names a bad field with its path and line, and exits 2', async () => {
    const file = join(lab.lab.dir, 'runbook.badfield.yaml');
    writeFileSync(file, readFileSync(lab.lab.configPath, 'utf8').replace(/approvalExpiryMinutes: \d+/, 'approvalExpiryMinutes: soon'));
    const r = await runbook({}, 'config', 'check', '--file', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/runbook\.badfield\.yaml:\d+: policy\.approvalExpiryMinutes: /);
  });

  it('schema is a JSON Schema of runbook.yaml', async () => {
    const r = await runbook({}, 'config', 'schema');
    const schema = JSON.parse(r.stdout);
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(schema.properties)).toEqual(['hosts', 'ssh', 'databases', 'people', 'policy', 'packs']);
    expect(schema.required).toEqual(['ssh']);
    const person = schema.properties.people.additionalProperties;
    expect(Object.keys(person.properties)).toEqual(['roles', 'slack', 'discord', 'name', 'email', 'unix', 'tokens']);
    expect(person.properties.tokens.items.required).toEqual(['id', 'hash']);
    // A pack is a path, or a path with the bot's procedures it replaces.
    expect(schema.properties.packs.items.anyOf.map((a: { type: string }) => a.type)).toEqual(['string', 'object']);
  });

  it('check loads the packs runbook.yaml names, and stops at a bad one with its file and line', async () => {
    const packs = join(lab.lab.dir, 'packs');
    mkdirSync(join(packs, 'broken'), { recursive: true });
    writeFileSync(join(packs, 'broken', 'index.ts'), `import { procedure } from 'runbook-bot/dsl';\n\nexport default [procedure(];\n`);
    const file = join(lab.lab.dir, 'runbook.packs.yaml');
    writeFileSync(file, `${readFileSync(lab.lab.configPath, 'utf8')}packs:\n  - ./packs/broken\n`);
    const r = await runbook({}, 'config', 'check', '--file', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot load the packs (1 problem):\n  ${packs}/broken/index.ts:3: cannot parse: `);
    expect(r.stdout).not.toMatch(/host node-3/);
  });
});

describe('runbook audit', () => {
  it('exports the commands, decisions and results of a run as JSON lines', async () => {
    const run = await runbook({ RUNBOOK_CONFIG: lab.lab.configPath }, 'run', 'nova inspect-disk instance-0000274a', '--as', 'alice', '--approve-as', 'bob', '--json');
    const id = JSON.parse(run.stdout).id as string;
    const r = await runbook({ RUNBOOK_CONFIG: lab.lab.configPath }, 'audit', '--run', id, '--json', '--since', '1h');
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; runId: string; by?: string; command?: string });
    expect(events.every((e) => e.runId === id)).toBe(true);
    expect(events[0]).toMatchObject({ type: 'run.requested', by: 'alice', command: 'nova inspect-disk instance-0000274a' });
    expect(events.find((e) => e.type === 'gate.decided')).toMatchObject({ by: 'bob', decision: 'approve' });
    expect(events.filter((e) => e.type === 'step.finished').length).toBe(10);
    expect(events.at(-1)).toMatchObject({ type: 'run.finished', status: 'succeeded' });
    expect(events.some((e) => e.type === 'step.output')).toBe(false);
  });
});
