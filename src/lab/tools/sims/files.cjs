'use strict';
/**
 * File commands the OpenStack pages type on a host, over the host's fake root only: `mkdir [-p]`,
 * `mv <source>… <dest>`, `sed [-i] <script> <file>…` (the real /bin/sed on the fake root's files), and `grep` (the real /bin/grep on the fake root's copy of every file
 * operand, `*` and `?` expanded inside the fake root; with no file operand it reads stdin, as in
 * `ps aux | grep nova-`). Nothing outside the lab's directory is ever read or written.
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

/** `/etc/glance/glance-*.conf` inside the fake root: the matching virtual paths, sorted; the word itself when none match (as sh does). */
function expand(ctx, word) {
  if (!/[*?]/.test(word)) return [word];
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
