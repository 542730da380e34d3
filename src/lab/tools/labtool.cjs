#!/usr/bin/env node
'use strict';
/**
 * No upstream: lab plumbing (it doubles no real program; each simulator in sims/ names its source).
 * Entry point of every simulated tool in the lab. `<lab dir>/bin/<tool>` is a symlink to this file;
 * the tool is chosen by the name it was called by. LAB_DIR and LAB_HOST (set by the host's sshd)
 * say which simulated host's state to use.
 *
 * To add a tool: write `sims/<name>.cjs` exporting `{ '<tool name>': handler }` and add it to
 * `handlers` below; `runbook lab up` links every name found here into the lab's bin/. A pack's own
 * tools come from its `lab/<tool>.cjs`, listed in packs.json (see packTool). Tools no real host has
 * under that name (the server side of the lab's Python doubles) go in `internal`: they are run as
 * `node labtool.cjs <tool> <args>`, never from a session's PATH.
 * A handler is `(ctx: ToolContext, args: string[]) => number | Promise<number>` (the exit code);
 * it throws ToolError to end with a message on stderr. Optional properties of a handler:
 * - `requires(profile)`: whether the host has the program at all (profile: state/init.json, see
 *   service-state.cjs). A host without it answers as its login shell, dash, does for a command it
 *   cannot find: `sh: 1: <name>: not found` on stderr, exit 127, and nothing is logged. Every name
 *   the lab links shadows the machine's own program of that name (/usr/bin/systemctl, ps, …), so
 *   a real one never runs on a lab host.
 * - `words(args)`: the words the invocation is known by in faults and calls.log, when not
 *   `[tool, ...args]` (an init script is `/etc/init.d/<name> <action>`).
 *
 * Around every handler this file:
 * - applies the host's faults (`faults.json`: `[{ match, action: fail|hang|slow, exitCode?, stderr?,
 *   delayMs?, times? }]`); `match` is compared word by word with the start of the invocation
 *   (`virsh resume` matches `virsh resume 30`, not `virsh resumex`); the first matching fault wins;
 * - appends `{"t","argv","exit"}` to `calls.log` when the invocation ends, also when it is ended by
 *   SIGTERM, SIGHUP or SIGINT (exit 128 + signal number); an invocation SIGKILLed, or signalled
 *   while node is still starting (its first few tens of ms), leaves no line.
 * A program one tool runs (`service x stop` runs `systemctl stop x.service` on a systemd host) goes
 * through `ctx.invoke`, with its own faults and its own calls.log line, as a real one would.
 */
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const runtime = require('./runtime.cjs');
const services = require('./service-state.cjs');

const handlers = {
  ...require('./sims/ovs.cjs'),
  ...require('./sims/virsh.cjs'),
  ...require('./sims/disk.cjs'),
  ...require('./sims/lab-sleep.cjs'),
  ...require('./sims/systemctl.cjs'),
  ...require('./sims/upstart.cjs'),
  ...require('./sims/service.cjs'),
  ...require('./sims/runit.cjs'),
  ...require('./sims/procps.cjs'),
  ...require('./sims/psmisc.cjs'),
  ...require('./sims/power.cjs'),
  ...require('./sims/afs.cjs'),
  ...require('./sims/ovs-cluster.cjs'),
  ...require('./sims/files.cjs'),
  ...require('./sims/scp.cjs'),
  ...require('./sims/blockdev.cjs'),
  ...require('./sims/accounts.cjs'),
  ...require('./sims/cat.cjs'),
  ...require('./sims/journal.cjs'),
};

const internal = {
  ...require('./sims/ovs-dal.cjs'),
};

/** A handler's context: the host's state (runtime.HostContext), and the host's other programs. */
class ToolContext extends runtime.HostContext {
  /** Runs another program of the host as this one would exec it: its faults, its calls.log line, its output. */
  invoke(tool, args) {
    return invoke(this, tool, args);
  }

