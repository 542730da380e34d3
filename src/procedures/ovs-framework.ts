/**
 * How the ovs procedures reach a Storage Router's Open vStorage framework. No release ever had a CLI
 * for vDisks or snapshots (`ovs vdisk …` opens IPython, prints the launcher's help or is click's
 * "No such command", by release: ../shared/reality/audit-real-tools.md), so what the runbook page
 * types into the OVS shell runs as a small Python script through the framework's data-access layer,
 * sent on the interpreter's standard input, printing one line of JSON.
 *
 * The scripts are written in the common subset of Python 2.7 (the framework's interpreter on every
 * release) and Python 3: `print` through __future__, no f-strings, no dict comprehensions over
 * non-ASCII, `.format`. The interpreter is the host's `python2` when it has one, else `python3`.
 *
 * Inventory vars of a Storage Router (runbook.yaml `hosts.<name>.vars`):
 * - `ovsFramework`: where the framework is installed. Default `/opt/OpenvStorage`; the scripts run
 *   there with PYTHONPATH `<it>:<it>/webapps` before the host's own, as the launcher
 *   scripts/system/ovs sets it (builds before framework 2a3e3995, 2017-12, need it; later ones also
 *   install a .pth file, which this does not rely on).
 * - `ovsRelease`: the framework's release line, which names its services: `fargo` (2.7.x, 2016),
 *   `2.9` (2.9.x, 2017–2019), `develop` (the 2019 development line with the click CLI). Default `2.9`.
 * - `role`: `master` or `extra`; `vpools`: the vPools the node serves; `ip`: its address in the
 *   framework's model (checked against what the framework says when set).
 */
import type { InventoryHost } from '../inventory.js';
import { sh, type HostFacts, type Parser, type ShellCommand, type StepContext } from './dsl.js';

const DEFAULT_FRAMEWORK = '/opt/OpenvStorage';

/** The release lines the procedures know the services of. */
const RELEASES = ['fargo', '2.9', 'develop'] as const;
type OvsRelease = (typeof RELEASES)[number];

function frameworkDir(h: InventoryHost): string {
  const dir = h.vars.ovsFramework ?? DEFAULT_FRAMEWORK;
  if (typeof dir !== 'string' || !dir.startsWith('/')) throw new Error(`${h.name}: vars.ovsFramework must be an absolute path (default ${DEFAULT_FRAMEWORK})`);
  return dir;
}

export function releaseOf(h: InventoryHost): OvsRelease {
  const release = h.vars.ovsRelease ?? '2.9';
  if (!RELEASES.includes(release as OvsRelease)) throw new Error(`${h.name}: vars.ovsRelease is "${String(release)}"; the release lines known are ${RELEASES.join(', ')}`);
  return release as OvsRelease;
}

/** The interpreter the scripts run with: python2 where the host has it (the framework's own). */
function pythonOf(facts: HostFacts): { command: 'python2' | 'python3'; version: string } | undefined {
  if (facts.python2) return { command: 'python2', version: facts.python2 };
  if (facts.python3) return { command: 'python3', version: facts.python3 };
  return undefined;
}

/** A refusal when the host has no Python to run the framework's scripts with. */
export function needsPython(ctx: StepContext, host: string): string | undefined {
  return pythonOf(ctx.facts(host)) ? undefined : `${host} has neither python2 nor python3: the Open vStorage framework runs on Python 2.7`;
}

/** `python2 2.7.12`: the variant a step names. */
export function pythonVariant(ctx: StepContext, host: string): string {
  const p = pythonOf(ctx.facts(host));
  return p ? `${p.command} ${p.version}, framework in ${frameworkDir(ctx.host(host))}` : 'no Python on the host';
}

/**
 * Runs a script (the step's stdin) with the framework on the path, as the launcher does: in the
 * framework's directory, its log output to file rather than to the terminal (OVS_LOGTYPE_OVERRIDE),
 * with `args` as the script's sys.argv[1:].
 */
export function frameworkPython(ctx: StepContext, host: string, args: readonly string[] = []): ShellCommand {
  const dir = frameworkDir(ctx.host(host));
  const python = pythonOf(ctx.facts(host))?.command ?? 'python2';
  const run = sh`cd ${dir} && OVS_LOGTYPE_OVERRIDE=file PYTHONPATH=${dir}:${`${dir}/webapps`}\${PYTHONPATH:+:\$PYTHONPATH} ${python} -`;
  return args.length ? sh`${run} ${args}` : run;
}

/**
 * The script's answer: the last line of its output, as JSON (the framework may print before it).
 * `check` names what is wrong with an answer that parses.
 */
export function scriptJson<T>(what: string, check: (value: T) => string | undefined = () => undefined): Parser<T> {
  return {
    name: what,
    parse: (stdout) => {
      const last = stdout.trimEnd().split('\n').at(-1) ?? '';
      let value: T;
      try {
        value = JSON.parse(last) as T;
      } catch {
        throw new Error(`the script printed no JSON on its last line${last ? `: "${last.slice(0, 200)}"` : ' (no output)'}`);
      }
      const problem = check(value);
      if (problem) throw new Error(problem);
      return value;
    },
  };
}

const PREAMBLE = String.raw`from __future__ import print_function
import json
import sys
`;

/**
 * The vDisks of the Storage Router the script runs on: the page's `ips = None` case
 * (`System.get_my_storagerouter()`, then `vdisks_guids`), with a fresh flush id that marks the
 * snapshots this flush takes.
 */
