import type { KnownFacts, Risk, StepStatus } from '../procedures/dsl.js';

/**
 * The run, step and gate models. Which status may follow which is in transitions.ts; this file says
 * what each holds. See docs/engine.md for the tables.
 */
export type RunStatus = 'queued' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'rejected' | 'cancelled' | 'expired';
/** How a run ended. */
export type EndStatus = Extract<RunStatus, 'succeeded' | 'failed' | 'rejected' | 'cancelled' | 'expired'>;
export const TERMINAL: readonly RunStatus[] = ['succeeded', 'failed', 'rejected', 'cancelled', 'expired'];
export const isTerminal = (s: RunStatus): s is EndStatus => TERMINAL.includes(s);
export type { StepStatus };

export type StepKind = 'ssh' | 'sql' | 'poll' | 'manual' | 'report' | 'forEach' | 'group';

/**
 * Where a request or a decision came from: the way in (`adapter`), where progress goes back
 * (`channel`, `thread`), and who really typed it, for the audit: the chat user, how the console
 * caller signed in (`auth`, `address`), or the CLI's operating-system user and host (`osUser`,
 * `host`), with `actor` when an admin acts for the person named.
 */
export interface Origin {
  adapter: string;
  channel?: string;
  thread?: string;
  message?: string;
  [key: string]: unknown;
}

/** One step of the plan shown before anything runs. */
export interface PlanStep {
  path: string;
  title: string;
  kind: StepKind;
  risk: Risk;
  gated: boolean;
  host?: string;
  database?: string;
  /** The command or SQL when it is known before the run; otherwise `after` says what it waits for. */
  command?: string;
  /** A script the command reads on its standard input. */
  stdin?: string;
  /** The runbook page's command or SQL, when what runs differs from it. */
  reference?: string;
  /** Which variant runs (`systemd 252`, `cinder ≥ Kilo`). */
  variant?: string;
  after?: string;
  finally?: boolean;
  children?: PlanStep[];
}

/** A step exactly as it will run: what an approval is bound to. */
export interface RenderedStep {
  path: string;
  title: string;
  kind: StepKind;
  risk: Risk;
  host?: string;
  address?: string;
  command?: string;
  /** Sent on the command's standard input: part of what an approval is bound to. */
  stdin?: string;
  /** Shown only: the page's command or SQL the step stands for, and the variant that runs. */
  reference?: string;
  variant?: string;
  database?: string;
  statement?: string;
  params?: unknown[];
  expect?: { min?: number; max?: number };
  /** Rows an UPDATE would touch, from the step's preview SELECT. */
  preview?: { columns: string[]; rows: unknown[][]; total: number };
  instructions?: string;
}

/** What a waiting run waits for. Each part wakes it in its own way (a decision, a timer job, a lock release). */
export interface WaitingFor {
  /** Open gates that need a decision. */
  gates?: string[];
  /** Poll steps waiting before their next check, and when the first is due. */
  timer?: { at: string; steps: string[] };
  /** Hosts it needs and the runs that hold them. */
  locks?: { hosts: string[]; heldBy: LockHolder[] };
}

export interface LockHolder {
  run: string;
  procedure?: string;
  requester?: string;
  status?: RunStatus;
  /** It holds nothing yet: a writer waiting only for the runs reading a host, next in line before this one. */
  ahead?: boolean;
}

export interface StepState {
  path: string;
  /** Order in which the run reached the step: a run's steps are listed in it. */
  seq?: number;
  title: string;
  kind: StepKind;
  risk: Risk;
  status: StepStatus;
  host?: string;
  command?: string;
  database?: string;
  statement?: string;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  exitCode?: number | null;
  signal?: string;
  rowsAffected?: number;
  outputTail?: string;
  outputTruncated?: boolean;
  error?: string;
  /** Why it was skipped (condition not met, skipped by a person). */
  reason?: string;
  /** forEach: item count and how many finished. */
  progress?: { done: number; total: number; failed: number };
  /** poll: checks made, when the next is due, and when it gives up. */
  checks?: number;
  nextCheckAt?: string;
  deadline?: string;
  /** A file fetched from the host after the step (`attach`), kept in the run's store. */
  attachment?: Attachment;
}

/** A file a step fetched from its host: `id` names it in the run's store (RunStore.getFile). */
export interface Attachment {
  name: string;
  /** Where it was on the host. */
  path: string;
  bytes: number;
  id: string;
}

/**
 * `approval`: a gated step waits for another person. `manual`: a person acts, then says done.
 * `interrupted`: steps a crash left unfinished that may not simply run again (one gate per crash).
 * `definition`: the procedure changed since the run started; a person says whether to go on.
 */
export type GateKind = 'approval' | 'manual' | 'interrupted' | 'definition';
/** `decided` carries the decision; `void`: it no longer counts (what it covered changed, or the run was cancelled). */
export type GateStatus = 'open' | 'decided' | 'void';
export type Decision = 'approve' | 'reject' | 'done' | 'retry' | 'skip' | 'abort' | 'expire';

