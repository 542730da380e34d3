// Makes sure what the integration tests and the lab need is on this machine: Redis, MariaDB and
// OpenSSH's sshd. Starts a service that is installed but stopped; installs a missing Debian
// package when running as root (CI, a fresh machine). Says in one line what is missing otherwise.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

const isRoot = process.getuid?.() === 0;
let aptUpdated = false;

function log(msg) {
  process.stderr.write(`[ensure] ${msg}\n`);
}

function reachable(host, port, timeoutMs = 800) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function waitFor(host, port, seconds) {
  for (let i = 0; i < seconds * 5; i++) {
    if (await reachable(host, port)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function aptInstall(pkgs) {
  if (!isRoot) throw new Error(`missing: ${pkgs.join(' ')}. Install it: sudo apt-get install -y ${pkgs.join(' ')}`);
  if (!aptUpdated) {
    log('apt-get update');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    aptUpdated = true;
  }
  log(`apt-get install ${pkgs.join(' ')}`);
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

const has = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0 || existsSync(bin);

export async function ensureRedis(url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379') {
  const u = new URL(url);
  const host = u.hostname || '127.0.0.1';
  const port = Number(u.port || 6379);
  if (await reachable(host, port)) return;
  if (!['127.0.0.1', 'localhost'].includes(host)) throw new Error(`Redis at ${host}:${port} does not answer; start it or fix REDIS_URL`);
  if (!has('redis-server')) aptInstall(['redis-server']);
  log(`starting redis-server on ${host}:${port}`);
  execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'inherit' });
  if (!(await waitFor(host, port, 10))) throw new Error('redis-server did not start');
}

export async function ensureMariaDb(url = process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306') {
  const u = new URL(url);
  const host = u.hostname || '127.0.0.1';
  const port = Number(u.port || 3306);
  if (await reachable(host, port)) return;
  if (!['127.0.0.1', 'localhost'].includes(host)) throw new Error(`MariaDB at ${host}:${port} does not answer; start it or fix MYSQL_URL`);
  if (!has('/usr/sbin/mariadbd')) aptInstall(['mariadb-server']);
  log('starting mariadbd');
  spawnSync('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd'], { stdio: 'inherit' });
  if (!(await waitFor(host, port, 30))) throw new Error('mariadbd did not start: see /var/log/mysql');
}

export function ensureSshd() {
  if (!existsSync('/usr/sbin/sshd')) aptInstall(['openssh-server']);
  if (!has('ssh')) aptInstall(['openssh-client']);
}

/** The console's end-to-end test drives Debian's Chromium (playwright-core never downloads a browser). */
export function ensureChromium() {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(path)) aptInstall(['chromium']);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await ensureRedis();
    await ensureMariaDb();
    ensureSshd();
    ensureChromium();
  } catch (e) {
    log(e.message);
    process.exit(1);
  }
}
