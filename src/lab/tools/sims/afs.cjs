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

/**
 * `bos status <server>` (or `-server <server>`), as OpenAFS 1.4.12 (openafs-stable-1_4_12, Debian
 * squeeze) src/bozo/bos.c `StatServer`/`DoStat` print it: a line per bosserver instance, the
 * fileserver's with the auxiliary status of src/bozo/fsbnodeops.c `fs_getstring` ("salvaging file
 * system" while the salvager runs, "file server running" after). While the host's bosserver is not
 * up yet after a boot, `BOZO_EnumerateInstance` fails: bos prints "bos: failed to contact host's
 * bosserver (communications failure (-1))." (on stdout in 1.4; 1.6 moved it to stderr) and still
 * exits 0, with no instance at all. A host it cannot resolve: "bos: can't find address for host
 * '<name>'", exit 1 (`GetConn`).
 *
 * State `afs`: `bosserverDownChecks` (that many more calls find the bosserver not up; `reboot` sets
 * it from `bosserverStartChecks`, the host's slowness, or the host setting of that name),
 * `salvageChecksLeft` (then that many more see the salvager), `statusChecks` (calls so far).
 */
function bos(ctx, args) {
  const [command, ...rest] = args;
  const server = rest[0] === '-server' ? rest[1] : rest[0];
  if (command !== 'status' || !server || rest.length !== (rest[0] === '-server' ? 2 : 1)) {
    throw new ToolError('Usage: bos status -server <machine name> (the lab simulates only "bos status [-server] <server>")', 1);
  }
  if (server !== ctx.host) throw new ToolError(`bos: can't find address for host '${server}'`, 1);
  const status = ctx.update('afs', {}, (afs) => {
    afs.statusChecks = (afs.statusChecks ?? 0) + 1;
    if ((afs.bosserverDownChecks ?? 0) > 0) {
      afs.bosserverDownChecks -= 1;
      return 'down';
    }
    const salvaging = (afs.salvageChecksLeft ?? 0) > 0;
    if (salvaging) afs.salvageChecksLeft -= 1;
    return salvaging ? 'salvaging' : 'running';
  });
  if (status === 'down') {
    process.stdout.write("bos: failed to contact host's bosserver (communications failure (-1)).\n");
    return 0;
  }
  process.stdout.write(
    [
      'Instance ptserver, currently running normally.',
      'Instance vlserver, currently running normally.',
      'Instance fs, currently running normally.',
      `    Auxiliary status is: ${status === 'salvaging' ? 'salvaging file system' : 'file server running'}.`,
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
  // Postgres under whichever of Debian's scripts runs it (postgresql-8.3 on lenny, postgresql later).
  const postgres = Object.entries(ctx.serviceStates()).filter(([name]) => /^postgres/.test(name));
  if (!postgres.some(([, state]) => state === 'running')) throw new ToolError('domtool-server: Error: could not connect to the database (is Postgres running?)', 1);
  const domain = /domain\s+"([^"]+)"/.exec(text)?.[1];
  if (domain === undefined) throw new ToolError(`${file}:1.1-1.1 Error: expected a domain declaration`, 1);
  ctx.update('domtool', { configured: [] }, (d) => {
    d.configured.push(domain);
  });
  process.stdout.write(`Configuration of ${domain} succeeded.\n`);
  return 0;
}

module.exports = { bos, domtool };
