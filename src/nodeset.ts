/**
 * Node sets, as operators write them for ClusterShell (`clush -w`) and pdsh: names, ranges
 * `node-[1-6]`, `c[01-02]` (zero padding kept), several ranges in one name `r[1-2]n[1-3]`, steps
 * `[1-9/2]`, comma lists, inventory groups `@ovs-master` (`@all` is every host), and the operators
 * `!` (minus), `&` (and) and `^` (either but not both), applied left to right like ClusterShell's:
 * `@ovs!node-3,node-9` is every @ovs host but node-3, plus node-9.
 *
 * Pure: `parseNodeSet` reads the notation, `expandNodeSet` resolves it against an inventory (every
 * name must exist; unknown names and groups are errors naming the nearest ones), `foldNodeSet`
 * writes a list of names back as a node set (`node-[1-3,5]`).
 */
import { UsageError } from './errors.js';
import { clip } from './input.js';
import { nearest, type Inventory } from './inventory.js';

/** One operand of a node set: a group, or a pattern that expands to names. */
export type NodeSetOperand = { kind: 'group'; name: string; text: string } | { kind: 'names'; names: string[]; text: string };

export type NodeSetOp = ',' | '!' | '&' | '^';

export interface ParsedNodeSet {
  /** The first operand, then each operator with the operand it applies, left to right. */
  first: NodeSetOperand;
  rest: { op: NodeSetOp; operand: NodeSetOperand }[];
}

/** More names than this in one node set is a mistake (`node-[1-99999999]`), not a target list. */
export const MAX_NODES = 100_000;

const OPS = new Set([',', '!', '&', '^']);

/** Reads a node set's notation (no inventory needed). Throws UsageError saying what is wrong. */
export function parseNodeSet(text: string): ParsedNodeSet {
  const src = text.replace(/\s+/g, '');
  if (!src) throw new UsageError('say which hosts: a node set such as node-[1-3], c[01-02], @ovs-master or @ovs!node-3');
  const parts: { op: NodeSetOp; text: string }[] = [];
  let depth = 0;
  let cur = '';
  let op: NodeSetOp = ',';
  for (const c of src) {
    if (c === '[') depth++;
    if (c === ']') {
      depth--;
      if (depth < 0) throw new UsageError(`"${clip(text)}": "]" without "[" in the node set`);
    }
    if (depth === 0 && OPS.has(c)) {
      parts.push({ op, text: cur });
      op = c as NodeSetOp;
      cur = '';
      continue;
    }
    cur += c;
  }
  if (depth !== 0) throw new UsageError(`"${clip(text)}": unclosed "[" in the node set`);
  parts.push({ op, text: cur });
  for (const p of parts) if (!p.text) throw new UsageError(`"${clip(text)}": an empty name next to "${p.op}" in the node set`);
  // Bounded over the whole set, not only per operand: `n[1-99999],n[1-99999],…` is a million names too.
  let names = 0;
  const operands = parts.map((p) => {
    const operand = parseOperand(p.text, text);
    if (operand.kind === 'names' && (names += operand.names.length) > MAX_NODES) throw new UsageError(`"${clip(text)}" names more than ${MAX_NODES} hosts`);
    return { op: p.op, operand };
  });
  const [head, ...tail] = operands;
  return { first: head!.operand, rest: tail };
}

function parseOperand(t: string, whole: string): NodeSetOperand {
  if (t.startsWith('@')) {
    const name = t.slice(1);
    if (!/^[A-Za-z0-9_.:-]+$/.test(name)) throw new UsageError(`"${clip(whole)}": "${clip(t)}" is not a group name`);
    return { kind: 'group', name, text: t };
  }
  if (!/^[A-Za-z0-9_.:@,\-[\]/]+$/.test(t)) throw new UsageError(`"${clip(whole)}": "${clip(t)}" is not a host name or range`);
  return { kind: 'names', names: expandPattern(t, whole), text: t };
}

/** `node-[1-3]` → node-1, node-2, node-3; `r[1-2]n[01-02]` → r1n01, r1n02, r2n01, r2n02. */
export function expandPattern(t: string, whole = t): string[] {
  const open = t.indexOf('[');
  if (open < 0) {
    if (t.includes(']') || t.includes('/')) throw new UsageError(`"${clip(whole)}": "${clip(t)}" is not a host name or range`);
    return [t];
  }
  const close = t.indexOf(']', open);
  if (close < 0) throw new UsageError(`"${clip(whole)}": unclosed "[" in "${clip(t)}"`);
  const head = t.slice(0, open);
  if (head.includes(']') || head.includes('/')) throw new UsageError(`"${clip(whole)}": "${clip(t)}" is not a host name or range`);
  const values = expandRangeList(t.slice(open + 1, close), whole);
  const tails = expandPattern(t.slice(close + 1), whole);
  if (values.length * tails.length > MAX_NODES) throw new UsageError(`"${clip(whole)}" names more than ${MAX_NODES} hosts`);
  return values.flatMap((v) => tails.map((rest) => `${head}${v}${rest}`));
}

