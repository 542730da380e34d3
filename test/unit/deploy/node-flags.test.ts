import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// `npm run bench` measures a worker's memory with the young-generation size the project ships
// (src/bench/engine.ts, SHIPPED_NODE_FLAG). Both ways the bot is started in production give it.
const FLAG = '--max-semi-space-size=4';
const root = new URL('../../../', import.meta.url);

describe('the V8 flag the bench measures is the one the bot starts with', () => {
  it('npm start', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: Record<string, string> };
    expect((pkg.scripts.start ?? '').split(/\s+/)).toContain(FLAG);
  });

  it("the image's entrypoint", () => {
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(new URL('Dockerfile', root), 'utf8'))?.[1];
    expect(JSON.parse(entrypoint ?? '[]')).toContain(FLAG);
  });

  it('the bench', () => {
    expect(readFileSync(new URL('src/bench/engine.ts', root), 'utf8')).toContain(`const SHIPPED_NODE_FLAG = '${FLAG}'`);
  });
});
