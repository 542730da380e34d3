import { chmodSync, cpSync, existsSync, lchownSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { knownHostsName } from '../executors/ssh/known-hosts.js';
import { dropDatabases, labDatabaseNames, seedDatabases } from './database.js';
import { generateKey } from './keys.js';
import { mapLimit } from './map-limit.js';
import { labPaths } from './paths.js';
import { managerVars, renderRunbookConfig, rootPathVars } from './runbook-yaml.js';
import { seedHost } from './seed.js';
import { installPackTools } from './pack-tools.js';
import { labHosts, type PlacedHost } from './site.js';
import { buildRings, controllerFiles, runningApi, startApi, writeCredentials } from './openstack/setup.js';
import { assertOpenSshInstalled, choosePort, freePort, killLabProcesses, renderSshdConfig, runningSshd, startSshd } from './sshd.js';
import { toolNames, toolsDir } from './tool-runtime.js';
import type { Lab, LabHost, LabOptions } from './types.js';
import { assertReachable, resolveLabUser, type LabUser } from './user.js';
import { randomBytes } from 'node:crypto';

/**
 * Marks a directory as a lab's, so that rebuilding after a failed start may clear it. A directory
 * that is neither empty nor marked is never cleared: `--dir .` must not wipe a repository's bin/.
 */
const MARKER = '.runbook-lab';

/** What the lab writes into its dir, besides the marker; removed by labDown. */
const LAB_ENTRIES = ['bin', 'tools', 'client', 'hosts', 'run', 'runbook.yaml', 'lab.json'];

/** ssh-keygen and sshd start-up are CPU-bound processes: more at once than this only queues. */
const PROCESS_CONCURRENCY = 16;

function defaultMysqlUrl(): string {
  return process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
}

function readLab(dir: string): Lab | undefined {
  const file = labPaths(dir).labJson;
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Lab) : undefined;
}

function labHost(lab: Lab, name: string): LabHost {
  const host = lab.hosts.find((h) => h.name === name);
  if (host === undefined) throw new Error(`the lab in ${lab.dir} has no host ${name}; it has ${lab.hosts.map((h) => h.name).join(', ')}`);
  return host;
}

function chownTree(path: string, user: LabUser): void {
  lchownSync(path, user.uid, user.gid);
  for (const entry of readdirSync(path, { recursive: true, encoding: 'utf8' })) lchownSync(join(path, entry), user.uid, user.gid);
}

/** Empties a lab dir left by an earlier lab, or checks that a new one is empty; then marks it. */
async function prepareDir(dir: string, user: LabUser): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, MARKER))) {
    await killLabProcesses(dir);
    for (const entry of LAB_ENTRIES) rmSync(join(dir, entry), { recursive: true, force: true });
  } else if (readdirSync(dir).length > 0) {
    throw new UsageError(`${dir} is not empty and holds no lab; give runbook lab an empty or new directory`);
  }
  writeFileSync(join(dir, MARKER), 'This directory belongs to a runbook lab: `runbook lab down` clears it.\n');
  // mkdtemp makes 0700 folders; the lab user must be able to enter this one.
  if (user.dropPrivileges) chmodSync(dir, 0o755);
}

/** Copies the simulated tools (the lab's and the packs') into the lab and links each tool name to the entry point. */
function installTools(dir: string, packs: readonly string[]): void {
  const p = labPaths(dir);
  cpSync(toolsDir, p.tools, { recursive: true });
  chmodSync(join(p.tools, 'labtool.cjs'), 0o755);
  mkdirSync(p.bin);
  for (const tool of toolNames) symlinkSync(join('..', 'tools', 'labtool.cjs'), join(p.bin, tool));
  installPackTools(dir, packs, toolNames);
}

/** Seeds the host's directory, makes its host key and sshd_config; returns its known_hosts line. */
async function prepareHost(dir: string, host: LabHost & PlacedHost, user: LabUser): Promise<string> {
  const p = labPaths(dir);
  await seedHost(dir, host);
  const key = await generateKey(p.hostKey(host.name), `lab host ${host.name}`);
  writeFileSync(p.sshdConfig(host.name), renderSshdConfig(dir, host, user));
  if (user.dropPrivileges) chownTree(p.hostDir(host.name), user);
  return `${knownHostsName(host.address, host.port)} ${key}\n`;
}

