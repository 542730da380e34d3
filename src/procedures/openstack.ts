/**
 * What the OpenStack packs (nova, cloud, swift) share: where the clients run and how they get their
 * credentials, host names as nova knows them, and the clients' machine-readable output.
 *
 * Credentials reach the clients as a real site gives them, from the host's `vars.openstack` in
 * runbook.yaml (checked by the config loader), never from job data:
 * - `{ cloud: <name>, cloudsFile?: <path> }`: `OS_CLOUD=<name>` (and `OS_CLIENT_CONFIG_FILE`), read by
 *   `openstack` from clouds.yaml (openstacksdk's config). The project clients (`nova`, `glance`,
 *   `swift`, `cinder`) do not read clouds.yaml (only osc-lib's shell knows OS_CLOUD), so with these
 *   credentials every step runs `openstack`;
 * - `{ openrc: <path> }`: the install guide's admin-openrc.sh, sourced first (the page's
 *   `# source openrc`); every client reads its `OS_*`, so the page's own `nova`, `glance` and
 *   `swift` commands run where they still work.
 */
import type { Inventory, InventoryHost } from '../inventory.js';
import { parse, raw, sh, type ShellCommand, type Step, type StepContext, type V } from './dsl.js';
import { findProcesses, serviceCheck, serviceStates, type ServiceSpec } from './services.js';

export const MAINTENANCE = 'runbooks/openstack-maintenance-failures.txt';
export const RECOVERY = 'runbooks/openstack-compute-node-recovery.rst';

/** What the helpers read of a step's context: the inventory, never the arguments (any procedure's context fits). */
export type Ctx = Pick<StepContext, 'host' | 'inventory'>;

export type Credentials = { kind: 'cloud'; cloud: string; cloudsFile?: string } | { kind: 'openrc'; openrc: string };

/** The first host of an inventory group, for the packs' fixed roles (@controller, @swift-proxy). */
export function firstInGroup(inventory: Inventory, group: string, why: string): string {
  const h = inventory.inGroups([group])[0];
  if (!h) throw new Error(`no host in @${group} in runbook.yaml: ${why}`);
  return h.name;
}

/** Where the OpenStack clients run, with the cloud's credentials: the first host in @controller. */
export function controller(ctx: { inventory: Inventory }): string {
  return firstInGroup(ctx.inventory, 'controller', 'the OpenStack clients run there');
}

/** The credentials `vars.openstack` of a host gives its clients; throws when it has none. */
export function credentials(host: InventoryHost): Credentials {
  const v = host.vars.openstack as { cloud?: string; cloudsFile?: string; openrc?: string } | undefined;
  if (v?.openrc) return { kind: 'openrc', openrc: v.openrc };
  if (v?.cloud) return { kind: 'cloud', cloud: v.cloud, ...(v.cloudsFile ? { cloudsFile: v.cloudsFile } : {}) };
  throw new Error(`${host.name} has no vars.openstack in runbook.yaml: the OpenStack clients there need credentials (cloud: <clouds.yaml entry> or openrc: <file>)`);
}

