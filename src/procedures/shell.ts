/**
 * Shell commands built only through the `sh` tagged template: every interpolated value is quoted,
 * so an argument such as `node-3; rm -rf /` stays one word and is never executed.
 */

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX single-quoting. Plain words stay bare so the thread reads like the runbook page. */
export function quote(value: string): string {
  if (value !== '' && SAFE_WORD.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** A fragment the procedure author vouches for (a literal of the procedure, never user input). */
export class Raw {
  constructor(readonly text: string) {}
}

/** A value that runs but is never shown: rendered as *** in chat, logs and the audit trail. */
export class Secret {
  constructor(readonly value: string) {}
  toJSON(): string {
    return '***';
  }
  toString(): string {
    return '***';
  }
}

export class ShellCommand {
  /**
   * `text` is what runs; `display` is what people, logs and the audit trail see; `secrets` are the
   * `secret()` values in it, which the SSH executor also hides in what the command prints.
   */
  constructor(
    readonly text: string,
    readonly display: string,
    readonly secrets: readonly string[] = [],
  ) {}
  toString(): string {
    return this.display;
  }
}

export type ShellValue = string | number | Raw | Secret | ShellCommand | readonly (string | number)[];

export const raw = (text: string): Raw => new Raw(text);
export const secret = (value: string): Secret => new Secret(value);

function render(value: ShellValue): { text: string; display: string; secrets?: readonly string[] } {
  if (value instanceof ShellCommand) return { text: value.text, display: value.display, secrets: value.secrets };
  if (value instanceof Raw) return { text: value.text, display: value.text };
  if (value instanceof Secret) return { text: quote(value.value), display: '***', secrets: [value.value] };
  if (Array.isArray(value)) {
    const words = value.map((v) => quote(String(v)));
    return { text: words.join(' '), display: words.join(' ') };
  }
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot put ${value} in a shell command`);
    return { text: String(value), display: String(value) };
  }
  if (typeof value !== 'string') throw new TypeError(`cannot put a ${typeof value} in a shell command`);
  const q = quote(value);
  return { text: q, display: q };
}

/** Tagged template: sh`virsh suspend ${id}`. */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): ShellCommand {
  let text = strings[0] ?? '';
  let display = text;
  const secrets: string[] = [];
  values.forEach((v, i) => {
    const r = render(v);
    const next = strings[i + 1] ?? '';
    text += r.text + next;
    display += r.display + next;
    secrets.push(...(r.secrets ?? []));
  });
  return new ShellCommand(text, display, secrets);
}
