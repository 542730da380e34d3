/**
 * Fan-out benchmark of `ops exec` (part of `npm run bench`; measures, never asserts).
 *
 * The same command (`uptime`) on 50 and on 200 lab hosts, cold (a fresh process, no open
 * connection) and warm (a second run in the same process, on the pooled connections), through the
 * engine (`ops exec`, checkpointed in Redis) and straight at the pool, beside `pdsh -R ssh`,
 * `clush -b`, `parallel-ssh` and `ansible -m raw` on the same hosts with the same key and
 * known_hosts (strict host key checking), all with a fan-out of 64.
 *
 * Every measured thing runs in a child process under `/usr/bin/time`: CPU time is the child's
 * user+sys (with its reaped descendants: every ssh a tool forks), peak memory is the largest sum of
 * RSS over the child's process tree (sampled every 50 ms; `/usr/bin/time`'s maxRSS is per process).
 * For ours, the child also reports its own figures for the cold and the warm run separately:
 * wall time, `process.cpuUsage()` deltas and RSS growth over the RSS before the run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { loadRunbookConfig } from '../config/runbook-config.js';
import { SshPool } from '../executors/ssh/pool.js';
import { labDown, labUp } from '../lab/index.js';
import { foldNodeSet } from '../nodeset.js';
import { Runtime } from '../runtime.js';
import { median, runStandalone } from './util.js';

export const FANOUT_SIZES = [50, 200];
const FANOUT = 64;
const COMMAND = 'uptime';

const ms = (x: number) => Math.round(x * 10) / 10;
const mb = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

/** One measured run. */
export interface Sample {
  wallMs: number;
  cpuMs: number;
  /** Tools: peak RSS of the whole process tree. Ours: RSS growth during the run. */
  memMb: number;
}

interface ChildOut {
  cold: Sample;
  warm: Sample;
  baselineRssMb: number;
  /** From the process' start to the cold run: Node start-up, modules, config, Redis connection. */
  startMs: number;
}

interface ProcessFigures {
  code: number | null;
  wallMs: number;
  cpuMs: number;
  maxRssMb: number;
  treePeakMb: number;
  stdout: string;
  stderr: string;
}

/** RSS (bytes) of `pid` and its descendants, from /proc (children lists, then statm). */
function treeRss(pid: number): number {
  let total = 0;
  const page = 4096;
  const stack = [pid];
  const seen = new Set<number>();
  while (stack.length) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      total += Number(readFileSync(`/proc/${p}/statm`, 'utf8').split(' ')[1]) * page;
      for (const t of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(/\s+/)) if (c) stack.push(Number(c));
      }
    } catch {
      // gone already
    }
  }
  return total;
}

/** Runs a command under /usr/bin/time, sampling its process tree's RSS. */
function measureProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv, dir: string): Promise<ProcessFigures> {
  const timeFile = join(dir, `time-${process.hrtime.bigint()}`);
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', '%e %U %S %M', '-o', timeFile, cmd, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    let peak = 0;
    const sampler = setInterval(() => {
      if (child.pid) peak = Math.max(peak, treeRss(child.pid));
    }, 50);
    child.on('close', (code) => {
      clearInterval(sampler);
      const wallMs = performance.now() - started;
      let cpuMs = NaN;
      let maxRssMb = NaN;
      try {
        const last = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
        cpuMs = ((last[1] ?? NaN) + (last[2] ?? NaN)) * 1000;
        maxRssMb = Math.round(((last[3] ?? NaN) / 1024) * 10) / 10;
      } catch {
        // time did not write: the command could not start
      }
      resolve({ code, wallMs, cpuMs, maxRssMb, treePeakMb: mb(peak), stdout, stderr });
    });
  });
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The tools compared, and their Debian packages; installed when missing and running as root. */
const TOOLS = [
  { name: 'pdsh -R ssh', bin: 'pdsh', pkg: 'pdsh' },
  { name: 'clush -b', bin: 'clush', pkg: 'clustershell' },
  { name: 'parallel-ssh', bin: 'parallel-ssh', pkg: 'pssh' },
  { name: 'ansible -m raw', bin: 'ansible', pkg: 'ansible' },
] as const;

