import type { Decisions } from '../approvals/decisions.js';
import type { Person, Policy } from '../approvals/policy.js';
import type { Intake, IntakeRequest } from '../engine/intake.js';
import type { RunStore } from '../engine/store.js';
import { isTerminal, type Decision, type Origin, type Run } from '../engine/types.js';
import { DecisionError, errorMessage, GuardError, NotAllowedError, NotFoundError, RunbookError, UsageError } from '../errors.js';
import { checkInput, clip, MAX_COMMAND_CHARS, MAX_NAME_CHARS, MAX_REASON_CHARS } from '../input.js';
import type { Catalog } from '../procedures/catalog.js';
import { tokenize } from '../procedures/catalog.js';
import { statusLine } from './messages.js';

export type Platform = 'slack' | 'discord' | 'console';

/** What the person who typed or clicked sees at once: only them (ephemeral), or the channel. */
export interface Reply {
  ephemeral: boolean;
  text: string;
  /** Set when a run was started. */
  run?: Run;
}

/**
 * What Slack, Discord and the console share: who a chat user is, what a slash command means
 * (`help`, `status`, `cancel`, or a procedure), and what a button click decides. Every error
 * becomes one clear sentence for the person, never a stack trace.
 */
export class ChatService {
  constructor(private readonly deps: { intake: Intake; decisions: Decisions; store: RunStore; policy: Policy; catalog: Catalog }) {}

  person(platform: Platform, userId: string): Person | undefined {
    if (platform === 'console') return this.deps.policy.person(userId);
    return this.deps.policy.byPlatform(platform, userId);
  }

  private unknownUser(platform: Platform, userId: string): Reply {
    const who = clip(userId);
    if (platform === 'console') return { ephemeral: true, text: `"${who}" is not a person of runbook.yaml, so you can only use help.` };
    return { ephemeral: true, text: `You (${platform} user ${who}) are not in runbook.yaml's people, so you can only use help. Ask an admin to add \`${platform}: ${who}\` to your entry under people.` };
  }

  /**
   * `/ovs flush node-3` arrives as pack `ovs`, text `flush node-3`. `origin` says where it came
   * from and who typed it; it is stored with the run (progress goes back there) and audited.
   */
  async command(platform: Platform, userId: string, pack: string, text: string, origin: Origin, record?: IntakeRequest['record']): Promise<Reply> {
    let words: string[];
    try {
      checkInput(pack, 'the command name', MAX_NAME_CHARS);
      // As typed, so that a position in the answer counts from the slash.
      checkInput(`/${pack} ${text}`, 'the command', MAX_COMMAND_CHARS);
      words = tokenize(text.trim());
    } catch (err) {
      return { ephemeral: true, text: this.explain(err) };
    }
    const verb = words[0];
    if (!verb || verb === 'help') return { ephemeral: true, text: this.help(pack, words[1]) };
    const person = this.person(platform, userId);
    if (!person) return this.unknownUser(platform, userId);
    try {
      if (verb === 'status') return await this.status(words[1]);
      if (verb === 'cancel') {
        if (!words[1]) throw new UsageError(`say which run: /${pack} cancel <run-id>`);
        await this.deps.decisions.cancel(words[1], person.id, origin);
        return { ephemeral: false, text: `${person.id} asked to cancel run ${words[1]}: the running step is stopped, then its finally steps run.` };
      }
      const run = await this.deps.intake.request({ text: `${pack} ${text.trim()}`, person: person.id, origin, ...(record ? { record } : {}) });
      return { ephemeral: true, text: `Run ${run.id} started: ${run.procedure}. The plan and every step follow in the thread.`, run };
    } catch (err) {
      return { ephemeral: true, text: this.explain(err) };
    }
  }

  /**
   * A click on Approve, Reject, Retry, Skip, Abort or Done. `via` says where it was clicked, for
   * the audit; by default the platform and its user id.
   */
  async decide(platform: Platform, userId: string, runId: string, gateId: string, decision: Decision, reason?: string, via: Origin = { adapter: platform, user: userId }): Promise<Reply> {
    const person = this.person(platform, userId);
    if (!person) return this.unknownUser(platform, userId);
    try {
      checkInput(runId, 'the run id', MAX_NAME_CHARS);
      checkInput(gateId, 'the gate id', MAX_NAME_CHARS);
      if (reason !== undefined) checkInput(reason, 'the reason', MAX_REASON_CHARS, { newlines: true });
      await this.deps.decisions.decide(runId, person.id, decision, { gateId, ...(reason ? { reason } : {}), via });
      return { ephemeral: true, text: `Recorded: ${decision} by ${person.id}.` };
    } catch (err) {
      return { ephemeral: true, text: this.explain(err) };
    }
  }

  help(pack?: string, name?: string): string {
    try {
      return this.deps.catalog.help(pack, name);
    } catch (err) {
      return this.explain(err);
    }
  }

  private async status(runId: string | undefined): Promise<Reply> {
    if (!runId) {
      const runs = (await this.deps.store.list(10)).filter((r) => !isTerminal(r.status));
      return { ephemeral: true, text: runs.length ? runs.map((r) => `${r.id} · ${r.procedure} · ${r.requester} · ${statusLine(r)}`).join('\n') : 'No run is in progress.' };
    }
    const run = await this.deps.store.load(runId);
    const open = Object.values(run.gates).filter((g) => g.status === 'open');
    return { ephemeral: true, text: [`${run.id} · ${run.procedure} · requested by ${run.requester} · ${statusLine(run)}`, ...open.map((g) => `waiting: ${g.steps[0]?.title ?? g.stepPath} (may decide: ${g.deciders.filter((d) => g.kind === 'manual' || d !== run.requester).join(', ')})`)].join('\n') };
  }

  /** The sentence a person sees for an error. */
  explain(err: unknown): string {
    if (err instanceof UsageError) return err.message;
    if (err instanceof NotAllowedError) return `Not allowed: ${err.message}`;
    if (err instanceof GuardError) return `Refused: ${err.message}`;
    if (err instanceof NotFoundError || err instanceof DecisionError) return err.message;
    if (err instanceof RunbookError) return `${err.message} (${err.code})`;
    return `Something went wrong on our side (${errorMessage(err).split('\n')[0]}). Nothing was started; try again or use the CLI.`;
  }
}
