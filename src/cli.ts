#!/usr/bin/env node
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { followRun } from './adapters/progress.js';
import { eventText, formatDuration, gateText, planText, waitingText } from './adapters/console/text.js';
import type { Decision, Origin, Run, StampedEvent } from './engine/types.js';
import { isTerminal } from './engine/types.js';
import { ConfigError, NotAllowedError, NotFoundError, PackError, RunbookError, UsageError, errorMessage } from './errors.js';
import { formatBytes } from './executors/ssh/output.js';
import { checkInput, MAX_COMMAND_CHARS, MAX_NAME_CHARS, MAX_REASON_CHARS } from './input.js';
import { Runtime } from './runtime.js';
import { findConfigPath, type RunbookConfig } from './config/runbook-config.js';
import { loadEnv } from './config/env.js';
import { redactUrl } from './log.js';
import type { KnownFacts } from './procedures/facts.js';

const USAGE = `runbook: run incident runbooks with approvals, from chat or from here

  runbook start                               bot (HTTP, adapters) and a worker in one process
  runbook worker                              a worker only
  runbook run "<pack> <procedure> <args>" [--as <person>] [--approve-as <person>] [--dry-run] [--json] [--no-worker]
  runbook exec "<targets>" [--as <person>] [--approve-as <person>] [--dry-run] [--json] [--no-worker] [--concurrency N] [--timeout S] -- <command>
                                              one command on a node set (node-[1-3], @ovs!node-3), output gathered
  runbook list [--limit N] [--json]
  runbook show <run-id> [--json]
  runbook attachment <run-id> [<step>] [--out FILE]   a file a step attached (a log archive): to FILE, or stdout when piped
  runbook approve|reject|cancel <run-id> [--as <person>] [--gate <gate-id>] [--reason <text>]
  runbook decide <run-id> retry|skip|abort|done [--as <person>] [--gate <gate-id>] [--step <path>]
                                              --as: who asks; when runbook.yaml maps operating-system users
                                              (people.<id>.unix) it defaults to yours, and only an admin names another
  runbook token create <person> [--keep]      a personal token for the web console, printed once (replaces the person's tokens unless --keep)
  runbook token list [<person>]               token ids and when they were made (never the tokens)
  runbook token revoke <person> [<token-id>]  the token (or every token of the person) stops working
  runbook lab up [--dir DIR] [--hosts N] [--port P] [--pack DIR…]   start the lab (sshd hosts, MariaDB) and write DIR/runbook.yaml;
                                              --port: its hosts' sshd port (default 2222, 0: any free); --pack: a pack it runs,
                                              with the simulators of its lab/ folder
  runbook lab down [--dir DIR]
  runbook audit [--since 2h|<time>] [--run <run-id>] [--json]   the audit trail (JSON lines with --json)
  runbook config check [--file runbook.yaml]  validate, then try SSH (host keys) and SQL on every host and database
  runbook config schema                       JSON Schema of runbook.yaml, for editors
  runbook health                              exit 0 when Redis answers and a worker of this machine beats (container health checks)
  runbook pack new <dir> <pack>               write a new pack of your own procedures: one procedure, its lab simulator, a lab test, a README
  runbook pack check [<dir>] [--dry-run] [--as <person>]   validate a pack's procedures and examples; --dry-run prints each example's plan
  runbook slack manifest [--url URL]          the Slack app's manifest, with a slash command per loaded pack
  runbook help [<pack> [<procedure>]]         this, and every loaded pack with where it came from

Exit codes: 0 succeeded; 1 the run ended otherwise; 2 bad usage or configuration; 3 not allowed.`;

/** What `runbook run --json` prints (DESIGN.md contract). */
export function runJson(run: Run): Record<string, unknown> {
  const steps = Object.values(run.steps).map((s) => ({
    id: s.path,
    title: s.title,
    risk: s.risk,
    status: s.status,
    ...(s.exitCode !== undefined && s.exitCode !== null ? { exitCode: s.exitCode } : {}),
    ...(s.rowsAffected !== undefined ? { rowsAffected: s.rowsAffected } : {}),
    ...(s.attachment ? { attachment: { name: s.attachment.name, path: s.attachment.path, bytes: s.attachment.bytes } } : {}),
  }));
  const seen = new Set(steps.map((s) => s.id));
  for (const p of run.plan) if (!seen.has(p.path)) steps.push({ id: p.path, title: p.title, risk: p.risk, status: 'pending' });
  const report = runReport(run);
  return { id: run.id, procedure: run.procedure, args: run.args, requester: run.requester, status: run.status, ...(run.error ? { error: run.error } : {}), steps, ...(report !== undefined ? { report } : {}) };
}

const out = (s: string) => process.stdout.write(`${s}\n`);
const err = (s: string) => process.stderr.write(`${s}\n`);

function parse<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true as const });
  } catch (e) {
    throw new UsageError(`${errorMessage(e)}\n\n${USAGE}`);
  }
}

