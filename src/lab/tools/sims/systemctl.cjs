'use strict';
/**
 * `systemctl` of systemd v252 (Debian 12), from systemd's source at tag v252
 * (github.com/systemd/systemd, read in the redhat-plumbers/systemd-rhel9 mirror, tag v252 =
 * 62be87c7a5be4f7618bb99e11d8f25d7057f3870):
 *
 * - `is-active` (src/systemctl/systemctl-is-active.c): one line per unit, exit 0 when *any* unit is
 *   active or reloading, else 3; a unit the manager does not know is loaded on demand as
 *   `not-found`, whose ActiveState is `inactive`. `is-failed`: exit 0 when any is failed, else 1.
 * - `is-enabled` (systemctl-is-enabled.c): the UnitFileState of each; exit 0 when any is enabled or
 *   static, else 1; unknown: "Failed to get unit file state for x.service: No such file or
 *   directory", exit 1.
 * - `status` (systemctl-show.c print_status_info/show_one): exit 0 active, 3 not active, 4 unknown
 *   ("Unit x.service could not be found."); for several units the first non-zero code.
 * - `start|stop|restart|try-restart` (systemctl-start-unit.c): unknown → "Failed to start
 *   x.service: Unit x.service not found." (stop: "…not loaded."), exit 5 (EXIT_NOTINSTALLED,
 *   translate_bus_error_to_exit_status); masked → "Failed to start x.service: Unit x.service is
 *   masked.", exit 1.
 * - `list-units` (systemctl-list-units.c, shared/format-table.c): columns padded to their widest
 *   cell, one space apart, header upper-case, no trailing blanks; the glyph column hidden by
 *   `--plain`; inactive units only with `--all` or `--state`; legend unless `--no-legend`.
 * - `show` (systemctl-show.c): properties in the order of the D-Bus vtables (the Service interface
 *   before the Unit interface, src/core/dbus-service.c then dbus-unit.c), not in the order of `-p`.
 * - `enable|disable|mask|unmask [--now]` (systemctl-enable.c, shared/install.c
 *   install_changes_dump): "Created symlink A → B." / "Removed "A"." on stderr; `--now` starts or
 *   stops after enable, disable and mask (not unmask, in v252).
 * - Glyphs are ASCII (`*`, `x`, `|-`, `` `- ``, `->`) unless the session's locale is UTF-8
 *   (src/basic/glyph-util.c), as in an `ssh host cmd` session with no LANG.
 * Older releases differ: before v240 `--version` says `systemd 229` alone; before v249 a failed unit
 * shows `●` rather than `×`, and before v250 there is no "preset:" in the Loaded line.
 */
const { ToolError } = require('../runtime.cjs');
const state = require('../service-state.cjs');

/** The Debian 12 package's version, as `systemctl --version` and `systemctl status` show it. */
const PACKAGE_VERSION = '252.22-1~deb12u1';
const VERSION = `systemd 252 (${PACKAGE_VERSION})`;
const FEATURES =
  '+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT +QRENCODE +TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT default-hierarchy=unified';

/** The CGroup tasks limit systemd derives from the host's pid_max (DefaultTasksMax=15%). */
const TASKS_LIMIT = 4644;

function utf8() {
  const locale = process.env.LC_ALL || process.env.LC_CTYPE || process.env.LANG || '';
  return /utf-?8/i.test(locale);
}

function glyphs() {
  return utf8()
    ? { active: '●', inactive: '○', failed: '×', branch: '├─', right: '└─', arrow: '→', circle: '●' }
    : { active: '*', inactive: '*', failed: 'x', branch: '|-', right: '`-', arrow: '->', circle: '*' };
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n) => String(n).padStart(2, '0');

/** FORMAT_TIMESTAMP: `Mon 2026-11-30 15:33:40 UTC` (lab hosts keep UTC). */
function timestamp(ms) {
  const d = new Date(ms);
  return `${DAYS[d.getUTCDay()]} ${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} UTC`;
}

