'use strict';
/**
 * The checks of "Restart an environment" and the troubleshooting page on an Open vStorage node:
 * `rabbitmqctl cluster_status|list_queues`, `arakoon --who-master -config etcd://…/<DB>/config`,
 * `tail [-n N] <log>` (files of the fake root; a pipe goes to the real tail), and the vPool test `truncate -s <size> <file>` / `touch <file>`.
 *
 * State: the host's services (`ctx.serviceState`: rabbitmq-server must run for rabbitmqctl; the vPool's
 * `ovs-volumedriver_<vpool>` for files under /mnt/<vpool>/), `rabbitmq` = { nodes: [], queues:
 * [{ name, messages }] }, `arakoon` = { "<DB>": { master: "<node>" | null } }, `vpools` = ["<vpool>"],
 * `logs` = { "<path>": "<text>" } (what tail reads; otherwise the file in the host's fake root),
 * `files-written` = { "<path>": <size> } (what truncate and touch made on a vPool, a volumedriver FUSE
 * mount, where nothing real is written). Paths off a vPool go to the real /usr/bin/truncate and
 * /usr/bin/touch with the same arguments, as they did before these were simulated (the lab user may
 * write nowhere outside the lab).
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

const ARAKOON_CONFIG = /^etcd:\/\/127\.0\.0\.1:2379\/ovs\/arakoon\/([A-Za-z0-9_-]+)\/config$/;

function arakoon(ctx, args) {
  if (args.length !== 3 || args[0] !== '--who-master' || args[1] !== '-config') {
    throw new ToolError('usage: arakoon --who-master -config etcd://127.0.0.1:2379/ovs/arakoon/<DB_name>/config (the lab simulates only this form)', 2);
  }
  const m = ARAKOON_CONFIG.exec(args[2]);
  if (m === null) throw new ToolError(`arakoon: cannot read the configuration at ${args[2]}`, 1);
  const cluster = ctx.read('arakoon', {})[m[1]];
  if (cluster === undefined) throw new ToolError(`arakoon: Key not found: /ovs/arakoon/${m[1]}/config`, 1);
  if (!cluster.master) throw new ToolError('No Master', 1);
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
  const file = virtualPath(rest[0]);
  let text = ctx.read('logs', {})[file];
  if (text === undefined) {
    try {
      text = fs.readFileSync(ctx.realPath(file), 'utf8');
    } catch {
      throw new ToolError(`tail: cannot open '${rest[0]}' for reading: No such file or directory`, 1);
    }
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
    throw new ToolError(`${tool}: cannot ${tool === 'touch' ? 'touch' : 'open'} '${file}'${tool === 'touch' ? '' : ' for writing'}: Transport endpoint is not connected`, 1);
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
};
