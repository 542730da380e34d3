'use strict';
/**
 * Upstream: rabbitmq-server rabbitmqctl; openvstorage/arakoon --who-master; openvstorage/framework-extensions @ dfa64392 (configuration URLs); GNU coreutils 9.1 src/tail.c.
 * The checks of "Restart an environment" and the troubleshooting page on an Open vStorage node:
 * `rabbitmqctl cluster_status|list_queues`, `arakoon --who-master -config <url>` (the etcd era's
 * `etcd://127.0.0.1:2379/ovs/arakoon/<cluster>/config` and the later
 * `arakoon://<cacc cluster id>/ovs/arakoon/<cluster>/config?ini=…`), `tail [-n N] <file>` (files of the
 * fake root; a pipe goes to the real tail), and the vPool test `truncate -s <size> <file>` / `touch <file>`
 * and its clean-up `rm [-f] <file>…` (GNU coreutils' messages).
 *
 * State: the host's services (`ctx.serviceState`: rabbitmq-server must run for rabbitmqctl; the vPool's
 * `ovs-volumedriver_<vpool>` for files under /mnt/<vpool>/), `rabbitmq` = { nodes: [], queues:
 * [{ name, messages }] }, `arakoon` = { "<cluster>": { master: "<machine id>" | null, nodes: [] } } (the
 * configuration store's /ovs/arakoon; which store the host uses is its framework.json),
 * `vpools` = ["<vpool>"], `files-written` = { "<path>": <size> } (what truncate and touch made on a vPool, a volumedriver FUSE
 * mount, where nothing real is written). Paths off a vPool go to the real /usr/bin/truncate,
 * /usr/bin/touch and /usr/bin/rm with the same arguments, as they did before these were simulated
 * (the lab user may write nowhere outside the lab).
 */
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { ToolError, virtualPath } = require('../runtime.cjs');

function rabbitNode(ctx) {
  return `rabbit@${ctx.host}`;
}

function rabbitmqctl(ctx, args) {
  const [command, ...extra] = args;
  if (!['cluster_status', 'list_queues'].includes(command) || extra.length > 0) {
    throw new ToolError('Usage:\nrabbitmqctl [-n <node>] [-q] <command> [<command options>]\n(the lab simulates cluster_status and list_queues)', 64);
  }
  const node = rabbitNode(ctx);
  const state = ctx.read('rabbitmq', { nodes: [node], queues: [] });
  process.stdout.write(command === 'cluster_status' ? `Cluster status of node '${node}' ...\n` : 'Listing queues ...\n');
  if (ctx.serviceState('rabbitmq-server') !== 'running') {
    throw new ToolError(
      `Error: unable to connect to node '${node}': nodedown\n\nDIAGNOSTICS\n===========\n\nattempted to contact: ['${node}']\n\n${node}:\n  * connected to epmd (port 4369) on ${ctx.host}\n  * epmd reports: node 'rabbit' not running at all\n                  no other nodes on ${ctx.host}\n  * suggestion: start the node`,
      2,
    );
  }
  if (command === 'cluster_status') {
    const list = state.nodes.map((n) => `'${n}'`).join(',');
    process.stdout.write(`[{nodes,[{disc,[${list}]}]},\n {running_nodes,[${list}]},\n {cluster_name,<<"${state.nodes[0] ?? node}">>},\n {partitions,[]}]\n`);
  } else {
    process.stdout.write(state.queues.map((q) => `${q.name}\t${q.messages}\n`).join(''));
  }
  process.stdout.write('...done.\n');
  return 0;
}

/** OCaml's end for an exception nothing catches: the runtime prints it and exits 2. */
function fatal(exception) {
  return new ToolError(`Fatal error: exception ${exception}`, 2);
}

/** The Arakoon cluster configuration a `-config` URL names (Arakoon_config_url.make and .retrieve). */
function arakoonCluster(ctx, url) {
  const clusters = ctx.read('arakoon', {});
  const scheme = /^([a-z]+):\/\//.exec(url)?.[1];
  const store = readStore(ctx);
  if (scheme === 'etcd') {
    // retrieve_value runs `etcdctl --peers=<host:port> get --quorum <path>` (Arakoon_etcd).
    const m = /^etcd:\/\/([^/:]+)(?::(\d+))?(\/.*)$/.exec(url);
    if (m === null) throw fatal('Failure("host is required")');
    // Only the etcd era's hosts have etcdctl (and an etcd proxy on 127.0.0.1:2379): the shell's 127.
    if (store !== 'etcd') throw fatal('Arakoon_etcd.ProcessFailure(_)');
    const cluster = /^\/ovs\/arakoon\/([^/]+)\/config$/.exec(m[3])?.[1];
    if (m[1] !== '127.0.0.1' || (m[2] ?? '6379') !== '2379') {
      process.stderr.write(`Error:  client: etcd cluster is unavailable or misconfigured; error #0: dial tcp ${m[1]}:${m[2] ?? '6379'}: getsockopt: connection refused\n\n`);
      throw fatal('Arakoon_etcd.ProcessFailure(_)');
    }
    if (cluster === undefined || clusters[cluster] === undefined) {
      process.stderr.write(`Error:  100: Key not found (${m[3]}) [42]\n`);
      throw fatal('Arakoon_etcd.ProcessFailure(_)');
    }
    return clusters[cluster];
  }
  if (scheme === 'arakoon') {
    const u = new URL(url);
    const ini = u.searchParams.get('ini');
    if (ini === null) throw fatal('Failure("ini location was not specified")');
    let text;
    try {
      text = fs.readFileSync(ctx.realPath(ini), 'utf8');
    } catch {
      throw fatal(`Unix.Unix_error(Unix.ENOENT, "open", "${ini}")`);
    }
    const clusterId = /^\s*cluster_id\s*=\s*(\S+)/m.exec(text)?.[1];
    if (clusterId !== u.hostname) throw fatal('Assert_failure("src/tools/arakoon_config_url.ml", 96, 5)');
    const key = decodeURIComponent(u.pathname.slice(1));
    const cluster = /^ovs\/arakoon\/([^/]+)\/config$/.exec(key)?.[1];
    if (cluster === undefined || clusters[cluster] === undefined) throw fatal(`Arakoon_exc.Exception(4, "${key}")`);
    return clusters[cluster];
  }
  throw fatal(`Failure("unknown protocol:${scheme ?? 'file'}")`);
}

