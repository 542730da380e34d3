import { readFileSync } from 'node:fs';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import type { Logger } from 'pino';
import type { SshConfig } from '../../config/runbook-config.js';
import { CancelledError, CommandTimeoutError, FileReadError, FileTooLargeError, HostKeyError, SshConnectError } from '../../errors.js';
import { quote } from '../../procedures/shell.js';
import { KnownHosts, fingerprint, knownHostsName } from './known-hosts.js';
import { OutputBuffer, SecretMask } from './output.js';

export interface SshTarget {
  name: string;
  address: string;
  port: number;
  user: string;
}

export interface ExecOptions {
  /** Default: `ssh.commandTimeoutMs` of the config. */
  timeoutMs?: number;
  /** Aborting kills the remote command (TERM, then KILL) and rejects with CancelledError. */
  signal?: AbortSignal;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: string) => void;
  /**
   * Values shown as `***` wherever the command's output goes (`onOutput`, the result): a program
   * that echoes a token it was given (`curl -v`, `set -x`) does not pass it on.
   */
  secrets?: readonly string[];
  /**
   * Sent on the command's standard input, then end-of-file. Without it the input is closed at once,
   * as `ssh host cmd </dev/null`: a command that reads its input gets end-of-file, never waits.
   */
  stdin?: string;
}

export interface ExecResult {
  /** null when the command died of a signal. */
  exitCode: number | null;
  signal?: string;
  /** All of stdout up to `OutputBuffer`'s cap, for parsing captures. */
  stdout: string;
  stderr: string;
  /** The last lines of stdout and stderr interleaved as they came, bounded. */
  tail: string;
  /** True when stdout or stderr went past the cap and its start was dropped. */
  truncated: boolean;
  durationMs: number;
}

/** How long a killed command gets between TERM and KILL. */
const KILL_GRACE_MS = 2_000;
/**
 * sshd frees a session slot only once it has reaped the command's process, a moment after the
 * channel closed; an open that lands in between is refused though the connection is within
 * MaxSessions. The command never started, so the open is tried again after a short wait.
 */
const OPEN_RETRIES = 20;
const OPEN_RETRY_MS = 25;

/** The parts of ssh2's Channel (lib/Channel.js, ssh2 1.17) that `signal` needs. */
interface ChannelInternals {
  outgoing: { id: number; state: string };
  _client: { _protocol: { signal(id: number, name: string): void } };
}

/**
 * Sends a signal request on a command's channel. Our side of the channel has already sent EOF (the
 * command's input ends at once), and ssh2's `Channel.signal` sends nothing once its writable side
 * ended (it checks `writable` and `outgoing.state === 'open'`). RFC 4254 §5.3: after EOF "the
 * channel remains open", and channel requests still flow; so the request goes out through the
 * channel's protocol directly while the channel is not closing.
 */
function signal(stream: ClientChannel, name: string): void {
  const ch = stream as unknown as ChannelInternals;
  if (ch.outgoing.state === 'open') stream.signal(name);
  else if (ch.outgoing.state === 'eof') ch._client._protocol.signal(ch.outgoing.id, name);
}

class Connection {
  readonly client = new Client();
  active = 0;
  closed = false;
  readonly waiters: (() => void)[] = [];
  ready!: Promise<void>;
}

/**
 * One SSH connection per host, reused by every step and run of this process, with at most
 * `maxSessions` channels open on it at once (OpenSSH's MaxSessions, default 10); further
 * commands queue. Host keys are checked against known_hosts; an unknown or changed key is refused.
 */
export class SshPool {
  private readonly conns = new Map<string, Connection>();
  private knownHosts: KnownHosts | undefined;
  private privateKey: Buffer | undefined;
  private closing = false;

  constructor(
    private readonly cfg: SshConfig,
    private readonly log?: Logger,
  ) {}

  private key(t: SshTarget): string {
    return `${t.user}@${t.address}:${t.port}`;
  }

  /** Connections currently open, and channels in use on them. */
  stats(): { connections: number; channels: number; queued: number } {
    let channels = 0;
    let queued = 0;
    for (const c of this.conns.values()) {
      channels += c.active;
      queued += c.waiters.length;
    }
    return { connections: this.conns.size, channels, queued };
  }