/** The operating-system user running this command, from the process's uid (not $USER, which anyone sets). */
function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid:${process.getuid?.() ?? '?'}`;
  }
}

/**
 * Who this command acts as (`--as`, or the person the operating-system user maps to) and the
 * origin the audit records: the OS user and host beside the person named, and the admin acting
 * for them when it is someone else. See Policy.actingAs.
 */
function actingAs(rt: Runtime, named: string | undefined): { person: string; origin: Origin } {
  if (named !== undefined) checkInput(named, '--as', MAX_NAME_CHARS);
  const user = osUser();
  const host = hostname();
  const { person, actor } = rt.policy.actingAs(user, host, named);
  return { person: person.id, origin: { adapter: 'cli', osUser: user, host, ...(actor ? { actor: actor.id } : {}) } };
}

async function withRuntime<T>(fn: (rt: Runtime) => Promise<T>, opts: ConstructorParameters<typeof Runtime>[0] = {}): Promise<T> {
  const rt = await Runtime.create(opts);
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

/** The flags `run` and `exec` share: who asks, who approves, and how the run is followed. */
const FOLLOW_FLAGS = {
  as: { type: 'string' },
  'approve-as': { type: 'string' },
  'dry-run': { type: 'boolean' },
  json: { type: 'boolean' },
  'no-worker': { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

function followFlags(values: Record<string, string | boolean | (string | boolean)[] | undefined>): Pick<FollowOptions, 'approveAs' | 'json' | 'quiet' | 'dryRun' | 'noWorker'> {
  return {
    approveAs: values['approve-as'] as string | undefined,
    json: !!values.json,
    quiet: !!values.quiet,
    dryRun: !!values['dry-run'],
    noWorker: !!values['no-worker'],
  };
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...FOLLOW_FLAGS,
  });
  const text = positionals.join(' ').trim();
  if (!text) throw new UsageError('runbook run needs a command, e.g. runbook run "ovs flush node-3" --as alice');
  return requestAndFollow({
    text,
    as: values.as as string | undefined,
    ...followFlags(values),
  });
}

/**
 * `runbook exec "<targets>" --as <person> [--approve-as <person>] [--json] [--concurrency N] [--timeout S] -- <command>`: the ad-hoc
 * `ops exec` procedure. Options come before `--`; every word after it is the command, joined by
 * spaces as ssh joins its arguments. The gathered report goes to stdout (or `report` in the JSON).
 */
async function cmdExec(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  if (dash < 0) throw new UsageError('runbook exec needs the command after "--", e.g. runbook exec "node-[1-3]" --as alice -- uptime');
  const command = argv.slice(dash + 1).join(' ').trim();
  const { values, positionals } = parse(argv.slice(0, dash), {
    ...FOLLOW_FLAGS,
    concurrency: { type: 'string' },
    timeout: { type: 'string' },
  });
  const limits = (['concurrency', 'timeout'] as const).flatMap((k) => {
    const v = values[k] as string | undefined;
    if (v === undefined) return [];
    if (!/^\d+$/.test(v)) throw new UsageError(`--${k} takes a whole number${k === 'timeout' ? ' of seconds' : ' of hosts'}, not "${v}"`);
    return [`--${k} ${v}`];
  });
  const targets = positionals.join(',').replace(/\s+/g, '');
  if (!targets) throw new UsageError('runbook exec needs the hosts: a node set such as "node-[1-3]", "@ovs-master" or "@ovs!node-3"');
  if (!command) throw new UsageError('runbook exec needs a command after "--"');
  if (/['"\\]/.test(targets)) throw new UsageError(`"${targets}" is not a node set`);
  return requestAndFollow({
    text: `ops exec ${targets}${limits.map((l) => ` ${l}`).join('')} -- ${command}`,
    as: values.as as string | undefined,
    ...followFlags(values),
    printReport: true,
  });
}

interface FollowOptions {
  /** What a person would type after the slash: `ovs flush node-3`. */
  text: string;
  /** `--as`: who asks; unset, the person the operating-system user maps to. */
  as: string | undefined;
  approveAs?: string | undefined;
  json: boolean;
  quiet: boolean;
  dryRun: boolean;
  noWorker: boolean;
  /** Print the run's report (report steps' text) on stdout when it ends, unless --json. */
  printReport?: boolean;
}

/** The text of a run's report steps, in the order they ran. */
export function runReport(run: Run): string | undefined {
  const texts = Object.values(run.steps)
    .filter((s) => s.kind === 'report' && typeof run.captures[s.path] === 'string')
    .map((s) => run.captures[s.path] as string);
  return texts.length ? texts.join('\n\n') : undefined;
}

/**
 * Requests a run and follows it to its end (shared by `run` and `exec`): progress on stderr,
 * `--approve-as` answers approval gates (a refusal cancels the run: exit 3), Ctrl-C cancels.
 */
async function requestAndFollow(o: FollowOptions): Promise<number> {
  const { text, json, quiet } = o;
  checkInput(text, 'the command', MAX_COMMAND_CHARS);
  return withRuntime(async (rt) => {
    const { person, origin } = actingAs(rt, o.as);
    const approver = o.approveAs ? actingAs(rt, o.approveAs) : undefined;
    const approveAs = approver?.person;
    if (o.dryRun) {
      const run = await rt.intake.request({ text, person, origin, dryRun: true });
      if (json) out(JSON.stringify({ procedure: run.procedure, args: run.args, dryRun: true, plan: run.plan, notes: run.notes }));
      else out([`dry run of "${run.procedure}" for ${person}: nothing runs`, 'plan:', ...planText(run.plan), ...run.notes.map((n) => `  note: ${n}`)].join('\n'));
      return 0;
    }
    if (!o.noWorker) rt.startWorker();
    const run = await rt.intake.request({ text, person, origin });
    let refused: NotAllowedError | undefined;
    let interrupts = 0;
    const onSigint = () => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      err(`■ cancelling run ${run.id} (finally steps still run; press Ctrl-C again to stop following)`);
      void rt.decisions.cancel(run.id, person, origin).catch((e) => err(`cannot cancel: ${errorMessage(e)}`));
    };
    process.on('SIGINT', onSigint);
    try {
      await followRun(rt.store, run.id, {
        onEvent: async (e: StampedEvent) => {
          if (!quiet) {
            // The report goes to stdout at the end; on stderr its step's line says it is there.
            const line = o.printReport && !json && e.type === 'step.finished' && e.report !== undefined ? `✓ ${e.title} (below)` : eventText(e);
            if (line) err(line);
          }
          if (e.type === 'gate.opened' && approver && e.gate.kind === 'approval' && !refused) {
            try {
              await rt.decisions.decide(run.id, approver.person, 'approve', { gateId: e.gate.id, via: approver.origin });
            } catch (x) {
              if (!(x instanceof NotAllowedError)) throw x;
              refused = x;
              err(`✘ --approve-as ${approveAs} refused: ${x.message}\n■ cancelling run ${run.id}: nothing past the gate has run`);
              await rt.decisions.cancel(run.id, person, origin);
            }
          }
        },
      });
    } finally {
      process.off('SIGINT', onSigint);
    }
    const final = await rt.store.load(run.id);
    if (refused) final.error = `approval refused: ${refused.message}`;
    if (json) out(JSON.stringify(runJson(final)));
    else {
      const report = o.printReport ? runReport(final) : undefined;
      if (report !== undefined) out(report);
      if (quiet) out(`${final.id} ${final.status}${final.error ? `: ${final.error}` : ''}`);
    }
    if (refused) return 3;
    return final.status === 'succeeded' ? 0 : 1;
  });
}

async function cmdList(argv: string[]): Promise<number> {
  const { values } = parse(argv, { limit: { type: 'string' }, json: { type: 'boolean' } });
  const limit = values.limit ? Number(values.limit) : 20;
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit takes a whole number above 0');
  return withRuntime(async (rt) => {
    const runs = await rt.store.list(limit);
    if (values.json) {
      out(JSON.stringify(runs.map((r) => ({ id: r.id, procedure: r.procedure, args: r.args, status: r.status, requester: r.requester, createdAt: r.createdAt }))));
      return 0;
    }
    if (runs.length === 0) {
      out('no runs yet. Procedures:');
      out(rt.catalog.help());
      return 0;
    }
    for (const r of runs) out(`${r.id}  ${r.status.padEnd(9)}  ${r.createdAt.slice(0, 19).replace('T', ' ')}  ${r.requester.padEnd(8)}  ${r.procedure} ${Object.values(r.args).map(String).join(' ')}`);
    return 0;
  });
}

async function cmdShow(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  const id = positionals[0];
  if (!id) throw new UsageError('runbook show needs a run id (runbook list shows them)');
  return withRuntime(async (rt) => {
    const run = await rt.store.load(id);
    if (values.json) {
      out(JSON.stringify({ ...runJson(run), gates: Object.values(run.gates), plan: run.plan, createdAt: run.createdAt, finishedAt: run.finishedAt, ...(run.definition ? { definition: run.definition } : {}), ...(run.waitingFor ? { waitingFor: run.waitingFor } : {}) }));
      return 0;
    }
    out(`run ${run.id} · ${run.procedure} ${JSON.stringify(run.args)} · requested by ${run.requester} at ${run.createdAt} · ${run.status}${run.error ? `: ${run.error}` : ''}`);
    out('plan:');
    for (const l of planText(run.plan)) out(l);
    out('steps:');
    for (const s of Object.values(run.steps)) {
      const facts = [s.host, s.exitCode !== undefined && s.exitCode !== null ? `exit ${s.exitCode}` : '', s.rowsAffected !== undefined ? `${s.rowsAffected} rows` : '', formatDuration(s.durationMs), s.error ?? s.reason ?? ''].filter(Boolean).join(' · ');
      out(`  ${s.status.padEnd(11)} ${s.path}: ${s.title}${facts ? ` · ${facts}` : ''}`);
      if (s.attachment) out(`              📎 ${s.attachment.path} (${formatBytes(s.attachment.bytes)}): runbook attachment ${run.id} ${s.path} --out ${s.attachment.name}`);
    }
    if (run.status === 'waiting' && run.waitingFor) out(`waiting for ${waitingText(run.waitingFor)}`);
    const open = Object.values(run.gates).filter((g) => g.status === 'open');
    for (const g of open) out(gateText(g));
    return 0;
  });
}

async function cmdAttachment(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { out: { type: 'string' } });
  const [id, stepPath] = positionals;
  if (!id) throw new UsageError('runbook attachment needs a run id, and the step when several attached a file: runbook attachment <run-id> [<step>] [--out FILE]');
  return withRuntime(async (rt) => {
    const run = await rt.store.load(id);
    const attached = Object.values(run.steps).filter((s) => s.attachment && (stepPath === undefined || s.path === stepPath));
    if (attached.length === 0) throw new UsageError(`run ${id} has no attached file${stepPath ? ` from step ${stepPath}` : ''}${Object.values(run.steps).some((s) => s.attachment) ? `; steps with one: ${Object.values(run.steps).filter((s) => s.attachment).map((s) => s.path).join(', ')}` : ''}`);
    if (attached.length > 1) throw new UsageError(`run ${id} has files from several steps; name one: ${attached.map((s) => s.path).join(', ')}`);
    const att = attached[0]!.attachment!;
    const bytes = await rt.store.getFile(id, att.id);
    if (!bytes) throw new NotFoundError(`${att.name} of run ${id} is no longer kept (files are kept 7 days); it was ${att.path} on ${attached[0]!.host ?? 'the host'}`);
    const file = values.out as string | undefined;
    if (file) {
      writeFileSync(file, bytes);
      err(`wrote ${att.name} (${formatBytes(bytes.length)}) to ${file}`);
    } else if (process.stdout.isTTY) {
      throw new UsageError(`${att.name} is ${formatBytes(bytes.length)} of bytes: give --out FILE, or pipe it (runbook attachment ${id} > ${att.name})`);
    } else {
      await new Promise<void>((res, rej) => process.stdout.write(bytes, (e) => (e ? rej(e) : res())));
    }
    return 0;
  });
}

async function cmdDecide(kind: 'approve' | 'reject' | 'cancel' | 'decide', argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { as: { type: 'string' }, gate: { type: 'string' }, step: { type: 'string' }, reason: { type: 'string' } });
  const id = positionals[0];
  if (!id) throw new UsageError(`runbook ${kind} needs a run id`);
  const step = values.step as string | undefined;
  checkInput(id, 'the run id', MAX_NAME_CHARS);
  if (values.reason !== undefined) checkInput(values.reason as string, '--reason', MAX_REASON_CHARS, { newlines: true });
  return withRuntime(async (rt) => {
    const { person, origin } = actingAs(rt, values.as as string | undefined);
    if (kind === 'cancel') {
      await rt.decisions.cancel(id, person, origin);
      out(`cancellation of ${id} requested; finally steps will still run`);
      return 0;
    }
    const run = await rt.store.load(id);
    if (isTerminal(run.status)) throw new UsageError(`run ${id} has already ended (${run.status})`);
    const gate = rt.decisions.openGate(run, values.gate as string | undefined, step);
    let decision: Decision;
    if (kind === 'decide') {
      const d = positionals[1];
      if (!d || !['retry', 'skip', 'abort', 'done', 'approve', 'reject'].includes(d)) throw new UsageError('runbook decide <run-id> retry|skip|abort|done --as <person> [--gate <gate-id>] [--step <path>]');
      decision = d as Decision;
    } else if (gate.kind === 'approval') decision = kind;
    else if (gate.kind === 'manual') decision = kind === 'approve' ? 'done' : 'abort';
    else if (gate.kind === 'definition') decision = kind === 'approve' ? 'approve' : 'abort';
    else decision = kind === 'approve' ? 'retry' : 'abort';
    await rt.decisions.decide(id, person, decision, { gateId: gate.id, ...(step ? { step } : {}), ...(values.reason ? { reason: values.reason as string } : {}), via: origin });
    out(`${decision} recorded for ${step ?? (gate.steps.length > 1 ? `${gate.steps.length} steps (${gate.id})` : gate.stepPath || gate.id)} of ${id} by ${person}`);
    return 0;
  });
}

/**
 * Where the lab of `.lab` lives. The lab's unprivileged user must reach it; a checkout it cannot
 * reach (root's home is mode 700) gets its lab in the temp dir, with `.lab` linking there so the
 * other commands find it as usual.
 */
function labDirFor(wanted: string): string {
  if (existsSync(wanted)) return realpathSync(wanted);
  let reachable = true;
  for (let d = dirname(wanted); ; d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) reachable = false;
    if (d === dirname(d)) break;
  }
  if (reachable || process.getuid?.() !== 0) return wanted;
  const elsewhere = join(tmpdir(), `runbook-lab-${createHash('sha256').update(wanted).digest('hex').slice(0, 8)}`);
  mkdirSync(elsewhere, { recursive: true, mode: 0o755 });
  symlinkSync(elsewhere, wanted);
  err(`${dirname(wanted)} is not reachable by the lab's unprivileged user: the lab lives in ${elsewhere} (.lab links there)`);
  return elsewhere;
}

