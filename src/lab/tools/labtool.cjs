#!/usr/bin/env node
'use strict';
/**
 * Entry point of every simulated tool in the lab. `<lab dir>/bin/<tool>` is a symlink to this file;
 * the tool is chosen by the name it was called by. LAB_DIR and LAB_HOST (set by the host's sshd)
 * say which simulated host's state to use.
 *
 * To add a tool: write `sims/<name>.cjs` exporting `{ '<tool name>': handler }` and add it to
 * `handlers` below; `runbook lab up` links every name found here into the lab's bin/.
 * A handler is `(ctx: HostContext, args: string[]) => number | Promise<number>` (the exit code);
 * it throws ToolError to end with a message on stderr.
 *
 * Around every handler this file:
 * - applies the host's faults (`faults.json`: `[{ match, action: fail|hang|slow, exitCode?, stderr?,
 *   delayMs?, times? }]`); `match` is compared word by word with the start of the invocation
 *   (`virsh resume` matches `virsh resume 30`, not `virsh resumex`); the first matching fault wins;
 * - appends `{"t","argv","exit"}` to `calls.log` when the invocation ends, also when it is ended by
 *   SIGTERM, SIGHUP or SIGINT (exit 128 + signal number); an invocation SIGKILLed, or signalled
 *   while node is still starting (its first few tens of ms), leaves no line.
 */
const os = require('node:os');
const path = require('node:path');
const { setTimeout: sleep } = require('node:timers/promises');
const runtime = require('./runtime.cjs');

const handlers = {
  ...require('./sims/ovs.cjs'),
  ...require('./sims/virsh.cjs'),
  ...require('./sims/disk.cjs'),
  ...require('./sims/lab-sleep.cjs'),
  ...require('./sims/service.cjs'),
  ...require('./sims/power.cjs'),
  ...require('./sims/afs.cjs'),
  ...require('./sims/ovs-cluster.cjs'),
  ...require('./sims/files.cjs'),
  ...require('./sims/scp.cjs'),
  ...require('./sims/blockdev.cjs'),
  ...require('./sims/accounts.cjs'),
  ...require('./sims/cat.cjs'),
};

/** What a handler may touch: the state of the host it runs on, nothing else. */
class HostContext {
  constructor(labDir, host) {
    this.labDir = labDir;
    this.host = host;
  }

  /** State file `state/<name>.json`, or fallback when it does not exist. */
  read(name, fallback) {
    return runtime.readJson(runtime.statePath(this.labDir, this.host, name), fallback);
  }

  /** Locked read-modify-write of `state/<name>.json`; a ToolError thrown by fn leaves it unchanged. */
  update(name, fallback, fn) {
    return runtime.updateJson(this.labDir, this.host, runtime.statePath(this.labDir, this.host, name), fallback, fn);
  }

  setting(key, fallback) {
    const settings = runtime.readJson(runtime.hostFile(this.labDir, this.host, 'settings.json'), {});
    return key in settings ? settings[key] : fallback;
  }

  /** Real location of a path the operator typed (see runtime.realPath). */
  realPath(p) {
    return runtime.realPath(this.labDir, this.host, p);
  }

  /** Directory holding the contents of the disk image at path p. */
  imagePath(p) {
    return runtime.imagePath(this.labDir, this.host, p);
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

async function run(tool, args, labDir, host) {
  const handler = handlers[tool];
  if (handler === undefined) throw new runtime.ToolError(`labtool: no simulated tool named ${tool}`, 127);
  const fault = takeFault(labDir, host, [tool, ...args]);
  if (fault !== undefined) {
    const code = await applyFault(fault, tool);
    if (code !== undefined) return code;
  }
  return handler(new HostContext(labDir, host), args);
}

async function main() {
  const tool = path.basename(process.argv[1]);
  const args = process.argv.slice(2);
  const { LAB_DIR: labDir, LAB_HOST: host } = process.env;
  if (!labDir || !host) {
    process.stderr.write(`${tool}: LAB_DIR and LAB_HOST are not set; lab tools run only on a lab host\n`);
    process.exitCode = 2;
    return;
  }
  const t = Date.now();
  const finish = (exit) => runtime.appendCall(labDir, host, { t, argv: [tool, ...args], exit });
  for (const signal of ['SIGTERM', 'SIGHUP', 'SIGINT']) {
    process.on(signal, () => {
      const code = 128 + os.constants.signals[signal];
      finish(code);
      process.exit(code);
    });
  }
  let code;
  try {
    code = await run(tool, args, labDir, host);
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
