#!/usr/bin/env node
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { followRun } from './adapters/progress.js';
import { eventText, formatDuration, gateText, planText } from './adapters/console/text.js';
import type { Decision, Run, StampedEvent } from './engine/types.js';
import { isTerminal } from './engine/types.js';
import { ConfigError, NotAllowedError, RunbookError, UsageError, errorMessage } from './errors.js';
import { Runtime } from './runtime.js';

const USAGE = `runbook: run incident runbooks with approvals, from chat or from here

  runbook start                               bot (HTTP, adapters) and a worker in one process
  runbook worker                              a worker only
  runbook run "<pack> <procedure> <args>" --as <person> [--approve-as <person>] [--dry-run] [--json] [--no-worker]
  runbook list [--limit N] [--json]
  runbook show <run-id> [--json]
  runbook approve|reject|cancel <run-id> --as <person> [--gate <gate-id>] [--reason <text>]
  runbook decide <run-id> retry|skip|abort|done --as <person> [--gate <gate-id>]
  runbook lab up [--dir DIR] [--hosts N]      start the lab (sshd hosts, MariaDB) and write DIR/runbook.yaml
  runbook lab down [--dir DIR]
  runbook help [<pack> [<procedure>]]

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
  }));
  const seen = new Set(steps.map((s) => s.id));
  for (const p of run.plan) if (!seen.has(p.path)) steps.push({ id: p.path, title: p.title, risk: p.risk, status: 'pending' });
  return { id: run.id, procedure: run.procedure, args: run.args, requester: run.requester, status: run.status, ...(run.error ? { error: run.error } : {}), steps };
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

function requireAs(v: unknown, what: string): string {
  if (typeof v !== 'string' || !v) throw new UsageError(`${what} needs --as <person>: who is asking (a person of runbook.yaml)`);
  return v;
}

async function withRuntime<T>(fn: (rt: Runtime) => Promise<T>, opts: ConstructorParameters<typeof Runtime>[0] = {}): Promise<T> {
  const rt = new Runtime(opts);
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}

async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    as: { type: 'string' },
    'approve-as': { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
    'no-worker': { type: 'boolean' },
    quiet: { type: 'boolean' },
  });
  const text = positionals.join(' ').trim();
  if (!text) throw new UsageError('runbook run needs a command, e.g. runbook run "ovs flush node-3" --as alice');
  const person = requireAs(values.as, 'runbook run');
  const approveAs = values['approve-as'] as string | undefined;
  const json = !!values.json;
  const quiet = !!values.quiet;
  return withRuntime(async (rt) => {
    rt.policy.requirePerson(person);
    if (approveAs) rt.policy.requirePerson(approveAs);
    if (values['dry-run']) {
      const run = await rt.intake.request({ text, person, origin: { adapter: 'cli' }, dryRun: true });
      if (json) out(JSON.stringify({ procedure: run.procedure, args: run.args, dryRun: true, plan: run.plan, notes: run.notes }));
      else out([`dry run of "${run.procedure}" for ${person}: nothing runs`, 'plan:', ...planText(run.plan), ...run.notes.map((n) => `  note: ${n}`)].join('\n'));
      return 0;
    }
    if (!values['no-worker']) rt.startWorker();
    const run = await rt.intake.request({ text, person, origin: { adapter: 'cli' } });
    let refused: NotAllowedError | undefined;
    let interrupts = 0;
    const onSigint = () => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      err(`■ cancelling run ${run.id} (finally steps still run; press Ctrl-C again to stop following)`);
      void rt.decisions.cancel(run.id, person).catch((e) => err(`cannot cancel: ${errorMessage(e)}`));
    };
    process.on('SIGINT', onSigint);
    try {
      await followRun(rt.store, run.id, {
        onEvent: async (e: StampedEvent) => {
          if (!quiet) {
            const line = eventText(e, run);
            if (line) err(line);
          }
          if (e.type === 'gate.opened' && approveAs && e.gate.kind === 'approval' && !refused) {
            try {
              await rt.decisions.decide(run.id, approveAs, 'approve', { gateId: e.gate.id });
            } catch (x) {
              if (!(x instanceof NotAllowedError)) throw x;
              refused = x;
              err(`✘ --approve-as ${approveAs} refused: ${x.message}\n■ cancelling run ${run.id}: nothing past the gate has run`);
              await rt.decisions.cancel(run.id, person);
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
    else if (quiet) out(`${final.id} ${final.status}${final.error ? `: ${final.error}` : ''}`);
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
      out(JSON.stringify({ ...runJson(run), gates: Object.values(run.gates), plan: run.plan, createdAt: run.createdAt, finishedAt: run.finishedAt }));
      return 0;
    }
    out(`run ${run.id} · ${run.procedure} ${JSON.stringify(run.args)} · requested by ${run.requester} at ${run.createdAt} · ${run.status}${run.error ? `: ${run.error}` : ''}`);
    out('plan:');
    for (const l of planText(run.plan)) out(l);
    out('steps:');
    for (const s of Object.values(run.steps)) {
      const facts = [s.host, s.exitCode !== undefined && s.exitCode !== null ? `exit ${s.exitCode}` : '', s.rowsAffected !== undefined ? `${s.rowsAffected} rows` : '', formatDuration(s.durationMs), s.error ?? s.reason ?? ''].filter(Boolean).join(' · ');
      out(`  ${s.status.padEnd(11)} ${s.path}: ${s.title}${facts ? ` · ${facts}` : ''}`);
    }
    const open = Object.values(run.gates).filter((g) => g.status === 'open');
    for (const g of open) out(gateText(g, run.requester));
    return 0;
  });
}

async function cmdDecide(kind: 'approve' | 'reject' | 'cancel' | 'decide', argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { as: { type: 'string' }, gate: { type: 'string' }, reason: { type: 'string' } });
  const id = positionals[0];
  if (!id) throw new UsageError(`runbook ${kind} needs a run id`);
  const person = requireAs(values.as, `runbook ${kind}`);
  return withRuntime(async (rt) => {
    if (kind === 'cancel') {
      await rt.decisions.cancel(id, person);
      out(`cancellation of ${id} requested; finally steps will still run`);
      return 0;
    }
    const run = await rt.store.load(id);
    if (isTerminal(run.status)) throw new UsageError(`run ${id} has already ended (${run.status})`);
    const gate = rt.decisions.openGate(run, values.gate as string | undefined);
    let decision: Decision;
    if (kind === 'decide') {
      const d = positionals[1];
      if (!d || !['retry', 'skip', 'abort', 'done', 'approve', 'reject'].includes(d)) throw new UsageError('runbook decide <run-id> retry|skip|abort|done --as <person>');
      decision = d as Decision;
    } else if (gate.kind === 'approval') decision = kind;
    else if (gate.kind === 'manual') decision = kind === 'approve' ? 'done' : 'abort';
    else decision = kind === 'approve' ? 'retry' : 'abort';
    await rt.decisions.decide(id, person, decision, { gateId: gate.id, ...(values.reason ? { reason: values.reason as string } : {}) });
    out(`${decision} recorded for ${gate.stepPath} of ${id} by ${person}`);
    return 0;
  });
}

async function cmdLab(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parse(rest, { dir: { type: 'string' }, hosts: { type: 'string' } });
  const dir = resolve((values.dir as string | undefined) ?? '.lab');
  const lab = await import('./lab/index.js');
  if (sub === 'up') {
    const extraHosts = values.hosts ? Number(values.hosts) : 0;
    if (!Number.isInteger(extraHosts) || extraHosts < 0) throw new UsageError('--hosts takes a whole number of extra hosts (0 or more)');
    const started = performance.now();
    const l = await lab.labUp({ dir, extraHosts });
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

async function cmdServe(kind: 'start' | 'worker'): Promise<number> {
  const rt = new Runtime();
  const worker = rt.startWorker();
  let server: { close(): Promise<void> } | undefined;
  let adapters: { names: string[]; stop(): Promise<void> } | undefined;
  if (kind === 'start') {
    const { startHttp } = await import('./http/server.js');
    const { startAdapters } = await import('./adapters/index.js');
    const started = await startAdapters(rt);
    adapters = started;
    server = await startHttp(rt, started.routes);
    rt.log.info({ adapters: started.names }, started.names.length ? 'chat adapters started' : 'no chat adapter configured (set SLACK_* or DISCORD_*)');
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
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest);
      case 'list':
        return await cmdList(rest);
      case 'show':
        return await cmdShow(rest);
      case 'approve':
      case 'reject':
      case 'cancel':
      case 'decide':
        return await cmdDecide(cmd, rest);
      case 'lab':
        return await cmdLab(rest);
      case 'start':
      case 'worker':
        return await cmdServe(cmd);
      case 'help':
      case '--help':
      case '-h':
      case undefined: {
        if (rest.length) {
          const { defaultCatalog } = await import('./procedures/index.js');
          out(defaultCatalog().help(rest[0], rest[1]));
        } else out(USAGE);
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${cmd}"\n\n${USAGE}`);
    }
  } catch (e) {
    if (e instanceof ConfigError) {
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

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli.js')) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
    // Open handles (ssh keepalives, redis) must not keep a finished command alive.
    setTimeout(() => process.exit(code), 200).unref();
  });
}