/** The packs a lab runs: `--pack` directories and RUNBOOK_PACKS, with their simulators (see lab/pack-tools.ts). */
function labPacks(given: string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  const fromEnv = (env.RUNBOOK_PACKS ?? '').split(delimiter).filter(Boolean);
  return [...new Set([...(given ?? []), ...fromEnv].map((p) => resolve(p)))];
}

/** Database names of the lab in `dir` (`lab_1a2b3c_nova`…): two labs never share databases. */
function labDbPrefix(dir: string): string {
  return `lab_${createHash('sha256').update(dir).digest('hex').slice(0, 6)}_`;
}

async function cmdLab(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { dir: { type: 'string' }, hosts: { type: 'string' }, port: { type: 'string' }, pack: { type: 'string', multiple: true } });
  const given = values.dir ? resolve(values.dir as string) : resolve('.lab');
  const dir = sub === 'up' && !values.dir ? labDirFor(given) : given;
  const lab = await import('./lab/index.js');
  if (sub === 'up') {
    const extraHosts = values.hosts ? Number(values.hosts) : 0;
    if (!Number.isInteger(extraHosts) || extraHosts < 0) throw new UsageError('--hosts takes a whole number of extra hosts (0 or more)');
    const started = performance.now();
    const port = values.port === undefined ? undefined : Number(values.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError('--port takes a port number, or 0 for one free on every lab address');
    const l = await lab.labUp({ dir, extraHosts, dbPrefix: labDbPrefix(dir), packs: labPacks(values.pack as string[] | undefined, process.env), ...(port !== undefined ? { port } : {}) });
    err(`lab up in ${formatDuration(performance.now() - started)}: ${l.hosts.length} hosts (${l.hosts.map((h) => h.name).slice(0, 20).join(', ')}${l.hosts.length > 20 ? ', …' : ''}), databases ${Object.values(l.databases).join(', ')}, as user ${l.user}`);
    out(`export RUNBOOK_CONFIG=${l.configPath}`);
    return 0;
  }
  if (sub === 'down') {
    await lab.labDown(dir);
    err(`lab in ${dir} is down`);
    return 0;
  }
  throw new UsageError('runbook lab up|down [--dir DIR] [--hosts N]');
}