async function build(dir: string, opts: LabOptions): Promise<Lab> {
  const user = await resolveLabUser();
  assertReachable(dir, user);
  const placed = labHosts(opts.only, opts.extraHosts ?? 0, opts.profiles);
  const databases = labDatabaseNames(opts.dbPrefix ?? 'lab_');
  // Before choosing the port: clearing the dir kills what a broken earlier lab there left running.
  await prepareDir(dir, user);
  const port = await choosePort(
    placed.map((h) => h.address),
    opts.port ?? 2222,
  );
  const hosts = placed.map((h) => ({ ...h, port, vars: { ...h.vars, ...managerVars(dir, h), ...rootPathVars(dir, h) } }));
  const p = labPaths(dir);
  const apiPort = await freePort('127.0.0.1');
  const lab: Lab = {
    dir,
    configPath: p.config,
    hosts: hosts.map(({ name, address, groups, vars }) => ({ name, address, port, groups, vars })),
    user: user.name,
    databases,
    mysqlUrl: opts.mysqlUrl ?? defaultMysqlUrl(),
    cinderSchema: opts.cinderSchema ?? 'current',
    openstack: { authUrl: `http://127.0.0.1:${apiPort}/identity/v3`, port: apiPort, timeScale: opts.openstackTimeScale ?? 1, credentials: opts.openstackCredentials ?? 'clouds' },
    ...(opts.packs?.length ? { packs: opts.packs.map((d) => resolve(d)) } : {}),
  };
  const controller = lab.hosts.find((h) => h.name === 'controller');
  // Written first, so that labDown can clean up after a start that fails from here on.
  writeFileSync(p.labJson, `${JSON.stringify(lab, null, 2)}\n`);
  try {
    mkdirSync(p.client);
    mkdirSync(p.hosts);
    mkdirSync(p.run);
    if (user.dropPrivileges) chownTree(p.run, user);
    installTools(dir, lab.packs ?? []);
    const [clientKey, knownHosts] = await Promise.all([
      generateKey(p.privateKey, 'runbook lab client'),
      mapLimit(hosts, PROCESS_CONCURRENCY, (h) => prepareHost(dir, h, user)),
      seedDatabases(lab.mysqlUrl, lab.databases, lab.cinderSchema),
    ]);
    if (controller !== undefined) {
      // The real clients and swift-ring-builder run on the controller: their files are real paths of its fake root.
      const password = randomBytes(12).toString('base64url');
      controller.vars = { ...controller.vars, openstack: writeCredentials(dir, lab.openstack.authUrl, password, lab.openstack.credentials, user), swiftRingDir: controllerFiles(dir).ringDir };
      writeFileSync(p.labJson, `${JSON.stringify(lab, null, 2)}\n`);
      await Promise.all([buildRings(dir, lab.hosts.map((h) => h.name), user), startApi(lab, user, password)]);
    }
    writeFileSync(p.authorizedKeys, `${clientKey}\n`, { mode: 0o644 });
    writeFileSync(p.knownHosts, knownHosts.join(''));
    await mapLimit(lab.hosts, PROCESS_CONCURRENCY, (h) => startSshd(dir, h, user));
    writeFileSync(lab.configPath, renderRunbookConfig(lab));
  } catch (err) {
    // The start's error is the one to report; the clean-up only tries to leave nothing behind.
    await labDown(dir).catch(() => undefined);
    throw err;
  }
  return lab;
}

