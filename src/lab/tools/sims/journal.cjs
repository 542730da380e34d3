'use strict';
/**
 * `journalctl`, on the lab's systemd hosts: the journal of units, as systemd v229 (Ubuntu 16.04)
 * src/journal/journalctl.c prints it in its default `short` output: a `-- Logs begin at …, end at … --`
 * line, then `<Mon dd HH:MM:SS> <host> <unit>[<pid>]: <message>` per entry, or `-- No entries --`.
 * Understands `-u <unit>` (repeatable; a glob such as `ovs-*` matches unit names), `-n <N>` (the last
 * N entries) and `--no-pager` (there is never a pager without a terminal). A host that does not run
 * systemd has no journalctl: the shell answers 127.
 *
 * State: `journal` = { "<unit>": ["<message>", …] } (oldest first, one a minute from the host's
 * boot); `framework.release` says whether the host runs systemd (every release line but fargo).
 */
const { ToolError } = require('../runtime.cjs');
const { unitPid } = require('./units.cjs');

const START = Date.UTC(2026, 10, 22, 4, 0, 0);
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

/** Every entry of the matching units, in time order. */
function entries(ctx, units) {
  const journal = ctx.read('journal', {});
  const all = [];
  for (const [unit, messages] of Object.entries(journal)) {
    if (!units.some((u) => globMatch(u, unit))) continue;
    messages.forEach((message, i) => all.push({ t: START + i * 60_000, unit, message }));
  }
  return all.sort((a, b) => a.t - b.t || a.unit.localeCompare(b.unit));
}

function render(ctx, list) {
  if (list.length === 0) return '-- No entries --\n';
  const head = `-- Logs begin at ${stamp(START)}, end at ${stamp(list.at(-1).t)}. --\n`;
  return head + list.map((e) => `${stamp(e.t)} ${ctx.host} ${e.unit}[${unitPid(e.unit)}]: ${e.message}\n`).join('');
}

/** What `journalctl -u <unit>… --no-pager` prints: for `ovs collect logs`. */
function journalText(ctx, units) {
  return render(ctx, entries(ctx, units));
}

function journalctl(ctx, args) {
  if (ctx.read('framework', {}).release === 'fargo') throw new ToolError('bash: line 1: journalctl: command not found', 127);
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
  process.stdout.write(render(ctx, lines === undefined ? list : list.slice(Math.max(0, list.length - lines))));
  return 0;
}

module.exports = { journalctl };

/** For `ovs collect logs`; not a tool (not enumerable). */
Object.defineProperty(module.exports, 'journalText', { enumerable: false, value: journalText });