/**
 * runbook.yaml when there is one, and the packs it and RUNBOOK_PACKS name, read without connecting
 * to anything (help, pack check and slack manifest need no Redis).
 */
async function configuredPacks() {
  const { loadRunbookConfig } = await import('./config/runbook-config.js');
  const { packSources } = await import('./packs/index.js');
  const configPath = findConfigPath();
  const config = configPath ? loadRunbookConfig(configPath) : undefined;
  return { config, configPath, sources: packSources(config ?? { packs: [] }, configPath, process.env) };
}

/** `runbook help [<pack> [<procedure>]]`: the usage and every loaded pack with where it came from. */
async function cmdHelp(argv: string[]): Promise<number> {
  if (argv.length === 0) out(USAGE);
  const { loadCatalog } = await import('./packs/index.js');
  const { describePacks } = await import('./packs/author.js');
  const catalog = await loadCatalog((await configuredPacks()).sources);
  if (argv.length === 0) out(['', 'Packs (runbook help <pack> lists its procedures):', ...describePacks(catalog)].join('\n'));
  else out([catalog.help(argv[0], argv[1]), ...(argv[1] ? [] : describePacks(catalog, argv[0]).slice(1))].join('\n'));
  return 0;
}

/** `runbook pack new <dir> <pack>` and `runbook pack check [<dir>] [--dry-run] [--as <person>]`. */
async function cmdPack(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { 'dry-run': { type: 'boolean' }, as: { type: 'string' } });
  const author = await import('./packs/author.js');
  if (sub === 'new') {
    const [dir, pack] = positionals;
    if (!dir || !pack) throw new UsageError('runbook pack new <dir> <pack>, e.g. runbook pack new packs/acme acme');
    const files = author.newPack(resolve(dir), pack);
    out([`wrote the pack ${pack} in ${dir}: ${files.join(', ')}`, 'next (see its README.md):', `  runbook pack check ${dir}`, `  runbook lab up --pack ${dir}`, `  runbook pack check ${dir} --dry-run`, `  runbook run "${pack} restart outpost" --as alice`].join('\n'));
    return 0;
  }
  if (sub !== 'check') throw new UsageError('runbook pack new <dir> <pack> | runbook pack check [<dir>] [--dry-run] [--as <person>]');
  const dir = positionals[0] ?? '.';
  const { config, sources } = await configuredPacks();
  const check = await author.checkPack(dir, sources, config?.policy);
  out([`${resolve(dir)}:`, ...check.lines].join('\n'));
  if (check.problems || !values['dry-run']) {
    out(check.problems ? `${check.problems} problem${check.problems === 1 ? '' : 's'}` : 'ok: the bot loads this pack as it is');
    return check.problems ? 1 : 0;
  }
  if (!config) throw new UsageError('--dry-run plans each example against the hosts of runbook.yaml: set RUNBOOK_CONFIG, or run `runbook lab up --pack <dir>`');
  return withRuntime(
    async (rt) => {
      let failed = 0;
      for (const p of rt.catalog.all().filter((x) => rt.catalog.origin(`${x.pack} ${x.name}`).pack === resolve(dir))) {
        for (const text of p.examples) {
          const id = `${p.pack} ${p.name}`;
          const person = (values.as as string | undefined) ?? Object.keys(rt.config.people).find((who) => rt.policy.rule(id).run.some((role) => rt.config.people[who]!.roles.includes(role)));
          try {
            if (!person) throw new UsageError(`nobody in runbook.yaml may run ${id}: give --as <person>`);
            const run = await rt.intake.request({ text, person, origin: { adapter: 'cli' }, dryRun: true });
            out([`\n${text} (as ${person}):`, ...planText(run.plan), ...run.notes.map((n) => `  note: ${n}`)].join('\n'));
          } catch (e) {
            failed++;
            out(`\n${text}: ✘ ${errorMessage(e)}`);
          }
        }
      }
      return failed ? 1 : 0;
    },
    { packs: check.sources },
  );
}

