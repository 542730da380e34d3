import { readFileSync, existsSync } from 'node:fs';
import { resolve, dirname, isAbsolute } from 'node:path';
import { z } from 'zod';
import { parseDocument, LineCounter, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { ConfigError, type ConfigProblem } from '../errors.js';

/** Names of hosts, people and databases: what a person types in chat. */
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'use letters, digits, ".", "_" or "-"');

export const riskSchema = z.enum(['read', 'write', 'destructive', 'sensitive']);
export type Risk = z.infer<typeof riskSchema>;

export const hostSchema = z.strictObject({
  address: z.string().min(1),
  /** Default 22. */
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1),
  /** Inventory groups, used by procedures to accept a host (`ovs`, `ovs-master`) and by node sets (`@ovs`). */
  groups: z.array(name).default([]),
  /** Free-form facts a procedure may read (e.g. `ip` of a storage router, `vpools`). */
  vars: z.record(z.string(), z.unknown()).default({}),
});
export type HostConfig = z.infer<typeof hostSchema>;

export const sshSchema = z.strictObject({
  privateKeyPath: z.string().min(1),
  knownHostsPath: z.string().min(1),
  /** Default 10000 ms. */
  connectTimeoutMs: z.number().int().positive().default(10_000),
  /** Default 15000 ms. */
  keepaliveIntervalMs: z.number().int().positive().default(15_000),
  /** Channels per connection. Default 10, OpenSSH's default MaxSessions. */
  maxSessions: z.number().int().min(1).max(64).default(10),
  /** Default step timeout when a step sets none. Default 600000 ms (10 min). */
  commandTimeoutMs: z.number().int().positive().default(600_000),
  /**
   * Largest file a step fetches from a host and attaches to the thread (a log archive). Default
   * 8 MiB, under Discord's 10 MB limit for a bot's upload; a larger file is left on the host and
   * the step says where.
   */
  maxAttachmentBytes: z.number().int().positive().max(1024 * 1024 * 1024).default(8 * 1024 * 1024),
});
export type SshConfig = z.infer<typeof sshSchema>;

export const databaseSchema = z.strictObject({
  /** `mysql://user:${NOVA_DB_PASSWORD}@host:3306/nova`: `${ENV}` is read from the environment. */
  url: z.string().min(1),
});

/** The id of a personal token: the part of `rbk_<id>_<secret>` that is not secret. */
const TOKEN_ID = /^[0-9a-f]{12}$/;
/** A token hash as `runbook token create` writes it: scrypt with its cost, salt and digest. */
const TOKEN_HASH = /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/;

/** One personal token of a person, as `runbook token create` writes it; the token itself is never stored. */
const tokenEntrySchema = z.strictObject(
  {
    id: z.string().regex(TOKEN_ID, 'a token id is 12 hex digits, as `runbook token create` writes it'),
    hash: z.string().regex(TOKEN_HASH, 'not a hash written by `runbook token create` (the token itself never goes in runbook.yaml)'),
    /** When it was created (ISO time); shown by `runbook token list`. */
    created: z.string().optional(),
  },
  { error: (iss) => (iss.code === 'invalid_type' ? 'each token is an entry { id, hash, created } written by `runbook token create`, never the token itself' : undefined) },
);
export type TokenEntry = z.infer<typeof tokenEntrySchema>;

/** An operating-system account name as getpwuid gives it (also directory users such as alice@example.com). */
const unixName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,255}\$?$/, 'an operating-system user name, such as alice');

export const personSchema = z.strictObject({
  roles: z.array(name).min(1),
  slack: z.string().optional(),
  discord: z.string().optional(),
  /** Shown in chat and audit; default the id. */
  name: z.string().optional(),
  /** The address a trusted proxy (oauth2-proxy) forwards in X-Forwarded-Email for this person. */
  email: z.email('an e-mail address, as the sign-in proxy forwards it').describe('The address a sign-in proxy forwards in X-Forwarded-Email for this person').optional(),
  /** Operating-system users (one, or a list) whose `runbook` commands act as this person. */
  unix: z.union([unixName, z.array(unixName).min(1)]).describe('Operating-system users whose runbook commands act as this person').optional(),
  /** Personal tokens for the web console beyond loopback (hashes only): `runbook token create <person>`. */
  tokens: z.array(tokenEntrySchema).describe('Written by `runbook token create <person>`: hashes of personal tokens for the console').optional(),
});
export type PersonConfig = z.infer<typeof personSchema>;

