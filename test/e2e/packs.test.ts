/**
 * An operator's own pack, written outside the checkout in TypeScript with a simulator of its own
 * tool, as the bot's processes load it: `runbook help`, the Slack manifest, Discord's command
 * registration, the console, and runs from each way in, on the bot's worker and on a separate
 * `runbook worker`. Then a new pack as the README's "Writing your own pack" makes one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/engine/types.js';
import { readCalls } from '../../src/lab/index.js';
import { treeFingerprint } from '../../src/procedures/fingerprint.js';
import { Runtime } from '../../src/runtime.js';
import { runCli, runProgram } from '../helpers/cli.js';
import { FakeDiscord, Interactions } from '../helpers/fake-discord.js';
import { FakeSlack, slackSignature, slashCommandBody } from '../helpers/fake-slack.js';
import { startTestLab, type TestLab } from '../helpers/lab.js';
import { finished, silent, uniquePrefix } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

const CLI = resolve('dist/cli.js');
const SECRET = 'pack-test-signing-secret';
const ALICE_DISCORD = '100000000000000001';
const GUILD = '200000000000000001';
const CHANNEL = '300000000000000001';

const dir = mkdtempSync(join(tmpdir(), 'runbook-own-packs-'));
const pack = join(dir, 'media');
const prefix = uniquePrefix();

/** The pack: TypeScript, typed steps, and `mediactl`, a tool no lab host has until the pack brings it. */
const INDEX = `import { parse, procedure, sh, z } from 'runbook-bot/dsl';

/** What \`mediactl cache --json\` prints. */
interface Cache {
  entries: { key: string; bytes: number }[];
}

export const purgeCache = procedure({
  pack: 'media',
  name: 'purge-cache',
  summary: 'Purge the transcoding cache of a media host',
  usage: 'media purge-cache <host>',
  examples: ['media purge-cache outpost'],
  source: 'runbooks/media.md (Purging the cache)',
  args: z.object({ host: z.string() }),
  positional: ['host'],
  hosts: { host: {} },
  steps: (s) => [
    { kind: 'ssh', id: 'cache', title: 'Look at the cache', risk: 'read', host: (ctx) => ctx.args.host, command: sh\`mediactl cache --json\`, capture: parse.json<Cache>() },
    s.forEach({ id: 'purge', title: 'Purge each entry', risk: 'write', items: (ctx) => ctx.capture<Cache>('cache').entries, key: (e) => e.key }, [
      { kind: 'ssh', id: 'rm', title: (ctx) => \`Purge \${ctx.item.key} (\${ctx.item.bytes} bytes)\`, risk: 'write', host: (ctx) => ctx.args.host, command: (ctx) => sh\`mediactl purge \${ctx.item.key}\` },
    ]),
  ],
});
`;

/** Its simulator: a cache of two entries per host, emptied by purges, refilled by nothing. */
const SIM = `'use strict';
/** mediactl, the media team's cache tool (media-tools, bin/mediactl, release 3.2): cache --json, purge <key>. */
const START = { entries: [{ key: 'a', bytes: 10 }, { key: 'b', bytes: 20 }], purged: [] };
module.exports = {
  mediactl(ctx, args) {
    if (args[0] === 'cache' && args[1] === '--json') {
      process.stdout.write(JSON.stringify({ entries: ctx.read('mediactl', START).entries }) + '\\n');
      return 0;
    }
    if (args[0] === 'purge' && args.length === 2) {
      return ctx.update('mediactl', START, (c) => {
        c.purged.push(args[1]);
        c.entries = c.entries.filter((e) => e.key !== args[1]);
        return 0;
      });
    }
    process.stderr.write('usage: mediactl cache --json | mediactl purge <key>\\n');
    return 2;
  },
};
`;

let lab: TestLab;
let rt: Runtime;
let slack: FakeSlack;
let discord: FakeDiscord;
const children: ChildProcess[] = [];

