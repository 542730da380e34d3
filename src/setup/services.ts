/**
 * What a fresh Debian machine may lack, found and fixed or explained in one line: Redis, MariaDB
 * (the lab's), OpenSSH's sshd (the lab's hosts), the OpenStack programs the lab's controller runs,
 * Chromium (the console's browser test). Installs a
 * missing Debian package only when running as root; otherwise says the command that fixes it.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { resolve } from 'node:path';

export class SetupError extends Error {
  override readonly name = 'SetupError';
}

const isRoot = () => process.getuid?.() === 0;
let aptUpdated = false;

function log(msg: string): void {
  process.stderr.write(`[setup] ${msg}\n`);
}

export function reachable(host: string, port: number, timeoutMs = 800): Promise<boolean> {
  return new Promise((done) => {
    const s = net.connect({ host, port });
    const end = (ok: boolean) => {
      s.destroy();
      done(ok);
    };
    s.setTimeout(timeoutMs, () => end(false));
    s.once('connect', () => end(true));
    s.once('error', () => end(false));
  });
}

async function waitFor(host: string, port: number, seconds: number): Promise<boolean> {
  for (let i = 0; i < seconds * 5; i++) {
    if (await reachable(host, port)) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

const has = (bin: string) => existsSync(bin) || spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

export function aptInstall(pkgs: string[]): void {
  if (!isRoot()) throw new SetupError(`missing ${pkgs.join(' ')}: install it with: sudo apt-get install -y ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    log('apt-get update');
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    aptUpdated = true;
  }
  log(`apt-get install ${pkgs.join(' ')}`);
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'], env });
}

const isLocal = (host: string) => host === '127.0.0.1' || host === 'localhost' || host === '::1';

/** Makes the Redis at `url` answer: starts the system's redis-server on that port if it is local and stopped. */
export async function ensureRedis(url: string): Promise<void> {
  const u = new URL(url);
  const host = u.hostname || '127.0.0.1';
  const port = Number(u.port || 6379);
  if (await reachable(host, port)) return;
  if (!isLocal(host)) throw new SetupError(`Redis at ${host}:${port} does not answer: start it, or fix REDIS_URL`);
  if (!has('redis-server')) aptInstall(['redis-server']);
  log(`starting redis-server on ${host}:${port}`);
  execFileSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  if (!(await waitFor(host, port, 10))) throw new SetupError(`redis-server did not start on ${port}: run redis-server --port ${port} by hand to see why`);
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = net.createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => done(port));
    });
  });
}

/**
 * A redis-server of the bot's own, on a free loopback port, keeping its data (append-only file)
 * in `dir`; it lives as long as the returned child. Used when REDIS_URL is not set and no Redis
 * answers on 127.0.0.1:6379.
 */
export async function startOwnRedis(dir: string): Promise<{ url: string; child: ChildProcess }> {
  if (!has('redis-server')) aptInstall(['redis-server']);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--dir', resolve(dir), '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', ''], { stdio: 'ignore' });
  if (!(await waitFor('127.0.0.1', port, 10))) {
    child.kill();
    throw new SetupError('redis-server did not start: run it by hand to see why');
  }
  return { url: `redis://127.0.0.1:${port}`, child };
}

/** The lab's MariaDB: started when installed but stopped, installed when missing (as root). */
export async function ensureMariaDb(url: string): Promise<void> {
  const u = new URL(url);
  const host = u.hostname || '127.0.0.1';
  const port = Number(u.port || 3306);
  if (await reachable(host, port)) return;
  if (!isLocal(host)) throw new SetupError(`MariaDB at ${host}:${port} does not answer: start it, or fix MYSQL_URL`);
  if (!has('/usr/sbin/mariadbd')) aptInstall(['mariadb-server']);
  log('starting mariadbd');
  spawnSync('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd'], { stdio: 'ignore' });
  if (!(await waitFor(host, port, 30))) throw new SetupError('mariadbd did not start: see /var/log/mysql/error.log');
}

/** OpenSSH's server and client, for the lab's hosts and the tests that compare with ssh. */
export function ensureSshd(): void {
  const need = [...(existsSync('/usr/sbin/sshd') ? [] : ['openssh-server']), ...(has('ssh') ? [] : ['openssh-client'])];
  if (need.length) aptInstall(need);
}

/**
 * The real OpenStack programs the lab's controller runs against its API double: `openstack`
 * (python3-openstackclient, which brings glance and cinder's clients), `nova` (python3-novaclient),
 * `swift` (python3-swiftclient) and `swift-ring-builder` (swift).
 */
export const OPENSTACK_PROGRAMS: Record<string, string> = {
  '/usr/bin/openstack': 'python3-openstackclient',
  '/usr/bin/nova': 'python3-novaclient',
  '/usr/bin/swift': 'python3-swiftclient',
  '/usr/bin/swift-ring-builder': 'swift',
};

export function ensureOpenStackClients(): void {
  const need = Object.entries(OPENSTACK_PROGRAMS).filter(([bin]) => !existsSync(bin)).map(([, pkg]) => pkg);
  if (need.length) aptInstall(need);
}

/** Debian's Chromium for the console's browser test (playwright-core never downloads a browser). */
export function ensureChromium(path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'): void {
  if (!existsSync(path)) aptInstall(['chromium']);
}
