'use strict';
/**
 * Detached helper of power.cjs: `node power-helper.cjs <tool pid> halt|reboot <down ms> <pid:start,…>`, with
 * LAB_DIR and LAB_HOST in its environment. Waits until the `shutdown`/`reboot` command that started
 * it has exited (so its answer reached the caller), then kills what is left of the host: its sshd
 * listener, the listener's descendants (connections, sessions) and the processes carrying this
 * host's LAB_DIR and LAB_HOST, never itself. For a reboot it waits `down ms`, then starts the host's
 * sshd again exactly as src/lab/sshd.ts does, and records the new boot in the `power` state.
 * Not a tool: labtool.cjs does not link it.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const runtime = require('../runtime.cjs');

const [toolPid, mode, downMs, seen = ''] = process.argv.slice(2);
const { LAB_DIR: labDir, LAB_HOST: host } = process.env;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** What the helper did, in `<lab dir>/run/<host>.power.log` (next to the host's sshd log). */
function note(text) {
  try {
    fs.appendFileSync(path.join(labDir, 'run', `${host}.power.log`), `${new Date().toISOString()} ${mode} ${text}\n`);
  } catch {
    // Only a log.
  }
}

function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

function read(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/**
 * The host's processes: its sshd listener (by its config path), the listener's descendants (sshd
 * rewrites their command line and clobbers their environment, so only descent finds them), and the
 * processes carrying this host's LAB_DIR and LAB_HOST.
 */
function hostProcesses(labDir, host) {
  const config = path.join(labDir, 'hosts', host, 'sshd_config');
  const env = [`LAB_DIR=${labDir}`, `LAB_HOST=${host}`];
  const all = fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map((n) => {
      const pid = Number(n);
      const stat = read(`/proc/${pid}/stat`);
      if (!stat) return undefined;
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      return { pid, ppid, cmdline: read(`/proc/${pid}/cmdline`), environ: read(`/proc/${pid}/environ`).split('\0') };
    })
    .filter((p) => p !== undefined && p.pid !== process.pid);
  const found = new Set(all.filter((p) => p.cmdline.includes(config) || env.every((e) => p.environ.includes(e))).map((p) => p.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  found.delete(process.pid);
  return [...found];
}

/** `pid:starttime`, so a pid reused meanwhile by another process is never killed. */
function identity(pid) {
  const stat = read(`/proc/${pid}/stat`);
  return stat ? `${pid}:${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}` : undefined;
}

async function killHost() {
  // The connections the tool saw while the listener still lived (once it is gone they are no one's descendants).
  const before = seen.split(',').filter((x) => x && identity(Number(x.split(':')[0])) === x).map((x) => Number(x.split(':')[0]));
  for (let round = 0; round < 3; round++) {
    const pids = [...new Set([...(round === 0 ? before : []), ...hostProcesses(labDir, host)])].filter((p) => p !== process.pid);
    note(`round ${round}: killing ${pids.join(' ') || 'nothing'}`);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already, or not ours.
      }
    }
    const deadline = Date.now() + 3000;
    while (pids.some(alive) && Date.now() < deadline) await sleep(10);
  }
}

function startSshd() {
  const config = path.join(labDir, 'hosts', host, 'sshd_config');
  // The host's sshd log was opened by whoever started the lab (root): append if allowed, else our own.
  let log;
  for (const name of [`${host}.log`, `${host}.sshd-after-reboot.log`]) {
    try {
      log = fs.openSync(path.join(labDir, 'run', name), 'a');
      break;
    } catch {
      // Try the next.
    }
  }
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], {
    detached: true,
    stdio: ['ignore', log ?? 'ignore', log ?? 'ignore'],
    env: { LAB_DIR: labDir, LAB_HOST: host, PATH: '/usr/sbin:/usr/bin:/bin' },
  });
  if (log !== undefined) fs.closeSync(log);
  child.unref();
  return child.pid;
}

async function main() {
  const deadline = Date.now() + 30_000;
  while (alive(Number(toolPid)) && Date.now() < deadline) await sleep(5);
  await killHost();
  if (mode !== 'reboot') {
    // Only now is the host really off: a person (src/lab startHost) may power it on from here.
    runtime.updateJson(labDir, host, runtime.statePath(labDir, host, 'power'), {}, (p) => {
      p.state = 'off';
      p.offAt = Date.now();
    });
    return;
  }
  await sleep(Number(downMs) || 0);
  // The lab may have been taken down meanwhile: then there is nothing to bring back.
  if (!fs.existsSync(path.join(labDir, 'lab.json')) || !fs.existsSync(path.join(labDir, 'hosts', host, 'sshd_config'))) return;
  runtime.updateJson(labDir, host, runtime.statePath(labDir, host, 'power'), {}, (p) => {
    p.state = 'on';
    p.bootedAt = Date.now();
    p.boots = (p.boots ?? 0) + 1;
  });
  const pid = startSshd();
  note(`started sshd ${pid}`);
  // Wait until the new sshd has written its pid file (it listens from then on), as src/lab does.
  const pidFile = path.join(labDir, 'run', `${host}.pid`);
  const until = Date.now() + 15_000;
  while (Date.now() < until && read(pidFile).trim() !== String(pid)) await sleep(10);
}

if (require.main === module) {
  main().catch((err) => {
    note(`failed: ${err && err.stack}`);
    process.exit(1);
  });
}

module.exports = { hostProcesses, identity };
