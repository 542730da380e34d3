import { z } from 'zod';
import type { PolicyConfig } from '../config/runbook-config.js';
import { expandNodeSet, foldNodeSet } from '../nodeset.js';
import { procedure, raw, sh, type KeptOutput, type SshStep, type StepContext, type StepStatus } from './dsl.js';
import { gather, renderGathered } from './gather.js';

/**
 * `ops exec`: one command on a set of hosts, as safely as any procedure. A command the policy's
 * read-only allowlist matches runs as `read`, ungated; anything else is `destructive`, behind one
 * approval gate that shows the exact command and every host; a command the denylist matches is
 * refused at intake. The command goes to each host's login shell exactly as typed (`raw`): that is
 * the point of this procedure, and the allowlist and the gate are the safety.
 */

/** Hosts at once. */
export const EXEC_CONCURRENCY = 64;
/** Per host: the command is killed (TERM, then KILL) past it. */
export const EXEC_TIMEOUT_MS = 120_000;

/**
 * Commands that only look, when the config has no `policy.readOnlyCommands`. Each is matched against
 * the whole command; separators (`;`, `&&`, `|` except `mount | grep word`), redirections and
 * substitutions match none of them, so `uptime; reboot` is destructive.
 */
export const DEFAULT_READ_ONLY_COMMANDS: readonly string[] = [
  'uptime',
  'hostname( -[fisA])?',
  'date',
  'whoami',
  'id',
  'df( -[hTikPl]+)*( /[\\w/.-]*)*',
  'free( -[bkmghtw]+)*',
  'uname( -[a-z]+)*',
  'cat /proc/(loadavg|meminfo|mounts|cpuinfo|uptime)',
  'mount',
  'mount \\| grep( -[a-zA-Z]+)* [\\w/.@-]+',
  'findmnt( [\\w/.-]+)*',
  'lsblk( -[a-zA-Z]+)*',
  'ip( -[46br])* (a|addr|address|r|route|link)( show)?',
  'ps( -?[a-zA-Z]+)*',
  'service [\\w@.-]+ status',
  'systemctl (status|is-active|is-enabled|is-failed)( [\\w@.-]+)+',
  // One-shot state queries of upstart, systemd and runit: what `ovs monitor services` loops over
  // for ever (it is no command for a step: it never exits and block-buffers its output).
  "systemctl list-units( '?[\\w@.*-]+'?| --(all|no-legend|no-pager|plain|type=service))*",
  'initctl (list|status [\\w@.-]+)',
  'sv status( [\\w@.-]+)+',
  'ovs config (get|list) /[\\w/.@-]*',
  'rabbitmqctl (cluster_status|list_queues( [\\w]+)*)',
  'virsh list( --all)?',
  // `nova-manage service list` was removed in nova 14.0.0 (Newton).
  'openstack compute service list',
];

/** Commands refused outright when the config has no `policy.forbiddenCommands`. */
export const DEFAULT_FORBIDDEN_COMMANDS: readonly string[] = [
  // rm -rf of the root, or of every file of it
  '.*\\brm +(-[a-zA-Z]+ +)*(--no-preserve-root +)?(/|/\\*)( .*)?',
  '.*\\bmkfs(\\.\\w+)?\\b.*',
  '.*\\bdd\\b.*\\bof=/dev/(sd|vd|xvd|nvme|hd)\\w*.*',
  // the fork bomb
  '.*:\\(\\) *\\{.*',
];

const whole = (re: string) => new RegExp(`^(?:${re})$`);

export type ExecRisk = 'read' | 'destructive';

/**
 * The risk of an ad-hoc command under a policy: `forbidden` (with the pattern), `read` when a
 * read-only pattern matches the whole command (and it is one line), else `destructive`.
 */
export function commandRisk(command: string, policy: Pick<PolicyConfig, 'readOnlyCommands' | 'forbiddenCommands'>): { risk: ExecRisk } | { forbidden: string } {
  const cmd = command.trim();
  for (const re of policy.forbiddenCommands ?? DEFAULT_FORBIDDEN_COMMANDS) {
    if (whole(re).test(cmd)) return { forbidden: re };
  }
  // A second line is a second command: never read-only, whatever a pattern says.
  if (/[\n\r\0]/.test(cmd)) return { risk: 'destructive' };
  for (const re of policy.readOnlyCommands ?? DEFAULT_READ_ONLY_COMMANDS) {
    if (whole(re).test(cmd)) return { risk: 'read' };
  }
  return { risk: 'destructive' };
}

const args = z.object({
  targets: z.string().min(1),
  command: z.string().trim().min(1),
  /** Hosts asked at once. Default 64. */
  concurrency: z.number().int().min(1).max(1000).optional(),
  /** Seconds each host may take before its command is killed. Default 120. */
  timeout: z.number().int().min(1).max(24 * 3600).optional(),
  /** Set by resolve: the node set expanded against the inventory. */
  hosts: z.array(z.string()).optional(),
  /** Set by resolve: from the policy's command patterns. */
  risk: z.enum(['read', 'destructive', 'forbidden']).optional(),
  /** Set by resolve when the command is forbidden: the pattern it matched. */
  forbiddenBy: z.string().optional(),
});
type ExecArgs = z.infer<typeof args>;

