'use strict';
/**
 * Upstream: GNU coreutils 9.1 src/cat.c (Debian 12).
 * `cat` as GNU coreutils' (src/cat.c, coreutils 9.1 as in Debian 12) on the files of the host's fake
 * root: the bytes of each file in turn, unchanged (binary-safe), `-` or no file for standard input;
 * a missing file or a directory is reported as `cat: <file>: No such file or directory` /
 * `Is a directory` (error(0, errno, "%s", quotef(infile))) and makes the exit status 1 while the
 * other files are still written. The engine fetches attached files with `cat -- <path>`.
 *
 * Options: the lab has none of cat's formatting options (-n, -A, …); one is refused with GNU's
 * getopt message, so a procedure that uses one fails in the lab instead of passing untested.
 */
const fs = require('node:fs');

function writeAll(fd, buf) {
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off);
}

module.exports = {
  cat(ctx, args) {
    const files = [];
    let options = true;
    for (const a of args) {
      if (options && a === '--') options = false;
      else if (options && a.startsWith('-') && a !== '-') {
        const bad = a.startsWith('--') ? `unrecognized option '${a}'` : `invalid option -- '${a[1]}'`;
        process.stderr.write(`cat: ${bad}\nTry 'cat --help' for more information.\n`);
        return 1;
      } else files.push(a);
    }
    let status = 0;
    for (const f of files.length ? files : ['-']) {
      if (f === '-') {
        writeAll(1, fs.readFileSync(0));
        continue;
      }
      try {
        writeAll(1, fs.readFileSync(ctx.realPath(f)));
      } catch (err) {
        const why = err.code === 'ENOENT' ? 'No such file or directory' : err.code === 'EISDIR' ? 'Is a directory' : err.code === 'EACCES' ? 'Permission denied' : err.message;
        process.stderr.write(`cat: ${f}: ${why}\n`);
        status = 1;
      }
    }
    return status;
  },
};
