'use strict';
/**
 * Object Storage ring management as the operations guide types it on the storage proxy:
 * `swift-ring-builder <ring>.builder [remove <ip> | add r<R>z<Z>-<ip>:<port>/<device> <weight> |
 * rebalance]`, and `scp <file>… <host>:<dir>` to redistribute the ring files to the storage nodes.
 *
 * State: `rings` = { account|container|object: { devices: [{ id, region, zone, ip, port, device,
 * weight, removing? }], pending: bool, rebalances: n } }. The builder file must exist in the fake root
 * (`/etc/swift/account.builder`); `rebalance` writes `<ring>.ring.gz` beside it (JSON, not gzip: the
 * lab's stand-in), which is what scp copies.
 *
 * scp copies only between fake roots of this lab: the destination is a lab host named by its name,
 * `vars.fqdn`, `vars.ip` or address (from the lab's lab.json); anything else does not resolve.
 */
const fs = require('node:fs');
const path = require('node:path');
const runtime = require('../runtime.cjs');
const { ToolError } = runtime;

const EXIT_WARNING = 1;
const EXIT_ERROR = 2;

const devName = (d) => `d${d.id}r${d.region}z${d.zone}-${d.ip}:${d.port}R${d.ip}:${d.port}/${d.device}_""`;

function summary(name, ring) {
  const live = ring.devices.filter((d) => !d.removing);
  const lines = [
    `${name}.builder, build version ${ring.rebalances}`,
    `1024 partitions, 3.000000 replicas, 1 regions, ${new Set(live.map((d) => d.zone)).size} zones, ${live.length} devices, 0.00 balance, 0.00 dispersion`,
    'Devices:   id region zone      ip address:port replication ip:port  name weight partitions balance flags meta',
    ...ring.devices.map((d) => `         ${String(d.id).padStart(3)} ${String(d.region).padStart(6)} ${String(d.zone).padStart(4)} ${`${d.ip}:${d.port}`.padStart(21)} ${`${d.ip}:${d.port}`.padStart(21)} ${d.device.padStart(5)} ${d.weight.toFixed(2).padStart(6)} ${String(d.removing ? 0 : 1024).padStart(10)}    0.00 ${d.removing ? 'DEL' : '   '}`),
  ];
  return `${lines.join('\n')}\n`;
}

function ringBuilder(ctx, args) {
  const [builder, command, ...rest] = args;
  if (builder === undefined) throw new ToolError('Usage: swift-ring-builder <builder_file> [remove <search-value> | add <dev> <weight> | rebalance]', EXIT_ERROR);
  const name = path.posix.basename(builder).replace(/\.builder$/, '');
  if (!fs.existsSync(ctx.realPath(builder)) || !['account', 'container', 'object'].includes(name)) {
    throw new ToolError(`Ring Builder file does not exist: ${builder}`, EXIT_ERROR);
  }
  if (command === undefined) {
    process.stdout.write(summary(name, ctx.read('rings', {})[name]));
    return 0;
  }
  if (command === 'remove' && rest.length === 1) {
    const [ip] = rest;
    const marked = ctx.update('rings', {}, (rings) => {
      const hits = rings[name].devices.filter((d) => (d.ip === ip || `d${d.id}` === ip) && !d.removing);
      if (hits.length === 0) throw new ToolError(`Search value "${ip}" matched 0 devices.\nNo matching devices found`, EXIT_ERROR);
      for (const d of hits) d.removing = true;
      rings[name].pending = true;
      return hits;
    });
    process.stdout.write(marked.map((d) => `${devName(d)} marked for removal and will be removed next rebalance.\n`).join(''));
    return 0;
  }
  if (command === 'add' && rest.length === 2) {
    const m = /^r(\d+)z(\d+)-([\d.]+):(\d+)\/(\w+)$/.exec(rest[0]);
    const weight = Number(rest[1]);
    if (!m || !Number.isFinite(weight)) throw new ToolError(`Invalid device specifier: ${rest.join(' ')}`, EXIT_ERROR);
    const dev = ctx.update('rings', {}, (rings) => {
      const ring = rings[name];
      const [, region, zone, ip, port, device] = m;
      if (ring.devices.some((d) => !d.removing && d.ip === ip && d.port === Number(port) && d.device === device)) {
        throw new ToolError(`Device ${ip}:${port}/${device} already uses ${ip}:${port}/${device}.`, EXIT_ERROR);
      }
      const d = { id: Math.max(-1, ...ring.devices.map((x) => x.id)) + 1, region: Number(region), zone: Number(zone), ip, port: Number(port), device, weight };
      ring.devices.push(d);
      ring.pending = true;
      return d;
    });
    process.stdout.write(`Device ${devName(dev)} with ${weight.toFixed(1)} weight got id ${dev.id}\n`);
    return 0;
  }
  if (command === 'rebalance' && rest.length === 0) {
    const ring = ctx.update('rings', {}, (rings) => {
      const r = rings[name];
      if (!r.pending) {
        throw new ToolError('No partitions could be reassigned.\nThere is no need to do so at this time', EXIT_WARNING);
      }
      r.devices = r.devices.filter((d) => !d.removing);
      r.pending = false;
      r.rebalances += 1;
      return r;
    });
    const file = ctx.realPath(path.posix.join(path.posix.dirname(builder), `${name}.ring.gz`));
    fs.writeFileSync(file, `${JSON.stringify({ version: ring.rebalances, devices: ring.devices })}\n`);
    process.stdout.write('Reassigned 1024 (100.00%) partitions. Balance is now 0.00.  Dispersion is now 0.00\n');
    return 0;
  }
  throw new ToolError(`Usage: swift-ring-builder <builder_file> [remove <search-value> | add <dev> <weight> | rebalance]`, EXIT_ERROR);
}