const ruleSchema = z.strictObject({
  /** Roles that may start the procedure. */
  run: z.array(name).optional(),
  /** Roles that may approve its gated steps. */
  approve: z.array(name).optional(),
  /** Risks that open a gate. Default destructive and sensitive. */
  gate: z.array(riskSchema).optional(),
});

export const policySchema = z.strictObject({
  /** Roles that may run any procedure. Default: operator, admin. */
  run: z.array(name).default(['operator', 'admin']),
  /** Roles that may approve gated steps. Default: approver, admin. */
  approve: z.array(name).default(['approver', 'admin']),
  /** Risks that open an approval gate. Default: destructive, sensitive. */
  gate: z.array(riskSchema).default(['destructive', 'sensitive']),
  /** Minutes an approval request stays open. Default 15. */
  approvalExpiryMinutes: z.number().positive().max(7 * 24 * 60).default(15),
  /** Per procedure (`"ovs flush"`) or per pack (`"ovs"`) overrides. */
  procedures: z.record(z.string(), ruleSchema).default({}),
  /** Regular expressions over a whole ad-hoc command that make it `read`. */
  readOnlyCommands: z.array(z.string()).optional(),
  /** Regular expressions over a whole ad-hoc command that refuse it outright. */
  forbiddenCommands: z.array(z.string()).optional(),
});
export type PolicyConfig = z.infer<typeof policySchema>;

/**
 * The host vars the OpenStack packs read (src/procedures/openstack.ts), checked here so that a
 * mistake is refused at start with its line, not found by a run:
 * - `openstack`: the credentials of the clients run on that host, exactly one of
 *   `{ cloud: <clouds.yaml entry>, cloudsFile?: <absolute path> }` (OS_CLOUD, OS_CLIENT_CONFIG_FILE)
 *   or `{ openrc: <absolute path> }` (sourced before each client). Only the file's name is here:
 *   the password stays in the file on the host.
 * - `swiftRingDir`: the ring builder directory on a swift proxy, absolute (default /etc/swift).
 * - `novaHost`: the compute node's name in nova (services.host), when not the inventory name.
 */
function openStackVarsProblems(vars: Record<string, unknown>): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  const absolute = (v: unknown) => typeof v === 'string' && v.startsWith('/');
  if ('openstack' in vars) {
    const o = vars.openstack;
    const keys = o !== null && typeof o === 'object' && !Array.isArray(o) ? Object.keys(o) : undefined;
    const shape = 'give either { cloud: <clouds.yaml entry>, cloudsFile: <absolute path, optional> } or { openrc: <absolute path> }';
    if (keys === undefined) problems.push({ path: ['openstack'], message: `the OpenStack clients' credentials: ${shape}` });
    else {
      const v = o as Record<string, unknown>;
      const unknown = keys.filter((k) => !['cloud', 'cloudsFile', 'openrc'].includes(k));
      if (unknown.length > 0) problems.push({ path: ['openstack', unknown[0]!], message: `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}: ${shape}` });
      else if ('openrc' in v && ('cloud' in v || 'cloudsFile' in v)) problems.push({ path: ['openstack'], message: `one kind of credentials, not both: ${shape}` });
      else if ('openrc' in v) {
        if (!absolute(v.openrc)) problems.push({ path: ['openstack', 'openrc'], message: 'the openrc file on the host, as an absolute path (e.g. /root/admin-openrc.sh)' });
      } else if (typeof v.cloud !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(v.cloud)) problems.push({ path: ['openstack', 'cloud'], message: `the name of the cloud in clouds.yaml (letters, digits, ".", "_", "-"): ${shape}` });
      else if ('cloudsFile' in v && !absolute(v.cloudsFile)) problems.push({ path: ['openstack', 'cloudsFile'], message: 'the clouds.yaml on the host, as an absolute path (e.g. /etc/openstack/clouds.yaml)' });
    }
  }
  if ('swiftRingDir' in vars && !absolute(vars.swiftRingDir)) problems.push({ path: ['swiftRingDir'], message: 'the ring builder directory, as an absolute path (default /etc/swift)' });
  if ('novaHost' in vars && (typeof vars.novaHost !== 'string' || vars.novaHost === '')) problems.push({ path: ['novaHost'], message: "the compute node's host name in nova (services.host)" });
  return problems;
}