export const LIST_VDISKS = String.raw`${PREAMBLE}import uuid
from ovs.dal.hybrids.vdisk import VDisk
from ovs.extensions.generic.system import System

storagerouter = System.get_my_storagerouter()
vdisks = []
for guid in storagerouter.vdisks_guids:
    disk = VDisk(guid)
    vdisks.append({'guid': disk.guid, 'name': disk.name, 'volume_id': str(disk.volume_id)})
print(json.dumps({'storagerouter': storagerouter.name, 'ip': storagerouter.ip, 'flush_id': uuid.uuid4().hex, 'vdisks': vdisks}))
`;

const VDISK_CLIENT = String.raw`from ovs.dal.lists.vdisklist import VDiskList

disk = VDiskList.get_vdisk_by_volume_id(volume_id)
if disk is None:
    sys.exit('no vDisk has volume id {0}'.format(volume_id))
client = disk.storagedriver_client
`;

/**
 * `create_snapshot(volume_id, 'flush_snapshot')`, safe to run again: a snapshot of that name that this
 * flush took (its flush id in the metadata) is kept, not taken twice; one an earlier flush left is
 * deleted once it is in the backend, then taken anew. The volumedriver refuses a new snapshot while
 * the previous one is not in the backend (PreviousSnapshotNotOnBackendException): then it waits 5 s
 * and tries again, for up to 10 minutes. The metadata is a protocol-0 pickle of the keys the
 * framework reads back (ovs/dal/hybrids/vdisk.py `_snapshots`), so the GUI still lists the snapshot.
 */
export const CREATE_SNAPSHOT = String.raw`${PREAMBLE}import pickle
import time
from volumedriver.storagerouter import storagerouterclient

volume_id, name, flush_id = sys.argv[1], sys.argv[2], sys.argv[3]
${VDISK_CLIENT}
metadata = pickle.dumps({'label': name, 'timestamp': str(int(time.time())), 'is_consistent': False,
                         'is_automatic': False, 'is_sticky': False, 'flush_id': flush_id}, 0)
if not isinstance(metadata, str):
    metadata = metadata.decode('ascii')
replaced = False
for attempt in range(120):
    if name in client.list_snapshots(volume_id):
        info = client.info_snapshot(volume_id, name)
        if flush_id in (info.metadata or ''):
            print(json.dumps({'created': False, 'replaced': replaced}))
            sys.exit(0)
        if info.in_backend:
            client.delete_snapshot(volume_id, name)
            replaced = True
            sys.stderr.write("Deleted the {0} an earlier flush left on volume '{1}' (it was in the backend)\n".format(name, disk.name))
            continue
        sys.stderr.write("Sleeping 5 seconds until the {0} an earlier flush left on volume '{1}' is in the backend...\n".format(name, disk.name))
    else:
        try:
            client.create_snapshot(volume_id, name, metadata)
            print(json.dumps({'created': True, 'replaced': replaced}))
            sys.exit(0)
        except storagerouterclient.SnapshotNameAlreadyExistsException:
            continue
        except storagerouterclient.PreviousSnapshotNotOnBackendException:
            sys.stderr.write("Sleeping 5 seconds until the previous snapshot of volume '{0}' is in the backend...\n".format(disk.name))
    time.sleep(5)
sys.exit("volume '{0}': its previous snapshot was still not in the backend after 10 minutes".format(disk.name))
`;

/** `info_snapshot(volume_id, 'flush_snapshot').in_backend`, once: the poll asks again every 5 s. */
export const SNAPSHOT_IN_BACKEND = String.raw`${PREAMBLE}volume_id, name = sys.argv[1], sys.argv[2]
${VDISK_CLIENT}
print(json.dumps({'in_backend': bool(client.info_snapshot(volume_id, name).in_backend)}))
`;

/**
 * `delete_snapshot(volume_id, 'flush_snapshot')`, safe to run again: a snapshot already gone is not
 * an error; one that is not this flush's is left alone.
 */
export const DELETE_SNAPSHOT = String.raw`${PREAMBLE}from volumedriver.storagerouter import storagerouterclient

volume_id, name, flush_id = sys.argv[1], sys.argv[2], sys.argv[3]
${VDISK_CLIENT}
if name not in client.list_snapshots(volume_id):
    print(json.dumps({'deleted': False}))
    sys.exit(0)
if flush_id not in (client.info_snapshot(volume_id, name).metadata or ''):
    sys.exit("the {0} of volume '{1}' was not taken by this flush: left as it is".format(name, disk.name))
try:
    client.delete_snapshot(volume_id, name)
except storagerouterclient.SnapshotNotFoundException:
    print(json.dumps({'deleted': False}))
    sys.exit(0)
print(json.dumps({'deleted': True}))
`;

/**
 * The Arakoon clusters in the configuration store (`Configuration.list('/ovs/arakoon')`), each with
 * the configuration URL `arakoon --who-master -config` takes (`Configuration.get_configuration_path`:
 * etcd:// in the etcd era, arakoon://… after it), and the Storage Routers by machine id (the names
 * Arakoon knows its nodes by).
 */
export const ARAKOON_CLUSTERS = String.raw`${PREAMBLE}from ovs.dal.lists.storagerouterlist import StorageRouterList
from ovs.extensions.generic.configuration import Configuration

clusters = []
for name in sorted(Configuration.list('/ovs/arakoon')):
    clusters.append({'name': name, 'url': Configuration.get_configuration_path('/ovs/arakoon/{0}/config'.format(name))})
storagerouters = dict((sr.machine_id, sr.name) for sr in StorageRouterList.get_storagerouters())
print(json.dumps({'clusters': clusters, 'storagerouters': storagerouters}))
`;

export interface ArakoonClusters {
  clusters: { name: string; url: string }[];
  /** Storage Router name by machine id. */
  storagerouters: Record<string, string>;
}
