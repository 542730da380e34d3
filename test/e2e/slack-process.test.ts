import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workPriority } from '../../src/adapters/slack/work.js';
import { FakeSlack } from '../helpers/fake-slack.js';
import { uniquePrefix } from '../helpers/runtime.js';
import { until } from '../helpers/until.js';

const CLI = resolve('dist/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'runbook-slack-process-'));
const config = join(dir, 'runbook.yaml');
const prefix = uniquePrefix();
const bots: ChildProcess[] = [];
let fake: FakeSlack;

/** A process that has ended (gone, or a zombie waiting for a parent that will not reap it). */
function ended(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return true;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return true;
  }
}

/** The scheduling policy (field 41: 0 normal, 5 SCHED_IDLE) and nice value (field 19) of every thread of `pid`. */
function threads(pid: number): { policy: number; nice: number }[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { policy: Number(f[38]), nice: Number(f[16]) };
  });
}
const SCHED_IDLE = 5;


/** `runbook start` with Slack configured against the fake; resolves once it is up, with its work process's pid. */
async function startBot(): Promise<{ bot: ChildProcess; work: number; stderr: () => string }> {
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', RUNBOOK_CONFIG: config, RUNBOOK_PREFIX: prefix, LOG_LEVEL: 'info', SLACK_BOT_TOKEN: 'xoxb-test', SLACK_SIGNING_SECRET: 'secret', SLACK_APP_TOKEN: '', SLACK_API_URL: fake.apiUrl };
  const bot = spawn(process.execPath, [CLI, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  bots.push(bot);
  let stderr = '';
  bot.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  bot.stdout!.resume();
  await until('the bot to start', () => stderr.includes('"bot started"') || bot.exitCode !== null, 30_000);
  expect(bot.exitCode, stderr).toBeNull();
  const children = readFileSync(`/proc/${bot.pid}/task/${bot.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  const work = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('adapters/slack/worker.js'));
  expect(work, `children of the bot: ${children.join(', ')}`).toBeDefined();
  return { bot, work: work!, stderr: () => stderr };
}

beforeAll(async () => {
  fake = await new FakeSlack().start();
  writeFileSync(config, 'hosts:\n  node-1: { address: 127.0.0.11, user: lab, groups: [ovs] }\nssh: { privateKeyPath: /nonexistent/id, knownHostsPath: /nonexistent/known_hosts }\npeople:\n  alice: { roles: [operator], slack: U0ALICE }\n');
});

afterAll(async () => {
  for (const bot of bots) if (bot.exitCode === null && bot.signalCode === null) bot.kill('SIGKILL');
  await fake?.stop();
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux')('slack: the work process', () => {
  it('runs every thread of the work process at the lowest priority, and stops it with the bot on SIGTERM', async () => {
    const { bot, work, stderr } = await startBot();
    const all = threads(work);
    expect(all.length).toBeGreaterThan(1);
    // SCHED_IDLE where chrt may set it (Debian has it), else nice 19: every thread, its GC's too.
    const expected = workPriority().how === 'idle' ? { policy: SCHED_IDLE, nice: 0 } : { policy: 0, nice: 19 };
    if (existsSync('/usr/bin/chrt')) expect(workPriority().how).toBe('idle');
    expect(all).toEqual(all.map(() => expected));
    // The acking process keeps its own priority.
    expect(new Set(threads(bot.pid!).map((t) => `${t.policy}/${t.nice}`))).toEqual(new Set(['0/0']));
    const exit = new Promise<number | null>((r) => bot.once('exit', (code) => r(code)));
    bot.kill('SIGTERM');
    expect(await exit, stderr()).toBe(0);
    await until('the work process to end', () => ended(work), 30_000);
  }, 60_000);

  it('ends the work process when the bot is killed, leaving nothing behind', async () => {
    const { bot, work } = await startBot();
    bot.kill('SIGKILL');
    await until('the work process to end', () => ended(work), 30_000);
  }, 60_000);
});
