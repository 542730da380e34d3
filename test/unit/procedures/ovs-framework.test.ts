import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { toolsDir } from '../../../src/lab/tool-runtime.js';
import { ARAKOON_CLUSTERS, CREATE_SNAPSHOT, DELETE_SNAPSHOT, LIST_VDISKS, SNAPSHOT_IN_BACKEND, scriptJson } from '../../../src/procedures/ovs-framework.js';

const SCRIPTS = { LIST_VDISKS, CREATE_SNAPSHOT, SNAPSHOT_IN_BACKEND, DELETE_SNAPSHOT, ARAKOON_CLUSTERS };

/** The lab's Python doubles of the framework and of the volumedriver binding. */
function labPython(dir = join(toolsDir, 'python')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? labPython(join(dir, e.name)) : e.name.endsWith('.py') ? [join(dir, e.name)] : []));
}

/** Compiles every script and lab module with `python`; returns what failed to compile. */
function compileAll(python: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'ovs-scripts-'));
  try {
    const files = [...Object.entries(SCRIPTS).map(([name, text]) => {
      const f = join(dir, `${name}.py`);
      writeFileSync(f, text);
      return f;
    }), ...labPython()];
    // -B: no .pyc next to the sources; compile() only, nothing is imported or run.
    const code = 'import sys\nfor f in sys.argv[1:]:\n    compile(open(f).read(), f, "exec")\n';
    const r = spawnSync(python, ['-B', '-c', code, ...files], { encoding: 'utf8' });
    return r.status === 0 ? [] : [r.stderr.trim() || `exit ${r.status}`];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A Python 2.7 to check with: PYTHON2, else `python2` on the PATH, else a pyenv 2.7 (Debian 12 ships none). */
function python2(): string | undefined {
  const pyenv = join(process.env.PYENV_ROOT ?? join(homedir(), '.pyenv'), 'versions');
  const pyenv27 = existsSync(pyenv) ? readdirSync(pyenv).filter((v) => v.startsWith('2.7')).map((v) => join(pyenv, v, 'bin', 'python2.7')) : [];
  for (const p of [process.env.PYTHON2, 'python2', ...pyenv27].filter((x): x is string => !!x)) {
    const r = spawnSync(p, ['-c', 'import sys; print(sys.version_info[0])'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() === '2') return p;
  }
  return undefined;
}

describe("the framework's scripts", () => {
  it('compile under Python 3 (the lab runs them there), as the lab\'s doubles do', () => {
    expect(compileAll('python3')).toEqual([]);
  });

  // Debian 12 has no Python 2: where no 2.7 is found (PYTHON2, PATH, pyenv), this one is skipped.
  it.skipIf(python2() === undefined)('compile under Python 2.7, the interpreter of the framework on every release', () => {
    expect(compileAll(python2()!)).toEqual([]);
  });

  it('keep to what both read alike: print through __future__, no f-strings', () => {
    for (const [name, text] of Object.entries(SCRIPTS)) {
      expect(text, name).toContain('from __future__ import print_function');
      expect(text, name).not.toMatch(/\bf["']/);
    }
  });
});

describe('scriptJson', () => {
  const p = scriptJson<{ a: number }>('the answer', (v) => (v.a > 0 ? undefined : 'a must be positive'));

  it('reads the last line, whatever the framework printed before it', () => {
    expect(p.parse('2026-11-22 04:00 lib - INFO - connected\n{"a": 1}\n')).toEqual({ a: 1 });
  });

  it('says what the script printed instead of JSON, and what is wrong with an answer', () => {
    expect(() => p.parse('Open vStorage CLI launcher\n--------------------------\n')).toThrow('the script printed no JSON on its last line: "--------------------------"');
    expect(() => p.parse('')).toThrow('the script printed no JSON on its last line (no output)');
    expect(() => p.parse('{"a": 0}')).toThrow('a must be positive');
  });
});
