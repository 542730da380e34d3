'use strict';
/**
 * Upstream: systemd 252 systemctl (shutdown, reboot); util-linux 2.38 login-utils/last.c.
 * Power of a simulated host: `shutdown -h now` (the host goes down and stays down until someone
 * "powers it on": src/lab startHost), `reboot` (down, then up again after the host setting
 * `rebootDownMs`, default 1500), and `last -F -n 1 reboot` (when the host last booted), which tells
 * a host that came back from one that has not gone down yet.
 *
 * Going down is real in the lab: the host's sshd listener is stopped before the tool answers (no new
 * connection is accepted from then on), and a detached helper (power-helper.cjs) kills the host's
 * remaining sessions once this command has exited, so the caller still gets its answer and exit 0,
 * as from a real `shutdown -h now` whose reply makes it out before the network goes. Only processes
 * of this host (its sshd listener by its config path, its descendants, and processes carrying this
 * host's LAB_DIR and LAB_HOST) are touched; never anything of the machine the lab runs on.
 *
 * State: `power` = { state: "halting" | "off" | "rebooting" | "on", bootedAt: <ms>, boots: n, last: "<command>" }:
 * "off" (shutdown) and "on" (reboot) are written by the helper once the host is really down / back.
 * Setting `salvageChecks` (n): a reboot leaves the AFS fileserver salvaging for n `bos status` calls;
 * `bosserverStartChecks` (default: the host's `afs.bosserverStartChecks`): for that many calls before,
 * its bosserver does not answer yet.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ToolError } = require('../runtime.cjs');
const { hostProcesses, identity } = require('./power-helper.cjs');

/**
 * When the host was "installed": its host key, written once at lab up. (The host directory's own
 * mtime moves with every lock file the tools create in it, so a boot dated by it could fall in the
 * same second as a reboot's, and the reboot would never show.)
 */
const INSTALLED_AT = (ctx) => fs.statSync(path.join(ctx.labDir, 'hosts', ctx.host, 'ssh_host_ed25519_key')).mtimeMs;
const BOOTED_AT = (ctx) => ctx.read('power', {}).bootedAt ?? INSTALLED_AT(ctx);

/** Stops the host's sshd listener now (its pid file names it), so no new connection is accepted. */
function stopListener(ctx) {
  const pidFile = path.join(ctx.labDir, 'run', `${ctx.host}.pid`);
  const config = path.join(ctx.labDir, 'hosts', ctx.host, 'sshd_config');
  let pid;
  try {
    pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    if (!(pid > 0) || !fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(config)) return;
  } catch {
    return;
  }
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
}

/** Starts the helper that kills the host's sessions after this command, and (reboot) brings it back. */
function goDown(ctx, mode) {
  const downMs = Number(ctx.setting('rebootDownMs', 1500));
  // Seen now, while the listener lives: its connections are found as its descendants only.
  const seen = hostProcesses(ctx.labDir, ctx.host)
    .filter((p) => p !== process.pid)
    .map(identity)
    .filter(Boolean)
    .join(',');
  const helper = spawn(process.execPath, [path.join(__dirname, 'power-helper.cjs'), String(process.pid), mode, String(downMs), seen], {
    detached: true,
    stdio: 'ignore',
    // LAB_DIR and LAB_HOST: `runbook lab down` finds (and kills) the helper like any process of the host.
    env: { LAB_DIR: ctx.labDir, LAB_HOST: ctx.host, PATH: '/usr/sbin:/usr/bin:/bin' },
  });
  helper.unref();
  stopListener(ctx);
}

function wall(ctx, what) {
  const when = new Date().toUTCString();
  process.stdout.write(`\nBroadcast message from root@${ctx.host} (pts/0) (${when}):\n\nThe system is going down for ${what} NOW!\n`);
}

module.exports = {
  shutdown(ctx, args) {
    const halt = args.includes('-h') || args.includes('-P');
    if (!halt || !args.includes('now') || args.some((a) => !['-h', '-P', 'now'].includes(a))) {
      throw new ToolError('shutdown: the lab simulates only "shutdown -h now"', 1);
    }
    ctx.update('power', {}, (p) => {
      // "off" once the helper has ended every process of the host.
      p.state = 'halting';
      p.last = 'shutdown -h now';
      p.at = Date.now();
    });
    wall(ctx, 'system halt');
    goDown(ctx, 'halt');
    return 0;
  },

  reboot(ctx, args) {
    if (args.length > 0) throw new ToolError('reboot: the lab simulates only "reboot" without options', 1);
    const salvage = Number(ctx.setting('salvageChecks', 0));
    ctx.update('power', {}, (p) => {
      p.state = 'rebooting';
      p.last = 'reboot';
      p.at = Date.now();
    });
    // The fileserver comes back salvaging its vice partitions when told to (unclean shutdown), and
    // its bosserver answers only after the host's start-up time.
    ctx.update('afs', {}, (afs) => {
      afs.salvageChecksLeft = salvage;
      afs.bosserverDownChecks = Number(ctx.setting('bosserverStartChecks', afs.bosserverStartChecks ?? 0));
    });
    wall(ctx, 'reboot');
    goDown(ctx, 'reboot');
    return 0;
  },

  /**
   * `last -F -n 1 reboot`: the latest boot, with seconds, as util-linux prints it. A host that came
   * back from a reboot shows a later boot than before; one that has not gone down yet, the same.
   */
  last(ctx, args) {
    if (args.join(' ') !== '-F -n 1 reboot') throw new ToolError('last: the lab simulates only "last -F -n 1 reboot"', 1);
    const since = new Date(BOOTED_AT(ctx)).toString().slice(0, 24);
    const start = new Date(INSTALLED_AT(ctx)).toString().slice(0, 24);
    process.stdout.write(`reboot   system boot  5.10.0-lab-amd64  ${since}   still running\n\nwtmp begins ${start}\n`);
    return 0;
  },
};
