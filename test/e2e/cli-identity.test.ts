import { readFileSync, writeFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startTestLab } from '../helpers/lab.js';
import { testRuntime, uniquePrefix } from '../helpers/runtime.js';

let lab: Awaited<ReturnType<typeof startTestLab>>;
const prefix = uniquePrefix();
/** Who runs these tests: the CLI finds it from the process's uid, as it does for an operator. */
const me = userInfo().username;
const host = hostname();

/** The lab's runbook.yaml with `people.<id>.unix` set as given (and erin, an admin, added), in a file of its own. */
function configWith(unix: Record<string, string>, name: string): string {
  const doc = parseDocument(readFileSync(lab.lab.configPath, 'utf8'));
  doc.setIn(['people', 'erin'], doc.createNode({ roles: ['admin'] }));
  for (const [person, user] of Object.entries(unix)) doc.setIn(['people', person, 'unix'], user);
  const file = join(lab.lab.dir, name);
  writeFileSync(file, doc.toString());
  return file;
}

const runbook = (config: string, ...args: string[]) => runCli({ RUNBOOK_CONFIG: config, RUNBOOK_PREFIX: prefix }, ...args);

interface AuditEvent {
  type: string;
  by?: string;
  origin?: Record<string, unknown>;
  via?: Record<string, unknown>;
}

async function audit(config: string, runId: string): Promise<AuditEvent[]> {
  const r = await runbook(config, 'audit', '--run', runId, '--json');
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
}

beforeAll(async () => {
  lab = await startTestLab({ only: ['node-3', 'c01'] });
});

afterAll(async () => {
  const rt = testRuntime(lab.lab.configPath, { prefix });
  await rt.cleanup();
  await lab?.down();
});

describe('the CLI says who typed it', () => {
  it('audits the operating-system user and host beside the person named, for the request and each decision', async () => {
    const r = await runbook(lab.lab.configPath, 'run', 'nova inspect-disk instance-0000274a', '--as', 'alice', '--approve-as', 'bob', '--json');
    expect(r.code).toBe(0);
    const id = (JSON.parse(r.stdout) as { id: string }).id;
    const events = await audit(lab.lab.configPath, id);
    expect(events.find((e) => e.type === 'run.requested')).toMatchObject({ by: 'alice', origin: { adapter: 'cli', osUser: me, host } });
    expect(events.find((e) => e.type === 'gate.decided')).toMatchObject({ by: 'bob', via: { adapter: 'cli', osUser: me, host } });
    const text = await runbook(lab.lab.configPath, 'audit', '--run', id);
    expect(text.stdout).toContain(`"nova inspect-disk instance-0000274a" requested by alice · via cli ${me}@${host}`);
    expect(text.stdout).toContain(`approval approved by bob · via cli ${me}@${host}`);
  });

  it('with people.<id>.unix, acts as the person the user maps to, and refuses --as someone else', async () => {
    const config = configWith({ alice: me }, 'runbook.alice.yaml');
    const dry = await runbook(config, 'run', 'ovs flush node-3', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^dry run of "ovs flush" for alice: nothing runs/);
    const other = await runbook(config, 'run', 'ovs flush node-3', '--as', 'bob', '--dry-run');
    expect(other.code).toBe(3);
    expect(other.stderr).toBe(`not allowed: ${me} on ${host} is alice and may not act as bob: only an admin may act for someone else (drop --as to act as alice)\n`);
    const approver = await runbook(config, 'run', 'nova inspect-disk instance-0000274a', '--approve-as', 'carol', '--json');
    expect(approver.code).toBe(3);
    expect(approver.stderr).toMatch(/may not act as carol/);
    const decide = await runbook(config, 'approve', 'r-none', '--as', 'carol');
    expect(decide.code).toBe(3);
  });

  it('refuses a user mapped to nobody once runbook.yaml maps users', async () => {
    const config = configWith({ alice: `not-${me}` }, 'runbook.other.yaml');
    const r = await runbook(config, 'run', 'ovs flush node-3', '--as', 'alice', '--dry-run');
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(`not allowed: operating-system user ${me} on ${host} is not mapped to a person of runbook.yaml: ask an admin to add it to people.<id>.unix\n`);
  });

  it('lets an admin act for someone else, and audits that they did', async () => {
    const config = configWith({ erin: me }, 'runbook.erin.yaml');
    const r = await runbook(config, 'run', 'nova inspect-disk instance-0000274a', '--as', 'alice', '--approve-as', 'bob', '--json');
    expect(r.code).toBe(0);
    const id = (JSON.parse(r.stdout) as { id: string }).id;
    const events = await audit(config, id);
    expect(events.find((e) => e.type === 'run.requested')).toMatchObject({ by: 'alice', origin: { adapter: 'cli', osUser: me, host, actor: 'erin' } });
    expect(events.find((e) => e.type === 'gate.decided')).toMatchObject({ by: 'bob', via: { adapter: 'cli', osUser: me, host, actor: 'erin' } });
    const text = await runbook(config, 'audit', '--run', id);
    expect(text.stdout).toContain(`requested by alice · via cli ${me}@${host} (erin, acting for them)`);
  });
});