  private connect(target: SshTarget): Connection {
    const conn = new Connection();
    this.knownHosts ??= KnownHosts.load(this.cfg.knownHostsPath);
    this.privateKey ??= readFileSync(this.cfg.privateKeyPath);
    const known = this.knownHosts;
    const khName = knownHostsName(target.address, target.port);
    let hostKeyProblem: HostKeyError | undefined;
    const config: ConnectConfig = {
      host: target.address,
      port: target.port,
      username: target.user,
      privateKey: this.privateKey,
      readyTimeout: this.cfg.connectTimeoutMs,
      keepaliveInterval: this.cfg.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      hostVerifier: (key: Buffer) => {
        const verdict = known.check(khName, key);
        if (verdict === 'ok') return true;
        const fp = fingerprint(key);
        hostKeyProblem =
          verdict === 'unknown'
            ? new HostKeyError(`host key of ${target.name} (${khName}) is not in ${this.cfg.knownHostsPath}; refusing to connect. Its key is ${fp}: add it only after checking it out of band.`, { host: target.name, fingerprint: fp, reason: 'unknown' })
            : new HostKeyError(`HOST KEY OF ${target.name} (${khName}) HAS CHANGED: it presented ${fp}, which does not match ${this.cfg.knownHostsPath}. Someone could be intercepting the connection; refusing to connect.`, { host: target.name, fingerprint: fp, reason: 'mismatch' });
        return false;
      },
    };
    conn.ready = new Promise<void>((resolve, reject) => {
      conn.client.once('ready', () => {
        // Without TCP_NODELAY a channel open sent right after the previous channel's close waits
        // for the server's delayed ACK (about 40 ms a step); with it a warm exec takes a few ms.
        conn.client.setNoDelay(true);
        resolve();
      });
      conn.client.once('error', (err) => {
        reject(hostKeyProblem ?? new SshConnectError(`cannot connect to ${target.name} (${target.address}:${target.port}): ${err.message}`, { host: target.name }));
      });
      conn.client.once('close', () => reject(hostKeyProblem ?? new SshConnectError(`connection to ${target.name} closed before it was ready`, { host: target.name })));
      conn.client.connect(config);
    });
    conn.ready.catch(() => undefined);
    conn.client.on('error', (err) => this.log?.debug({ host: target.name, err: err.message }, 'ssh connection error'));
    conn.client.on('close', () => {
      conn.closed = true;
      if (this.conns.get(this.key(target)) === conn) this.conns.delete(this.key(target));
      for (const w of conn.waiters.splice(0)) w();
    });
    return conn;
  }

  private async acquire(target: SshTarget): Promise<Connection> {
    for (;;) {
      if (this.closing) throw new SshConnectError('ssh pool is closing', { host: target.name });
      const k = this.key(target);
      let conn = this.conns.get(k);
      if (!conn || conn.closed) {
        conn = this.connect(target);
        this.conns.set(k, conn);
      }
      try {
        await conn.ready;
      } catch (err) {
        if (this.conns.get(k) === conn) this.conns.delete(k);
        conn.client.end();
        throw err;
      }
      if (conn.closed) continue;
      if (conn.active < this.cfg.maxSessions) {
        conn.active++;
        return conn;
      }
      await new Promise<void>((resolve) => conn!.waiters.push(resolve));
    }
  }

  private release(conn: Connection): void {
    conn.active--;
    conn.waiters.shift()?.();
  }

