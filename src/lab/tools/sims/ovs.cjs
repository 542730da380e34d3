'use strict';
/**
 * `ovs`: stands in for the Open vStorage calls an operator makes on a storage router: the Python of
 * "Shutdown an environment" (list the router's vDisks; per vDisk create a snapshot, poll
 * `info_snapshot(...).in_backend`, delete the snapshot), `ovs monitor services` (the `ovs-*` services
 * of the host) and `ovs collect logs` (the troubleshooting page's archive in /var/tmp of the fake root).
 *
 * State: `vdisks` = [{ guid, name, volume_id, snapshots: [{ name, guid, timestamp, checks }] }],
 * the host's services (`ctx.serviceStates()`, shown as `running` or `halted`), `logs` = { "<path>": "<text>" } (what the archive
 * holds), `collected` = [{ archive, logs, at }]. Setting `pendingChecks` (default 1): how many
 * info-snapshot calls see `in_backend: false` before the snapshot reports itself flushed.
 */
const fs = require('node:fs');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { ToolError } = require('../runtime.cjs');

const USAGE = `usage: ovs vdisk list
       ovs vdisk create-snapshot|info-snapshot|delete-snapshot <volume_id> <snapshot name>
       ovs monitor services
       ovs collect logs`;

function usage() {
  return new ToolError(USAGE, 2);
}

function findVdisk(vdisks, volumeId) {
  const vdisk = vdisks.find((v) => v.volume_id === volumeId);
  if (vdisk === undefined) throw new ToolError(`ovs: volume ${volumeId} not found on this storage router`);
  return vdisk;
}

function findSnapshot(vdisk, name) {
  const snapshot = vdisk.snapshots.find((s) => s.name === name);
  if (snapshot === undefined) throw new ToolError(`ovs: snapshot ${name} not found for volume ${vdisk.volume_id}`);
  return snapshot;
}

/** Each subcommand takes exactly a volume id and a snapshot name. */
function snapshotArgs(rest) {
  if (rest.length !== 2) throw usage();
  return rest;
}

const vdiskCommands = {
  list(ctx, rest) {
    if (rest.length !== 0) throw usage();
    const vdisks = ctx.read('vdisks', []);
    process.stdout.write(`${JSON.stringify(vdisks.map(({ guid, name, volume_id }) => ({ guid, name, volume_id })))}\n`);
    return 0;
  },
  'create-snapshot'(ctx, rest) {
    const [volumeId, name] = snapshotArgs(rest);
    const guid = ctx.update('vdisks', [], (vdisks) => {
      const vdisk = findVdisk(vdisks, volumeId);
      if (vdisk.snapshots.some((s) => s.name === name)) {
        throw new ToolError(`ovs: snapshot ${name} already exists for volume ${volumeId}`);
      }
      const snapshot = { name, guid: randomUUID(), timestamp: Math.floor(Date.now() / 1000), checks: 0 };
      vdisk.snapshots.push(snapshot);
      return snapshot.guid;
    });
    process.stdout.write(`${guid}\n`);
    return 0;
  },
  'info-snapshot'(ctx, rest) {
    const [volumeId, name] = snapshotArgs(rest);
    const pendingChecks = ctx.setting('pendingChecks', 1);
    const info = ctx.update('vdisks', [], (vdisks) => {
      const snapshot = findSnapshot(findVdisk(vdisks, volumeId), name);
      snapshot.checks += 1;
      return {
        name: snapshot.name,
        guid: snapshot.guid,
        timestamp: snapshot.timestamp,
        in_backend: snapshot.checks > pendingChecks,
        stored: 0,
      };
    });
    process.stdout.write(`${JSON.stringify(info)}\n`);
    return 0;
  },
  'delete-snapshot'(ctx, rest) {
    const [volumeId, name] = snapshotArgs(rest);
    ctx.update('vdisks', [], (vdisks) => {
      const vdisk = findVdisk(vdisks, volumeId);
      vdisk.snapshots.splice(vdisk.snapshots.indexOf(findSnapshot(vdisk, name)), 1);
    });
    return 0;
  },
};

/** The Open vStorage services (`ovs-*`) of the host; memcached, nginx and the like are not its own. */
function monitorServices(ctx) {
  process.stdout.write(
    Object.entries(ctx.serviceStates())
      .filter(([service]) => service.startsWith('ovs-'))
      .map(([service, state]) => `${service}: ${state === 'running' ? 'running' : 'halted'}\n`)
      .join(''),
  );
  return 0;
}

/**
 * `ovs collect logs`: gathers the logs into /var/tmp/ovs-{hostname}-logs.tar (in the host's fake
 * root; the archive lists the logs it holds) and says where it is.
 */
function collectLogs(ctx) {
  const archive = `/var/tmp/ovs-${ctx.host}-logs.tar`;
  const logs = Object.keys(ctx.read('logs', {})).sort();
  const real = ctx.realPath(archive);
  fs.mkdirSync(path.dirname(real), { recursive: true });
  fs.writeFileSync(real, `${logs.join('\n')}\n`);
  ctx.update('collected', [], (c) => {
    c.push({ archive, logs, at: Date.now() });
  });
  process.stdout.write(`Collecting logs of ${logs.length} files...\nFiles saved to ${archive}\n`);
  return 0;
}

module.exports = {
  ovs(ctx, args) {
    const [group, command, ...rest] = args;
    if (group === 'vdisk' && command !== undefined && Object.hasOwn(vdiskCommands, command)) {
      return vdiskCommands[command](ctx, rest);
    }
    if (group === 'monitor' && command === 'services' && rest.length === 0) return monitorServices(ctx);
    if (group === 'collect' && command === 'logs' && rest.length === 0) return collectLogs(ctx);
    throw usage();
  },
};
