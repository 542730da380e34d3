/**
 * `npm run bench`: measures, never asserts. Writes bench-report.md and bench-report.json.
 *
 * 1. Warm step overhead: N trivial steps (`true`) through the engine on a pooled connection,
 *    against N raw ssh2 execs of `true` on one open connection. Overhead = difference per step.
 * 2. Fan-out: `uptime` on 50 lab hosts, through the pool (warm), through the engine (a forEach),
 *    and with parallel-ssh (Debian's pssh) on the same hosts, key and known_hosts.
 * 3. Ad-hoc fan-out (`ops exec`, src/bench/fanout.ts): 50 and 200 hosts, cold and warm, beside
 *    pdsh, clush, parallel-ssh and ansible; wall, CPU and memory.
 * 4. Slack (src/bench/slack.ts): ack latency of signed slash commands at 200 requests/s beside a
 *    bare Bolt app, and the time from command to plan card.
 * 5. The engine (src/bench/engine.ts): no-op steps per second, Redis round trips per step, the cost
 *    of a checkpoint in runs of 10 to 1,000 steps, a worker's memory with 1,000 runs waiting at
 *    gates, and the time from an approval to its command starting.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ssh2';
import { z } from 'zod';
import pino from 'pino';
import { loadRunbookConfig } from '../config/runbook-config.js';
import { labDown, labUp } from '../lab/index.js';
import { Catalog } from '../procedures/catalog.js';
import { procedure, sh } from '../procedures/dsl.js';
import { defaultCatalog } from '../procedures/index.js';
import { Runtime } from '../runtime.js';
import { benchEngine } from './engine.js';
import { benchAdhocFanout } from './fanout.js';
import { benchSlack } from './slack.js';
import { median } from './util.js';

const FANOUT_HOSTS = 50;
const STEPS = 200;
const ROUNDS = 5;

const ms = (x: number) => Math.round(x * 100) / 100;

/** Procedures that exist only to be measured. */
const benchSteps = procedure({
  pack: 'bench',
  name: 'steps',
  summary: 'N trivial steps on one host',
  usage: 'bench steps <host> --count N',
  examples: ['bench steps lab-001 --count 100'],
  source: 'benchmark',
  args: z.object({ host: z.string(), count: z.number().int().min(1) }),
  positional: ['host'],
  hosts: { host: {} },
  steps: [
    {
      kind: 'forEach',
      id: 'each',
      title: 'Trivial steps',
      risk: 'read',
      items: (ctx) => Array.from({ length: (ctx.args as { count: number }).count }, (_, i) => i),
      key: (i: number) => String(i),
      concurrency: 1,
      steps: [{ kind: 'ssh', id: 'true', title: 'true', risk: 'read', host: (ctx) => (ctx.args as { host: string }).host, command: sh`true` }],
    },
  ],
});

const benchFanout = procedure({
  pack: 'bench',
  name: 'fanout',
  summary: 'uptime on every generic lab host',
  usage: 'bench fanout',
  examples: ['bench fanout'],
  source: 'benchmark',
  args: z.object({}),
  positional: [],
  locks: () => [],
  steps: [
    {
      kind: 'forEach',
      id: 'hosts',
      title: 'uptime on every host',
      risk: 'read',
      items: (ctx) => ctx.inventory.inGroups(['generic']).map((h) => h.name),
      key: (h: string) => h,
      concurrency: 64,
      steps: [{ kind: 'ssh', id: 'uptime', title: 'uptime', risk: 'read', host: (ctx) => ctx.item as string, command: sh`uptime` }],
    },
  ],
});

function rawExec(client: Client, cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.exec(cmd, (err, stream) => {
      if (err) return reject(err);
      stream.on('data', () => undefined);
      stream.stderr.on('data', () => undefined);
      stream.on('close', () => resolve());
    });
  });
}