function expandRangeList(body: string, whole: string): string[] {
  if (!body) throw new UsageError(`"${clip(whole)}": empty "[]" in the node set`);
  const out: string[] = [];
  for (const item of body.split(',')) {
    const m = /^(\d+)(?:-(\d+)(?:\/(\d+))?)?$/.exec(item);
    if (!m) throw new UsageError(`"${clip(whole)}": "[${body}]" is not a range list: write numbers and ranges such as [1-3,5] or [01-10]`);
    const [, a, b, stepText] = m;
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    const step = stepText === undefined ? 1 : Number(stepText);
    if (hi < lo) throw new UsageError(`"${clip(whole)}": the range ${item} runs backwards`);
    if (step < 1) throw new UsageError(`"${clip(whole)}": the step of ${item} must be 1 or more`);
    if ((hi - lo) / step + out.length > MAX_NODES) throw new UsageError(`"${clip(whole)}" names more than ${MAX_NODES} hosts`);
    // Padding comes from the lower bound, as in ClusterShell: [01-10] gives 01 … 10, [1-10] gives 1 … 10.
    const width = a!.length > 1 && a!.startsWith('0') ? a!.length : 0;
    for (let v = lo; v <= hi; v += step) out.push(String(v).padStart(width, '0'));
  }
  return out;
}

/**
 * The hosts a node set names, in inventory order. Every name must be an inventory host and every
 * group a group of the inventory; a set that ends up empty is an error too.
 */
export function expandNodeSet(text: string, inventory: Inventory): string[] {
  const parsed = parseNodeSet(text);
  const resolveOperand = (o: NodeSetOperand): Set<string> => {
    if (o.kind === 'group') {
      if (o.name === 'all' && !inventory.groups().includes('all')) return new Set(inventory.names());
      const members = inventory.inGroups([o.name]).map((h) => h.name);
      if (members.length === 0) {
        const groups = inventory.groups();
        const guess = nearest(o.name, groups);
        throw new UsageError(`no group "@${o.name}" in the inventory${guess.length ? `; did you mean ${guess.map((g) => `"@${g}"`).join(' or ')}?` : ''} Groups: ${groups.map((g) => `@${g}`).join(', ') || '(none)'}`, { nodeset: text });
      }
      return new Set(members);
    }
    const unknown = o.names.filter((n) => !inventory.has(n));
    if (unknown.length) {
      const names = inventory.names();
      const guess = [...new Set(unknown.slice(0, 3).flatMap((u) => nearest(u, names)))].slice(0, 5);
      const what = unknown.length === 1 ? `unknown host "${clip(unknown[0]!)}"` : `unknown hosts ${foldNodeSet(unknown)} (${unknown.length})`;
      const all = names.length <= 30 ? names.join(', ') : `${foldNodeSet(names)} (${names.length})`;
      throw new UsageError(`${what} in "${clip(text)}"${guess.length ? `; did you mean ${guess.map((g) => `"${g}"`).join(' or ')}?` : ''} The hosts are: ${all || '(none in runbook.yaml)'}`, { nodeset: text });
    }
    return new Set(o.names);
  };
  let acc = resolveOperand(parsed.first);
  for (const { op, operand } of parsed.rest) {
    const s = resolveOperand(operand);
    if (op === ',') acc = new Set([...acc, ...s]);
    else if (op === '!') acc = new Set([...acc].filter((n) => !s.has(n)));
    else if (op === '&') acc = new Set([...acc].filter((n) => s.has(n)));
    else acc = new Set([...[...acc].filter((n) => !s.has(n)), ...[...s].filter((n) => !acc.has(n))]);
  }
  if (acc.size === 0) throw new UsageError(`"${clip(text)}" leaves no host: every host it names is excluded again`, { nodeset: text });
  return inventory.names().filter((n) => acc.has(n));
}

/**
 * Names written back as a node set: `node-1, node-2, node-3, node-5` → `node-[1-3,5]`,
 * `c01, c02` → `c[01-02]`. The last number of each name is folded; names without one stay as they are.
 */
export function foldNodeSet(names: readonly string[]): string {
  const groups = new Map<string, { head: string; tail: string; nums: { v: number; t: string }[] }>();
  const plain = new Set<string>();
  for (const n of new Set(names)) {
    const m = /^(.*?)(\d+)(\D*)$/.exec(n);
    if (!m) {
      plain.add(n);
      continue;
    }
    const [, head, digits, tail] = m;
    const key = `${head}\u0000${tail}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { head: head!, tail: tail!, nums: [] }));
    g.nums.push({ v: Number(digits), t: digits! });
  }
  const parts: string[] = [...plain].sort();
  const folded = [...groups.values()].sort((a, b) => a.head.localeCompare(b.head) || a.tail.localeCompare(b.tail));
  for (const g of folded) {
    if (g.nums.length === 1) {
      parts.push(`${g.head}${g.nums[0]!.t}${g.tail}`);
      continue;
    }
    g.nums.sort((a, b) => a.v - b.v || a.t.length - b.t.length);
    const padded = (t: string) => t.length > 1 && t.startsWith('0');
    const ranges: string[] = [];
    let start = g.nums[0]!;
    let prev = start;
    const close = () => ranges.push(start === prev ? start.t : `${start.t}-${prev.t}`);
    for (const cur of g.nums.slice(1)) {
      // Consecutive and written alike (same width when padded) continue the range.
      const alike = padded(cur.t) || padded(prev.t) ? cur.t.length === prev.t.length : true;
      if (cur.v === prev.v + 1 && alike) {
        prev = cur;
        continue;
      }
      close();
      start = prev = cur;
    }
    close();
    parts.push(`${g.head}[${ranges.join(',')}]${g.tail}`);
  }
  return parts.join(',');
}
