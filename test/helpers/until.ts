const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `get` every 50 ms until it gives a value, which it returns; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, get: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