/** Starts `runbook <command>` as a process of its own; resolves once `ready` holds for its output. */
async function start(command: string, env: NodeJS.ProcessEnv, ready: (out: string) => boolean): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [CLI, command], { env: { ...process.env, RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await until(`runbook ${command} to start`, () => ready(output) || child.exitCode !== null, 60_000);
  expect(child.exitCode, output).toBeNull();
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  const exit = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exit;
}

/** The newest run of media purge-cache that came in through `adapter`, once it has ended. */
async function ranFrom(adapter: string): Promise<Run> {
  const run = await until(`a run from ${adapter}`, async () => (await rt.store.list(50)).find((r) => r.procedure === 'media purge-cache' && r.origin.adapter === adapter), 30_000);
  return finished(rt, run.id);
}

/** Keys mediactl purged on `host`, in order. */
const purged = (host: string) => readCalls(lab.lab.dir, host).filter((c) => c.argv[1] === 'purge' && c.exit === 0).map((c) => c.argv[2]);

beforeAll(async () => {
  mkdirSync(join(pack, 'lab'), { recursive: true });
  writeFileSync(join(pack, 'index.ts'), INDEX);
  writeFileSync(join(pack, 'lab', 'mediactl.cjs'), SIM);
  [slack, discord] = await Promise.all([new FakeSlack().start(), new FakeDiscord().start()]);
  lab = await startTestLab({ only: ['outpost', 'mire', 'deleuze', 'node-1'], packs: [pack] });
  rt = await Runtime.create({ configPath: lab.lab.configPath, prefix, log: silent });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await rt?.store.purge();
  await rt?.close();
  await lab?.down();
  await Promise.all([slack?.stop(), discord?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

describe('a pack of the operator\'s own, outside the checkout', () => {
  it('is listed by runbook help with the file it came from, and in the Slack manifest', async () => {
    const help = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath }, 'help');
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toContain(`  media      purge-cache\n             from ${pack}/index.ts`);
    const one = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath }, 'help', 'media', 'purge-cache');
    expect(one.stdout).toContain('media purge-cache <host>\n  Purge the transcoding cache of a media host');
    const manifest = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath }, 'slack', 'manifest', '--url', 'https://runbook.example.com');
    expect(manifest.stdout).toMatch(/- command: \/media\n\s+url: https:\/\/runbook.example.com\/slack\/events\n\s+description: "?Runbooks: purge-cache/);
  });

  it('runs from the CLI, Slack, Discord and the console on the bot, then on a separate runbook worker', async () => {
    const cli = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix }, 'run', 'media purge-cache outpost', '--as', 'alice', '--json');
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ procedure: 'media purge-cache', status: 'succeeded' });
    expect(purged('outpost')).toEqual(['a', 'b']);

    const bot = await start(
      'start',
      {
        PORT: '0',
        HOST: '127.0.0.1',
        SLACK_BOT_TOKEN: 'xoxb-test',
        SLACK_SIGNING_SECRET: SECRET,
        SLACK_APP_TOKEN: '',
        SLACK_API_URL: slack.apiUrl,
        DISCORD_TOKEN: discord.botToken,
        DISCORD_APPLICATION_ID: discord.applicationId,
        DISCORD_GUILD_ID: GUILD,
        DISCORD_API_URL: discord.restUrl,
        DISCORD_PUBLIC_KEY: '',
      },
      (out) => out.includes('"bot started"') && out.includes('"discord adapter started"'),
    );
    const base = /open (http:\/\/\S+?)\/ /.exec(bot.output())![1]!;

    // Discord: registered as a command of its own, with its procedure as a subcommand and typed option.
    const registered = [...discord.commands.values()].flat().find((c: { name: string }) => c.name === 'media');
    expect(registered.options.find((o: { name: string }) => o.name === 'purge-cache')).toMatchObject({ type: 1, options: [{ name: 'host', type: 3, required: true, autocomplete: true }] });
    const answer = await discord.interact(new Interactions(discord, GUILD, CHANNEL).slash(ALICE_DISCORD, 'media', 'purge-cache', { host: 'mire' }));
    expect(JSON.stringify(answer.response)).toMatch(/Run r-\w+ started/);
    expect((await ranFrom('discord')).status).toBe('succeeded');
    expect(purged('mire')).toEqual(['a', 'b']);

    // Slack: the acking process hands the command to the work process, which loaded the pack too.
    const body = slashCommandBody({ command: '/media', text: 'purge-cache deleuze', user: 'U0ALICE' });
    const acked = await fetch(`${base}/slack/events`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...slackSignature(SECRET, body) }, body });
    expect(acked.status).toBe(200);
    const fromSlack = await ranFrom('slack');
    expect(fromSlack.status).toBe('succeeded');
    await until('the plan card in Slack', () => slack.calls.some((c) => c.method === 'chat.postMessage' && JSON.stringify(c.args).includes(fromSlack.id)), 30_000);
    expect(purged('deleuze')).toEqual(['a', 'b']);

    // The console: help lists the pack; a command runs it.
    const command = async (text: string) => (await (await fetch(`${base}/console/api/command`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ person: 'alice', text }) })).json()) as { text: string; runId?: string };
    expect((await command('/media help')).text).toContain('media purge-cache <host>');
    const fromConsole = await command('/media purge-cache node-1');
    expect(fromConsole.runId).toMatch(/^r-/);
    expect((await finished(rt, fromConsole.runId!)).status).toBe('succeeded');
    expect(purged('node-1')).toEqual(['a', 'b']);
    await stop(bot.child);

    // A worker of its own: with the bot gone and the CLI not running one, only it can take the run.
    const worker = await start('worker', {}, (out) => out.includes('"worker started"'));
    const noWorker = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix }, 'run', 'media purge-cache outpost', '--as', 'alice', '--no-worker', '--json');
    expect(noWorker.code, `${noWorker.stderr}\n${worker.output()}`).toBe(0);
    const run = JSON.parse(noWorker.stdout) as { id: string; status: string };
    expect(run.status).toBe('succeeded');
    const shown = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix }, 'show', run.id, '--json');
    expect(JSON.parse(shown.stdout).definition).toEqual({ file: `${pack}/index.ts`, fingerprint: rt.catalog.origin('media purge-cache').fingerprint, tree: treeFingerprint(rt.catalog.require('media purge-cache')) });
    // The second run on outpost found the cache empty: nothing more to purge.
    expect(purged('outpost')).toEqual(['a', 'b']);
    expect(readCalls(lab.lab.dir, 'outpost').filter((c) => c.argv[0] === 'mediactl').length).toBe(4);
    await stop(worker.child);
  }, 240_000);
});