/** The configuration store the host's framework uses: `configuration_store` of framework.json. */
function readStore(ctx) {
  try {
    return JSON.parse(fs.readFileSync(ctx.realPath('/opt/OpenvStorage/config/framework.json'), 'utf8')).configuration_store;
  } catch {
    return undefined;
  }
}

/**
 * `arakoon --who-master -config <url>` (openvstorage/arakoon @ 18439814: src/main/arakoon.ml
 * `--who-master`, `-config`; src/client/client_main.ml `who_master` prints the master's node name;
 * `find_master` fails with Failure "No Master", which nothing catches, so OCaml prints
 * `Fatal error: exception Failure("No Master")` and exits 2). Node names are the Storage Routers'
 * machine ids. Other arakoon actions are not simulated.
 */
function arakoon(ctx, args) {
  const config = args.indexOf('-config');
  if (args.length !== 3 || !args.includes('--who-master') || config < 0 || config === args.length - 1) {
    throw new ToolError('usage: arakoon --who-master -config <url> (the lab simulates only this action)', 2);
  }
  const cluster = arakoonCluster(ctx, args[config + 1]);
  if (!cluster.master) throw fatal('Failure("No Master")');
  process.stdout.write(`${cluster.master}\n`);
  return 0;
}

function tail(ctx, args) {
  let lines = 10;
  const rest = [...args];
  if (rest[0] === '-n' && rest.length >= 2) {
    lines = Number(rest[1]);
    rest.splice(0, 2);
  } else if (/^-\d+$/.test(rest[0] ?? '')) {
    lines = Number(rest[0].slice(1));
    rest.splice(0, 1);
  }
  // Reading a pipe (`… | tail -n 1`) is the real tail's business: it touches no file.
  if (rest.length === 0 && Number.isInteger(lines) && lines >= 0) return real('tail', args);
  if (rest.length !== 1 || !Number.isInteger(lines) || lines < 0) throw new ToolError('tail: the lab simulates only "tail [-n N] FILE" (and tail of a pipe)', 1);
  let text;
  try {
    text = fs.readFileSync(ctx.realPath(rest[0]), 'utf8');
  } catch {
    throw new ToolError(`tail: cannot open '${rest[0]}' for reading: No such file or directory`, 1);
  }
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  const shown = lines === 0 ? [] : all.slice(-lines);
  process.stdout.write(shown.length ? `${shown.join('\n')}\n` : '');
  return 0;
}

const SIZE = /^(\d+)([KMGT]?)$/;

/** The vPool a path is on (a volumedriver FUSE mount under /mnt/<vpool>/), checked to be mounted. */
function onVpool(ctx, tool, file) {
  const p = virtualPath(file);
  const vpool = /^\/mnt\/([^/]+)\//.exec(p)?.[1];
  if (vpool === undefined || !ctx.read('vpools', []).includes(vpool)) return undefined;
  if (ctx.serviceState(`ovs-volumedriver_${vpool}`) !== 'running') {
    const what = { touch: `touch '${file}'`, rm: `remove '${file}'` }[tool] ?? `open '${file}' for writing`;
    throw new ToolError(`${tool}: cannot ${what}: Transport endpoint is not connected`, 1);
  }
  return p;
}

function record(ctx, p, size) {
  ctx.update('files-written', {}, (files) => {
    files[p] = size ?? files[p] ?? 0;
  });
}

/** Anything not on a simulated vPool is the real tool's business, as before these were simulated. */
function real(tool, args) {
  const r = spawnSync(`/usr/bin/${tool}`, args, { stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 128;
}

module.exports = {
  rabbitmqctl,
  arakoon,
  tail,
  truncate(ctx, args) {
    const m = args.length === 3 && args[0] === '-s' ? SIZE.exec(args[1]) : null;
    const p = m === null ? undefined : onVpool(ctx, 'truncate', args[2]);
    if (p === undefined) return real('truncate', args);
    record(ctx, p, Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' '));
    return 0;
  },
  touch(ctx, args) {
    const p = args.length === 1 ? onVpool(ctx, 'touch', args[0]) : undefined;
    if (p === undefined) return real('touch', args);
    record(ctx, p);
    return 0;
  },
  rm(ctx, args) {
    const force = args[0] === '-f';
    const files = force ? args.slice(1) : args;
    const onPool = files.map((f) => (f.startsWith('-') ? undefined : onVpool(ctx, 'rm', f)));
    if (files.length === 0 || onPool.every((p) => p === undefined)) return real('rm', args);
    if (onPool.some((p) => p === undefined)) throw new ToolError('rm: the lab removes files on a vPool or off it, not both in one call', 1);
    const missing = ctx.update('files-written', {}, (written) =>
      onPool.filter((p) => {
        const had = Object.hasOwn(written, p);
        delete written[p];
        return !had;
      }),
    );
    if (force) return 0;
    for (const p of missing) process.stderr.write(`rm: cannot remove '${p}': No such file or directory\n`);
    return missing.length > 0 ? 1 : 0;
  },
};
