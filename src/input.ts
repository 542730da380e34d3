/**
 * Limits on what a person can send, the same on every way in (Slack, Discord, the console, the
 * CLI): checked before anything else reads the text, so a paste gone wrong or a hostile request
 * gets one clear sentence, in bounded time and memory, and an answer never repeats it whole.
 */
import { UsageError } from './errors.js';

/** Characters of one command (what follows the slash). The longest real command is far shorter. */
export const MAX_COMMAND_CHARS = 8_192;
/** Characters of a free-text answer, such as why a step was rejected. */
export const MAX_REASON_CHARS = 2_000;
/** Characters of a name: a person, a run id, a gate id. */
export const MAX_NAME_CHARS = 128;

/**
 * Control characters (C0 but tab, DEL, C1) and the invisible marks that reorder text (bidirectional
 * overrides and isolates, and the direction marks): the second kind can make a command an approver
 * reads differ from the one that runs ("Trojan Source", CVE-2021-42574).
 */
const INVISIBLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const DIRECTION = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const INVISIBLE_BUT_NEWLINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Text as typed, cut short for an answer. */
export function clip(text: string, max = 64): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/**
 * Throws UsageError when `text` is longer than `max` characters or holds a control character or
 * an invisible direction mark (newlines are allowed only with `newlines`).
 * @param what how the answer names the text: "the command", "the reason"
 */
export function checkInput(text: string, what: string, max: number, opts: { newlines?: boolean } = {}): void {
  if (text.length > max) throw new UsageError(`${what} is ${text.length.toLocaleString('en')} characters long; at most ${max.toLocaleString('en')} are accepted`);
  const m = (opts.newlines ? INVISIBLE_BUT_NEWLINES : INVISIBLE).exec(text);
  if (!m) return;
  const code = `U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
  const kind = m[0] === '\n' || m[0] === '\r' ? 'a line break' : DIRECTION.test(m[0]) ? 'an invisible direction mark, which can make text read differently from what runs,' : 'a control character';
  throw new UsageError(`${what} holds ${kind} (${code} at position ${m.index + 1}): type it again without it`);
}