/** `<pack>` or `<pack> <procedure>`: how policy keys and pack replacements name procedures. */
const procedureKey = z.string().regex(/^[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)?$/, 'name "<pack>" or "<pack> <procedure>"');

/**
 * A pack of the operator's own procedures: a directory (its index.ts or index.js) or a module,
 * relative to this file. `replaces` lets it redefine the bot's own procedures (`"ovs flush"`) or a
 * whole pack (`"ovs"`); without it, a pack that redefines one is refused.
 */
export const packSchema = z.union([
  z.string().min(1).transform((path) => ({ path, replaces: [] as string[] })),
  z.strictObject({ path: z.string().min(1), replaces: z.array(procedureKey).default([]) }),
]);
export type PackEntry = z.infer<typeof packSchema>;

export const runbookConfigSchema = z
  .strictObject({
    hosts: z.record(name, hostSchema).default({}),
    ssh: sshSchema,
    databases: z.record(name, databaseSchema).default({}),
    people: z.record(name, personSchema).default({}),
    policy: policySchema.default(policySchema.parse({})),
    /** Packs of procedures loaded beside the built-in ones (and those of RUNBOOK_PACKS). */
    packs: z.array(packSchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    for (const [name, host] of Object.entries(cfg.hosts)) {
      for (const issue of openStackVarsProblems(host.vars)) ctx.addIssue({ code: 'custom', path: ['hosts', name, 'vars', ...issue.path], message: issue.message });
    }
    for (const proc of Object.keys(cfg.policy.procedures)) {
      if (!/^[a-z][a-z0-9-]*( [a-z][a-z0-9-]*)?$/.test(proc)) {
        ctx.addIssue({ code: 'custom', path: ['policy', 'procedures', proc], message: 'key must be "<pack>" or "<pack> <procedure>"' });
      }
    }
    for (const key of ['readOnlyCommands', 'forbiddenCommands'] as const) {
      (cfg.policy[key] ?? []).forEach((re, i) => {
        try {
          new RegExp(re);
        } catch (err) {
          ctx.addIssue({ code: 'custom', path: ['policy', key, i], message: `not a regular expression: ${(err as Error).message}` });
        }
      });
    }
  });
export type RunbookConfig = z.infer<typeof runbookConfigSchema>;

const ENV_REF = /\$\{([A-Z_][A-Z0-9_]*)\}/g;

/** Replaces `${NAME}` with the environment's value; a missing variable is a problem, not an empty string. */
export function interpolateEnv(value: string, env: NodeJS.ProcessEnv): { value: string; missing: string[] } {
  const missing: string[] = [];
  const out = value.replace(ENV_REF, (_, key: string) => {
    const v = env[key];
    if (v === undefined) {
      missing.push(key);
      return '';
    }
    return v;
  });
  return { value: out, missing };
}

/** Line (1-based) of the YAML node at `path`, or of its nearest existing parent. */
function lineOf(doc: ReturnType<typeof parseDocument>, counter: LineCounter, path: PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let best: number | undefined = (node as YamlNode | null)?.range ? counter.linePos((node as YamlNode).range![0]).line : undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String((p.key as { value?: unknown } | null)?.value ?? p.key) === String(key));
      if (!pair) break;
      const keyNode = pair.key as YamlNode | null;
      if (keyNode?.range) best = counter.linePos(keyNode.range[0]).line;
      node = pair.value;
      const valueNode = node as YamlNode | null;
      if (valueNode?.range && !isMap(node)) best = counter.linePos(valueNode.range[0]).line;
    } else if (isSeq(node)) {
      const item = node.items[Number(key)] as YamlNode | undefined;
      if (!item) break;
      if (item.range) best = counter.linePos(item.range[0]).line;
      node = item;
    } else break;
  }
  return best;
}

