/**
 * Errors with stable codes. Callers decide by class or code, never by parsing a message.
 * "Retry later" and "fail now" are different classes.
 */
export type ErrorCode =
  | 'runbook_config_invalid'
  | 'runbook_pack_invalid'
  | 'runbook_env_invalid'
  | 'runbook_usage'
  | 'runbook_not_allowed'
  | 'runbook_not_found'
  | 'runbook_ssh_host_key'
  | 'runbook_ssh_connect'
  | 'runbook_ssh_timeout'
  | 'runbook_ssh_cancelled'
  | 'runbook_file_read'
  | 'runbook_file_too_large'
  | 'runbook_sql_expect'
  | 'runbook_sql'
  | 'runbook_guard'
  | 'runbook_lease_busy'
  | 'runbook_lease_lost'
  | 'runbook_decision'
  | 'runbook_illegal_transition';

export class RunbookError extends Error {
  readonly code: ErrorCode;
  readonly context: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.context = context;
    this.name = new.target.name;
  }
}

export interface ConfigProblem {
  path: string;
  line?: number | undefined;
  message: string;
}

/** Thrown when runbook.yaml or the environment is invalid; lists every problem. */
export class ConfigError extends RunbookError {
  readonly file: string;
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    const lines = problems.map((p) => `  ${file}${p.line ? `:${p.line}` : ''}: ${p.path}: ${p.message}`);
    super('runbook_config_invalid', `invalid configuration (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${lines.join('\n')}`, { file });
    this.file = file;
    this.problems = problems;
  }
}

/** One thing wrong with a pack: where (file and line when known), which procedure, and what. */
export interface PackProblem {
  file: string;
  line?: number | undefined;
  procedure?: string | undefined;
  message: string;
}

/** Thrown at start when a pack cannot be loaded or a procedure of it is invalid; lists every problem. */
export class PackError extends RunbookError {
  readonly problems: PackProblem[];
  constructor(problems: PackProblem[]) {
    const lines = problems.map((p) => `  ${p.file}${p.line ? `:${p.line}` : ''}: ${p.procedure ? `${p.procedure}: ` : ''}${p.message}`);
    super('runbook_pack_invalid', `cannot load the packs (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${lines.join('\n')}`, { files: [...new Set(problems.map((p) => p.file))] });
    this.problems = problems;
  }
}

/** Thrown when a command typed by a person cannot be understood; the message says how to write it. */
export class UsageError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_usage', message, context);
  }
}

/** Thrown when a person may not do what they asked (run, approve, decide). */
export class NotAllowedError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_not_allowed', message, context);
  }
}

/** Thrown when a run, gate or person does not exist. */
export class NotFoundError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_not_found', message, context);
  }
}

/** Thrown when a host presents a key that is not in known_hosts or differs from it. Never retried. */
export class HostKeyError extends RunbookError {
  constructor(message: string, context: { host: string; fingerprint: string; reason: 'unknown' | 'mismatch' }) {
    super('runbook_ssh_host_key', message, context);
  }
}

/** Thrown when an SSH connection cannot be made or breaks. May succeed on retry. */
export class SshConnectError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_ssh_connect', message, context);
  }
}

/** Thrown when a command runs past its timeout; the remote process has been signalled. */
export class CommandTimeoutError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_ssh_timeout', message, context);
  }
}

/** Thrown when a command is interrupted because its run was cancelled. */
export class CancelledError extends RunbookError {
  constructor(message = 'cancelled', context: Record<string, unknown> = {}) {
    super('runbook_ssh_cancelled', message, context);
  }
}

/** Thrown when a file cannot be read on a host (missing, unreadable). */
export class FileReadError extends RunbookError {
  constructor(message: string, context: { host: string; path: string }) {
    super('runbook_file_read', message, context);
  }
}

/** Thrown when a file to fetch from a host is larger than allowed; reading stopped at the bound. */
export class FileTooLargeError extends RunbookError {
  constructor(message: string, context: { host: string; path: string; maxBytes: number }) {
    super('runbook_file_too_large', message, context);
  }
}

/** Thrown when an SQL step changed a number of rows outside its `expect` bounds; the transaction was rolled back. */
export class SqlExpectError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_sql_expect', message, context);
  }
}

/** Thrown when a guard refuses a procedure or a step. */
export class GuardError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_guard', message, context);
  }
}

/** Thrown when another worker holds the run; the job is retried later. */
export class LeaseBusyError extends RunbookError {
  constructor(runId: string) {
    super('runbook_lease_busy', `run ${runId} is being advanced by another worker`, { runId });
  }
}

/** Thrown when a worker finds its lease on a run taken over (it was paused past the lease); it stops touching the run. */
export class LeaseLostError extends RunbookError {
  constructor(runId: string) {
    super('runbook_lease_lost', `lease on run ${runId} was lost; another worker has taken it over`, { runId });
  }
}

/** Thrown when a decision on a gate is refused (already decided, unknown gate, wrong choice). */
export class DecisionError extends RunbookError {
  constructor(message: string, context: Record<string, unknown> = {}) {
    super('runbook_decision', message, context);
  }
}

/**
 * Thrown when the engine asks a run, step or gate for a change its transition table does not allow:
 * a bug in the engine, never a person's mistake. The change is not made.
 */
export class IllegalTransitionError extends RunbookError {
  constructor(machine: 'run' | 'step' | 'gate', id: string, from: string, input: string) {
    super('runbook_illegal_transition', `${machine} ${id}: "${input}" is not allowed from ${from}`, { machine, id, from, input });
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
