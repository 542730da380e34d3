'use strict';
/**
 * Upstream: init-system-helpers 1.65.2 script/service and update-rc.d (Debian 12); sysvinit LSB init scripts.
 * Debian's `service`, `update-rc.d` and the init scripts in /etc/init.d, per host profile:
 *
 * - `service` is init-system-helpers 1.65.2's script/service (Debian 12, /usr/sbin/service): on a
 *   systemd host `service x start|stop|restart|status|try-restart` runs `systemctl <action>
 *   x.service` (force-reload: `restart`, as the lab's units cannot reload); otherwise, and for any
 *   other action, it runs `/etc/init.d/x <action>` when that is executable, else says
 *   "x: unrecognized service" (exit 1). No arguments: its usage on stderr, exit 1. On an upstart host
 *   it is Ubuntu 14.04's (sysvinit-utils 2.88dsf-41ubuntu6): a job with `/etc/init/x.conf` that
 *   `initctl status` knows goes to upstart (`start|stop|status|reload x`; restart and force-reload
 *   are `stop x || :; start x`), anything else to the init script.
 * - The init scripts are written into each host's fake root by src/lab/seed.ts; each runs
 *   `lab-initd <name>`, so `service x …` and a direct `<initd dir>/x …` behave alike and no real
 *   init script ever runs. A script that implements `status` follows Debian's LSB skeleton and
 *   /lib/lsb/init-functions (sysvinit-utils 3.06-4, Debian 12): "Starting <desc>: <daemon>.",
 *   status_of_proc "<daemon> is running." (0) or "<daemon> is not running ... failed!" (3, or 1
 *   when the daemon died and left its pid file), usage "Usage: /etc/init.d/x
 *   {start|stop|status|restart|force-reload}" exit 3. One without `status` is the pre-LSB
 *   skeleton of Debian ≤ 4.0 (`N=/etc/init.d/$NAME; echo "Usage: $N {start|stop|restart|force-reload}"
 *   >&2; exit 1`), with no INIT INFO header.
 * - `update-rc.d x disable|enable [S|2|3|4|5]` is init-system-helpers 1.65.2's script/update-rc.d:
 *   silent; "update-rc.d: error: cannot find a LSB script for x" without a script; without runlevels
 *   it reads Default-Start from the LSB header ("x Default-Start contains no runlevels, aborting."
 *   without one); on a systemd host it also disables/enables the unit (`systemctl --quiet`).
 */
const fs = require('node:fs');
const { ToolError } = require('../runtime.cjs');
const state = require('../service-state.cjs');

const USAGE = 'Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]';

/** The host's init script for a name: its fake-root file is there and executable. */
function scriptExists(ctx, name) {
  try {
    fs.accessSync(ctx.realPath(`/etc/init.d/${name}`), fs.constants.X_OK);
    return fs.statSync(ctx.realPath(`/etc/init.d/${name}`)).isFile();
  } catch {
    return false;
  }
}

function runScript(ctx, name, action, options) {
  if (!scriptExists(ctx, name)) throw new ToolError(`${name}: unrecognized service`, 1);
  return ctx.invoke('lab-initd', [name, ...(action === undefined ? [] : [action]), ...options]);
}

function statusAll(ctx) {
  const dir = ctx.realPath('/etc/init.d');
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  const st = state.read(ctx);
  for (const name of names.filter((n) => scriptExists(ctx, n))) {
    const s = Object.values(st.services).find((x) => x.manager === 'sysv' && x.unit === name);
    if (s === undefined || !s.lsbStatus) process.stderr.write(` [ ? ]  ${name}\n`);
    else process.stdout.write(` [ ${s.status === 'running' ? '+' : '-'} ]  ${name}\n`);
  }
  return 0;
}

async function service(ctx, args) {
  if (args.length === 0) throw new ToolError(USAGE, 1);
  if (['--help', '-h'].includes(args[0]) || args[0].startsWith('--h')) {
    process.stderr.write(`${USAGE}\n`);
    return 0;
  }
  if (['--version', '-V'].includes(args[0])) {
    process.stderr.write('service ver. 1.65.2\n');
    return 0;
  }
  if (args.length === 1 && args[0] === '--status-all') return statusAll(ctx);
  const [name, action, ...options] = args;
  const profile = state.read(ctx);
  if (profile.init === 'systemd') {
    const unit = `${name.replace(/\.sh$/, '')}.service`;
    // reload: the lab's units say nothing of CanReload, so it goes to systemctl, which says it does not simulate it.
    if (['restart', 'status', 'try-restart', 'start', 'stop', 'reload'].includes(action)) return ctx.invoke('systemctl', [action, unit]);
    if (action === 'force-reload') return ctx.invoke('systemctl', ['restart', unit]);
    return runScript(ctx, name, action, options);
  }
  if (profile.init === 'upstart' && state.exists(ctx, `/etc/init/${name}.conf`) && (await ctx.quietly('initctl', ['status', name])) === 0) {
    if (['start', 'stop', 'status', 'reload'].includes(action)) return ctx.invoke(action, [name, ...options]);
    if (['restart', 'force-reload'].includes(action)) {
      await ctx.invoke('stop', [name, ...options]);
      return ctx.invoke('start', [name, ...options]);
    }
  }
  return runScript(ctx, name, action, options);
}