function ensurePssh(): string | undefined {
  const has = () => spawnSync('sh', ['-c', 'command -v parallel-ssh']).status === 0;
  if (has()) return 'parallel-ssh';
  if (process.getuid?.() === 0) {
    spawnSync('apt-get', ['install', '-y', '-qq', 'pssh'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (has()) return 'parallel-ssh';
  }
  return undefined;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'runbook-bench-'));
  const results: Record<string, unknown> = { date: new Date().toISOString(), machine: { cpus: (await import('node:os')).cpus().length, node: process.version } };
  const lines: string[] = [`# Benchmark report`, '', `${results.date as string} · ${(results.machine as { cpus: number }).cpus} cores · Node ${process.version}`, ''];
  process.stderr.write(`bench: starting a lab of ${FANOUT_HOSTS} hosts in ${dir}\n`);
  const lab = await labUp({ dir, only: [], extraHosts: FANOUT_HOSTS, port: 0, dbPrefix: `bench_${process.pid}_` });
  const cfg = loadRunbookConfig(lab.configPath);
  const rt = new Runtime({ config: cfg, configPath: lab.configPath, prefix: `bench${process.pid}`, log: pino({ level: 'silent' }), catalog: new Catalog([...defaultCatalog().all(), benchSteps, benchFanout]) });
  try {
    // 1. Warm step overhead.
    const host = rt.inventory.get(lab.hosts[0]!.name)!;
    const client = new Client();
    await new Promise<void>((resolve, reject) => {
      // The same socket option the pool sets, so the comparison measures only the engine's work.
      client.once('ready', () => (client.setNoDelay(true), resolve())).once('error', reject);
      client.connect({ host: host.address, port: host.port, username: lab.user, privateKey: readFileSync(cfg.ssh.privateKeyPath) });
    });
    await rawExec(client, 'true');
    const rawRounds: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      for (let i = 0; i < STEPS; i++) await rawExec(client, 'true');
      rawRounds.push((performance.now() - t) / STEPS);
    }
    client.end();
    await rt.ssh.exec(host, 'true');
    const engineRounds: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const run = await rt.intake.prepare({ text: `bench steps ${host.name} --count ${STEPS}`, person: Object.keys(cfg.people)[0]!, origin: { adapter: 'bench' } });
      await rt.store.create(run.run, []);
      const t = performance.now();
      const status = await rt.engine.advance(run.run.id);
      if (status !== 'succeeded') throw new Error(`bench run ended ${status}: ${(await rt.store.load(run.run.id)).error}`);
      engineRounds.push((performance.now() - t) / STEPS);
    }
    const raw = median(rawRounds);
    const eng = median(engineRounds);
    const overhead = eng - raw;
    results.stepOverhead = { steps: STEPS, rounds: ROUNDS, rawExecMs: ms(raw), engineStepMs: ms(eng), overheadMs: ms(overhead), targetMs: 5, met: overhead <= 5 };
    lines.push('## Warm step overhead', '', `${STEPS} sequential steps running \`true\` on one host, median of ${ROUNDS} rounds.`, '', '| | ms per step |', '|---|---|', `| raw ssh2 exec on one open connection | ${ms(raw)} |`, `| engine step on the pooled connection (checkpoint before and after, events) | ${ms(eng)} |`, `| **overhead** (target ≤ 5 ms) | **${ms(overhead)}** ${overhead <= 5 ? '(met)' : '(NOT met)'} |`, '');

    // 2. Fan-out.
    const generic = rt.inventory.inGroups(['generic']);
    const poolRounds: number[] = [];
    for (let r = 0; r < ROUNDS + 1; r++) {
      const t = performance.now();
      const res = await Promise.all(generic.map((h) => rt.ssh.exec(h, 'uptime')));
      if (res.some((x) => x.exitCode !== 0)) throw new Error('uptime failed on a host');
      if (r > 0) poolRounds.push(performance.now() - t);
      else results.fanoutColdPoolMs = ms(performance.now() - t);
    }
    const fanEngine: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const run = await rt.intake.prepare({ text: 'bench fanout', person: Object.keys(cfg.people)[0]!, origin: { adapter: 'bench' } });
      await rt.store.create(run.run, []);
      const t = performance.now();
      const status = await rt.engine.advance(run.run.id);
      if (status !== 'succeeded') throw new Error(`fan-out run ended ${status}: ${(await rt.store.load(run.run.id)).error}`);
      fanEngine.push(performance.now() - t);
    }
    const pssh = ensurePssh();
    let psshMs: number | undefined;
    if (pssh) {
      const hostsFile = join(dir, 'pssh-hosts');
      writeFileSync(hostsFile, generic.map((h) => `${h.address}:${h.port}`).join('\n'));
      const psshRounds: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const t = performance.now();
        execFileSync(pssh, ['-h', hostsFile, '-l', lab.user, '-p', '64', '-t', '60', '-x', `-i ${cfg.ssh.privateKeyPath} -o UserKnownHostsFile=${cfg.ssh.knownHostsPath} -o StrictHostKeyChecking=yes -o BatchMode=yes`, 'uptime'], { stdio: 'ignore' });
        psshRounds.push(performance.now() - t);
      }
      psshMs = median(psshRounds);
    }
    const poolMs = median(poolRounds);
    const engineMs = median(fanEngine);
    results.fanout = { hosts: generic.length, rounds: ROUNDS, warmPoolMs: ms(poolMs), warmEngineMs: ms(engineMs), parallelSshMs: psshMs === undefined ? null : ms(psshMs), speedupPool: psshMs ? ms(psshMs / poolMs) : null, speedupEngine: psshMs ? ms(psshMs / engineMs) : null, target: '≥ 5× faster than parallel-ssh (warm)' };
    lines.push('## Fan-out of one command', '', `\`uptime\` on ${generic.length} lab hosts (each a real sshd), median of ${ROUNDS} rounds.`, '', '| | wall ms | vs parallel-ssh |', '|---|---|---|', `| cold pool (connect + exec) | ${results.fanoutColdPoolMs as number} | |`, `| warm pool | ${ms(poolMs)} | ${psshMs ? `${ms(psshMs / poolMs)}×` : ''} |`, `| warm, through the engine (forEach, concurrency 64, checkpointed) | ${ms(engineMs)} | ${psshMs ? `${ms(psshMs / engineMs)}×` : ''} |`, `| parallel-ssh -p 64 | ${psshMs ? ms(psshMs) : 'pssh not installed'} | 1× |`, '', psshMs ? `Target: warm fan-out at least 5× faster than parallel-ssh: ${psshMs / engineMs >= 5 ? 'met' : 'NOT met'} through the engine, ${psshMs / poolMs >= 5 ? 'met' : 'NOT met'} at the pool.` : 'parallel-ssh was not available: install pssh for the comparison.', '');
  } finally {
    await rt.store.purge().catch(() => undefined);
    await rt.close();
    await labDown(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  const fan = await benchAdhocFanout();
  Object.assign(results, fan.results);
  lines.push(...fan.lines);
  const slack = await benchSlack();
  results.slack = slack.results;
  lines.push(...slack.lines);
  const engine = await benchEngine();
  results.engine = engine.results;
  lines.push(...engine.lines);
  writeFileSync('bench-report.json', JSON.stringify(results, null, 2));
  writeFileSync('bench-report.md', lines.join('\n'));
  process.stdout.write(lines.join('\n') + '\n');
  process.stderr.write('bench: wrote bench-report.md and bench-report.json\n');
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