export interface Gate {
  id: string;
  kind: GateKind;
  stepPath: string;
  risk: Risk;
  /** sha256 of the rendered steps; an approval counts only for this exact hash. */
  hash: string;
  steps: RenderedStep[];
  requestedAt: string;
  expiresAt?: string;
  /** Who may decide (people ids), computed from the policy when the gate opened. */
  deciders: string[];
  status: GateStatus;
  decision?: Decision;
  decidedBy?: string;
  decidedAt?: string;
  reason?: string;
  /**
   * `interrupted` gates: decisions taken on one of its steps alone (`runbook decide --step`); the
   * gate's own decision applies to the steps without one, and it is decided once every step is.
   */
  stepDecisions?: Record<string, { decision: Decision; by: string; at: string }>;
  /** `definition` gates: the fingerprint the run started with, and the one deployed now. */
  definition?: { was: string; now: string };
}

export interface DecisionRecord {
  gateId: string;
  /** A decision on one step of an `interrupted` gate only. */
  step?: string;
  decision: Decision;
  by: string;
  at: string;
  reason?: string;
  /** Where the decision was taken, for the audit. */
  via?: Origin;
}

export interface Run {
  id: string;
  procedure: string;
  /**
   * The definition the run was planned from: `built-in` or the pack file that defined the procedure,
   * the definition's fingerprint (Catalog.origin), and its step tree's (`tree`): a resume under
   * another step tree asks a person first (procedures/fingerprint.ts says why the tree).
   */
  definition?: { file: string; fingerprint: string; tree?: string };
  args: Record<string, unknown>;
  requester: string;
  origin: Origin;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  plan: PlanStep[];
  notes: string[];
  /** Hosts the run holds while it lasts (see locks.ts). */
  locks: { host: string; mode: 'read' | 'write' }[];
  /** True once the run holds its locks; they are released when it ends. */
  locked?: boolean;
  /** When a worker first started its steps. */
  startedAt?: string;
  /** Crashes this run recovered from: names the gate of the steps each one interrupted. */
  crashes?: number;
  /** While no worker holds it: what the run waits for, so a person and the sweeper can see it. */
  waitingFor?: WaitingFor;
  steps: Record<string, StepState>;
  captures: Record<string, unknown>;
  /**
   * What is known of the hosts (service manager, Python), by host name: from the facts cache when
   * the run was planned, then from the run's own `detectFacts` steps.
   */
  facts?: Record<string, KnownFacts>;
  /** forEach items, fixed the first time the step runs so a resumed run sees the same list. */
  expansions: Record<string, { key: string; label: string; item: unknown }[]>;
  gates: Record<string, Gate>;
  /** Which list of steps runs: the procedure's steps, then its finally steps. */
  phase: 'main' | 'finally';
  /** The end decided by the main steps, before finally steps ran. */
  outcome?: EndStatus;
  error?: string;
  finishedAt?: string;
  cancelRequested?: { by: string; at: string };
  dryRun?: boolean;
}

export type RunEvent =
  | { type: 'run.requested'; by: string; command: string; origin: Origin }
  | { type: 'run.planned'; plan: PlanStep[]; notes: string[] }
  | { type: 'run.started'; worker: string; resumed: boolean }
  | { type: 'run.waiting'; gates: string[]; waitingFor?: WaitingFor }
  | { type: 'run.finished'; status: RunStatus; error?: string; durationMs: number }
  | { type: 'run.cancel-requested'; by: string; via?: Origin }
  | { type: 'lock.waiting'; hosts: string[]; heldBy: string[]; holders?: LockHolder[] }
  | { type: 'step.started'; path: string; title: string; kind: StepKind; risk: Risk; host?: string; command?: string; stdin?: string; reference?: string; variant?: string; database?: string; statement?: string; attempt: number }
  | { type: 'step.output'; path: string; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'step.progress'; path: string; message: string; done?: number; total?: number; failed?: number }
  | { type: 'step.interrupted'; path: string; title: string; idempotent: boolean; gate?: string }
  | { type: 'step.finished'; path: string; title: string; status: StepStatus; kind: StepKind; risk: Risk; host?: string; exitCode?: number | null; signal?: string; rowsAffected?: number; durationMs?: number; outputTail?: string; outputTruncated?: boolean; error?: string; reason?: string; report?: string; attachment?: Attachment }
  | { type: 'gate.opened'; gate: Gate }
  | { type: 'gate.decided'; gate: Gate; decision: Decision; by: string; reason?: string; step?: string; via?: Origin }
  | { type: 'gate.voided'; gate: Gate; reason: string }
  | { type: 'gate.refused'; gateId: string; by: string; reason: string; via?: Origin };

export type StampedEvent = RunEvent & { runId: string; at: string; id?: string };