/** The LSB init script of a service, or the pre-LSB one when it has no `status`. */
function initScript(ctx, args) {
  const [name, action] = args;
  const st = state.read(ctx);
  const entry = Object.entries(st.services).find(([, s]) => s.manager === 'sysv' && s.unit === name);
  if (entry === undefined) throw new ToolError(`/etc/init.d/${name}: the lab has no service behind this init script`, 1);
  const [key, s] = entry;
  const desc = s.description || name;
  const daemon = s.daemon ?? name;
  const usage = s.lsbStatus ? [`Usage: /etc/init.d/${name} {start|stop|status|restart|force-reload}`, 3] : [`Usage: /etc/init.d/${name} {start|stop|restart|force-reload}`, 1];
  switch (action) {
    case 'start':
      state.start(ctx, key);
      process.stdout.write(`Starting ${desc}: ${daemon}.\n`);
      return 0;
    case 'stop':
      state.stop(ctx, key);
      process.stdout.write(`Stopping ${desc}: ${daemon}.\n`);
      return 0;
    case 'restart':
    case 'force-reload':
      state.stop(ctx, key);
      state.start(ctx, key);
      process.stdout.write(`Restarting ${desc}: ${daemon}.\n`);
      return 0;
    case 'status':
      if (s.lsbStatus) {
        if (s.status === 'running') {
          process.stdout.write(`${daemon} is running.\n`);
          return 0;
        }
        process.stdout.write(`${daemon} is not running ... failed!\n`);
        return s.status === 'failed' ? 1 : 3;
      }
    // falls through: a pre-LSB script knows no `status`
    default:
      throw new ToolError(usage[0], usage[1]);
  }
}
initScript.words = (args) => [`/etc/init.d/${args[0]}`, ...args.slice(1)];

const UPDATE_RC_USAGE = `usage: update-rc.d [-f] <basename> remove
       update-rc.d [-f] <basename> defaults
       update-rc.d [-f] <basename> defaults-disabled
       update-rc.d <basename> disable|enable [S|2|3|4|5]
		-f: force

The disable|enable API is not stable and might change in the future.`;

function updateRcD(ctx, args) {
  const words = args.filter((a) => a !== '-f');
  if (words.length < 2) throw new ToolError(`update-rc.d: error: not enough arguments\n${UPDATE_RC_USAGE}`, 1);
  const [name, action, ...levels] = words;
  if (!['disable', 'enable'].includes(action)) {
    if (['remove', 'defaults', 'defaults-disabled', 'start', 'stop'].includes(action)) throw new ToolError(`update-rc.d: the lab simulates "disable" and "enable"; not "${action}"`, 1);
    throw new ToolError(UPDATE_RC_USAGE, 1);
  }
  const script = state.readFile(ctx, `/etc/init.d/${name}`);
  if (script === undefined || script === '') throw new ToolError(`update-rc.d: error: cannot find a LSB script for ${name}`, 1);
  const st = state.read(ctx);
  const sysv = Object.entries(st.services).find(([, s]) => s.manager === 'sysv' && s.unit === name);
  if (levels.length === 0 && !/^# Default-Start:\s*\S/m.test(script)) throw new ToolError(`update-rc.d: error: ${name} Default-Start contains no runlevels, aborting.`, 1);
  for (const l of levels.filter((x) => !/^[S2345]$/.test(x))) process.stderr.write(`update-rc.d: warning: ${action} action will have no effect on runlevel ${l}\n`);
  if (sysv !== undefined) state.change(ctx, sysv[0], (s) => void (s.enabled = action === 'enable'));
  if (st.init === 'systemd') {
    const unit = Object.entries(st.services).find(([, s]) => s.manager === 'systemd' && s.unit === `${name}.service`);
    if (unit !== undefined) state.change(ctx, unit[0], (s) => void (s.enabled = action === 'enable'));
  }
  return 0;
}

module.exports = { service, 'lab-initd': initScript, 'update-rc.d': updateRcD };
