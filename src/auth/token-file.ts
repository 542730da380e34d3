import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Document, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { parseRunbookConfig, type RunbookConfig, type TokenEntry } from '../config/runbook-config.js';
import { ConfigError, NotFoundError, UsageError } from '../errors.js';

/**
 * Every environment variable reads as set: checking people does not need the database passwords
 * that `${NAME}` in database URLs refers to, and the shell editing tokens rarely has them.
 */
const ANY_ENV = new Proxy({} as NodeJS.ProcessEnv, { get: (_, key) => (typeof key === 'string' ? (process.env[key] ?? '') : undefined) });

/**
 * Changes `people.<person>.tokens` of runbook.yaml in place: only that person's entry is written
 * again (a one-line entry opens into a block); the rest of the file, its comments and layout stay
 * byte for byte. The result is validated before it is written, and written atomically (a new file
 * renamed over the old one, with its mode), so the bot reading it meanwhile sees the old file or
 * the new one, never half of one.
 * @returns the tokens before and after
 */
export function editTokens(file: string, person: string, edit: (tokens: TokenEntry[]) => TokenEntry[]): { before: TokenEntry[]; after: TokenEntry[] } {
  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text);
  if (doc.errors.length) throw new ConfigError(file, doc.errors.map((e) => ({ path: '(yaml)', message: e.message.split('\n')[0] ?? e.message })));
  const people = doc.get('people', true);
  if (isMap(people) && people.flow) throw new UsageError(`people in ${file} is written as one line ({ … }): write one person per line for \`runbook token\` to edit it`);
  const pairs = isMap(people) ? people.items : [];
  const pair = pairs.find((p) => isScalar(p.key) && String(p.key.value) === person);
  const entry = pair?.value;
  if (!pair || !isScalar(pair.key) || !isMap(entry) || !pair.key.range || !entry.range) {
    const ids = pairs.map((p) => String(isScalar(p.key) ? p.key.value : p.key));
    throw new NotFoundError(`unknown person "${person}": people in ${file} are ${ids.join(', ') || '(none)'}`, { person });
  }
  const current = entry.get('tokens', true);
  const before = isSeq(current) ? (current.toJSON() as TokenEntry[]) : [];
  const after = edit(before.map((t) => ({ ...t })));
  const [valueStart, valueEnd] = entry.range;
  const column = (at: number) => at - (text.lastIndexOf('\n', at - 1) + 1);
  const oneLine = entry.flow === true;
  if (after.length) {
    entry.flow = false;
    entry.set('tokens', doc.createNode(after));
  } else entry.delete('tokens');
  // Comments before and after the entry stay in the text around it, where they were written.
  entry.commentBefore = undefined;
  entry.comment = undefined;
  const fragment = new Document();
  fragment.contents = entry;
  const lines = fragment.toString({ flowCollectionPadding: false }).replace(/\n+$/, '').split('\n');
  let next: string;
  if (oneLine) {
    // `alice: { roles: [operator] }   # note` opens into a block under the key; the note stays on the key's line.
    const indent = ' '.repeat(column(pair.key.range[0]) + 2);
    const lineEnd = text.indexOf('\n', valueEnd) < 0 ? text.length : text.indexOf('\n', valueEnd);
    next = `${text.slice(0, pair.key.range[1])}:${text.slice(valueEnd, lineEnd)}\n${lines.map((l) => (l ? indent + l : l)).join('\n')}\n${text.slice(lineEnd + 1)}`;
  } else {
    const indent = ' '.repeat(column(valueStart));
    next = `${text.slice(0, valueStart)}${lines.map((l, i) => (l && i > 0 ? indent + l : l)).join('\n')}\n${text.slice(valueEnd)}`;
  }
  const written = parseRunbookConfig(next, file, ANY_ENV).people[person]?.tokens ?? [];
  if (written.map((t) => t.id).join() !== after.map((t) => t.id).join()) throw new Error(`editing ${file} would not give ${person} the tokens meant: nothing was written`);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, next, { mode: statSync(file).mode & 0o777 });
  renameSync(tmp, file);
  return { before, after };
}

/** The people of runbook.yaml, validated as the bot would, without needing its database passwords. */
export function readPeople(file: string): RunbookConfig['people'] {
  return parseRunbookConfig(readFileSync(file, 'utf8'), file, ANY_ENV).people;
}