  /** As invoke, with its output discarded (`prog >/dev/null 2>&1`). */
  async quietly(tool, args) {
    const out = process.stdout.write;
    const err = process.stderr.write;
    process.stdout.write = () => true;
    process.stderr.write = () => true;
    try {
      return await invoke(this, tool, args);
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
  }
}

function matches(fault, words) {
  const joined = words.join(' ');
  return joined === fault.match || joined.startsWith(`${fault.match} `);
}

/**
 * Finds the fault for this invocation and uses up one of its `times` in the same locked update.
 * The unlocked look first spares the lock (and a rewrite) to the many invocations no fault matches.
 */
function takeFault(labDir, host, words) {
  const file = runtime.hostFile(labDir, host, 'faults.json');
  if (!runtime.readJson(file, []).some((f) => matches(f, words))) return undefined;
  return runtime.updateJson(labDir, host, file, [], (faults) => {
    const i = faults.findIndex((f) => matches(f, words));
    if (i < 0) return undefined;
    const fault = { ...faults[i] };
    if (fault.times !== undefined) {
      faults[i].times -= 1;
      if (faults[i].times <= 0) faults.splice(i, 1);
    }
    return fault;
  });
}

/** Returns an exit code when the fault ends the invocation, undefined when the tool should go on. */
async function applyFault(fault, tool) {
  switch (fault.action) {
    case 'fail':
      process.stderr.write(`${fault.stderr ?? `${tool}: simulated failure (lab fault)`}\n`);
      return fault.exitCode ?? 1;
    case 'hang':
      // Never settles: only a signal ends this. The interval keeps the event loop, and so the
      // signal handlers, alive.
      return new Promise(() => setInterval(() => {}, 60_000));
    case 'slow':
      await sleep(fault.delayMs ?? 1000);
      return undefined;
    default:
      throw new runtime.ToolError(`${tool}: unknown fault action ${JSON.stringify(fault.action)} in faults.json`, 70);
  }
}

/**
 * A tool simulated by a pack (src/lab/pack-tools.ts): tools/packs.json names its module, which
 * exports `{ '<tool>': handler }` as the sims above do. Read only for a tool the lab does not have.
 */
function packTool(tool) {
  const file = runtime.readJson(path.join(__dirname, 'packs.json'), {})[tool];
  return file === undefined ? undefined : require(path.join(__dirname, file))[tool];
}

/** The handler, or a ToolError as the login shell answers for a program the host does not have. */
function handlerFor(ctx, tool) {
  const handler = handlers[tool] ?? internal[tool] ?? packTool(tool);
  if (handler === undefined) throw new runtime.ToolError(`labtool: no simulated tool named ${tool}`, 127);
  if (handler.requires !== undefined && !handler.requires(services.read(ctx))) throw new runtime.ToolError(`sh: 1: ${tool}: not found`, 127);
  return handler;
}

/** The words an invocation is known by in faults and calls.log. */
function wordsOf(handler, tool, args) {
  return handler.words ? handler.words(args) : [tool, ...args];
}

async function run(ctx, handler, words, args) {
  const fault = takeFault(ctx.labDir, ctx.host, words);
  if (fault !== undefined) {
    const code = await applyFault(fault, words[0]);
    if (code !== undefined) return code;
  }
  return handler(ctx, args);
}

/** A program run by another one: its own faults and calls.log line; a ToolError becomes stderr and an exit code. */
async function invoke(ctx, tool, args) {
  let handler;
  try {
    handler = handlerFor(ctx, tool);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    return err.exitCode;
  }
  const t = Date.now();
  const words = wordsOf(handler, tool, args);
  let code;
  try {
    code = await run(ctx, handler, words, args);
  } catch (err) {
    if (!(err instanceof runtime.ToolError)) throw err;
    process.stderr.write(`${err.message}\n`);
    code = err.exitCode;
  }
  runtime.appendCall(ctx.labDir, ctx.host, { t, argv: words, exit: code });
  return code;
}

async function main() {
  const direct = path.basename(process.argv[1]) === 'labtool.cjs';
  const tool = direct ? (process.argv[2] ?? '') : path.basename(process.argv[1]);
  const args = process.argv.slice(direct ? 3 : 2);
  const { LAB_DIR: labDir, LAB_HOST: host } = process.env;
  if (!labDir || !host) {
    process.stderr.write(`${tool}: LAB_DIR and LAB_HOST are not set; lab tools run only on a lab host\n`);
    process.exitCode = 2;
    return;
  }
  const t = Date.now();
  const ctx = new ToolContext(labDir, host);
  let words = [tool, ...args];
  let ran = false;
  const finish = (exit) => ran && runtime.appendCall(labDir, host, { t, argv: words, exit });
  for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT']) {
    process.on(signal, () => {
      const code = 128 + os.constants.signals[signal];
      finish(code);
      process.exit(code);
    });
  }
  let code;
  try {
    const handler = handlerFor(ctx, tool);
    words = wordsOf(handler, tool, args);
    ran = true;
    code = await run(ctx, handler, words, args);
  } catch (err) {
    const known = err instanceof runtime.ToolError;
    process.stderr.write(`${known ? err.message : `${tool}: ${err.stack}`}\n`);
    code = known ? err.exitCode : 70;
  }
  finish(code);
  // exitCode rather than exit(): output to a pipe is flushed before the process ends.
  process.exitCode = code;
}

if (require.main === module) {
  void main();
}

module.exports = { toolNames: Object.keys(handlers) };