/** FORMAT_TIMESTAMP_RELATIVE (src/basic/time-util.c format_timestamp_relative). */
function relative(ms) {
  const d = Date.now() - ms;
  const s = 1000;
  const min = 60 * s;
  const h = 60 * min;
  const day = 24 * h;
  const f = Math.floor;
  if (d >= 2 * day) return `${f(d / day)} days ago`;
  if (d >= 25 * h) return `1 day ${f((d - day) / h)}h ago`;
  if (d >= 6 * h) return `${f(d / h)}h ago`;
  if (d >= h) return `${f(d / h)}h ${f((d % h) / min)}min ago`;
  if (d >= 5 * min) return `${f(d / min)}min ago`;
  if (d >= min) return `${f(d / min)}min ${f((d % min) / s)}s ago`;
  if (d >= s) return `${f(d / s)}s ago`;
  if (d >= 1) return `${d}ms ago`;
  return 'now';
}

/** FORMAT_TIMESPAN with a one-second accuracy: `1h 2min 3s`, `850ms`. */
function timespan(ms) {
  if (ms <= 0) return '0';
  const units = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1000],
    ['ms', 1],
  ];
  const parts = [];
  let t = ms;
  for (const [suffix, size] of units) {
    if (t <= 0 || (t < 1000 && parts.length > 0)) break;
    if (t < size) continue;
    parts.push(`${Math.floor(t / size)}${suffix}`);
    t %= size;
  }
  return parts.join(' ');
}

