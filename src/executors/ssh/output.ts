/** Bytes of stdout (and of stderr) kept whole for parsing captures; past it the start is dropped. */
export const OUTPUT_CAP = 4 * 1024 * 1024;
/** Characters of interleaved output kept as the tail shown in chat and stored in the checkpoint. */
export const TAIL_CHARS = 4_000;

/** Collects a command's output with bounded memory: whole streams up to a cap, and a short tail. */
export class OutputBuffer {
  private out = '';
  private err = '';
  private recent = '';
  truncated = false;

  add(stream: 'stdout' | 'stderr', chunk: string): void {
    if (stream === 'stdout') this.out = this.keep(this.out + chunk);
    else this.err = this.keep(this.err + chunk);
    this.recent = (this.recent + chunk).slice(-TAIL_CHARS * 2);
  }

  private keep(s: string): string {
    if (s.length <= OUTPUT_CAP) return s;
    this.truncated = true;
    return s.slice(-OUTPUT_CAP);
  }

  stdout(): string {
    return this.out;
  }

  stderr(): string {
    return this.err;
  }

  tail(): string {
    return tailOf(this.recent);
  }
}

/** The last TAIL_CHARS characters of `text`, cut at a line start when one is near. */
export function tailOf(text: string, max = TAIL_CHARS): string {
  if (text.length <= max) return text;
  const cut = text.slice(-max);
  const nl = cut.indexOf('\n');
  return nl >= 0 && nl < 200 ? cut.slice(nl + 1) : cut;
}

/** `512 bytes`, `1.2 KiB`, `8.0 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MiB`;
}

/**
 * Hides secrets in streamed output: every occurrence becomes `***`, also one split across two
 * chunks, since the end of a chunk that could begin a secret is held back until the next one.
 */
export class SecretMask {
  private readonly secrets: string[];
  private readonly held = { stdout: '', stderr: '' };

  constructor(secrets: readonly string[]) {
    // Longest first, so a secret that contains another is hidden whole.
    this.secrets = [...new Set(secrets.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length);
  }

  /** What of `chunk` (after what was held back) may be shown now, secrets hidden. */
  push(stream: 'stdout' | 'stderr', chunk: string): string {
    let text = this.held[stream] + chunk;
    for (const s of this.secrets) text = text.split(s).join('***');
    const keep = this.partialAtEnd(text);
    this.held[stream] = text.slice(text.length - keep);
    return text.slice(0, text.length - keep);
  }

  /** The rest held back when the stream ends: it cannot hold a whole secret. */
  end(stream: 'stdout' | 'stderr'): string {
    const rest = this.held[stream];
    this.held[stream] = '';
    return rest;
  }

  /** Length of the longest end of `text` that is the start of a secret. */
  private partialAtEnd(text: string): number {
    let best = 0;
    for (const s of this.secrets) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
