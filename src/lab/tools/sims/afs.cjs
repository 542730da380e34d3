'use strict';
/**
 * The tools of the AFS fileserver reboot page (RebootingDeleuze) that are the site's own: OpenAFS's
 * `bos status <server>` and HCoop's `domtool <file>` (a test configuration of a domain). Its service
 * managers and process tools (`service`, the init scripts, runit's `sv`, `killall`, `ps`) are the
 * lab's shared ones (service.cjs, runit.cjs, psmisc.cjs, procps.cjs).
 *
 * State: the host's services (`ctx.serviceState`), `afs` = { salvageChecksLeft: n } (set by `reboot`
 * from the host setting `salvageChecks`: that many `bos status` calls still see the salvager),
 * `domtool` = { configured: ["<domain>"] }, `files` = { "<path>": "<text>" } (files the tools read).
 */
const { ToolError } = require('../runtime.cjs');

/** `bos status <server>`: the fileserver instance, salvaging for `salvageChecksLeft` more calls. */
function bos(ctx, args) {
  const [command, server, ...extra] = args;
  if (command !== 'status' || !server || extra.length > 0) throw new ToolError('Usage: bos status -server <machine name> (the lab simulates only "bos status <server>")', 1);
  if (server !== ctx.host) throw new ToolError(`bos: could not find entry (can't find address for server '${server}' from this host)`, 1);
  const salvaging = ctx.update('afs', {}, (afs) => {
    const left = afs.salvageChecksLeft ?? 0;
    afs.statusChecks = (afs.statusChecks ?? 0) + 1;
    if (left > 0) afs.salvageChecksLeft = left - 1;
    return left > 0;
  });
  process.stdout.write(
    [
      'Instance ptserver, currently running normally.',
      'Instance vlserver, currently running normally.',
      'Instance fs, currently running normally.',
      `    Auxiliary status is: ${salvaging ? 'salvaging file system' : 'file server running'}.`,
      '',
    ].join('\n'),
  );
  return 0;
}

/**
 * `domtool <file>`: sends a domain configuration to domtool-server, which needs Postgres. The file
 * is read from the `files` state (the lab writes nothing on the machine it runs on).
 */
function domtool(ctx, args) {
  const [file, ...extra] = args;
  if (!file || extra.length > 0) throw new ToolError('Usage: domtool FILE (the lab simulates only this form)', 1);
  const text = ctx.read('files', {})[file];
  if (text === undefined) throw new ToolError(`domtool: ${file}: No such file or directory`, 1);
  if (ctx.serviceState('domtool-server') !== 'running') throw new ToolError('domtool: Error connecting to domtool-server: Connection refused', 1);
  if (ctx.serviceState('postgres') !== 'running') throw new ToolError('domtool-server: Error: could not connect to the database (is Postgres running?)', 1);
  const domain = /domain\s+"([^"]+)"/.exec(text)?.[1];
  if (domain === undefined) throw new ToolError(`${file}:1.1-1.1 Error: expected a domain declaration`, 1);
  ctx.update('domtool', { configured: [] }, (d) => {
    d.configured.push(domain);
  });
  process.stdout.write(`Configuration of ${domain} succeeded.\n`);
  return 0;
}

module.exports = { bos, domtool };