function ensureTools(log: (s: string) => void): Record<string, boolean> {
  const missing = TOOLS.filter((t) => !has(t.bin));
  if (missing.length && process.getuid?.() === 0) {
    log(`bench: installing ${missing.map((t) => t.pkg).join(' ')}\n`);
    spawnSync('apt-get', ['install', '-y', '-qq', ...missing.map((t) => t.pkg)], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!has('/usr/bin/time') && process.getuid?.() === 0) spawnSync('apt-get', ['install', '-y', '-qq', 'time'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return Object.fromEntries(TOOLS.map((t) => [t.name, has(t.bin)]));
}

interface Site {
  dir: string;
  configPath: string;
  user: string;
  key: string;
  knownHosts: string;
  port: number;
  /** Generic lab hosts in order: name and address. */
  hosts: { name: string; address: string }[];
}

/** argv and env of each tool for the first `n` hosts. */
function toolCommand(tool: (typeof TOOLS)[number]['name'], site: Site, n: number): { cmd: string; args: string[]; env: NodeJS.ProcessEnv } {
  const hosts = site.hosts.slice(0, n);
  const addrs = hosts.map((h) => h.address);
  const sshOpts = `-o UserKnownHostsFile=${site.knownHosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -i ${site.key}`;
  const env = { ...process.env, LC_ALL: 'C.UTF-8' };
  switch (tool) {
    case 'pdsh -R ssh':
      return { cmd: 'pdsh', args: ['-R', 'ssh', '-f', String(FANOUT), '-l', site.user, '-w', addrs.join(','), COMMAND], env: { ...env, PDSH_SSH_ARGS: `-x -l%u %h -p ${site.port} ${sshOpts}` } };
    case 'clush -b':
      return { cmd: 'clush', args: ['-b', '-f', String(FANOUT), '-l', site.user, '-o', `-p ${site.port} ${sshOpts}`, '-w', addrs.join(','), COMMAND], env };
    case 'parallel-ssh': {
      const file = join(site.dir, `pssh-${n}`);
      writeFileSync(file, addrs.map((a) => `${a}:${site.port}`).join('\n') + '\n');
      return { cmd: 'parallel-ssh', args: ['-i', '-h', file, '-l', site.user, '-p', String(FANOUT), '-t', '60', '-x', sshOpts, COMMAND], env };
    }
    case 'ansible -m raw': {
      const file = join(site.dir, `ansible-${n}.ini`);
      writeFileSync(file, `[lab]\n${hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${site.port}`).join('\n')}\n`);
      return {
        cmd: 'ansible',
        args: ['lab', '-i', file, '-m', 'raw', '-a', COMMAND, '-f', String(FANOUT), '-u', site.user, '--private-key', site.key],
        env: {
          ...env,
          // Ansible's own default ssh_args (ControlPersist: a second run reuses the connections) plus the lab's known_hosts.
          ANSIBLE_SSH_ARGS: `-C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${site.knownHosts} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes`,
          ANSIBLE_HOST_KEY_CHECKING: 'True',
          // raw asks for a tty by default (ssh -tt); the lab's unprivileged sshd cannot allocate one.
          ANSIBLE_SSH_USETTY: 'False',
          ANSIBLE_CONTROL_PATH_DIR: join(site.dir, 'cp'),
          ANSIBLE_LOCAL_TEMP: join(site.dir, 'ansible-tmp'),
          ANSIBLE_NOCOLOR: '1',
          ANSIBLE_DEPRECATION_WARNINGS: 'False',
          ANSIBLE_PYTHON_INTERPRETER: 'auto_silent',
        },
      };
    }
  }
}

/** What a tool printed shows `uptime` answered on every host (one "load average" line each). */
function answered(out: string): number {
  return (out.match(/load average/g) ?? []).length;
}

/** `node fanout.js --child engine|pool <config> <n> <prefix>`: one cold and one warm run, as JSON on stdout. */
async function child(mode: string, configPath: string, n: number, prefix: string): Promise<void> {
  const cfg = loadRunbookConfig(configPath);
  const hosts = Object.entries(cfg.hosts)
    .filter(([, h]) => h.groups.includes('generic'))
    .slice(0, n)
    .map(([name, h]) => ({ name, ...h }));
  let once: () => Promise<void>;
  let close: () => Promise<void>;
  if (mode === 'engine') {
    const rt = new Runtime({ config: cfg, configPath, prefix, log: pino({ level: 'silent' }) });
    const person = Object.entries(cfg.people).find(([, p]) => p.roles.includes('operator'))?.[0] ?? Object.keys(cfg.people)[0]!;
    const text = `ops exec ${foldNodeSet(hosts.map((h) => h.name))} -- ${COMMAND}`;
    await rt.redis.ping();
    once = async () => {
      const { run } = await rt.intake.prepare({ text, person, origin: { adapter: 'bench' } });
      await rt.store.create(run, []);
      const status = await rt.engine.advance(run.id);
      const done = await rt.store.load(run.id);
      if (status !== 'succeeded') throw new Error(`ops exec ended ${status}: ${done.error}`);
      const report = String(done.captures.gather ?? '');
      if (!report.includes(`${n} hosts: ${n} ok`)) throw new Error(`unexpected report: ${report.slice(0, 300)}`);
    };
    close = async () => {
      await rt.store.purge().catch(() => undefined);
      await rt.close();
    };
  } else {
    const pool = new SshPool(cfg.ssh);
    once = async () => {
      let next = 0;
      const lane = async () => {
        while (next < hosts.length) {
          const h = hosts[next++]!;
          const r = await pool.exec(h, COMMAND);
          if (r.exitCode !== 0) throw new Error(`${COMMAND} failed on ${h.name}`);
        }
      };
      await Promise.all(Array.from({ length: Math.min(FANOUT, hosts.length) }, lane));
    };
    close = () => pool.close();
  }
  const measure = async (): Promise<Sample> => {
    const rss0 = process.memoryUsage.rss();
    let peak = rss0;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await once();
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage.rss());
    return { wallMs: ms(wallMs), cpuMs: ms((cpu.user + cpu.system) / 1000), memMb: mb(peak - rss0) };
  };
  const baselineRssMb = mb(process.memoryUsage.rss());
  const startMs = ms(performance.now());
  const cold = await measure();
  const warm = await measure();
  await close();
  process.stdout.write(JSON.stringify({ cold, warm, baselineRssMb, startMs } satisfies ChildOut));
}

export interface FanoutOptions {
  sizes?: number[];
  rounds?: number;
  log?: (s: string) => void;
}

/** Runs the fan-out benchmark on its own lab; returns its figures and its section of the report. */
export async function benchAdhocFanout(opts: FanoutOptions = {}): Promise<{ results: Record<string, unknown>; lines: string[] }> {
  const sizes = opts.sizes ?? FANOUT_SIZES;
  const rounds = opts.rounds ?? 3;
  const log = opts.log ?? ((s: string) => process.stderr.write(s));
  const available = ensureTools(log);
  const dir = mkdtempSync(join(tmpdir(), 'rb-fan-'));
  const labDir = mkdtempSync(join(tmpdir(), 'rb-fanlab-'));
  const max = Math.max(...sizes);
  log(`bench: starting a lab of ${max} hosts for the fan-out in ${dir}\n`);
  const lab = await labUp({ dir: labDir, only: [], extraHosts: max, port: 0, dbPrefix: `benchfan_${process.pid}_` }).catch(async (e: unknown) => {
    await labDown(labDir).catch(() => undefined);
    rmSync(labDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    throw e;
  });
  const cfg = loadRunbookConfig(lab.configPath);
  const ports = new Set(lab.hosts.map((h) => h.port));
  if (ports.size !== 1) throw new Error('the lab hosts do not share one port; the tools below are given one');
  const site: Site = { dir, configPath: lab.configPath, user: lab.user, key: cfg.ssh.privateKeyPath, knownHosts: cfg.ssh.knownHostsPath, port: [...ports][0]!, hosts: lab.hosts.filter((h) => h.groups.includes('generic')).map((h) => ({ name: h.name, address: h.address })) };
  const self = fileURLToPath(import.meta.url);
  type Row = { cold?: Sample; warm?: Sample; error?: string; processPeakMb?: number; startMs?: number };
  const table: Record<number, Record<string, Row>> = {};
  try {
    for (const n of sizes) {
      const row: Record<string, Row> = {};
      table[n] = row;
      for (const mode of ['engine', 'pool'] as const) {
        const name = mode === 'engine' ? 'ours: ops exec (engine)' : 'ours: at the pool';
        log(`bench: ${name} on ${n} hosts\n`);
        const colds: Sample[] = [];
        const warms: Sample[] = [];
        let peak = 0;
        const starts: number[] = [];
        try {
          for (let r = 0; r < rounds; r++) {
            const p = await measureProcess(process.execPath, [self, '--child', mode, lab.configPath, String(n), `benchfan${process.pid}r${r}`], { ...process.env, LOG_LEVEL: 'silent' }, dir);
            if (p.code !== 0) throw new Error(p.stderr.trim().split('\n').slice(-3).join(' ') || `exit ${p.code}`);
            const o = JSON.parse(p.stdout) as ChildOut;
            colds.push(o.cold);
            warms.push(o.warm);
            starts.push(o.startMs);
            peak = Math.max(peak, p.treePeakMb);
          }
          row[name] = { cold: medianSample(colds), warm: medianSample(warms), processPeakMb: peak, startMs: median(starts) };
        } catch (e) {
          row[name] = { error: e instanceof Error ? e.message : String(e) };
        }
      }
      for (const t of TOOLS) {
        if (!available[t.name]) {
          row[t.name] = { error: `${t.bin} not installed (Debian package ${t.pkg}): not measured` };
          continue;
        }
        log(`bench: ${t.name} on ${n} hosts\n`);
        const colds: Sample[] = [];
        const warms: Sample[] = [];
        try {
          for (let r = 0; r < rounds; r++) {
            for (const into of [colds, warms]) {
              const c = toolCommand(t.name, site, n);
              const p = await measureProcess(c.cmd, c.args, c.env, dir);
              const seen = answered(p.stdout);
              // clush -b prints identical outputs once, under their node set.
              const ok = p.code === 0 && (t.name === 'clush -b' ? seen > 0 : seen === n);
              if (!ok) throw new Error(`exit ${p.code}, ${seen}/${n} hosts answered: ${(p.stderr || p.stdout).trim().split('\n').slice(-3).join(' ').slice(0, 300)}`);
              into.push({ wallMs: ms(p.wallMs), cpuMs: ms(p.cpuMs), memMb: p.treePeakMb });
            }
          }
          row[t.name] = { cold: medianSample(colds), warm: medianSample(warms) };
        } catch (e) {
          row[t.name] = { error: e instanceof Error ? e.message : String(e) };
        }
      }
    }
  } finally {
    await labDown(labDir).catch(() => undefined);
    rmSync(labDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
  return report(table, sizes, rounds);
}

function medianSample(xs: Sample[]): Sample {
  return { wallMs: median(xs.map((x) => x.wallMs)), cpuMs: median(xs.map((x) => x.cpuMs)), memMb: median(xs.map((x) => x.memMb)) };
}

function report(table: Record<number, Record<string, { cold?: Sample; warm?: Sample; error?: string; processPeakMb?: number; startMs?: number }>>, sizes: number[], rounds: number): { results: Record<string, unknown>; lines: string[] } {
  const ENGINE = 'ours: ops exec (engine)';
  const POOL = 'ours: at the pool';
  const PDSH = 'pdsh -R ssh';
  const lines: string[] = [
    '## Ad-hoc fan-out: `ops exec` beside pdsh, clush, parallel-ssh, ansible',
    '',
    `\`${COMMAND}\` on ${sizes.join(' and ')} lab hosts (each a real sshd on 127.0.0.x, same key and known_hosts, strict host key checking), fan-out ${FANOUT}, median of ${rounds} rounds. Cold: a fresh process with no open connection. Warm: a second run; ours reuses its pooled connections, the tools start again (ansible reuses its ControlPersist masters).`,
    '',
    'Ours runs in a child process: wall and CPU (`process.cpuUsage`) of the cold and the warm run measured inside it (the bot is already running when a person types a command; the cold ratio with the child\'s start-up — Node, modules, config, Redis connection — is given too), memory = RSS growth over the RSS before the run (the whole child\'s peak RSS is given in brackets). Tools: wall time, user+sys of the tool and every ssh it forked (`/usr/bin/time`), memory = peak RSS summed over the tool\'s process tree. Redis\' own CPU (the engine\'s checkpoints) is not counted.',
    '',
  ];
  const fmt = (s: Sample | undefined) => (s ? `${s.wallMs} | ${s.cpuMs} | ${s.memMb}` : '– | – | –');
  for (const n of sizes) {
    const row = table[n] ?? {};
    const pd = row[PDSH];
    lines.push(`### ${n} hosts`, '', '| | cold wall ms | cold CPU ms | cold mem MB | warm wall ms | warm CPU ms | warm mem MB | cold vs pdsh | warm: pdsh ÷ this |', '|---|---|---|---|---|---|---|---|---|');
    for (const [name, r] of Object.entries(row)) {
      if (r.error) {
        lines.push(`| ${name} | ${r.error} | | | | | | | |`);
        continue;
      }
      const coldRatio = pd?.cold && r.cold ? `${ms(r.cold.wallMs / pd.cold.wallMs)}×` : '';
      const warmRatio = pd?.warm && r.warm ? `${ms(pd.warm.wallMs / r.warm.wallMs)}×` : '';
      const withStart = r.startMs !== undefined && r.cold && pd?.cold ? ` (with process start-up, +${r.startMs} ms: ${ms((r.cold.wallMs + r.startMs) / pd.cold.wallMs)}×)` : '';
      lines.push(`| ${name}${r.processPeakMb !== undefined ? ` (process peak ${r.processPeakMb} MB)` : ''} | ${fmt(r.cold)} | ${fmt(r.warm)} | ${coldRatio}${withStart} | ${warmRatio} |`);
    }
    lines.push('');
  }
  const targets: Record<string, unknown> = {};
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');
  lines.push('### Targets', '');
  for (const who of [ENGINE, POOL]) {
    for (const n of sizes) {
      const r = table[n]?.[who];
      const pd = table[n]?.[PDSH];
      const cold = r?.cold && pd?.cold ? r.cold.wallMs / pd.cold.wallMs : undefined;
      const warm = r?.warm && pd?.warm ? pd.warm.wallMs / r.warm.wallMs : undefined;
      targets[`${who} ${n} cold÷pdsh`] = cold === undefined ? null : ms(cold);
      targets[`${who} ${n} pdsh÷warm`] = warm === undefined ? null : ms(warm);
      lines.push(`- ${who}, ${n} hosts: cold ${cold === undefined ? '–' : `${ms(cold)}× pdsh's time`} (target ≤ 1.2×: ${verdict(cold === undefined ? undefined : cold <= 1.2)}); warm ${warm === undefined ? '–' : `${ms(warm)}× faster than pdsh`} (target ≥ 5×: ${verdict(warm === undefined ? undefined : warm >= 5)})`);
    }
    const [a, b] = [Math.min(...sizes), Math.max(...sizes)];
    const ra = table[a]?.[who];
    const rb = table[b]?.[who];
    if (ra?.cold && rb?.cold && b > a) {
      // The slope between the two sizes: what each further 100 hosts cost, without the fixed part
      // (code paths used for the first time, Redis buffers) a single run's growth includes.
      const per100 = ((rb.cold.memMb - ra.cold.memMb) / (b - a)) * 100;
      const perHostWhole = (rb.cold.memMb / b) * 100;
      targets[`${who} MB per 100 hosts`] = ms(per100);
      lines.push(`- ${who}: memory growth per 100 hosts ${ms(per100)} MB (cold RSS growth ${ra.cold.memMb} MB at ${a} hosts, ${rb.cold.memMb} MB at ${b}; target < 20 MB: ${verdict(per100 < 20)}). Counting the fixed part too, the ${b}-host run grew ${ms(perHostWhole)} MB per 100 hosts.`);
    }
  }
  lines.push('');
  return { results: { fanoutExec: { sizes, rounds, fanout: FANOUT, command: COMMAND, table, targets } }, lines };
}

if (process.argv[2] === '--child' && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [, , , mode, configPath, n, prefix] = process.argv;
  child(mode!, configPath!, Number(n), prefix!).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
} else if (process.argv[2] === '--standalone' && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // `node dist/bench/fanout.js --standalone [sizes] [rounds]`: only this section, printed.
  const sizes = process.argv[3] ? process.argv[3].split(',').map(Number) : FANOUT_SIZES;
  runStandalone(() => benchAdhocFanout({ sizes, rounds: Number(process.argv[4] ?? 3) }));
}
