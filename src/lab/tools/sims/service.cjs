'use strict';
/**
 * Service control as the runbooks use it: sysvinit's `service <name> start|stop|restart|status`
 * (LSB status codes: 0 running, 3 not running) and upstart's `start|stop|restart|status <name>`
 * (Open vStorage's `restart ovs-workers`).
 *
 * State: `services` = { "<name>": "running" | "halted" }, shared with `ovs monitor services`.
 * A name not in the state is not installed on the host ("unrecognized service").
 */
const { ToolError } = require('../runtime.cjs');

/** A stable fake pid per service name, so output looks like upstart's without being random. */
function pid(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) % 30000;
  return 1000 + h;
}

/**
 * Host setting `badStarts` = { "<name>": n }: the next n starts of that service report success but
 * leave it not running (the AFS page's Postgres, which "is known to need one, two or more restarts
 * before it really starts properly").
 */
function set(ctx, name, to, unknown) {
  const bad = to === 'running' ? takeBadStart(ctx, name) : false;
  return ctx.update('services', {}, (services) => {
    if (!Object.hasOwn(services, name)) throw new ToolError(unknown, 1);
    const was = services[name];
    services[name] = bad ? 'halted' : to;
    return was;
  });
}

/** Uses up one of the `badStarts` of the service; counting starts again whenever the setting changes. */
function takeBadStart(ctx, name) {
  const n = ctx.setting('badStarts', {})[name] ?? 0;
  if (!(n > 0)) return false;
  return ctx.update('bad-starts', {}, (counts) => {
    const c = counts[name]?.setting === n ? counts[name] : { setting: n, used: 0 };
    counts[name] = c;
    if (c.used >= n) return false;
    c.used += 1;
    return true;
  });
}

function current(ctx, name, unknown) {
  const services = ctx.read('services', {});
  if (!Object.hasOwn(services, name)) throw new ToolError(unknown, 1);
  return services[name];
}

function sysv(ctx, args) {
  const [name, action] = args;
  if (!name || !action || args.length !== 2) throw new ToolError('Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]', 1);
  const unknown = `${name}: unrecognized service`;
  switch (action) {
    case 'status':
      if (current(ctx, name, unknown) === 'running') {
        process.stdout.write(` * ${name} is running\n`);
        return 0;
      }
      process.stdout.write(` * ${name} is not running\n`);
      return 3;
    case 'start':
      process.stdout.write(set(ctx, name, 'running', unknown) === 'running' ? ` * ${name} is already running\n` : ` * Starting ${name} ...   [ OK ]\n`);
      return 0;
    case 'stop':
      process.stdout.write(set(ctx, name, 'halted', unknown) === 'halted' ? ` * ${name} is not running\n` : ` * Stopping ${name} ...   [ OK ]\n`);
      return 0;
    case 'restart':
      set(ctx, name, 'running', unknown);
      process.stdout.write(` * Restarting ${name} ...   [ OK ]\n`);
      return 0;
    default:
      throw new ToolError(`Usage: /etc/init.d/${name} {start|stop|restart|status}`, 1);
  }
}

function upstart(verb) {
  return (ctx, args) => {
    const [name] = args;
    if (!name || args.length !== 1) throw new ToolError(`${verb}: missing job name\nTry '${verb} --help' for more information.`, 1);
    const unknown = `${verb}: Unknown job: ${name}`;
    const running = () => process.stdout.write(`${name} start/running, process ${pid(name)}\n`);
    const waiting = () => process.stdout.write(`${name} stop/waiting\n`);
    if (verb === 'status') {
      (current(ctx, name, unknown) === 'running' ? running : waiting)();
      return 0;
    }
    if (verb === 'stop') {
      if (set(ctx, name, 'halted', unknown) === 'halted') throw new ToolError(`stop: Unknown instance: `, 1);
      waiting();
      return 0;
    }
    if (verb === 'start' && set(ctx, name, 'running', unknown) === 'running') throw new ToolError('start: Job is already running: ' + name, 1);
    if (verb === 'restart' && set(ctx, name, 'running', unknown) !== 'running') throw new ToolError('restart: Unknown instance: ', 1);
    running();
    return 0;
  };
}

module.exports = {
  service: sysv,
  start: upstart('start'),
  stop: upstart('stop'),
  restart: upstart('restart'),
  status: upstart('status'),
};

/** For other service managers of the lab (runit's sv): the same state, not a tool (not enumerable). */
Object.defineProperty(module.exports, 'state', { enumerable: false, value: { set, current } });