/** `runbook slack manifest [--url URL]`: the Slack app's manifest with every loaded pack's command. */
async function cmdSlack(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { url: { type: 'string' } });
  if (sub !== 'manifest') throw new UsageError('runbook slack manifest [--url https://runbook.example.com]');
  const { loadCatalog } = await import('./packs/index.js');
  const { slackManifest } = await import('./adapters/slack/manifest.js');
  process.stdout.write(slackManifest(await loadCatalog((await configuredPacks()).sources), { url: values.url as string | undefined }));
  return 0;
}

/** For container health checks: Redis answers, and a worker of this machine beats (or the bot's /healthz answers). */
async function cmdHealth(): Promise<number> {
  return withRuntime(async (rt) => {
    const mine = (await rt.liveWorkers()).filter((w) => w.host === hostname());
    if (mine.length > 0) {
      out(`ok: redis answers; ${mine.length} worker process${mine.length === 1 ? '' : 'es'} on ${hostname()}`);
      return 0;
    }
    err(`unhealthy: no worker process on ${hostname()} has beaten in the last 15 s`);
    return 1;
  });
}

async function cmdAudit(argv: string[]): Promise<number> {
  const { values } = parse(argv, { since: { type: 'string' }, run: { type: 'string' }, json: { type: 'boolean' } });
  let from = '-';
  if (values.since) {
    const since = values.since as string;
    const rel = /^(\d+)([smhd])$/.exec(since);
    const ms = rel ? Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's' | 'm' | 'h' | 'd'] : Date.parse(since);
    if (!Number.isFinite(ms)) throw new UsageError(`--since takes a time (2026-11-22T12:00:00Z) or an age (30m, 2h, 7d), not "${since}"`);
    from = `${ms - 1}-99999`;
  }
  return withRuntime(async (rt) => {
    let n = 0;
    for (let last = from; ; ) {
      const batch = await rt.store.audit(last, 1000);
      if (batch.length === 0) break;
      last = batch.at(-1)!.id!;
      for (const e of batch) {
        if (values.run && e.runId !== values.run) continue;
        n++;
        if (values.json) out(JSON.stringify(e));
        else out(`${e.at}  ${e.runId}  ${(eventText(e) ?? e.type).split('\n')[0]}`);
      }
    }
    if (!values.json) err(`${n} event${n === 1 ? '' : 's'}`);
    return 0;
  });
}

