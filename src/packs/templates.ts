/**
 * What `runbook pack new <dir> <pack>` writes: a working pack with one procedure, the simulator of
 * the tool it runs, a lab test and a README, each to be made the team's own.
 */

/** Files of a new pack `pack`, by path inside its directory. `dsl` is this installation's dist/dsl.d.ts, for editors and tsc. */
export function packFiles(pack: string, dsl: string): Record<string, string> {
  const tool = `${pack}ctl`;
  const title = pack.toUpperCase();
  return {
    'index.ts': `/**
 * The ${pack} pack: runbooks of the ${title} application, step for step as their pages say them.
 * Loaded by runbook-bot from runbook.yaml (packs: [./packs/${pack}]) or RUNBOOK_PACKS; see README.md.
 */
import { parse, procedure, sh, z } from 'runbook-bot/dsl';

/** A service as \`${tool} status --json\` prints it. */
interface Service {
  name: string;
  state: 'running' | 'stopped';
}

export const restart = procedure({
  pack: '${pack}',
  name: 'restart',
  summary: 'Restart the stopped services of ${title} on a host (or one service), and wait until they run',
  usage: '${pack} restart <host> [--service <name>]',
  examples: ['${pack} restart outpost', '${pack} restart outpost --service worker'],
  source: 'runbooks/${pack}.md (Restarting a service)',
  args: z.object({
    host: z.string().describe('The host that runs ${title}'),
    service: z.string().regex(/^[a-z][a-z0-9-]*$/, 'a service name, such as web').optional().describe('Only this service'),
  }),
  positional: ['host'],
  // Any host of runbook.yaml; \`{ groups: ['${pack}'] }\` would accept only the hosts in @${pack}.
  hosts: { host: {} },
  steps: (s) => [
    {
      kind: 'ssh',
      id: 'status',
      title: 'Look at the services',
      risk: 'read',
      host: (ctx) => ctx.args.host,
      command: sh\`${tool} status --json\`,
      capture: parse.json<Service[]>(),
    },
    s.forEach(
      {
        id: 'restart',
        title: 'Restart each stopped service',
        risk: 'write',
        items: (ctx) => ctx.capture<Service[]>('status').filter((x) => (ctx.args.service ? x.name === ctx.args.service : x.state === 'stopped')),
        key: (x) => x.name,
        guard: (ctx) =>
          ctx.args.service && !ctx.capture<Service[]>('status').some((x) => x.name === ctx.args.service) ? \`\${ctx.args.host} has no service \${ctx.args.service}\` : undefined,
      },
      [
        {
          kind: 'ssh',
          id: 'restart',
          title: (ctx) => \`Restart \${ctx.item.name}\`,
          risk: 'write',
          host: (ctx) => ctx.args.host,
          command: (ctx) => sh\`${tool} restart \${ctx.item.name}\`,
        },
        {
          kind: 'poll',
          id: 'running',
          title: (ctx) => \`Wait until \${ctx.item.name} runs\`,
          risk: 'read',
          host: (ctx) => ctx.args.host,
          command: sh\`${tool} status --json\`,
          capture: parse.json<Service[]>(),
          until: (services: Service[], ctx) => services.some((x) => x.name === ctx.item.name && x.state === 'running'),
          intervalMs: 2_000,
          timeoutMs: 120_000,
        },
      ],
    ),
  ],
});

export default [restart];
`,
    [`lab/${tool}.cjs`]: `'use strict';
/**
 * \`${tool}\`, the ${title} application's control tool, as the lab runs it on its hosts. A simulator
 * follows the real program: name here the source it copies (repository, file, and commit or
 * release), keep that program's arguments, output and exit codes, and pin them in test/lab.test.mjs.
 *
 *   ${tool} status [--json]    the services and their state: a table, or a JSON list
 *   ${tool} restart <service>  restarts it (exit 0); an unknown service: "${tool}: no service <name>", exit 3
 *
 * A simulator exports { '<tool>': (ctx, args) => exit code }. ctx reads and updates the host's own
 * state (ctx.read(name, fallback), ctx.update(name, fallback, fn): hosts/<host>/state/<name>.json).
 */
const START = [
  { name: 'web', state: 'running' },
  { name: 'worker', state: 'stopped' },
];

module.exports = {
  ${JSON.stringify(tool)}(ctx, args) {
    const [command, ...rest] = args;
    if (command === 'status' && rest.every((a) => a === '--json')) {
      const services = ctx.read('${tool}', START);
      process.stdout.write(rest.length ? \`\${JSON.stringify(services)}\\n\` : services.map((s) => \`\${s.name.padEnd(12)} \${s.state}\\n\`).join(''));
      return 0;
    }
    if (command === 'restart' && rest.length === 1) {
      return ctx.update('${tool}', START, (services) => {
        const service = services.find((s) => s.name === rest[0]);
        if (!service) {
          process.stderr.write(\`${tool}: no service \${rest[0]}\\n\`);
          return 3;
        }
        service.state = 'running';
        service.restarts = (service.restarts ?? 0) + 1;
        return 0;
      });
    }
    process.stderr.write('usage: ${tool} status [--json] | ${tool} restart <service>\\n');
    return 2;
  },
};
`,
    'test/lab.test.mjs': `/**
 * The ${pack} pack in runbook's lab: real sshd hosts whose ${tool} is lab/${tool}.cjs. Each test runs
 * a procedure as an operator would and reads the host's state to see what it did.
 *
 *   npm test        (node --test; needs \`runbook\` on PATH, or RUNBOOK=/path/to/runbook, and the
 *                    lab's services: Redis, MariaDB and OpenSSH's sshd)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const pack = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), '${pack}-lab-'));
// A Redis prefix of its own: nothing here mixes with a bot on the same Redis.
const env = { ...process.env, RUNBOOK_CONFIG: join(dir, 'runbook.yaml'), RUNBOOK_PREFIX: \`${pack}-test-\${process.pid}\`, LOG_LEVEL: 'warn' };

async function runbook(...args) {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.env.RUNBOOK ?? 'runbook', args, { env });
    return { code: 0, stdout, stderr };
  } catch (e) {
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** What ${tool} keeps on a lab host, and every tool the lab ran there (one JSON line each, with its exit code). */
const services = (host) => JSON.parse(readFileSync(join(dir, 'hosts', host, 'state', '${tool}.json'), 'utf8'));
const calls = (host) => readFileSync(join(dir, 'hosts', host, 'calls.log'), 'utf8').trim().split('\\n').map((l) => JSON.parse(l).argv.join(' '));

before(async () => {
  const up = await runbook('lab', 'up', '--dir', dir, '--port', '0', '--pack', pack);
  assert.equal(up.code, 0, up.stderr);
});

after(async () => {
  await runbook('lab', 'down', '--dir', dir);
  rmSync(dir, { recursive: true, force: true });
});

test('${pack} restart outpost restarts the stopped worker and leaves web as it was', async () => {
  const r = await runbook('run', '${pack} restart outpost', '--as', 'alice', '--json');
  assert.equal(r.code, 0, r.stderr);
  const run = JSON.parse(r.stdout);
  assert.equal(run.status, 'succeeded');
  assert.deepEqual(run.steps.map((s) => \`\${s.id}:\${s.status}\`), ['status:succeeded', 'restart:succeeded', 'restart[worker].restart:succeeded', 'restart[worker].running:succeeded']);
  assert.deepEqual(services('outpost'), [
    { name: 'web', state: 'running' },
    { name: 'worker', state: 'running', restarts: 1 },
  ]);
});

test('${pack} restart refuses a service the host does not have, and restarts nothing', async () => {
  const r = await runbook('run', '${pack} restart mire --service mail', '--as', 'alice', '--json');
  assert.equal(r.code, 1);
  assert.match(JSON.parse(r.stdout).error, /mire has no service mail/);
  assert.deepEqual(calls('mire'), ['${tool} status --json']);
});
`,
    'package.json': `${JSON.stringify(
      {
        name: `${pack}-runbooks`,
        private: true,
        type: 'module',
        description: `runbook-bot pack ${pack}`,
        scripts: { check: 'runbook pack check .', plan: 'runbook pack check . --dry-run', test: 'node --test test/' },
      },
      null,
      2,
    )}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        // For editors and \`tsc -p .\`: the DSL's types come from the runbook-bot that wrote this pack.
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, paths: { 'runbook-bot/dsl': [dsl] } },
        include: ['*.ts'],
      },
      null,
      2,
    )}\n`,
    'README.md': `# ${pack}: runbooks for runbook-bot

Procedures of the ${title} application, run by runbook-bot from Slack, Discord, the web console and
the \`runbook\` command, with approvals and an audit trail. One procedure for now:

- \`${pack} restart <host> [--service <name>]\` (index.ts): restarts the stopped services of ${title}
  on a host, or the one named, each with \`${tool} restart\`, and waits until \`${tool} status\` says it runs.

## Work on it

\`\`\`sh
runbook pack check .             # every procedure valid: ids, arguments, commands, chat limits
runbook lab up --pack .          # the lab, with lab/${tool}.cjs standing in for ${tool} on its hosts
runbook pack check . --dry-run   # the plan of each example, against the lab's hosts
runbook run "${pack} restart outpost" --as alice
npm test                         # test/lab.test.mjs: each procedure in a lab of its own
\`\`\`

Write each procedure from its runbook page: step titles in the page's words, the page's commands
through \`sh\`, a risk on every step (\`read\`, \`write\`, \`destructive\`, \`sensitive\`: the last two wait
for approval). \`lab/<tool>.cjs\` simulates each program the procedures run that the lab does not
have; write it from the real program's source and say which in its first comment.

## Use it

Add the directory to runbook.yaml and restart the bot (packs load at start):

\`\`\`yaml
packs:
  - ./packs/${pack}          # relative to runbook.yaml
\`\`\`

or set \`RUNBOOK_PACKS=/path/to/${pack}\` for every process (bot, workers). \`runbook help\` lists it;
\`/${pack}\` needs adding to the Slack app (\`runbook slack manifest\`); Discord registers it at start.
`,
  };
}
