'use strict';
/**
 * Upstream: GNU coreutils 9.1 src/mkdir.c, src/mv.c; the real GNU sed 4.9 and grep 3.8 binaries run on the fake root.
 * File commands the OpenStack pages type on a host, over the host's fake root only: `mkdir [-p]`,
 * `mv <source>… <dest>`, `sed [-i] <script> <file>…` (the real /bin/sed on the fake root's files),
 * and `grep` (the real /bin/grep on the fake root's copy of every file operand; with no file operand
 * it reads stdin). Nothing outside the lab's directory is ever read or written.
 *
 * Globs: grep never expands `*` (GNU grep opens its operands as given: a quoted
 * `/etc/glance/glance-*.conf` is "No such file or directory", exit 2). The shell expands an unquoted
 * glob against the host's files (POSIX, 2.6.6 Pathname Expansion), but the lab's session shell sees
 * the real machine, not the host's fake root: so grep does the shell's part for it, and only for a
 * word the shell's command line (`sh -c '<command>'`, the parent process) had unquoted.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { ToolError, virtualPath } = require('../runtime.cjs');

function isDirectory(p) {
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
}

function mkdir(ctx, args) {
  const parents = args.includes('-p');
  const dirs = args.filter((a) => a !== '-p');
  if (dirs.length === 0 || dirs.some((d) => d.startsWith('-'))) throw new ToolError('mkdir: missing operand\nusage: mkdir [-p] <directory>…', 1);
  let code = 0;
  for (const d of dirs) {
    const real = ctx.realPath(d);
    if (fs.existsSync(real)) {
      if (parents && isDirectory(real)) continue;
      process.stderr.write(`mkdir: cannot create directory '${d}': File exists\n`);
      code = 1;
      continue;
    }
    if (!parents && !isDirectory(path.dirname(real))) {
      process.stderr.write(`mkdir: cannot create directory '${d}': No such file or directory\n`);
      code = 1;
      continue;
    }
    fs.mkdirSync(real, { recursive: true });
  }
  return code;
}

function mv(ctx, args) {
  if (args.length < 2 || args.some((a) => a.startsWith('-'))) throw new ToolError('mv: missing destination file operand\nusage: mv <source>… <dest>', 1);
  const dest = args.at(-1);
  const sources = args.slice(0, -1);
  const destReal = ctx.realPath(dest);
  const intoDir = isDirectory(destReal);
  if (sources.length > 1 && !intoDir) throw new ToolError(`mv: target '${dest}' is not a directory`, 1);
  let code = 0;
  for (const s of sources) {
    const real = ctx.realPath(s);
    if (!fs.existsSync(real)) {
      process.stderr.write(`mv: cannot stat '${s}': No such file or directory\n`);
      code = 1;
      continue;
    }
    const target = intoDir ? path.join(destReal, path.basename(real)) : destReal;
    if (!isDirectory(path.dirname(target))) {
      process.stderr.write(`mv: cannot move '${s}' to '${dest}': No such file or directory\n`);
      code = 1;
      continue;
    }
    fs.renameSync(real, target);
  }
  return code;
}

/** The parts of a shell command line outside single and double quotes (backslash escapes kept out too). */
function unquotedParts(command) {
  const parts = [];
  let current = '';
  let quote = null;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote === null && c === '\\') {
      i++;
      current += ' ';
    } else if (quote === null && (c === "'" || c === '"')) {
      quote = c;
      parts.push(current);
      current = '';
    } else if (quote !== null && c === quote) {
      quote = null;
    } else if (quote === null) current += c;
  }
  parts.push(current);
  return parts;
}

/** Did the shell that started this grep have `word` unquoted on its command line (so it would have expanded it)? */
function unquotedInShell(word) {
  let argv;
  try {
    argv = fs.readFileSync(`/proc/${process.ppid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  const command = argv[argv.indexOf('-c') + 1];
  if (argv.indexOf('-c') < 0 || command === undefined) return false;
  return unquotedParts(command).some((part) => part.split(/\s+/).includes(word));
}

/** `/etc/glance/glance-*.conf` inside the fake root, as the shell would expand an unquoted glob: the matching virtual paths, sorted; the word itself when none match (as sh does). */
function expand(ctx, word) {
  if (!/[*?]/.test(word) || !unquotedInShell(word)) return [word];
  const vp = virtualPath(word);
  const dir = path.posix.dirname(vp);
  const base = path.posix.basename(vp);
  if (/[*?]/.test(dir)) return [word];
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  let names = [];
  try {
    names = fs.readdirSync(ctx.realPath(dir)).filter((n) => re.test(n) && !n.startsWith('.'));
  } catch {
    names = [];
  }
  return names.length > 0 ? names.sort().map((n) => path.posix.join(dir, n)) : [word];
}

/** Flags of grep that take the next word as their value. */
const WITH_VALUE = new Set(['-e', '-f', '-m', '-A', '-B', '-C', '--regexp', '--file']);

function grep(ctx, args) {
  const flags = [];
  const operands = [];
  let explicitPattern = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') {
      operands.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('-') && a !== '-') {
      flags.push(a);
      if (WITH_VALUE.has(a)) {
        flags.push(args[++i] ?? '');
        if (a === '-e' || a === '--regexp') explicitPattern = true;
      }
      continue;
    }
    operands.push(a);
  }
  const [pattern, ...files] = explicitPattern ? [undefined, ...operands] : operands;
  const mapped = files.flatMap((f) => expand(ctx, f)).map((f) => ctx.realPath(f));
  const argv = [...flags, ...(pattern === undefined ? [] : ['--', pattern]), ...mapped];
  // The host's paths, not the lab's, in what grep prints (file names and errors).
  const result = spawnSync('/bin/grep', argv, { stdio: ['inherit', 'pipe', 'pipe'], encoding: 'utf8' });
  if (result.error) throw result.error;
  const root = ctx.realPath('/');
  const unmap = (text) => text.split(root.endsWith('/') ? root.slice(0, -1) : root).join('');
  process.stdout.write(unmap(result.stdout));
  process.stderr.write(unmap(result.stderr).replace(/^\/bin\/grep:/gm, 'grep:'));
  return result.status ?? 2;
}

/** Flags of sed that take the next word as their value. */
const SED_WITH_VALUE = new Set(['-e', '-f', '--expression', '--file']);

/**
 * `sed` over the fake root: the real /bin/sed, with every file operand (also with `-i`, which edits
 * in place) mapped into the fake root; with no file operand it filters stdin.
 */
function sed(ctx, args) {
  const flags = [];
  const operands = [];
  let explicitScript = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('-') && a !== '-') {
      flags.push(a);
      if (SED_WITH_VALUE.has(a)) {
        flags.push(args[++i] ?? '');
        explicitScript = true;
      }
      continue;
    }
    operands.push(a);
  }
  const [script, ...files] = explicitScript ? [undefined, ...operands] : operands;
  const argv = [...flags, ...(script === undefined ? [] : [script]), ...files.map((f) => ctx.realPath(f))];
  const result = spawnSync('/bin/sed', argv, { stdio: ['inherit', 'inherit', 'pipe'], encoding: 'utf8' });
  if (result.error) throw result.error;
  const root = ctx.realPath('/');
  process.stderr.write(result.stderr.split(root.endsWith('/') ? root.slice(0, -1) : root).join('').replace(/^\/bin\/sed:/gm, 'sed:'));
  return result.status ?? 4;
}

module.exports = { mkdir, mv, grep, sed };
