'use strict';
/**
 * The `nova` client as the operations guide uses it, run on the cloud controller: `list [--host
 * <fqdn>] [--all-tenants]`, `show <uuid>`, `live-migration [--block-migrate] <uuid> <host>`,
 * `reboot [--hard] <uuid>`, `volume-detach <server> <volume>`, `volume-attach <server> <volume>
 * [<device>]`, with the client's tables and messages.
 *
 * Model: this is the compute API's view, kept in the controller's state. It is not MariaDB: SQL steps
 * (`UPDATE instances SET host = …`) change the lab's databases, and tests check those there; the
 * API's view is what `nova` commands see and change, and tests check it with readHostState.
 *
 * State: `nova` = {
 *   computes: ["c01.example.com", …]             hosts nova-compute runs on (live-migration targets)
 *   sharedStorage: true                          false: live-migration needs --block-migrate
 *   instances: [{ uuid, name, host, status: ACTIVE|SHUTOFF|ERROR, power: Running|Shutdown, networks,
 *                 volumes: [{ id, device }], reboots: n, hardReboots: n }]
 * }
 */
const { ToolError } = require('../runtime.cjs');

const EMPTY = { computes: [], sharedStorage: true, instances: [] };

/** The client's prettytable: `+---+` rules around a header and rows. */
function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+\n`;
  const line = (cells) => `|${cells.map((c, i) => ` ${String(c).padEnd(widths[i])} `).join('|')}|\n`;
  return rule + line(headers) + rule + rows.map(line).join('') + rule;
}

function notFound(ref) {
  return new ToolError(`ERROR (CommandError): No server with a name or ID of '${ref}' exists.`, 1);
}

function find(state, ref) {
  const inst = state.instances.find((i) => i.uuid === ref || i.name === ref);
  if (inst === undefined) throw notFound(ref);
  return inst;
}

function list(ctx, args) {
  let host;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--all-tenants') continue;
    if (args[i] === '--host' && args[i + 1] !== undefined) host = args[++i];
    else throw new ToolError(`usage: nova list [--host <hostname>] [--all-tenants]\nerror: unrecognized arguments: ${args.slice(i).join(' ')}`, 2);
  }
  const { instances } = ctx.read('nova', EMPTY);
  const shown = instances.filter((i) => host === undefined || i.host === host);
  process.stdout.write(table(['ID', 'Name', 'Status', 'Task State', 'Power State', 'Networks'], shown.map((i) => [i.uuid, i.name, i.status, '-', i.power, i.networks ?? ''])));
  return 0;
}

function show(ctx, args) {
  if (args.length !== 1) throw new ToolError('usage: nova show <server>', 2);
  const inst = find(ctx.read('nova', EMPTY), args[0]);
  const rows = [
    ['OS-EXT-SRV-ATTR:host', inst.host],
    ['OS-EXT-STS:power_state', inst.power === 'Running' ? 1 : 4],
    ['OS-EXT-STS:vm_state', inst.status === 'ACTIVE' ? 'active' : inst.status === 'SHUTOFF' ? 'stopped' : 'error'],
    ['id', inst.uuid],
    ['name', inst.name],
    ['os-extended-volumes:volumes_attached', JSON.stringify(inst.volumes.map((v) => ({ id: v.id })))],
    ['status', inst.status],
  ];
  process.stdout.write(table(['Property', 'Value'], rows));
  return 0;
}

function liveMigration(ctx, args) {
  const block = args[0] === '--block-migrate';
  const rest = block ? args.slice(1) : args;
  if (rest.length !== 2) throw new ToolError('usage: nova live-migration [--block-migrate] <server> [<host>]', 2);
  const [ref, target] = rest;
  ctx.update('nova', EMPTY, (state) => {
    const inst = find(state, ref);
    if (!state.computes.includes(target)) throw new ToolError(`ERROR (BadRequest): Compute service of ${target} is unavailable at this time. (HTTP 400)`, 1);
    if (inst.host === target) throw new ToolError(`ERROR (BadRequest): The supplied hypervisor type of is invalid: ${target} is the instance's current host. (HTTP 400)`, 1);
    if (inst.status !== 'ACTIVE') throw new ToolError(`ERROR (Conflict): Cannot 'os-migrateLive' instance ${inst.uuid} while it is in vm_state ${inst.status === 'SHUTOFF' ? 'stopped' : 'error'} (HTTP 409)`, 1);
    if (!block && state.sharedStorage === false) {
      throw new ToolError(`ERROR (BadRequest): ${target} is not on shared storage: Live migration can not be used without shared storage. (HTTP 400)`, 1);
    }
    inst.host = target;
  });
  return 0;
}

function reboot(ctx, args) {
  const hard = args[0] === '--hard';
  const rest = hard ? args.slice(1) : args;
  if (rest.length !== 1) throw new ToolError('usage: nova reboot [--hard] <server>', 2);
  const uuid = ctx.update('nova', EMPTY, (state) => {
    const inst = find(state, rest[0]);
    if (hard) inst.hardReboots = (inst.hardReboots ?? 0) + 1;
    else inst.reboots = (inst.reboots ?? 0) + 1;
    inst.status = 'ACTIVE';
    inst.power = 'Running';
    return inst.uuid;
  });
  process.stdout.write(`Request to reboot server ${uuid} has been accepted.\n`);
  return 0;
}