/** The running lab, when it has the hosts, port and databases asked for; throws when it differs. */
function assertSameLab(lab: Lab, opts: LabOptions): void {
  const wanted = labHosts(opts.only, opts.extraHosts ?? 0).map((h) => h.name);
  const differences = [
    wanted.join(' ') !== lab.hosts.map((h) => h.name).join(' ') && 'hosts',
    opts.port !== undefined && opts.port !== 0 && opts.port !== lab.hosts[0]?.port && 'port',
    opts.dbPrefix !== undefined && labDatabaseNames(opts.dbPrefix).nova !== lab.databases.nova && 'database names',
    (opts.cinderSchema ?? 'current') !== lab.cinderSchema && 'cinder schema',
    (opts.openstackCredentials ?? 'clouds') !== lab.openstack.credentials && 'OpenStack credentials',
    (opts.mysqlUrl ?? defaultMysqlUrl()) !== lab.mysqlUrl && 'MySQL server',
    (opts.packs ?? []).map((d) => resolve(d)).join(' ') !== (lab.packs ?? []).join(' ') && 'packs',
  ].filter(Boolean);
  if (differences.length > 0) {
    throw new UsageError(`a lab with other ${differences.join(', ')} is up in ${lab.dir}; run \`runbook lab down\` first`);
  }
}

/** Starts the sshd of every host whose sshd is not running, and the OpenStack API double when it is not. */
async function restartDead(lab: Lab): Promise<void> {
  const dead = lab.hosts.filter((h) => runningSshd(lab.dir, h.name) === undefined);
  const apiDead = lab.hosts.some((h) => h.name === 'controller') && runningApi(lab.dir) === undefined;
  if (dead.length === 0 && !apiDead) return;
  const user = await resolveLabUser();
  await mapLimit(dead, PROCESS_CONCURRENCY, (h) => startSshd(lab.dir, h, user));
  if (apiDead) await startApi(lab, user);
}

/**
 * The lab's real directory. Its processes are known by it (sshd_config paths, LAB_DIR), so a path
 * through a symlink (`.lab` linking to the temp dir) must lead to the same lab.
 */
function labDirOf(dir: string): string {
  const abs = resolve(dir);
  return existsSync(abs) ? realpathSync(abs) : abs;
}

/**
 * Builds the lab in opts.dir and starts its hosts; returns once every host accepts connections.
 * When the lab is already up there, checks it, restarts hosts that died and returns it as it is
 * (tool state and databases are kept).
 */
export async function labUp(opts: LabOptions): Promise<Lab> {
  assertOpenSshInstalled();
  const dir = labDirOf(opts.dir);
  const existing = readLab(dir);
  if (existing === undefined) return build(dir, opts);
  assertSameLab(existing, opts);
  await restartDead(existing);
  return existing;
}

/**
 * Kills every process of the lab, drops its databases and removes what it wrote (keys, state,
 * runbook.yaml); the directory itself stays. Does nothing where no lab is.
 */
export async function labDown(dir: string): Promise<void> {
  const labDir = labDirOf(dir);
  if (!existsSync(join(labDir, MARKER))) return;
  await killLabProcesses(labDir);
  const lab = readLab(labDir);
  if (lab !== undefined) await dropDatabases(lab.mysqlUrl, lab.databases);
  for (const entry of LAB_ENTRIES) rmSync(join(labDir, entry), { recursive: true, force: true });
  rmSync(join(labDir, MARKER), { force: true });
}

/** The lab up in dir, or undefined. Hosts are not probed: see labUp to restart dead ones. */
export async function labStatus(dir: string): Promise<Lab | undefined> {
  return readLab(labDirOf(dir));
}

function requireLab(dir: string): Lab {
  const lab = readLab(labDirOf(dir));
  if (lab === undefined) throw new Error(`no lab is up in ${dir}`);
  return lab;
}

/** Kills one host's sshd with its connections and commands: the host becomes unreachable. */
export async function stopHost(dir: string, host: string): Promise<void> {
  const lab = requireLab(dir);
  labHost(lab, host);
  await killLabProcesses(lab.dir, host);
}

/** Starts one host's sshd again (after stopHost); does nothing when it runs. */
export async function startHost(dir: string, host: string): Promise<void> {
  const lab = requireLab(dir);
  const h = labHost(lab, host);
  if (runningSshd(lab.dir, host) !== undefined) return;
  await startSshd(lab.dir, h, await resolveLabUser());
}
