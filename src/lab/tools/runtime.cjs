'use strict';
/**
 * No upstream: lab plumbing (it doubles no real program; each simulator in sims/ names its source).
 * Runtime shared by the lab's simulated tools (run as the unprivileged lab user over SSH) and by
 * src/lab (TypeScript, which loads this file with createRequire). Keeping the host-directory layout,
 * the lock and the JSON writes in one place means a fault set from a test and a fault used up by a
 * tool can never disagree about where a file is or lose each other's updates.
 *
 * Layout of a simulated host, `<lab dir>/hosts/<host>/`:
 *   state/<name>.json  the tools' state (init: the services and processes, vdisks, virsh, nbd, mounts)
 *   settings.json      per-host knobs (e.g. pendingChecks)
 *   faults.json        faults the tools must inject (see labtool.cjs)
 *   calls.log          one JSON line per tool invocation
 *   root/              fake root: absolute paths given to tools land here
 *   images/<path>/     contents of the disk image at <path> in the fake root, shown when mounted
 *   .lock              per-host lock file (holds the owner's pid)
 *   sshd_config, ssh_host_ed25519_key   the host's sshd (written by src/lab)
 */
const fs = require('node:fs');
const path = require('node:path');
const services = require('./service-state.cjs');

/** Thrown by a tool handler to end with a message on stderr and an exit code. */
class ToolError extends Error {
  constructor(message, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

function hostDir(labDir, host) {
  return path.join(labDir, 'hosts', host);
}

function hostFile(labDir, host, name) {
  return path.join(hostDir(labDir, host), name);
}

function statePath(labDir, host, name) {
  return path.join(hostDir(labDir, host), 'state', `${name}.json`);
}

/** The file's text, or '' when it does not exist (also when it vanished between two looks, as a released lock does). */
function readText(file) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err.code === 'ENOENT') return '';
    throw err;
  }
}

function readJson(file, fallback) {
  const text = readText(file);
  return text === '' ? fallback : JSON.parse(text);
}

/** Rename is atomic, so a concurrent reader sees the old or the new file, never half of one. */
function writeJsonAtomic(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function processAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive but owned by another user (the root test process vs. the lab user).
    return err.code === 'EPERM';
  }
}

const LOCK_WAIT_MS = 10_000;

/**
 * Runs fn while holding the host's lock. Tools on one host run concurrently (forEach fans out several
 * commands at once), and every read-modify-write of a host's files happens under this lock. A lock
 * whose holder died (SIGKILL inside the few milliseconds it is held) is broken.
 */
function withHostLock(labDir, host, fn) {
  const lock = hostFile(labDir, host, '.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number(readText(lock));
      if (holder > 0 && !processAlive(holder)) {
        fs.rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`lab: lock ${lock} held by pid ${holder} for over ${LOCK_WAIT_MS} ms`);
      sleepSync(5);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

/** Locked read-modify-write of a JSON file; fn may mutate the value or return a replacement. */
function updateJson(labDir, host, file, fallback, fn) {
  return withHostLock(labDir, host, () => {
    const value = readJson(file, fallback);
    const result = fn(value);
    writeJsonAtomic(file, value);
    return result;
  });
}

/** One line per invocation; O_APPEND writes this small are atomic, so no lock is needed. */
function appendCall(labDir, host, call) {
  fs.appendFileSync(hostFile(labDir, host, 'calls.log'), `${JSON.stringify(call)}\n`);
}

function readCalls(labDir, host) {
  return readText(hostFile(labDir, host, 'calls.log'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** `/var/lib/../x` → `/var/x`: `..` can never climb above the fake root. */
function virtualPath(p) {
  return path.posix.resolve('/', p);
}

/** Directory holding the contents of the disk image at path p of the fake root. */
function imagePath(labDir, host, p) {
  return path.join(hostFile(labDir, host, 'images'), virtualPath(p));
}

/**
 * Where a path given to a tool really lives: inside a mounted disk image when it is under a
 * simulated mount point, else under the host's fake root.
 */
function realPath(labDir, host, p) {
  // A real program of the host (swift-ring-builder) works in the fake root by its real path, which
  // runbook.yaml gives (vars.swiftRingDir): such a path is already where it lives.
  const root = hostFile(labDir, host, 'root');
  if (p.startsWith(`${root}/`)) return p;
  const vp = virtualPath(p);
  const mounts = readJson(statePath(labDir, host, 'mounts'), {});
  const point = Object.keys(mounts)
    .filter((m) => vp === m || vp.startsWith(m === '/' ? m : `${m}/`))
    .sort((a, b) => b.length - a.length)[0];
  if (point !== undefined) {
    return path.join(imagePath(labDir, host, mounts[point].source), path.posix.relative(point, vp));
  }
  return path.join(hostFile(labDir, host, 'root'), vp);
}

/** What a tool (or the lab, from TypeScript) may touch: the state of one host, nothing else. */
class HostContext {
  constructor(labDir, host) {
    this.labDir = labDir;
    this.host = host;
  }

  /** State file `state/<name>.json`, or fallback when it does not exist. */
  read(name, fallback) {
    return readJson(statePath(this.labDir, this.host, name), fallback);
  }

  /** Locked read-modify-write of `state/<name>.json`; a ToolError thrown by fn leaves it unchanged. */
  update(name, fallback, fn) {
    return updateJson(this.labDir, this.host, statePath(this.labDir, this.host, name), fallback, fn);
  }

  setting(key, fallback) {
    const settings = readJson(hostFile(this.labDir, this.host, 'settings.json'), {});
    return key in settings ? settings[key] : fallback;
  }

  /** Real location of a path the operator typed (see realPath). */
  realPath(p) {
    return realPath(this.labDir, this.host, p);
  }

  /** Directory holding the contents of the disk image at path p. */
  imagePath(p) {
    return imagePath(this.labDir, this.host, p);
  }

  /** `running`, `stopped` or `failed`; undefined for a service the host does not have. */
  serviceState(name) {
    return services.read(this).services[name]?.status;
  }

  /** Every service of the host and its state (`running`, `stopped`, `failed`). */
  serviceStates() {
    return Object.fromEntries(Object.entries(services.read(this).services).map(([name, s]) => [name, s.status]));
  }
}

module.exports = {
  ToolError,
  HostContext,
  hostDir,
  hostFile,
  statePath,
  readJson,
  updateJson,
  appendCall,
  readCalls,
  virtualPath,
  imagePath,
  realPath,
};