/** The lab host a name, FQDN or IP designates, or undefined. */
function labHost(labDir, name) {
  const lab = runtime.readJson(path.join(labDir, 'lab.json'), { hosts: [] });
  return lab.hosts.find((h) => h.name === name || h.address === name || h.vars?.fqdn === name || h.vars?.ip === name);
}

function scp(ctx, args) {
  if (args.length < 2 || args.some((a) => a.startsWith('-'))) throw new ToolError('usage: scp <source>… <host>:<directory>', 1);
  const dest = args.at(-1);
  const m = /^([^:/]+):(.*)$/.exec(dest);
  if (!m) throw new ToolError(`scp: the lab copies only to another host: ${dest}`, 1);
  const [, name, dir] = m;
  const host = labHost(ctx.labDir, name);
  if (host === undefined) throw new ToolError(`ssh: Could not resolve hostname ${name}: Name or service not known\nlost connection`, 1);
  const targetDir = runtime.realPath(ctx.labDir, host.name, dir || '/');
  if (fs.statSync(targetDir, { throwIfNoEntry: false })?.isDirectory() !== true) throw new ToolError(`scp: ${dir}: No such file or directory`, 1);
  for (const src of args.slice(0, -1)) {
    const real = ctx.realPath(src);
    if (!fs.existsSync(real)) throw new ToolError(`scp: ${src}: No such file or directory`, 1);
    fs.copyFileSync(real, path.join(targetDir, path.posix.basename(src)));
  }
  return 0;
}

/** `swift stat` on the proxy: the account's totals, when swift-proxy runs (`ctx.serviceState`). */
function swift(ctx, args) {
  if (args.join(' ') !== 'stat') throw new ToolError('usage: swift stat (the lab simulates only this form)', 2);
  if (ctx.serviceState('swift-proxy') !== 'running') throw new ToolError('Account HEAD failed: http://controller:8080/v1/AUTH_admin 503 Service Unavailable', 1);
  const a = ctx.read('swift', { account: 'AUTH_admin', containers: 0, objects: 0, bytes: 0 });
  process.stdout.write(`        Account: ${a.account}\n     Containers: ${a.containers}\n        Objects: ${a.objects}\n          Bytes: ${a.bytes}\n`);
  return 0;
}

module.exports = { 'swift-ring-builder': ringBuilder, scp, swift };