/** unit_name_mangle: `x` → `x.service`. */
function mangle(name) {
  return /\.(service|socket|target|timer|mount|path|slice|scope|device|swap|automount)$/.test(name) || /[*?[]/.test(name) ? name : `${name}.service`;
}

/** fnmatch(3) without FNM_PATHNAME: `*`, `?` and `[…]`. */
function glob(pattern) {
  const re = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`);
}

function parseArgs(args) {
  const o = { verb: undefined, names: [], all: false, legend: true, plain: false, quiet: false, value: false, now: false, properties: [], types: [], states: [], lines: 10 };
  const needsValue = { '-t': 'type', '--type': 'type', '-p': 'property', '--property': 'property', '-P': 'P', '--state': 'state', '-n': 'lines', '--lines': 'lines' };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    let key;
    let value;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0 && needsValue[a.slice(0, eq)]) {
      key = needsValue[a.slice(0, eq)];
      value = a.slice(eq + 1);
    } else if (needsValue[a]) {
      key = needsValue[a];
      value = args[++i];
      if (value === undefined) throw new ToolError(`systemctl: option '${a}' requires an argument`, 1);
    } else if (/^-[tpPn]./.test(a)) {
      key = needsValue[a.slice(0, 2)];
      value = a.slice(2);
    }
    if (key !== undefined) {
      if (key === 'type') o.types.push(...value.split(','));
      else if (key === 'state') o.states.push(...value.split(','));
      else if (key === 'property') o.properties.push(...value.split(','));
      else if (key === 'P') {
        o.properties.push(...value.split(','));
        o.value = true;
      } else o.lines = Number(value);
      continue;
    }
    switch (a) {
      case '-a':
      case '--all':
        o.all = true;
        break;
      case '--no-legend':
        o.legend = false;
        break;
      case '--legend=no':
        o.legend = false;
        break;
      case '--plain':
        o.plain = true;
        break;
      case '-q':
      case '--quiet':
        o.quiet = true;
        break;
      case '--value':
        o.value = true;
        break;
      case '--now':
        o.now = true;
        break;
      case '--version':
        o.version = true;
        break;
      case '--failed':
        o.states.push('failed');
        break;
      case '--no-pager':
      case '-l':
      case '--full':
      case '--no-block':
      case '--no-ask-password':
      case '--system':
        break;
      default:
        if (a.startsWith('-') && a !== '-') {
          if (/^--(user|host|machine|runtime|root|signal|kill-whom|job-mode|output|wait|force|reverse|recursive|dry-run|show-types|global|preset-mode|firmware-setup|boot-loader-menu|boot-loader-entry|check-inhibitors|what|timestamp|mkdir|marked|read-only|image|message)/.test(a)) {
            throw new ToolError(`systemctl: the lab simulates --all, --type, --state, --failed, --property/-P, --value, --now, --quiet, --plain, --no-legend, --no-pager, --full, --lines; not ${a}`, 1);
          }
          throw new ToolError(a.startsWith('--') ? `systemctl: unrecognized option '${a}'` : `systemctl: invalid option -- '${a.slice(1, 2)}'`, 1);
        }
        if (o.verb === undefined) o.verb = a;
        else o.names.push(a);
    }
  }
  return o;
}

/** What the manager knows of a unit, as systemd's properties name it. */
function unitView(s, name) {
  if (s === undefined) {
    return { id: name, load: 'not-found', active: 'inactive', sub: 'dead', unitFile: undefined, description: name, known: false };
  }
  const sub = s.status === 'running' ? (s.exited ? 'exited' : 'running') : s.status === 'failed' ? 'failed' : 'dead';
  const active = s.status === 'running' ? 'active' : s.status === 'failed' ? 'failed' : 'inactive';
  return {
    id: s.unit,
    load: s.masked ? 'masked' : 'loaded',
    active,
    sub,
    unitFile: s.masked ? 'masked' : s.enabled ? 'enabled' : 'disabled',
    description: s.masked ? s.unit : s.description || s.unit,
    known: true,
    s,
  };
}

/** The services managed by systemd on this host, by unit name. */
function units(st) {
  const byUnit = new Map();
  for (const [name, s] of Object.entries(st.services)) if (s.manager === 'systemd') byUnit.set(s.unit, { name, s });
  return byUnit;
}

/** Unit names from the arguments: plain names mangled, globs expanded against the loaded units. */
function expand(st, names) {
  const known = units(st);
  const out = [];
  for (const n of names.map(mangle)) {
    if (/[*?[]/.test(n)) out.push(...[...known.keys()].filter((u) => glob(n).test(u)));
    else out.push(n);
  }
  return out;
}

function requireNames(o) {
  if (o.names.length === 0) throw new ToolError('Too few arguments.', 1);
}

function isActive(ctx, o, good, code) {
  requireNames(o);
  const st = state.read(ctx);
  const known = units(st);
  let found = false;
  for (const u of expand(st, o.names)) {
    const v = unitView(known.get(u)?.s, u);
    if (!o.quiet) process.stdout.write(`${v.active}\n`);
    if (good.includes(v.active)) found = true;
  }
  return found ? 0 : code;
}

function isEnabled(ctx, o) {
  requireNames(o);
  const st = state.read(ctx);
  const known = units(st);
  let enabled = false;
  for (const u of o.names.map(mangle)) {
    const v = unitView(known.get(u)?.s, u);
    if (!v.known) throw new ToolError(`Failed to get unit file state for ${u}: No such file or directory`, 1);
    if (['enabled', 'static'].includes(v.unitFile)) enabled = true;
    if (!o.quiet) process.stdout.write(`${v.unitFile}\n`);
  }
  return enabled ? 0 : 1;
}

function cgroupLines(st, v, g) {
  const procs = state.processes(st).filter((p) => p.service !== undefined && st.services[p.service] === v.s);
  return procs.map((p, i) => `             ${i === procs.length - 1 ? g.right : g.branch}${p.pid} ${p.args}`);
}

/** print_status_info for one unit. */
function statusText(st, v, o) {
  const g = glyphs();
  const s = v.s;
  const lines = [`${v.active === 'failed' ? g.failed : v.active === 'active' ? g.active : g.inactive} ${v.id}${v.description !== v.id ? ` - ${v.description}` : ''}`];
  if (s.masked) lines.push(`     Loaded: masked (Reason: Unit ${v.id} is masked.)`);
  else lines.push(`     Loaded: loaded (/lib/systemd/system/${v.id}; ${v.unitFile}; preset: enabled)`);
  const sub = v.sub === v.active ? '' : ` (${v.sub})`;
  const result = s.result && s.result !== 'success' ? ` (Result: ${s.result})` : '';
  lines.push(`     Active: ${v.active}${sub}${result} since ${timestamp(s.since)}; ${relative(s.since)}`);
  if (v.active !== 'active' && s.startedAt !== undefined && s.startedAt <= s.since) lines.push(`   Duration: ${timespan(s.since - s.startedAt)}`);
  if (v.active === 'active' && s.pids.length > 0) {
    lines.push(`   Main PID: ${s.pids[0]} (${s.processes[0].comm})`);
    lines.push(`      Tasks: ${s.pids.length} (limit: ${TASKS_LIMIT})`);
    lines.push(`     Memory: ${(4.2 * s.pids.length).toFixed(1)}M`);
    lines.push(`        CPU: ${120 * s.pids.length}ms`);
    lines.push(`     CGroup: /system.slice/${v.id}`);
    lines.push(...cgroupLines(st, v, g));
  } else if (s.exit !== undefined) {
    lines.push(`   Main PID: ${s.exit.pid} (code=${s.exit.code}, ${s.exit.code === 'killed' ? 'signal' : 'status'}=${s.exit.status})`);
  }
  const journal = (s.journal ?? []).slice(-o.lines);
  if (journal.length > 0 && o.lines > 0) {
    lines.push('');
    for (const j of journal) {
      const d = new Date(j.t);
      lines.push(`${MONTHS[d.getUTCMonth()]} ${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} ${j.text}`);
    }
  }
  return lines.join('\n');
}

function systemStatus(st) {
  const g = glyphs();
  const failed = Object.values(st.services).filter((s) => s.manager === 'systemd' && s.status === 'failed').length;
  return [
    `${g.circle} ${st.hostname}`,
    `    State: ${failed > 0 ? 'degraded' : 'running'}`,
    `    Units: ${units(st).size} loaded (incl. loaded aliases)`,
    '     Jobs: 0 queued',
    `   Failed: ${failed} units`,
    `    Since: ${timestamp(st.bootedAt)}; ${relative(st.bootedAt)}`,
    `  systemd: ${PACKAGE_VERSION}`,
    '   CGroup: /',
  ].join('\n');
}

function status(ctx, o) {
  const st = state.read(ctx);
  if (o.names.length === 0) {
    process.stdout.write(`${systemStatus(st)}\n`);
    return 0;
  }
  const known = units(st);
  let code = 0;
  const blocks = [];
  for (const u of expand(st, o.names)) {
    const v = unitView(known.get(u)?.s, u);
    if (!v.known) {
      process.stderr.write(`Unit ${u} could not be found.\n`);
      code ||= 4;
      continue;
    }
    blocks.push(statusText(st, v, o));
    if (v.active !== 'active') code ||= 3;
  }
  if (blocks.length > 0) process.stdout.write(`${blocks.join('\n\n')}\n`);
  return code;
}

/**
 * `Failed to start x.service: …`, with the exit code systemctl translates the bus error to. (No "See
 * system logs" hint: start_unit_one leaves it out for NoSuchUnit and UnitMasked, the only errors here.)
 */
function jobError(verb, unit, message, code) {
  process.stderr.write(`Failed to ${verb} ${unit}: ${message}\n`);
  return code;
}

function job(ctx, verb, names) {
  const st = state.read(ctx);
  const known = units(st);
  let code = 0;
  for (const u of expand(st, names)) {
    const entry = known.get(u);
    const stop = verb === 'stop';
    let r = 0;
    if (entry === undefined) r = jobError(verb, u, stop ? `Unit ${u} not loaded.` : `Unit ${u} not found.`, 5);
    else if (entry.s.masked && !stop) r = jobError(verb, u, `Unit ${u} is masked.`, 1);
    else if (verb === 'try-restart' && entry.s.status !== 'running') r = 0;
    else {
      if (verb !== 'start') state.stop(ctx, entry.name);
      if (verb !== 'stop') state.start(ctx, entry.name);
    }
    code ||= r;
  }
  return code;
}

/** The list-units / list-unit-files table: columns padded to the widest cell, no trailing blanks. */
function table(rows, header) {
  const all = header ? [rows[0], ...rows.slice(1)] : rows.slice(1);
  const widths = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  return all.map((r) => r.map((c, j) => (j === r.length - 1 ? c : c.padEnd(widths[j]))).join(' ').trimEnd()).join('\n');
}

function listUnits(ctx, o) {
  const st = state.read(ctx);
  const g = glyphs();
  const patterns = o.names.map((n) => glob(n));
  const shown = [...units(st).entries()]
    .map(([u, { s }]) => unitView(s, u))
    .filter((v) => patterns.length === 0 || patterns.some((p) => p.test(v.id)))
    .filter((v) => o.types.length === 0 || o.types.includes('service'))
    .filter((v) => (o.states.length > 0 ? o.states.some((x) => [v.load, v.active, v.sub].includes(x)) : o.all || v.active !== 'inactive'))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const rows = [['', 'UNIT', 'LOAD', 'ACTIVE', 'SUB', 'DESCRIPTION'], ...shown.map((v) => [v.load === 'masked' || v.active === 'failed' ? g.circle : ' ', v.id, v.load, v.active, v.sub, v.description])];
  const body = table(o.plain ? rows.map((r) => r.slice(1)) : rows, o.legend);
  const out = [body];
  if (o.legend) {
    if (shown.length > 0) {
      out.push('', 'LOAD   = Reflects whether the unit definition was properly loaded.', 'ACTIVE = The high-level unit activation state, i.e. generalization of SUB.', 'SUB    = The low-level unit activation state, values depend on unit type.');
    }
    if (o.all || o.states.includes('inactive')) out.push(`${shown.length} loaded units listed.`, "To show all installed unit files use 'systemctl list-unit-files'.");
    else if (o.states.length === 0) out.push(`${shown.length} loaded units listed. Pass --all to see loaded but inactive units, too.`, "To show all installed unit files use 'systemctl list-unit-files'.");
    else out.push(`${shown.length} loaded units listed.`);
  }
  const text = out.join('\n');
  if (text !== '') process.stdout.write(`${text}\n`);
  return 0;
}

function listUnitFiles(ctx, o) {
  const st = state.read(ctx);
  const patterns = o.names.map((n) => glob(n));
  const shown = [...units(st).entries()]
    .map(([u, { s }]) => unitView(s, u))
    .filter((v) => patterns.length === 0 || patterns.some((p) => p.test(v.id)))
    .filter((v) => o.types.length === 0 || o.types.includes('service'))
    .filter((v) => o.states.length === 0 || o.states.includes(v.unitFile))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
  const rows = [['UNIT FILE', 'STATE', 'PRESET'], ...shown.map((v) => [v.id, v.unitFile, v.unitFile === 'masked' ? '-' : 'enabled'])];
  const out = [table(rows, o.legend)];
  if (o.legend) out.push('', `${shown.length} unit files listed.`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

/** The properties `show` prints, in systemd's order: the Service interface's, then the Unit's. */
function properties(v) {
  const s = v.s;
  const running = v.active === 'active' && s !== undefined && s.pids.length > 0;
  const us = (ms) => (ms === undefined ? '' : timestamp(ms));
  const props = [];
  if (v.known) {
    props.push(['Type', 'simple'], ['Restart', 'no'], ['MainPID', running ? String(s.pids[0]) : '0'], ['Result', s.result ?? 'success'], ['NRestarts', '0']);
  }
  props.push(
    ['Id', v.id],
    ['Names', v.id],
    ['Description', v.description],
    ['LoadState', v.load],
    ['ActiveState', v.active],
    ['FreezerState', 'running'],
    ['SubState', v.sub],
    ['FragmentPath', v.known && !s.masked ? `/lib/systemd/system/${v.id}` : ''],
    ['UnitFileState', v.unitFile ?? ''],
    ['UnitFilePreset', v.known ? 'enabled' : ''],
    ['ActiveEnterTimestamp', v.known && v.active === 'active' ? us(s.since) : ''],
    ['InactiveEnterTimestamp', v.known && v.active !== 'active' ? us(s.since) : ''],
    ['CanStart', v.known && !s.masked ? 'yes' : 'no'],
    ['CanStop', v.known ? 'yes' : 'no'],
  );
  if (!v.known) props.push(['LoadError', `org.freedesktop.systemd1.NoSuchUnit "Unit ${v.id} not found."`]);
  return props;
}

function show(ctx, o) {
  const st = state.read(ctx);
  const known = units(st);
  if (o.names.length === 0) throw new ToolError('systemctl: the lab simulates `show` of units, not of the manager itself', 1);
  const wanted = o.properties.length > 0 ? new Set(o.properties) : undefined;
  const blocks = expand(st, o.names).map((u) =>
    properties(unitView(known.get(u)?.s, u))
      .filter(([k]) => wanted === undefined || wanted.has(k))
      .map(([k, val]) => (o.value ? val : `${k}=${val}`))
      .join('\n'),
  );
  const text = blocks.join('\n\n');
  if (text !== '') process.stdout.write(`${text}\n`);
  return 0;
}

/** enable, disable, mask, unmask; `--now` starts (enable) or stops (disable, mask) afterwards. */
function install(ctx, verb, o) {
  requireNames(o);
  const g = glyphs();
  const st = state.read(ctx);
  const known = units(st);
  const names = o.names.map(mangle);
  for (const u of names) {
    const entry = known.get(u);
    if (entry === undefined) {
      if (verb === 'mask' || verb === 'unmask') {
        process.stderr.write(`Unit ${u} does not exist, proceeding anyway.\n`);
        continue;
      }
      throw new ToolError(`Failed to ${verb} unit: Unit file ${u} does not exist.`, 1);
    }
    if (entry.s.masked && (verb === 'enable' || verb === 'disable')) {
      throw new ToolError(`Failed to ${verb} unit: Unit file /etc/systemd/system/${u} is masked.`, 1);
    }
    const message = state.change(ctx, entry.name, (s) => {
      switch (verb) {
        case 'enable':
          if (s.enabled) return undefined;
          s.enabled = true;
          return `Created symlink /etc/systemd/system/multi-user.target.wants/${u} ${g.arrow} /lib/systemd/system/${u}.`;
        case 'disable':
          if (!s.enabled) return undefined;
          s.enabled = false;
          return `Removed "/etc/systemd/system/multi-user.target.wants/${u}".`;
        case 'mask':
          if (s.masked) return undefined;
          s.masked = true;
          return `Created symlink /etc/systemd/system/${u} ${g.arrow} /dev/null.`;
        default:
          if (!s.masked) return undefined;
          s.masked = false;
          return `Removed "/etc/systemd/system/${u}".`;
      }
    });
    if (message !== undefined && !o.quiet) process.stderr.write(`${message}\n`);
  }
  if (o.now && verb !== 'unmask') return job(ctx, verb === 'enable' ? 'start' : 'stop', names.filter((u) => known.has(u)));
  return 0;
}

const VERBS = {
  'is-active': (ctx, o) => isActive(ctx, o, ['active', 'reloading'], 3),
  'is-failed': (ctx, o) => isActive(ctx, o, ['failed'], 1),
  'is-enabled': isEnabled,
  status,
  start: (ctx, o) => (requireNames(o), job(ctx, 'start', o.names)),
  stop: (ctx, o) => (requireNames(o), job(ctx, 'stop', o.names)),
  restart: (ctx, o) => (requireNames(o), job(ctx, 'restart', o.names)),
  'try-restart': (ctx, o) => (requireNames(o), job(ctx, 'try-restart', o.names)),
  'list-units': listUnits,
  'list-unit-files': listUnitFiles,
  show,
  enable: (ctx, o) => install(ctx, 'enable', o),
  disable: (ctx, o) => install(ctx, 'disable', o),
  mask: (ctx, o) => install(ctx, 'mask', o),
  unmask: (ctx, o) => install(ctx, 'unmask', o),
  'daemon-reload': () => 0,
};

/** systemctl's verbs the lab does not simulate (systemctl.c verb table), answered as such rather than as unknown. */
const REAL_VERBS = ['list-sockets', 'list-timers', 'list-jobs', 'list-machines', 'reload', 'reload-or-restart', 'try-reload-or-restart', 'isolate', 'kill', 'clean', 'freeze', 'thaw', 'cat', 'help', 'reset-failed', 'list-dependencies', 'reenable', 'preset', 'preset-all', 'link', 'revert', 'add-wants', 'add-requires', 'edit', 'get-default', 'set-default', 'daemon-reexec', 'log-level', 'log-target', 'service-watchdogs', 'show-environment', 'set-environment', 'unset-environment', 'import-environment', 'default', 'rescue', 'emergency', 'halt', 'poweroff', 'reboot', 'kexec', 'exit', 'switch-root', 'suspend', 'hibernate', 'hybrid-sleep', 'suspend-then-hibernate', 'is-system-running', 'set-property', 'bind', 'mount-image', 'whoami'];

function systemctl(ctx, args) {
  const o = parseArgs(args);
  if (o.version) {
    process.stdout.write(`${VERSION}\n${FEATURES}\n`);
    return 0;
  }
  const verb = o.verb ?? 'list-units';
  if (Object.hasOwn(VERBS, verb)) return VERBS[verb](ctx, o);
  if (REAL_VERBS.includes(verb)) throw new ToolError(`systemctl: the lab does not simulate "${verb}"; it simulates ${Object.keys(VERBS).join(', ')} and --version`, 1);
  throw new ToolError(`Unknown command verb ${verb}.`, 1);
}
systemctl.requires = (profile) => profile.init === 'systemd';

module.exports = { systemctl };
