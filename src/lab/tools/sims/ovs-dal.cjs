'use strict';
/**
 * The server side of the lab's Python doubles of Open vStorage (tools/python, installed in every
 * storage router's fake root): what the framework's data-access layer reads from its Arakoon-backed
 * model, and what the volumedriver's Python binding asks the volumedriver over XML-RPC. The Python
 * side only forwards calls here (labrpc.py), so the vDisk state keeps one owner and the host lock.
 * These tools are not linked into the lab's bin/: nothing on a real host answers to their names.
 *
 * `ovs-dal <request>` (the model: openvstorage/framework ovs/dal @ 2.9.30):
 *   storagerouters                 every Storage Router of the lab (the hosts of lab.json in @ovs):
 *                                  guid (state `framework`), name, ip, machine_id (the host's
 *                                  /etc/openvstorage_id), node_type MASTER | EXTRA
 *   vdisks [<storage router>]      the vDisks a Storage Router serves (all of them without a name)
 *   vdisk <guid>                   one vDisk, or null
 *   vdisk-by-volume-id <volume>    one vDisk, or null
 *   config-list <key>              the configuration store's entries under a key (only /ovs/arakoon:
 *                                  the Arakoon clusters of the host's `arakoon` state)
 *
 * `storagerouterclient <method> <args>` follows openvstorage/volumedriver
 * src/filesystem-python-client/StorageRouterClient.cpp @ b244eb00 (2018-03-05) and what the
 * volumedriver answers (src/filesystem/XMLRPC.cpp, src/volumedriver/Volume.cpp):
 *   list_snapshots <volume>                       the snapshot ids, oldest first
 *   create_snapshot <volume> <snapshot> [<meta>]  the snapshot id; PreviousSnapshotNotOnBackendException
 *                                                 while the latest snapshot is not in the backend (checked
 *                                                 first, Volume::createSnapshot), then
 *                                                 SnapshotNameAlreadyExistsException for a name in use
 *   info_snapshot <volume> <snapshot>             snapshot_id, timestamp, uuid, stored, metadata, in_backend
 *   delete_snapshot <volume> <snapshot>           null; SnapshotNotFoundException ("Snapshot does not exist")
 * An unknown volume raises ObjectNotFoundException. A volume is served by the host whose `vdisks`
 * state holds it; its state changes under that host's lock.
 *
 * Answers are one JSON value on stdout, exit 0; a raised exception is {"exception", "message"}, exit 1.
 * Host setting `pendingChecks` (default 1): how many info_snapshot calls see a new snapshot not yet in
 * the backend (each later one sees it there). State `vdisks` = [{ guid, name, volume_id, devicename,
 * vpool, snapshots: [{ name, uuid, timestamp, metadata, pending }] }].
 */
const fs = require('node:fs');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const runtime = require('../runtime.cjs');

const { ToolError } = runtime;

/** An exception of the binding: its name and message, as the Python side raises it. */
class Raised extends Error {
  constructor(exception, message) {
    super(message);
    this.exception = exception;
  }
}

function answer(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
  return 0;
}

/** The lab's storage routers: the hosts of lab.json in the group `ovs`. */
function storageRouters(ctx) {
  const lab = runtime.readJson(path.join(ctx.labDir, 'lab.json'), { hosts: [] });
  return lab.hosts
    .filter((h) => h.groups.includes('ovs'))
    .map((h) => ({
      guid: runtime.readJson(runtime.statePath(ctx.labDir, h.name, 'framework'), {}).guid,
      name: h.name,
      ip: h.vars.ip,
      machine_id: fs.readFileSync(runtime.realPath(ctx.labDir, h.name, '/etc/openvstorage_id'), 'utf8').trim(),
      node_type: h.vars.role === 'master' ? 'MASTER' : 'EXTRA',
    }));
}

function vdisksOf(ctx, host) {
  return runtime.readJson(runtime.statePath(ctx.labDir, host, 'vdisks'), []);
}

/** The vDisk as the model gives it, with the Storage Router that serves it. */
function model(vdisk, host) {
  const { guid, name, volume_id, devicename, vpool } = vdisk;
  return { guid, name, volume_id, devicename, vpool, storagerouter: host };
}

function allVdisks(ctx) {
  return storageRouters(ctx).flatMap((sr) => vdisksOf(ctx, sr.name).map((v) => model(v, sr.name)));
}

