'use strict';
/**
 * Upstream: systemd v229 src/journal/journalctl.c (Ubuntu 16.04), default short output.
 * `journalctl`, on the lab's systemd hosts: the journal of units, as systemd v229 (Ubuntu 16.04)
 * src/journal/journalctl.c prints it in its default `short` output: a `-- Logs begin at …, end at … --`
 * line, then `<Mon dd HH:MM:SS> <host> <unit>[<pid>]: <message>` per entry, or `-- No entries --`.
 * Understands `-u <unit>` (repeatable; a glob such as `ovs-*` matches unit names), `-n <N>` (the last
 * N entries) and `--no-pager` (there is never a pager without a terminal). A host that does not run
 * systemd has no journalctl: the shell answers 127.
 *
 * Entries: what systemd said of the units (service-state.cjs: Started at boot, Stopped, …) and what
 * the units wrote since the boot (state `journal` = { "<unit>": ["<message>", …] }, oldest first), in
 * time order.
 */
const { ToolError } = require('../runtime.cjs');
const services = require('../service-state.cjs');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function stamp(ms) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
}

function globMatch(pattern, name) {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(name.replace(/\.service$/, '')) || re.test(name);
}

/** Every entry of the matching units, in time order, as `<host> <process>[<pid>]: <message>`. */
function entries(ctx, units) {
  const journal = ctx.read('journal', {});
  const { services: known, bootedAt } = services.read(ctx);
  const all = [];
  for (const [unit, messages] of Object.entries(journal)) {
    if (!units.some((u) => globMatch(u, unit))) continue;
    const pid = known[unit]?.pids?.[0] ?? known[unit]?.exit?.pid ?? 0;
    messages.forEach((message, i) => all.push({ t: bootedAt + i + 1, unit, text: `${ctx.host} ${unit}[${pid}]: ${message}` }));
  }
  for (const [name, s] of Object.entries(known)) {
    if (s.manager !== 'systemd' || !units.some((u) => globMatch(u, name) || globMatch(u, s.unit))) continue;
    for (const e of s.journal ?? []) all.push({ t: e.t, unit: name, text: e.text });
  }
  return all.sort((a, b) => a.t - b.t || a.unit.localeCompare(b.unit));
}

function render(list) {
  if (list.length === 0) return '-- No entries --\n';
  const head = `-- Logs begin at ${stamp(list[0].t)}, end at ${stamp(list.at(-1).t)}. --\n`;
  return head + list.map((e) => `${stamp(e.t)} ${e.text}\n`).join('');
}

/** What `journalctl -u <unit>… --no-pager` prints: for `ovs collect logs`. */
function journalText(ctx, units) {
  return render(entries(ctx, units));
}

function journalctl(ctx, args) {
  const units = [];
  let lines;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-u' || a === '--unit') units.push(args[++i] ?? '');
    else if (a.startsWith('--unit=')) units.push(a.slice('--unit='.length));
    else if (a === '-n' || a === '--lines') lines = Number(args[++i]);
    else if (a.startsWith('--lines=')) lines = Number(a.slice('--lines='.length));
    else if (a !== '--no-pager') throw new ToolError(`journalctl: the lab simulates only -u <unit>, -n <N> and --no-pager (got "${a}")`, 1);
  }
  if (units.length === 0 || units.includes('')) throw new ToolError('journalctl: the lab simulates only the journal of units (-u <unit>)', 1);
  if (lines !== undefined && !(Number.isInteger(lines) && lines >= 0)) throw new ToolError(`Failed to parse lines '${args[args.indexOf('-n') + 1]}'`, 1);
  const list = entries(ctx, units);
  process.stdout.write(render(lines === undefined ? list : list.slice(Math.max(0, list.length - lines))));
  return 0;
}

/** Only systemd hosts have a journal. */
journalctl.requires = (profile) => profile.init === 'systemd';

module.exports = { journalctl };

/** For `ovs collect logs`; not a tool (not enumerable). */
Object.defineProperty(module.exports, 'journalText', { enumerable: false, value: journalText });