  /**
   * The bytes of a file on `target`, through `cat` on the same pooled connection (every host has
   * it; SFTP may be disabled). Stops reading once more than `maxBytes` arrived and throws
   * FileTooLargeError: a log archive of hundreds of megabytes stays on the host.
   */
  async fetch(target: SshTarget, path: string, opts: { maxBytes: number; timeoutMs?: number; signal?: AbortSignal }): Promise<Buffer> {
    if (opts.signal?.aborted) throw new CancelledError('cancelled before the file was fetched', { host: target.name });
    const conn = await this.acquire(target);
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        this.open(conn, target, `cat -- ${quote(path)}`, reject, (stream) => {
          const chunks: Buffer[] = [];
          let size = 0;
          let stderr = '';
          let exitCode: number | null = null;
          let tooLarge = false;
          const timer = setTimeout(() => stream.close(), opts.timeoutMs ?? this.cfg.commandTimeoutMs);
          const onAbort = () => stream.close();
          opts.signal?.addEventListener('abort', onAbort, { once: true });
          stream.on('error', () => undefined);
          stream.end();
          stream.on('data', (chunk: Buffer) => {
            if (tooLarge) return;
            size += chunk.length;
            if (size > opts.maxBytes) {
              tooLarge = true;
              signal(stream, 'KILL');
              stream.close();
              return;
            }
            chunks.push(chunk);
          });
          stream.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-2_000)));
          stream.on('exit', (code: number | null) => (exitCode = code ?? null));
          stream.on('close', () => {
            clearTimeout(timer);
            opts.signal?.removeEventListener('abort', onAbort);
            if (tooLarge) reject(new FileTooLargeError(`${path} on ${target.name} is larger than ${opts.maxBytes} bytes`, { host: target.name, path, maxBytes: opts.maxBytes }));
            else if (opts.signal?.aborted) reject(new CancelledError(`fetching ${path} from ${target.name} was stopped: the run was cancelled`, { host: target.name }));
            else if (exitCode === 0) resolve(Buffer.concat(chunks));
            else if (exitCode === null) reject(new SshConnectError(`fetching ${path} from ${target.name} did not finish (timed out or the connection was lost)`, { host: target.name }));
            else reject(new FileReadError(`cannot read ${path} on ${target.name}: ${stderr.trim().split('\n').at(-1) || `cat exited ${exitCode}`}`, { host: target.name, path }));
          });
        });
      });
    } finally {
      this.release(conn);
    }
  }

  /** Runs `command` on `target` through the user's login shell, as `ssh host command` would. */
  async exec(target: SshTarget, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.signal?.aborted) throw new CancelledError('cancelled before the command started', { host: target.name });
    const started = performance.now();
    const conn = await this.acquire(target);
    try {
      return await this.run(conn, target, command, opts, started);
    } finally {
      this.release(conn);
    }
  }

  /**
   * Opens a channel and watches it. The listeners are attached inside ssh2's callback, synchronously:
   * a fast command's output, exit status and close can arrive in the same packet burst as the
   * channel confirmation, and a listener added one microtask later would miss them.
   */
  private run(conn: Connection, target: SshTarget, command: string, opts: ExecOptions, started: number): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      this.open(conn, target, command, reject, (stream) => this.watch(conn, target, stream, opts, started, resolve, reject));
    });
  }

  /** Opens an exec channel, trying again while sshd is still freeing a session slot (see OPEN_RETRIES). */
  private open(conn: Connection, target: SshTarget, command: string, reject: (e: Error) => void, watch: (stream: ClientChannel) => void): void {
    const attempt = (left: number) =>
      conn.client.exec(command, (err, stream: ClientChannel) => {
        if (!err) return watch(stream);
        if (left > 0 && !conn.closed && /open failed/i.test(err.message)) {
          setTimeout(() => attempt(left - 1), OPEN_RETRY_MS);
          return;
        }
        reject(new SshConnectError(`cannot open a channel on ${target.name}: ${err.message}`, { host: target.name }));
      });
    attempt(OPEN_RETRIES);
  }

  private watch(conn: Connection, target: SshTarget, stream: ClientChannel, opts: ExecOptions, started: number, resolve: (r: ExecResult) => void, reject: (e: Error) => void): void {
    const timeoutMs = opts.timeoutMs ?? this.cfg.commandTimeoutMs;
    const out = new OutputBuffer();
    let stopped: 'timeout' | 'cancel' | undefined;
    let exitCode: number | null = null;
    let exitSignal: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = (why: 'timeout' | 'cancel') => {
      if (stopped) return;
      stopped = why;
      // OpenSSH (>= 7.9) delivers signals to command sessions; closing the channel is the fallback.
      signal(stream, 'TERM');
      killTimer = setTimeout(() => {
        signal(stream, 'KILL');
        stream.close();
      }, KILL_GRACE_MS);
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    // No terminal was asked for (exec without a pty), and the input ends here: what `ssh host cmd`
    // gives a command run from a script. A command that exits before reading it all is not an error.
    stream.on('error', () => undefined);
    stream.end(opts.stdin ?? '');
    const onAbort = () => kill('cancel');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    const mask = opts.secrets?.length ? new SecretMask(opts.secrets) : undefined;
    const take = (which: 'stdout' | 'stderr', raw: string) => {
      const s = mask ? mask.push(which, raw) : raw;
      if (!s) return;
      out.add(which, s);
      opts.onOutput?.(which, s);
    };
    const flushMask = () => {
      for (const which of ['stdout', 'stderr'] as const) {
        const rest = mask?.end(which);
        if (rest) {
          out.add(which, rest);
          opts.onOutput?.(which, rest);
        }
      }
    };
    stream.on('data', (chunk: Buffer) => take('stdout', chunk.toString('utf8')));
    stream.stderr.on('data', (chunk: Buffer) => take('stderr', chunk.toString('utf8')));
    stream.on('exit', (code: number | null, signal?: string) => {
      exitCode = code ?? null;
      if (signal) exitSignal = signal;
    });
    stream.on('close', () => {
      flushMask();
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      const result: ExecResult = {
        exitCode,
        ...(exitSignal ? { signal: exitSignal } : {}),
        stdout: out.stdout(),
        stderr: out.stderr(),
        tail: out.tail(),
        truncated: out.truncated,
        durationMs: performance.now() - started,
      };
      if (stopped === 'timeout') {
        reject(Object.assign(new CommandTimeoutError(`command on ${target.name} ran past its ${timeoutMs} ms timeout and was killed`, { host: target.name, timeoutMs }), { result }));
      } else if (stopped === 'cancel') {
        reject(Object.assign(new CancelledError(`command on ${target.name} was killed: the run was cancelled`, { host: target.name }), { result }));
      } else if (exitCode === null && !exitSignal) {
        reject(Object.assign(new SshConnectError(`${conn.closed ? 'connection to' : 'no exit status from'} ${target.name} ${conn.closed ? 'was lost while the command ran' : 'before the channel closed'}`, { host: target.name }), { result }));
      } else {
        resolve(result);
      }
    });
  }

  /** Closes every connection; commands still running are cut off. */
  async close(): Promise<void> {
    this.closing = true;
    const closing = [...this.conns.values()].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.closed) return resolve();
          c.client.once('close', () => resolve());
          c.client.end();
          setTimeout(resolve, 1_000).unref();
        }),
    );
    this.conns.clear();
    await Promise.all(closing);
  }
}