/**
 * `runbook token create|list|revoke`: personal tokens for the web console beyond loopback. A new
 * token is printed once, on stdout; runbook.yaml keeps only its hash. The bot reads the file again
 * when it changes, so a created, rotated or revoked token counts within a second, without a restart.
 */
async function cmdToken(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { file: { type: 'string' }, keep: { type: 'boolean' } });
  const file = (values.file as string | undefined) ?? findConfigPath();
  if (!file) throw new UsageError('no runbook.yaml: give --file, or set RUNBOOK_CONFIG');
  const [person, tokenId] = positionals;
  const { editTokens, readPeople } = await import('./auth/token-file.js');
  if (sub === 'list') {
    const people = Object.entries(readPeople(resolve(file))).filter(([id]) => !person || id === person);
    if (person && people.length === 0) throw new UsageError(`unknown person "${person}"`);
    for (const [id, p] of people) for (const t of p.tokens ?? []) out(`${id}\t${t.id}\t${t.created ?? ''}`);
    return 0;
  }
  if (!person) throw new UsageError(`runbook token ${sub ?? 'create'} needs a person: runbook token create|revoke <person>`);
  if (sub === 'create') {
    const { newToken } = await import('./auth/tokens.js');
    const { token, entry } = await newToken();
    const { before } = editTokens(resolve(file), person, (tokens) => [...(values.keep ? tokens : []), entry]);
    out(token);
    const replaced = values.keep || before.length === 0 ? '' : `; it replaces ${before.length === 1 ? `token ${before[0]!.id}` : `${before.length} tokens`}, which no longer work`;
    err(`token ${entry.id} for ${person} written to ${file}${replaced}. It is shown only now: sign in to the console with it (the bot takes it within a second).`);
    return 0;
  }
  if (sub === 'revoke') {
    const { before, after } = editTokens(resolve(file), person, (tokens) => (tokenId ? tokens.filter((t) => t.id !== tokenId) : []));
    if (before.length === after.length) throw new UsageError(tokenId ? `${person} has no token ${tokenId}: runbook token list ${person}` : `${person} has no token`);
    err(`revoked ${before.length - after.length} token${before.length - after.length === 1 ? '' : 's'} of ${person} in ${file}; signed-in sessions made with ${before.length - after.length === 1 ? 'it' : 'them'} end within a second`);
    return 0;
  }
  throw new UsageError('runbook token create <person> [--keep] | runbook token list [<person>] | runbook token revoke <person> [<token-id>]   (each with [--file runbook.yaml])');
}