const hostsOf = (ctx: StepContext<ExecArgs>): string[] => ctx.args.hosts ?? [];
const targetText = (ctx: StepContext<ExecArgs>): string => {
  const hosts = hostsOf(ctx);
  return `${foldNodeSet(hosts)} (${hosts.length} host${hosts.length === 1 ? '' : 's'})`;
};
const hostStep = (risk: 'read' | 'destructive'): SshStep<ExecArgs> => ({
    kind: 'ssh',
    id: 'exec',
    title: (ctx: StepContext<ExecArgs>) => `${ctx.args.command} on ${ctx.item === undefined ? 'each host' : String(ctx.item)}`,
    risk,
    host: (ctx: StepContext<ExecArgs>) => String(ctx.item),
    command: (ctx: StepContext<ExecArgs>) => sh`${raw(ctx.args.command)}`,
    keepOutput: true,
    timeoutMs: (ctx: StepContext<ExecArgs>) => (ctx.args.timeout ? ctx.args.timeout * 1000 : EXEC_TIMEOUT_MS),
  });
const concurrency = (ctx: StepContext<ExecArgs>): number => ctx.args.concurrency ?? EXEC_CONCURRENCY;

export const exec = procedure({
  pack: 'ops',
  name: 'exec',
  summary: 'Run one command on a set of hosts and gather the output (clush -b style)',
  usage: 'ops exec <targets> [--concurrency N] [--timeout S] -- <command>',
  examples: ['ops exec node-[1-3] -- ovs config get /ovs/framework/logging', 'ops exec @ovs!node-3 -- uptime', 'ops exec @ovs-master -- rabbitmqctl cluster_status'],
  source: 'runbooks/ovs-troubleshooting.md ("log in with ssh into each node and check"); ClusterShell node sets',
  args,
  positional: ['targets', 'command'],
  internal: ['hosts', 'risk', 'forbiddenBy'],
  rest: 'command',
  hosts: { hosts: {} },
  async resolve(a, { inventory, policy }) {
    const hosts = expandNodeSet(a.targets, inventory);
    const verdict = commandRisk(a.command, policy);
    if ('forbidden' in verdict) return { ...a, hosts, risk: 'forbidden' as const, forbiddenBy: verdict.forbidden };
    return { ...a, hosts, risk: verdict.risk };
  },
  guard: (ctx) =>
    ctx.args.risk === 'forbidden' ? `\`${ctx.args.command}\` is forbidden by the policy (it matches ${ctx.args.forbiddenBy} of policy.forbiddenCommands); it is never run, whoever approves` : undefined,
  locks: (ctx) => hostsOf(ctx).map((host) => ({ host, mode: ctx.args.risk === 'read' ? 'read' : 'write' })),
  notes: (ctx) => [
    ctx.args.risk === 'read'
      ? `read-only: \`${ctx.args.command}\` matches the read-only command list; it runs at once on ${targetText(ctx)}`
      : `\`${ctx.args.command}\` is not in the read-only command list: it counts as destructive and runs on ${targetText(ctx)} only after another person approves`,
  ],
  steps: [
    {
      kind: 'forEach',
      id: 'read',
      // The variant not taken is reported as skipped in the thread: each title says which it is.
      title: (ctx) => `\`${ctx.args.command}\` on ${targetText(ctx)}, read-only`,
      risk: 'read',
      when: (ctx) => ctx.args.risk === 'read',
      items: hostsOf,
      key: (h: string) => h,
      concurrency,
      // A read is a survey: a host that fails or cannot be reached must not keep the others from
      // answering. (A change, below, starts no further host once one failed.)
      continueOnError: true,
      steps: [hostStep('read')],
    },
    {
      kind: 'forEach',
      id: 'change',
      title: (ctx) => `\`${ctx.args.command}\` on ${targetText(ctx)}, approved once for every host`,
      risk: 'destructive',
      when: (ctx) => ctx.args.risk !== 'read',
      items: hostsOf,
      key: (h: string) => h,
      concurrency,
      steps: [hostStep('destructive')],
    },
  ],
  finally: [
    {
      kind: 'report',
      id: 'gather',
      title: (ctx) => `Gathered output of \`${ctx.args.command}\` on ${targetText(ctx)}`,
      risk: 'read',
      text: (ctx) => gatherText(ctx),
    },
  ],
});

/** The gathered report of whichever variant ran (or would have). */
export function gatherText(ctx: StepContext<ExecArgs>): string {
  const variant = ctx.args.risk === 'read' ? 'read' : 'change';
  const results = hostsOf(ctx).map((host) => {
    const path = `${variant}[${host}].exec`;
    let output: KeptOutput | undefined;
    try {
      output = ctx.capture<KeptOutput>(path);
    } catch {
      output = undefined;
    }
    const status: StepStatus = ctx.status(path);
    return { host, status, output };
  });
  const g = gather(results);
  return renderGathered(g, `${ctx.args.command} on ${foldNodeSet(hostsOf(ctx))}`);
}

export const opsPack = [exec];