function formatPath(path: PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('') || '(top level)';
}

/**
 * Parses and validates `runbook.yaml` text. Relative key paths are resolved against the file's folder.
 * Throws ConfigError listing every problem with its path and line.
 */
export function parseRunbookConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): RunbookConfig {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false });
  const problems: ConfigProblem[] = [];
  for (const err of doc.errors) {
    const line = counter.linePos(err.pos[0]).line;
    problems.push({ path: '(yaml)', line, message: err.message.split('\n')[0] ?? err.message });
  }
  if (problems.length) throw new ConfigError(file, problems);
  const raw = doc.toJS() ?? {};
  const result = runbookConfigSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path as PropertyKey[];
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      const keyPath = issue.code === 'unrecognized_keys' ? [...path, issue.keys[0]!] : path;
      problems.push({ path: formatPath(path), line: lineOf(doc, counter, keyPath), message });
    }
    throw new ConfigError(file, problems);
  }
  const cfg = result.data;
  for (const [dbName, db] of Object.entries(cfg.databases)) {
    const { missing } = interpolateEnv(db.url, env);
    for (const m of missing) {
      problems.push({ path: `databases.${dbName}.url`, line: lineOf(doc, counter, ['databases', dbName, 'url']), message: `environment variable ${m} is not set` });
    }
  }
  // One identity on each way in names one person: two people behind one would let either act as the other.
  const seen = { slack: new Map<string, string>(), discord: new Map<string, string>(), email: new Map<string, string>(), unix: new Map<string, string>(), tokens: new Map<string, string>() };
  const what = { slack: 'slack user', discord: 'discord user', email: 'e-mail address', unix: 'operating-system user', tokens: 'token id' };
  for (const [id, p] of Object.entries(cfg.people)) {
    const identities = {
      slack: p.slack ? [p.slack] : [],
      discord: p.discord ? [p.discord] : [],
      email: p.email ? [p.email.toLowerCase()] : [],
      unix: unixNames(p),
      tokens: (p.tokens ?? []).map((t) => t.id),
    };
    for (const key of Object.keys(identities) as (keyof typeof identities)[]) {
      for (const value of identities[key]) {
        const other = seen[key].get(value);
        if (other) problems.push({ path: `people.${id}.${key}`, line: lineOf(doc, counter, ['people', id, key]), message: `${what[key]} ${value} is already mapped to ${other}` });
        seen[key].set(value, id);
      }
    }
  }
  if (problems.length) throw new ConfigError(file, problems);
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  cfg.ssh.privateKeyPath = abs(cfg.ssh.privateKeyPath);
  cfg.ssh.knownHostsPath = abs(cfg.ssh.knownHostsPath);
  for (const pack of cfg.packs) pack.path = abs(pack.path);
  return cfg;
}

/** A person's operating-system users, whether written as one name or a list. */
export function unixNames(p: Pick<PersonConfig, 'unix'>): string[] {
  return p.unix === undefined ? [] : typeof p.unix === 'string' ? [p.unix] : p.unix;
}

export function loadRunbookConfig(file: string, env: NodeJS.ProcessEnv = process.env): RunbookConfig {
  if (!existsSync(file)) {
    throw new ConfigError(file, [{ path: '(file)', message: 'no such file; run `runbook lab up` for a lab, or set RUNBOOK_CONFIG' }]);
  }
  return parseRunbookConfig(readFileSync(file, 'utf8'), file, env);
}

/**
 * Which runbook.yaml to use: RUNBOOK_CONFIG, else ./runbook.yaml, else the lab's (.lab/runbook.yaml) when it is up.
 */
export function findConfigPath(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | undefined {
  if (env.RUNBOOK_CONFIG) return resolve(cwd, env.RUNBOOK_CONFIG);
  for (const candidate of ['runbook.yaml', '.lab/runbook.yaml']) {
    const p = resolve(cwd, candidate);
    if (existsSync(p)) return p;
  }
  return undefined;
}
