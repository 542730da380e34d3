/** Helpers the benchmark sections share. */

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** `node dist/bench/<section>.js --standalone …`: runs one section alone and prints its report lines. */
export function runStandalone(section: () => Promise<{ lines: string[] }>): void {
  section().then(
    (r) => {
      process.stdout.write(`${r.lines.join('\n')}\n`);
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
