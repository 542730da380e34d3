import type { KnownFacts, Risk, StepStatus } from '../procedures/dsl.js';

export type RunStatus = 'queued' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'rejected' | 'cancelled' | 'expired';
export const TERMINAL: readonly RunStatus[] = ['succeeded', 'failed', 'rejected', 'cancelled', 'expired'];
export const isTerminal = (s: RunStatus): boolean => TERMINAL.includes(s);

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

export interface StepState {
  path: string;
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

export type GateKind = 'approval' | 'manual' | 'interrupted';
export type GateStatus = 'open' | 'approved' | 'rejected' | 'expired' | 'void' | 'done' | 'retry' | 'skip' | 'abort';
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
  decidedBy?: string;
  decidedAt?: string;
  reason?: string;
}

export interface DecisionRecord {
  gateId: string;
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
   * and the definition's fingerprint (Catalog.origin), for a resume to compare with what is loaded.
   */
  definition?: { file: string; fingerprint: string };
  args: Record<string, unknown>;
  requester: string;
  origin: Origin;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  plan: PlanStep[];
  notes: string[];
  /** Hosts held by the run, as locked. */
  locks: { host: string; mode: 'read' | 'write' }[];
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
  phase: 'main' | 'finally' | 'done';
  /** The end decided by the main steps, before finally steps ran. */
  outcome?: RunStatus;
  error?: string;
  finishedAt?: string;
  cancelRequested?: { by: string; at: string };
  dryRun?: boolean;
}

export type RunEvent =
  | { type: 'run.requested'; by: string; command: string; origin: Origin }
  | { type: 'run.planned'; plan: PlanStep[]; notes: string[] }
  | { type: 'run.started'; worker: string; resumed: boolean }
  | { type: 'run.waiting'; gates: string[] }
  | { type: 'run.finished'; status: RunStatus; error?: string; durationMs: number }
  | { type: 'run.cancel-requested'; by: string; via?: Origin }
  | { type: 'lock.waiting'; hosts: string[]; heldBy: string[] }
  | { type: 'step.started'; path: string; title: string; kind: StepKind; risk: Risk; host?: string; command?: string; stdin?: string; reference?: string; variant?: string; database?: string; statement?: string; attempt: number }
  | { type: 'step.output'; path: string; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'step.progress'; path: string; message: string; done?: number; total?: number; failed?: number }
  | { type: 'step.interrupted'; path: string; title: string; idempotent: boolean }
  | { type: 'step.finished'; path: string; title: string; status: StepStatus; kind: StepKind; risk: Risk; host?: string; exitCode?: number | null; signal?: string; rowsAffected?: number; durationMs?: number; outputTail?: string; outputTruncated?: boolean; error?: string; reason?: string; report?: string; attachment?: Attachment }
  | { type: 'gate.opened'; gate: Gate }
  | { type: 'gate.decided'; gate: Gate; decision: Decision; by: string; reason?: string; via?: Origin }
  | { type: 'gate.refused'; gateId: string; by: string; reason: string; via?: Origin };

export type StampedEvent = RunEvent & { runId: string; at: string; id?: string };