function volumeDetach(ctx, args) {
  if (args.length !== 2) throw new ToolError('usage: nova volume-detach <server> <volume>', 2);
  const [ref, volume] = args;
  ctx.update('nova', EMPTY, (state) => {
    const inst = find(state, ref);
    const i = inst.volumes.findIndex((v) => v.id === volume);
    if (i < 0) throw new ToolError(`ERROR (NotFound): volume_id not found: ${volume} (HTTP 404)`, 1);
    inst.volumes.splice(i, 1);
  });
  return 0;
}

function volumeAttach(ctx, args) {
  if (args.length !== 2 && args.length !== 3) throw new ToolError('usage: nova volume-attach <server> <volume> [<device>]', 2);
  const [ref, volume, device] = args;
  const attached = ctx.update('nova', EMPTY, (state) => {
    const inst = find(state, ref);
    const holder = state.instances.find((i) => i.volumes.some((v) => v.id === volume));
    if (holder !== undefined) throw new ToolError(`ERROR (BadRequest): Invalid volume: volume '${volume}' status must be 'available'. Currently in 'in-use' (HTTP 400)`, 1);
    const used = new Set(inst.volumes.map((v) => v.device));
    const dev = device ?? ['/dev/vdb', '/dev/vdc', '/dev/vdd', '/dev/vde'].find((d) => !used.has(d));
    if (used.has(dev)) throw new ToolError(`ERROR (BadRequest): The supplied device path (${dev}) is in use. (HTTP 400)`, 1);
    inst.volumes.push({ id: volume, device: dev });
    return { inst, dev };
  });
  process.stdout.write(table(['Property', 'Value'], [['device', attached.dev], ['id', volume], ['serverId', attached.inst.uuid], ['volumeId', volume]]));
  return 0;
}

/** The API a client talks to must be running on this host (`ctx.serviceState`, when the host has the service). */
function needs(ctx, service, url) {
  const state = ctx.serviceState(service);
  if (state !== undefined && state !== 'running') {
    throw new ToolError(`ERROR: Unable to establish connection to ${url}: [Errno 111] Connection refused`, 1);
  }
}

const commands = { list, show, 'live-migration': liveMigration, reboot, 'volume-detach': volumeDetach, 'volume-attach': volumeAttach };

module.exports = {
  nova(ctx, args) {
    const [command, ...rest] = args;
    if (command === undefined || !Object.hasOwn(commands, command)) {
      throw new ToolError(`usage: nova <subcommand> ...\nerror: argument <subcommand>: invalid choice: '${command ?? ''}'`, 2);
    }
    needs(ctx, 'nova-api', 'http://controller:8774/v2.1');
    return commands[command](ctx, rest);
  },

  /** `glance index`: the images (needs glance-api). */
  glance(ctx, args) {
    if (args.join(' ') !== 'index') throw new ToolError('usage: glance index (the lab simulates only this form)', 2);
    needs(ctx, 'glance-api', 'http://controller:9292');
    const images = ctx.read('glance', { images: [] }).images;
    process.stdout.write(
      `ID                                   Name                           Disk Format          Container Format     Size\n` +
        `------------------------------------ ------------------------------ -------------------- -------------------- --------------\n` +
        images.map((i) => `${i.id} ${i.name.padEnd(30)} ${'qcow2'.padEnd(20)} ${'bare'.padEnd(20)} ${String(i.size).padStart(14)}\n`).join(''),
    );
    return 0;
  },

  /**
   * `openstack project list` (needs keystone), `openstack volume list`, `openstack server show|reboot
   * <server>`, `openstack server add volume <server> <volume> [--device <dev>]` (need nova-api), on
   * the same compute API view as `nova`.
   */
  openstack(ctx, args) {
    const words = args.join(' ');
    if (words === 'project list') {
      needs(ctx, 'keystone', 'http://controller:5000/v3');
      const projects = ctx.read('keystone', { projects: [] }).projects;
      process.stdout.write(table(['ID', 'Name'], projects.map((p) => [p.id, p.name])));
      return 0;
    }
    needs(ctx, 'nova-api', 'http://controller:8774/v2.1');
    if (words === 'volume list') {
      const state = ctx.read('nova', EMPTY);
      const attachedTo = (id) => state.instances.flatMap((i) => i.volumes.filter((v) => v.id === id).map((v) => `Attached to ${i.name} on ${v.device} `));
      process.stdout.write(
        table(
          ['ID', 'Name', 'Status', 'Size', 'Attached to'],
          (state.volumes ?? []).map((v) => [v.id, v.name, attachedTo(v.id).length > 0 ? 'in-use' : 'available', v.size, attachedTo(v.id).join('')]),
        ),
      );
      return 0;
    }
    if (args[0] === 'server' && args[1] === 'reboot') return reboot(ctx, args.slice(2));
    if (args[0] === 'server' && args[1] === 'show') return show(ctx, args.slice(2));
    if (args[0] === 'server' && args[1] === 'add' && args[2] === 'volume') {
      const rest = args.slice(3);
      const i = rest.indexOf('--device');
      const device = i >= 0 ? rest.splice(i, 2)[1] : undefined;
      if (rest.length !== 2 || (i >= 0 && !device)) throw new ToolError('usage: openstack server add volume <server> <volume> [--device <device>]', 2);
      return volumeAttach(ctx, device ? [...rest, device] : rest);
    }
    throw new ToolError(`openstack: '${words}' is not an openstack command the lab simulates. See 'openstack --help'.`, 2);
  },
};
