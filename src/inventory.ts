import { interpolateEnv, type HostConfig, type RunbookConfig } from './config/runbook-config.js';

export interface InventoryHost extends HostConfig {
  name: string;
}

/** The hosts of runbook.yaml, by name and by group, and the schema names of its databases. */
export class Inventory {
  private readonly byName: Map<string, InventoryHost>;

  constructor(
    hosts: RunbookConfig['hosts'],
    private readonly databases: RunbookConfig['databases'] = {},
  ) {
    this.byName = new Map(Object.entries(hosts).map(([name, h]) => [name, { ...h, name }]));
  }

  /** The schema a configured database's URL points at (its path); the name itself when it has none. */
  schema(database: string): string {
    const db = this.databases[database];
    if (!db) return database;
    const path = new URL(interpolateEnv(db.url, process.env).value).pathname.replace(/^\//, '');
    return decodeURIComponent(path) || database;
  }

  get(name: string): InventoryHost | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  all(): InventoryHost[] {
    return [...this.byName.values()];
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** Hosts in any of `groups` (every host when `groups` is empty or undefined), in inventory order. */
  inGroups(groups?: readonly string[]): InventoryHost[] {
    if (!groups || groups.length === 0) return this.all();
    return this.all().filter((h) => h.groups.some((g) => groups.includes(g)));
  }

  groups(): string[] {
    return [...new Set(this.all().flatMap((h) => h.groups))].sort();
  }

  /** The host whose name, `vars.fqdn` or address is `value` (nova and neutron store FQDNs). */
  find(value: string): InventoryHost | undefined {
    return this.byName.get(value) ?? this.all().find((h) => h.vars.fqdn === value || h.address === value);
  }
}

const NEAREST_MAX_CHARS = 64;

/** Names closest to `wanted` by edit distance, for "did you mean" answers. */
export function nearest(wanted: string, candidates: readonly string[], max = 3): string[] {
  // A name this long is no typo of a real one, and comparing it with every candidate would take long.
  if (wanted.length > NEAREST_MAX_CHARS) return [];
  const scored = candidates.map((c) => ({ c, d: distance(wanted.toLowerCase(), c.toLowerCase()) }));
  const limit = Math.max(2, Math.ceil(wanted.length / 2));
  return scored
    .filter((s) => s.d <= limit || s.c.startsWith(wanted) || wanted.startsWith(s.c))
    .sort((a, b) => a.d - b.d || a.c.localeCompare(b.c))
    .slice(0, max)
    .map((s) => s.c);
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