describe('a bad pack', () => {
  it('stops a worker at start with the file, the procedure and the problem, never a stack trace', async () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'index.ts'), INDEX.replace("id: 'cache'", "id: 'Cache'"));
    const r = await runCli({ RUNBOOK_CONFIG: lab.lab.configPath, RUNBOOK_PREFIX: prefix, RUNBOOK_PACKS: bad }, 'worker');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^cannot load the packs \\(1 problem\\):\\n  ${bad}/index.ts:\\d+: media purge-cache: step id "Cache" must be lower-case words joined by "-"\\n$`));
  });
});

describe('a pack\'s simulators', () => {
  it('may not stand in for a tool the lab simulates already', async () => {
    const shadow = join(dir, 'shadow');
    mkdirSync(join(shadow, 'lab'), { recursive: true });
    writeFileSync(join(shadow, 'index.ts'), INDEX.replace("pack: 'media'", "pack: 'shadow'"));
    writeFileSync(join(shadow, 'lab', 'cat.cjs'), "module.exports = { cat: () => 0 };\n");
    const labDir = mkdtempSync(join(tmpdir(), 'runbook-shadow-lab-'));
    try {
      const r = await runCli({}, 'lab', 'up', '--dir', labDir, '--port', '0', '--pack', shadow);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${shadow}/lab/cat.cjs: the tool cat is simulated by the lab already; a pack simulates only its own tools`);
    } finally {
      await runCli({}, 'lab', 'down', '--dir', labDir);
      rmSync(labDir, { recursive: true, force: true });
    }
  });
});

describe('a new pack, as "Writing your own pack" in the README makes one', () => {
  it('runbook pack new, pack check, a run in the lab, its own lab test, and its types check', async () => {
    const fresh = join(dir, 'packs', 'acme');
    const made = await runCli({}, 'pack', 'new', fresh, 'acme');
    expect(made.code, made.stderr).toBe(0);
    const check = await runCli({ RUNBOOK_CONFIG: '' }, 'pack', 'check', fresh);
    expect(check.stdout).toContain('✓ acme restart: 2 steps, 2 examples');
    expect(check.code).toBe(0);

    // The generated lab test brings its own lab up with the pack and runs the procedure in it.
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'runbook'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(join(bin, 'runbook'), 0o755);
    const test = await runProgram('npm', ['test'], { RUNBOOK: join(bin, 'runbook') }, fresh);
    expect(test.stdout).toMatch(/# pass 2\n# fail 0/);
    expect(test.code, `${test.stdout}${test.stderr}`).toBe(0);

    // Editors and tsc find the DSL's types through the pack's tsconfig.json.
    const tsc = await runProgram(resolve('node_modules/.bin/tsc'), ['-p', fresh]);
    expect(tsc.stdout).toBe('');
    expect(tsc.code).toBe(0);
    expect(JSON.parse(readFileSync(join(fresh, 'tsconfig.json'), 'utf8')).compilerOptions.paths['runbook-bot/dsl']).toEqual([resolve('dist/dsl.d.ts')]);
  }, 120_000);
});
