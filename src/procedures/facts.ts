/**
 * What differs between real hosts that a procedure must know before it picks a command: the service
 * manager (systemd, upstart, init.d scripts, runit beside them) and the Python interpreters. A
 * `detectFacts` step asks the host once with a one-shot probe (no terminal, no input, read-only);
 * later steps read the answer with `ctx.facts(host)`, and the plan shows which variant runs.
 *
 * The probe asks each program itself and reads its exit status, never `command -v`: a program that
 * is not installed makes the shell exit 127 (POSIX, "Command Search and Execution"), and a program
 * that is installed but not in charge (upstart's initctl on a host booted with systemd) fails to
 * connect and exits non-zero. The lab's doubles answer the same way.
 *
 * - PID 1's name, `ps -p 1 -o comm=` (procps): `systemd` on systemd hosts, `init` on upstart and
 *   System V hosts.
 * - `initctl version` (upstart, `util/initctl.c` `version_action`): `init (upstart 1.12.1)`, exit 0,
 *   only where upstart runs.
 * - `systemctl --version` (systemd, `src/systemctl/systemctl.c` → `version()`): first line
 *   `systemd 252 (252.22-1~deb12u1)` (`systemd 229` before v240).
 * - runit's `sv` with no arguments prints its usage and exits 100 (runit `src/sv.c` `usage()`:
 *   `_exit(100)`); not installed: 127.
 * - `python2` / `python3`: the version, when the interpreter exists.
 */
import { ShellCommand } from './shell.js';

export type InitSystem = 'systemd' | 'upstart' | 'sysv';

export interface HostFacts {
  /**
   * What starts and stops services: `systemd` when PID 1 is systemd; `upstart` when upstart's
   * initctl answers; otherwise `sysv` (scripts in /etc/init.d, run through `service`).
   */
  init: InitSystem;
  /** The init system's version as the host printed it (`systemd 252`, `upstart 1.12.1`), when it says. */
  initVersion?: string;
  /** runit's `sv` is installed: services may run under runit beside the init system. */
  runit: boolean;
  /** `2.7.12`, when `python2` runs. */
  python2?: string;
  /** `3.11.2`, when `python3` runs. */
  python3?: string;
}

/** Facts as a run holds them: when and how they were learnt. */
export interface KnownFacts extends HostFacts {
  detectedAt: string;
  /** `run`: detected by this run; `cache`: detected earlier (another run, `runbook config check`). */
  source: 'run' | 'cache';
}

const PYTHON_VERSION = `-c 'import sys; print("%d.%d.%d" % sys.version_info[:3])'`;

/** The probe: one line `key=value` per question; every question is asked, whatever the others answer. */
export const FACTS_PROBE = new ShellCommand(
  [
    `printf 'pid1=%s\\n' "$(ps -p 1 -o comm= 2>/dev/null)"`,
    `printf 'upstart=%s\\n' "$(initctl version 2>/dev/null)"`,
    `printf 'systemd=%s\\n' "$(systemctl --version 2>/dev/null | head -n 1)"`,
    `sv >/dev/null 2>&1; printf 'sv=%s\\n' "$?"`,
    `for p in python2 python3; do printf '%s=%s\\n' "$p" "$("$p" ${PYTHON_VERSION} 2>/dev/null)"; done`,
  ].join('; '),
  'detect: PID 1, initctl version, systemctl --version, sv, python2/python3 --version',
);

/** Reads the probe's output. Throws when it is not the probe's (a line missing). */
export function parseFacts(stdout: string): HostFacts {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  for (const key of ['pid1', 'upstart', 'systemd', 'sv', 'python2', 'python3']) {
    if (!kv.has(key)) throw new Error(`the host's answer to the probe has no "${key}=" line`);
  }
  const pid1 = kv.get('pid1')!;
  const upstart = /upstart ([\d.]+)/.exec(kv.get('upstart')!);
  const systemd = /^systemd (\d+)/.exec(kv.get('systemd')!);
  const init: InitSystem = pid1 === 'systemd' ? 'systemd' : upstart ? 'upstart' : 'sysv';
  const initVersion = init === 'systemd' && systemd ? `systemd ${systemd[1]}` : init === 'upstart' && upstart ? `upstart ${upstart[1]}` : undefined;
  const version = (v: string | undefined) => (v && /^\d+\.\d+\.\d+$/.test(v) ? v : undefined);
  const python2 = version(kv.get('python2'));
  const python3 = version(kv.get('python3'));
  return {
    init,
    ...(initVersion ? { initVersion } : {}),
    runit: kv.get('sv') !== '127' && kv.get('sv') !== '',
    ...(python2 ? { python2 } : {}),
    ...(python3 ? { python3 } : {}),
  };
}

/** `systemd 252`, `upstart 1.12.1 + runit`, `init.d scripts`: how a plan names the variant. */
export function describeFacts(f: HostFacts): string {
  const init = f.initVersion ?? (f.init === 'sysv' ? 'init.d scripts' : f.init);
  return f.runit ? `${init} + runit` : init;
}
