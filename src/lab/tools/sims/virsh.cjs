'use strict';
/**
 * Upstream: libvirt tools/virsh-domain-monitor.c (cmdList), tools/virsh-domain.c (suspend, resume).
 * `virsh` on a compute node: `list [--all] [--name]`, `suspend <domain>`, `resume <domain>`, with the
 * output the OpenStack operations guide shows (libvirt of that era: ` Id Name State` over 34
 * dashes; `--name` prints one name per line, as libvirt's tools/virsh-domain-monitor.c cmdList does).
 *
 * State: `virsh` = { domains: [{ id, name, uuid, state: "running" | "paused" | "shut off" }] }; the
 * lab's OpenStack double moves a domain between hosts when nova moves its instance. A domain is named
 * by its id or its name, as in virsh.
 */
const { ToolError } = require('../runtime.cjs');

const USAGE = 'usage: virsh list [--all] [--name] | virsh suspend <domain> | virsh resume <domain>';

function row(id, name, state) {
  return `${String(id).padStart(3)} ${name.padEnd(20)} ${state}\n`;
}

function list(ctx, rest) {
  if (rest.some((a) => a !== '--all' && a !== '--name')) throw new ToolError(USAGE, 2);
  const all = rest.includes('--all');
  const { domains } = ctx.read('virsh', { domains: [] });
  const shown = domains.filter((d) => all || d.state !== 'shut off');
  if (rest.includes('--name')) {
    process.stdout.write(`${shown.map((d) => `${d.name}\n`).join('')}\n`);
    return 0;
  }
  process.stdout.write(
    row('Id', 'Name', 'State') + `${'-'.repeat(34)}\n` + shown.map((d) => row(d.state === 'shut off' ? '-' : d.id, d.name, d.state)).join('') + '\n',
  );
  return 0;
}

/** suspend and resume: one domain moves from `from` to `to`, or virsh's own error. */
function transition(verb, from, to, past) {
  return (ctx, rest) => {
    if (rest.length !== 1) throw new ToolError(USAGE, 2);
    const [ref] = rest;
    ctx.update('virsh', { domains: [] }, ({ domains }) => {
      const domain = domains.find((d) => String(d.id) === ref || d.name === ref);
      if (domain === undefined) throw new ToolError(`error: failed to get domain '${ref}'`);
      if (domain.state !== from) {
        throw new ToolError(`error: Failed to ${verb} domain ${ref}\nerror: Requested operation is not valid: domain is not ${from}`);
      }
      domain.state = to;
    });
    process.stdout.write(`Domain ${ref} ${past}\n\n`);
    return 0;
  };
}

const commands = {
  list,
  suspend: transition('suspend', 'running', 'paused', 'suspended'),
  resume: transition('resume', 'paused', 'running', 'resumed'),
};

module.exports = {
  virsh(ctx, args) {
    const [command, ...rest] = args;
    if (command === undefined || !Object.hasOwn(commands, command)) throw new ToolError(USAGE, 2);
    return commands[command](ctx, rest);
  },
};
