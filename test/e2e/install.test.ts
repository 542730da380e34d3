import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const CLI = resolve('dist/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'runbook-install-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `node <script> …`; never throws on a non-zero exit. */
async function node(script: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [script, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('the runbook command, installed', () => {
  it('runs through a symlink, as node_modules/.bin/runbook, npm link and npx reach it', async () => {
    mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
    const link = join(dir, 'node_modules', '.bin', 'runbook');
    symlinkSync(CLI, link);
    const help = await node(link, 'help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^runbook: run incident runbooks/);
    const wrong = await node(link, 'frobnicate');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/unknown command "frobnicate"/);
  });
});