async function cmdConfig(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { file: { type: 'string' } });
  if (sub === 'schema') {
    const { z } = await import('zod');
    const { runbookConfigSchema } = await import('./config/runbook-config.js');
    out(JSON.stringify({ ...z.toJSONSchema(runbookConfigSchema, { io: 'input', unrepresentable: 'any' }), title: 'runbook.yaml' }, null, 2));
    return 0;
  }
  if (sub !== 'check') throw new UsageError('runbook config schema | runbook config check [--file runbook.yaml]');
  const file = (values.file as string | undefined) ?? findConfigPath();
  if (!file) throw new UsageError('no runbook.yaml to check: give --file, set RUNBOOK_CONFIG, or run `runbook lab up`');
  const { loadRunbookConfig } = await import('./config/runbook-config.js');
  const cfg = loadRunbookConfig(resolve(file));
  out(`${file}: valid (${Object.keys(cfg.hosts).length} hosts, ${Object.keys(cfg.databases).length} databases, ${Object.keys(cfg.people).length} people)`);
  out(await packsLoad(cfg, resolve(file)));
  const { SshPool } = await import('./executors/ssh/pool.js');
  const { SqlExecutor } = await import('./executors/sql/index.js');
  const { FACTS_PROBE, describeFacts, parseFacts } = await import('./procedures/facts.js');
  const pool = new SshPool({ ...cfg.ssh, connectTimeoutMs: Math.min(cfg.ssh.connectTimeoutMs, 5_000) });
  const sql = new SqlExecutor(cfg.databases);
  const facts: Record<string, KnownFacts> = {};
  let bad = 0;
  try {
    const hosts = await Promise.all(
      Object.entries(cfg.hosts).map(async ([name, h]) => {
        const where = `host ${name} (${h.user}@${h.address}:${h.port})`;
        let res: Awaited<ReturnType<typeof pool.exec>>;
        try {
          res = await pool.exec({ name, ...h }, FACTS_PROBE.text, { timeoutMs: 10_000 });
        } catch (e) {
          bad++;
          return `  FAIL  ${where}: ${errorMessage(e)}`;
        }
        // The probe only reads; what it learns (service manager, Python) lets plans name the variant that runs.
        try {
          const f = parseFacts(res.stdout);
          facts[name] = { ...f, detectedAt: new Date().toISOString(), source: 'run' };
          return `  ok    ${where}: reachable, host key matches; ${describeFacts(f)}${f.python2 ? `, python ${f.python2}` : ''}${f.python3 ? `, python3 ${f.python3}` : ''}`;
        } catch (e) {
          return `  ok    ${where}: reachable, host key matches; could not tell its service manager (${errorMessage(e)}; exit ${res.exitCode})`;
        }
      }),
    );
    hosts.forEach((l) => out(l));
    out(await cacheFacts(facts));
    for (const db of Object.keys(cfg.databases)) {
      try {
        await sql.query(db, 'SELECT 1');
        out(`  ok    database ${db}: answers`);
      } catch (e) {
        bad++;
        out(`  FAIL  database ${db}: ${errorMessage(e)}`);
      }
    }
  } finally {
    await pool.close();
    await sql.close();
  }
  out(bad ? `${bad} problem${bad === 1 ? '' : 's'}` : 'every host and database answers');
  return bad ? 1 : 0;
}

/**
 * `config check`: the packs runbook.yaml and RUNBOOK_PACKS name load as the bot would load them,
 * and the policy keys name loaded procedures; throws (exit 2) when not.
 */
async function packsLoad(cfg: RunbookConfig, file: string): Promise<string> {
  const { loadCatalog, packSources, policyKeyProblems } = await import('./packs/index.js');
  const sources = packSources(cfg, file, process.env);
  const catalog = await loadCatalog(sources);
  const problems = policyKeyProblems(cfg.policy, catalog);
  if (problems.length) throw new ConfigError(file, problems);
  if (sources.length === 0) return "  ok    packs: the bot's own only";
  const theirs = catalog.all().filter((p) => catalog.origin(`${p.pack} ${p.name}`).file !== 'built-in').length;
  return `  ok    packs: ${sources.map((s) => s.path).join(', ')} load (${theirs} procedure${theirs === 1 ? '' : 's'})`;
}