/** Refuses a procedure whose clients would have no credentials, before anything runs. */
export function needsCredentials(ctx: Ctx, host = controller(ctx)): string | undefined {
  try {
    credentials(ctx.host(host));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** True where the project clients (`nova`, `glance`, `swift`) can run: they read an openrc's OS_*, not clouds.yaml. */
export function projectClients(ctx: Ctx, host = controller(ctx)): boolean {
  return credentials(ctx.host(host)).kind === 'openrc';
}

/** A client command with the host's credentials: `. <openrc> && <cmd>`, or `OS_CLOUD=<name> <cmd>`. */
export function withCredentials(ctx: Ctx, host: string, command: ShellCommand): ShellCommand {
  const c = credentials(ctx.host(host));
  if (c.kind === 'openrc') return sh`. ${c.openrc} && ${command}`;
  return c.cloudsFile ? sh`OS_CLOUD=${c.cloud} OS_CLIENT_CONFIG_FILE=${c.cloudsFile} ${command}` : sh`OS_CLOUD=${c.cloud} ${command}`;
}

/**
 * The page's project-client command where the credentials allow it, else the `openstack`
 * equivalent; both with credentials, on the controller.
 */
export function client(ctx: Ctx, commands: { nova?: ShellCommand; openstack: ShellCommand }): ShellCommand {
  const host = controller(ctx);
  return withCredentials(ctx, host, commands.nova && projectClients(ctx, host) ? commands.nova : commands.openstack);
}

/** `openstack` (clouds.yaml) or the page's client (openrc): said in the plan. */
export function clientVariant(ctx: Ctx, host = controller(ctx)): string {
  return projectClients(ctx, host) ? "openrc: the page's client" : 'clouds.yaml: openstack';
}

/** The compute host as nova names it (services.host, instances.host): `vars.novaHost`, else the inventory name (nova's CONF.host defaults to the short host name). */
export function novaHost(ctx: { inventory: Inventory }, name: string): string {
  const v = ctx.inventory.get(name)?.vars.novaHost;
  return typeof v === 'string' && v ? v : name;
}

/** The inventory host nova calls `host` (by vars.novaHost, name, vars.fqdn or address). */
export function inventoryHostOfNova(inventory: Inventory, host: string): InventoryHost | undefined {
  return inventory.all().find((h) => h.vars.novaHost === host) ?? inventory.find(host);
}

/** A server as `openstack server list -f json -c ID -c Name -c Status` gives it. */
export interface Server {
  ID: string;
  Name: string;
  Status: string;
}

export const serverList = parse.json<Server[]>();

/** `openstack server list --host <h> --all-projects -f json -c ID -c Name -c Status` (the page's `nova list --host … --all-tenants`). */
export function listServers(ctx: Ctx, host?: string): ShellCommand {
  const filter = host === undefined ? raw('') : sh` --host ${host}`;
  return client(ctx, { openstack: sh`openstack server list${filter} --all-projects --limit -1 -f json -c ID -c Name -c Status` });
}

/** A server as `openstack server list --long -f json -c ID -c Name -c Status -c "Task State" -c Host` gives it. */
export interface ServerRow extends Server {
  'Task State': string | null;
  Host: string | null;
}

/**
 * Waits until nova has settled every server `ids` names (one `openstack server list` per check, not
 * one client per server): `done` holds for each; one in ERROR fails the step, naming it, unless
 * `errorFails` is false.
 */
export function serversSettle<A>(o: {
  id: string;
  title: V<string, A>;
  ids: (ctx: StepContext<A>) => string[];
  done: (s: ServerRow) => boolean;
  waiting: string;
  host?: (ctx: StepContext<A>) => string;
  /** An instance in ERROR fails the step. Default true. */
  errorFails?: boolean;
}): Step<A> {
  return {
    kind: 'poll',
    id: o.id,
    title: o.title,
    risk: 'read',
    host: controller,
    command: (ctx) => {
      const filter = o.host === undefined ? raw('') : sh` --host ${novaHost(ctx, o.host(ctx))}`;
      return client(ctx, { openstack: sh`openstack server list${filter} --all-projects --long --limit -1 -f json -c ID -c Name -c Status -c ${'Task State'} -c Host` });
    },
    capture: parse.json<ServerRow[]>(),
    until: (rows: ServerRow[], ctx) => {
      const wanted = new Set(o.ids(ctx));
      const mine = rows.filter((r) => wanted.has(r.ID));
      const failed = mine.filter((r) => r.Status === 'ERROR');
      if (failed.length > 0 && o.errorFails !== false) throw new Error(`${failed.map((r) => `${r.Name} (${r.ID})`).join(', ')} went to ERROR (openstack server show has the fault)`);
      return mine.length === wanted.size && mine.every(o.done);
    },
    intervalMs: 5_000,
    timeoutMs: 30 * 60_000,
    waiting: o.waiting,
  };
}

/** A migration as `openstack server migration list -f json` (OSC ListMigration, at 2.1) gives it. */
export interface Migration {
  'Source Compute': string;
  'Dest Compute': string | null;
  Status: string;
  'Server UUID': string;
  'Created At': string;
}

/**
 * Until the newest migration of a server ends: `done` states (completed for a live migration, done
 * for an evacuation; nova/objects/migration.py) are success, error/failed/cancelled a failure, with
 * where it was going; anything else is still under way.
 */
export function migrationEnded(kind: 'live migration' | 'evacuation', name: string): (list: Migration[]) => boolean {
  return (list) => {
    const m = list[0];
    if (m === undefined) return false;
    if (['error', 'failed', 'cancelled'].includes(m.Status)) throw new Error(`the ${kind} of ${name} from ${m['Source Compute']} ended "${m.Status}" (nova-compute's and nova-conductor's logs say why)`);
    return m.Status === 'completed' || m.Status === 'done';
  };
}

/** Ids in SQL `in (…)`: one `?` per value. */
export function placeholders(n: number): string {
  return Array.from({ length: Math.max(n, 1) }, () => '?').join(', ');
}

/**
 * A check that the services run on the host's own service manager (services.ts), failing the step
 * when one does not: the page's `status <job>` beside it.
 */
export function mustRun<A>(id: string, title: string, host: (ctx: StepContext<A>) => string, services: readonly ServiceSpec[]): Step<A> {
  const check = serviceCheck(host, services);
  return {
    kind: 'ssh',
    id,
    title,
    risk: 'read',
    host,
    ...check,
    capture: parse.map(serviceStates(services), (states) => {
      const down = states.filter((s) => s.state !== 'running');
      if (down.length > 0) throw new Error(down.map((s) => `${s.name} is ${s.state}`).join(', '));
      return states;
    }),
  };
}

/**
 * Which of the named programs run, by the kernel's name (`pgrep -l -x`, services.ts findProcesses),
 * failing the step when none does: the page's `ps aux | grep <pattern>` beside it (which never fails:
 * grep finds itself).
 */
export function processRuns<A>(id: string, title: string, host: (ctx: StepContext<A>) => string, comms: string[], page: string): Step<A> {
  const found = findProcesses(comms);
  return {
    kind: 'ssh',
    id,
    title,
    risk: 'read',
    host,
    command: found.command,
    okExitCodes: found.okExitCodes,
    reference: `ps aux | grep ${page}`,
    capture: parse.map(found.parser, (list) => {
      if (list.length === 0) throw new Error(`no ${comms.join(', ')} process runs`);
      return list;
    }),
  };
}
