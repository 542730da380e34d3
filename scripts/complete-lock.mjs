// The npm registry reachable here lacks some platform builds of optional native packages
// (e.g. @msgpackr-extract/*-darwin-*, used by bullmq through msgpackr). `npm install` then leaves
// them out of package-lock.json and `npm ci` refuses the lock as out of sync. This adds the
// entries npm itself would write for them: optional, restricted to their platform, never
// installed on Linux. Run it after `npm install` changes the lock.
import { readFileSync, writeFileSync } from 'node:fs';

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const packages = lock.packages;
let added = 0;
for (const [path, meta] of Object.entries(packages)) {
  for (const [name, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (packages[key] || packages[`${path}/node_modules/${name}`]) continue;
    const m = /-(darwin|win32|linux|freebsd|android|openbsd|sunos|aix)-(x64|arm64|arm|ia32|riscv64|ppc64|s390x|loong64)(?:-(gnu|musl|msvc|gnueabihf))?$/.exec(name);
    if (!m) throw new Error(`${name} (optional dependency of ${path || 'the project'}) is missing from the lock and is not a platform build`);
    packages[key] = { version, cpu: [m[2]], license: 'MIT', optional: true, os: [m[1]] };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
process.stderr.write(`complete-lock: added ${added} platform entr${added === 1 ? 'y' : 'ies'}\n`);