function usage(tool, text) {
  return new ToolError(`${tool}: usage: ${tool} ${text}`, 2);
}

const dal = {
  storagerouters: (ctx) => answer(storageRouters(ctx)),
  vdisks: (ctx, [name]) => answer(name === undefined ? allVdisks(ctx) : vdisksOf(ctx, name).map((v) => model(v, name))),
  vdisk: (ctx, [guid]) => answer(allVdisks(ctx).find((v) => v.guid === guid) ?? null),
  'vdisk-by-volume-id': (ctx, [volumeId]) => answer(allVdisks(ctx).find((v) => v.volume_id === volumeId) ?? null),
  'config-list'(ctx, [key]) {
    if (key.replace(/\/+$/, '') !== '/ovs/arakoon') return answer({ exception: 'NotFoundException', message: key });
    return answer(Object.keys(ctx.read('arakoon', {})).sort());
  },
};

/** Locked change of the state of the host serving `volumeId`; fn gets that vDisk. */
function onVolume(ctx, volumeId, fn) {
  const host = storageRouters(ctx).find((sr) => vdisksOf(ctx, sr.name).some((v) => v.volume_id === volumeId))?.name;
  if (host === undefined) throw new Raised('ObjectNotFoundException', volumeId);
  return runtime.updateJson(ctx.labDir, host, runtime.statePath(ctx.labDir, host, 'vdisks'), [], (vdisks) => fn(vdisks.find((v) => v.volume_id === volumeId)));
}

function snapshotOf(vdisk, name) {
  const snapshot = vdisk.snapshots.find((s) => s.name === name);
  if (snapshot === undefined) throw new Raised('SnapshotNotFoundException', 'Snapshot does not exist');
  return snapshot;
}

const client = {
  list_snapshots: (ctx, [volumeId]) => answer(onVolume(ctx, volumeId, (v) => v.snapshots.map((s) => s.name))),
  create_snapshot(ctx, [volumeId, name = '', metadata = '']) {
    const pending = Number(ctx.setting('pendingChecks', 1));
    return answer(
      onVolume(ctx, volumeId, (v) => {
        const last = v.snapshots.at(-1);
        if (last !== undefined && last.pending > 0) throw new Raised('PreviousSnapshotNotOnBackendException', "Last snapshot not on backend, can't create a new one");
        const id = name || randomUUID();
        if (v.snapshots.some((s) => s.name === id)) throw new Raised('SnapshotNameAlreadyExistsException', id);
        v.snapshots.push({ name: id, uuid: randomUUID(), timestamp: Math.floor(Date.now() / 1000), metadata, pending });
        return id;
      }),
    );
  },
  info_snapshot(ctx, [volumeId, name]) {
    return answer(
      onVolume(ctx, volumeId, (v) => {
        const s = snapshotOf(v, name);
        const inBackend = s.pending <= 0;
        if (!inBackend) s.pending -= 1;
        return { snapshot_id: s.name, timestamp: s.timestamp, uuid: s.uuid, stored: 0, metadata: s.metadata, in_backend: inBackend };
      }),
    );
  },
  delete_snapshot(ctx, [volumeId, name]) {
    onVolume(ctx, volumeId, (v) => {
      v.snapshots.splice(v.snapshots.indexOf(snapshotOf(v, name)), 1);
    });
    return answer(null);
  },
};

const ARITY = { list_snapshots: [1, 1], create_snapshot: [1, 3], info_snapshot: [2, 2], delete_snapshot: [2, 2], storagerouters: [0, 0], vdisks: [0, 1], vdisk: [1, 1], 'vdisk-by-volume-id': [1, 1], 'config-list': [1, 1] };

function dispatch(tool, table, ctx, args) {
  const [request, ...rest] = args;
  if (request === undefined || !Object.hasOwn(table, request) || rest.length < ARITY[request][0] || rest.length > ARITY[request][1]) {
    throw usage(tool, Object.keys(table).join('|'));
  }
  try {
    return table[request](ctx, rest);
  } catch (err) {
    if (!(err instanceof Raised)) throw err;
    answer({ exception: err.exception, message: err.message });
    return 1;
  }
}

module.exports = {
  'ovs-dal': (ctx, args) => dispatch('ovs-dal', dal, ctx, args),
  storagerouterclient: (ctx, args) => dispatch('storagerouterclient', client, ctx, args),
};