/** Keeps what `config check` learnt of the hosts for the next plans, when the bot's Redis answers. */
async function cacheFacts(facts: Record<string, KnownFacts>): Promise<string> {
  const n = Object.keys(facts).length;
  if (n === 0) return '  (no host facts to keep)';
  const env = loadEnv();
  const { Redis } = await import('ioredis');
  const { RunStore } = await import('./engine/store.js');
  const redis = new Redis(env.REDIS_URL, { lazyConnect: true, connectTimeout: 2_000, maxRetriesPerRequest: 1, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const store = new RunStore(redis, env.RUNBOOK_PREFIX);
    await Promise.all(Object.entries(facts).map(([host, f]) => store.saveFacts(host, f)));
    return `  kept what ${n} host${n === 1 ? '' : 's'} run (service manager, Python) for the plans of ${redactUrl(env.REDIS_URL)}`;
  } catch (e) {
    return `  (host facts not kept: Redis at ${redactUrl(env.REDIS_URL)} does not answer: ${errorMessage(e)})`;
  } finally {
    redis.disconnect();
  }
}

/**
 * `runbook start` on a machine with nothing configured: a Redis of its own when none answers and
 * REDIS_URL is unset, and the lab (with its runbook.yaml) when there is no configuration.
 * @returns the environment to run with, and what to stop at exit
 */
async function firstRun(): Promise<{ env: NodeJS.ProcessEnv; stop(): void; lab: boolean }> {
  const setup = await import('./setup/services.js');
  const env: NodeJS.ProcessEnv = { ...process.env };
  let own: Awaited<ReturnType<typeof setup.startOwnRedis>> | undefined;
  if (env.REDIS_URL) await setup.ensureRedis(env.REDIS_URL);
  else if (!(await setup.reachable('127.0.0.1', 6379))) {
    own = await setup.startOwnRedis('.runbook/redis');
    env.REDIS_URL = own.url;
    err(`started a redis-server of its own at ${env.REDIS_URL} (data in .runbook/redis); set REDIS_URL to use yours`);
  }
  let lab = false;
  if (!findConfigPath(env)) {
    setup.ensureSshd();
    setup.ensureOpenStackClients();
    await setup.ensureMariaDb(env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306');
    const { labUp } = await import('./lab/index.js');
    const dir = labDirFor(resolve('.lab'));
    const l = await labUp({ dir, port: 0, dbPrefix: labDbPrefix(dir), packs: labPacks([], env), ...(env.MYSQL_URL ? { mysqlUrl: env.MYSQL_URL } : {}) });
    env.RUNBOOK_CONFIG = l.configPath;
    lab = true;
    err(`no runbook.yaml: started the lab (${l.hosts.length} simulated hosts, RUNBOOK_CONFIG=${l.configPath}); \`runbook lab down\` stops it`);
  }
  return { env, lab, stop: () => own?.child.kill() };
}

async function cmdServe(kind: 'start' | 'worker'): Promise<number> {
  const prepared = kind === 'start' ? await firstRun() : undefined;
  const rt = await Runtime.create(prepared ? { env: prepared.env } : {});
  let server: { close(): Promise<void> } | undefined;
  if (kind === 'worker' && rt.env.WORKER_METRICS_PORT !== undefined) {
    // Before the worker takes jobs: a port in use ends the command with nothing started.
    const { startHttp } = await import('./http/surface.js');
    const http = await startHttp(rt, [], { port: rt.env.WORKER_METRICS_PORT, variable: 'WORKER_METRICS_PORT' }).catch(async (e: unknown) => {
      await rt.close();
      throw e;
    });
    server = http;
    out(`worker metrics: http://${rt.env.HOST}:${http.port}/metrics`);
  }
  const worker = rt.startWorker();
  let adapters: { names: string[]; stop(): Promise<void> } | undefined;
  if (kind === 'start') {
    const { startHttp } = await import('./http/surface.js');
    const { startAdapters } = await import('./adapters/index.js');
    const started = await startAdapters(rt);
    adapters = started;
    const http = await startHttp(rt, started.mounts, started.auth ? { auth: started.auth } : {});
    server = http;
    rt.log.info({ adapters: started.names }, 'chat adapters started');
    if (started.names.includes('console')) {
      const person = Object.keys(rt.config.people)[0] ?? 'alice';
      const { isLoopbackAddress } = await import('./auth/caller.js');
      const first = prepared?.lab ? '/ovs flush node-3' : '/<pack> help';
      if (isLoopbackAddress(rt.env.HOST) && !rt.env.CONSOLE_TRUSTED_PROXIES) out(`runbook is up: open http://${rt.env.HOST}:${http.port}/ and, as ${person}, type ${first}`);
      else out(`runbook is up on ${rt.env.HOST}:${http.port}: sign in to the console with your personal token (runbook token create <you>) and type ${first}`);
    }
  }
  rt.log.info({ procedures: rt.catalog.all().length, hosts: rt.inventory.names().length, config: rt.configPath }, kind === 'start' ? 'bot started' : 'worker started');
  await new Promise<void>((done) => {
    const stop = () => done();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  rt.log.info('stopping: finishing the steps in progress');
  await server?.close();
  await adapters?.stop();
  await worker.close();
  await rt.close();
  prepared?.stop();
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'exec':
        return await cmdExec(rest);
      case 'list':
        return await cmdList(rest);
      case 'show':
        return await cmdShow(rest);
      case 'attachment':
        return await cmdAttachment(rest);
      case 'approve':
      case 'reject':
      case 'cancel':
      case 'decide':
        return await cmdDecide(cmd, rest);
      case 'lab':
        return await cmdLab(rest);
      case 'audit':
        return await cmdAudit(rest);
      case 'health':
        return await cmdHealth();
      case 'config':
        return await cmdConfig(rest);
      case 'token':
        return await cmdToken(rest);
      case 'start':
      case 'worker':
        return await cmdServe(cmd);
      case 'pack':
        return await cmdPack(rest);
      case 'slack':
        return await cmdSlack(rest);
      case 'help':
      case '--help':
      case '-h':
      case undefined:
        return await cmdHelp(rest);
      default:
        throw new UsageError(`unknown command "${cmd}"\n\n${USAGE}`);
    }
  } catch (e) {
    if (e instanceof Error && e.name === 'SetupError') {
      err(e.message);
      return 2;
    }
    if (e instanceof ConfigError || e instanceof PackError) {
      err(e.message);
      return 2;
    }
    if (e instanceof NotAllowedError) {
      err(`not allowed: ${e.message}`);
      return 3;
    }
    if (e instanceof RunbookError) {
      err(`${e.code === 'runbook_usage' ? '' : `${e.code}: `}${e.message}`);
      return 2;
    }
    err(`unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  }
}

/**
 * Whether node runs this file as its program, also when it was reached through a link: npm's
 * `node_modules/.bin/runbook`, `npm link`, `npm i -g` and `npx` all start the CLI through a symlink,
 * so `process.argv[1]` names the link while `import.meta.url` names this file.
 */
function isProgram(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isProgram()) {
  // A reader that stopped reading (`runbook list | head -3`) ends the command quietly, as SIGPIPE
  // ends other command-line tools (exit status 128 + 13).
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(141);
    throw e;
  });
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Open handles (ssh keepalives, redis) must not keep a finished command alive.
    setTimeout(() => process.exit(code), 200).unref();
  });
}
