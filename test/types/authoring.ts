/**
 * Type-level tests of the public authoring API, compiled by test/unit/dsl-types.test.ts as a pack
 * outside the checkout would be: `runbook-bot/dsl` resolved through node_modules to the built
 * package. A line marked @ts-expect-error that compiles fails the test, as does any other error.
 */
import { forEachItem, parse, procedure, sh, type Step, type StepContext, z } from 'runbook-bot/dsl';

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
const same = <X, Y>(proof: Equal<X, Y>): Equal<X, Y> => proof;

interface Service {
  name: string;
  host: string;
}

const args = z.object({ node: z.string(), services: z.array(z.string()).default([]), force: z.boolean().default(false) });
type Args = z.infer<typeof args>;

/** A helper that returns steps says its arguments once; the steps inside need no annotation. */
function restartSteps(): Step<Args>[] {
  return [{ kind: 'ssh', id: 'restart', title: (ctx) => `Restart on ${ctx.args.node}`, risk: 'write', host: (ctx) => ctx.args.node, command: sh`systemctl restart nginx` }];
}

export const restart = procedure({
  pack: 'acme',
  name: 'restart',
  summary: 'Restart the services of a node',
  usage: 'acme restart <node> [--services a,b] [--force]',
  examples: ['acme restart web-1'],
  source: 'runbooks/acme.md',
  args,
  positional: ['node'],
  hosts: { node: { groups: ['web'] } },
  guard: (ctx) => (same<typeof ctx.args, Args>(true) && ctx.args.force ? undefined : undefined),
  steps: (s) => [
    s.detectFacts({ host: (ctx) => ctx.args.node }),
    {
      kind: 'ssh',
      id: 'list',
      title: 'List the services',
      risk: 'read',
      host: (ctx) => ctx.args.node,
      command: (ctx) => sh`acmectl list ${ctx.args.services}`,
      capture: parse.json<Service[]>(),
    },
    {
      kind: 'group',
      id: 'both',
      title: (ctx) => `Both on ${ctx.args.node}`,
      risk: 'write',
      // Arguments reach steps nested in a group…
      steps: [{ kind: 'manual', id: 'look', title: 'Look', risk: 'read', instructions: (ctx) => `Look at ${ctx.args.node.toUpperCase()}` }],
    },
    {
      kind: 'forEach',
      id: 'literal',
      title: 'Each, written as a literal',
      risk: 'write',
      items: (ctx) => ctx.capture<Service[]>('list'),
      key: (s: Service) => s.name,
      steps: [
        {
          kind: 'ssh',
          id: 'one',
          // …and in a literal forEach, where the item is named with forEachItem<T>.
          title: (ctx) => `Restart ${forEachItem<Service>(ctx).name} on ${ctx.args.node}`,
          risk: 'write',
          host: (ctx) => forEachItem<Service>(ctx).host,
          command: (ctx) => sh`acmectl restart ${forEachItem<Service>(ctx).name}`,
        },
      ],
    },
    s.forEach({
      id: 'typed',
      title: 'Each, with s.forEach()',
      risk: 'write',
      items: (ctx) => ctx.capture<Service[]>('list').filter((s) => !ctx.args.services.length || ctx.args.services.includes(s.name)),
      key: (s) => s.name,
      label: (s) => `${s.name} on ${s.host}`,
      concurrency: 2,
    }, (s) => [
        s.detectFacts({ id: 'facts', host: (ctx) => same<typeof ctx.item, Service>(true) && ctx.item.host }),
        {
          kind: 'ssh',
          id: 'restart',
          title: (ctx) => `Restart ${ctx.item.name} on ${ctx.args.node.toLowerCase()}`,
          risk: 'write',
          host: (ctx) => forEachItem(ctx).host,
          command: (ctx) => (ctx.facts(ctx.item.host).init === 'systemd' ? sh`systemctl restart ${ctx.item.name}` : sh`service ${ctx.item.name} restart`),
          when: (ctx) => same<typeof ctx.item, Service>(true),
        },
        {
          kind: 'group',
          id: 'nested',
          title: 'Nested',
          risk: 'read',
          steps: [{ kind: 'report', id: 'said', title: 'Said', risk: 'read', text: (ctx) => `${ctx.item.name}: ${ctx.args.force}` }],
        },
    ]),
    ...restartSteps(),
  ],
  finally: [{ kind: 'ssh', id: 'log', title: 'Log', risk: 'read', host: (ctx) => ctx.args.node, command: sh`logger restarted` }],
});

procedure({
  pack: 'acme',
  name: 'wrong',
  summary: '',
  usage: '',
  examples: [],
  source: '',
  args,
  // @ts-expect-error: not an argument of the schema
  positional: ['nodes'],
  steps: (s) => [
    // @ts-expect-error: the arguments are typed in every step
    { kind: 'ssh', id: 'a', title: 'A', risk: 'read', host: (ctx) => ctx.args.nodes, command: sh`true` },
    s.forEach({
      id: 'b',
      title: 'B',
      risk: 'read',
      items: () => [{ name: 'x', host: 'y' }],
      key: (s) => s.name,
    }, [
      // @ts-expect-error: the item is typed in the steps inside
      { kind: 'ssh', id: 'c', title: (ctx) => ctx.item.nmae, risk: 'read', host: 'h', command: sh`true` },
      // @ts-expect-error: and so are the arguments
      { kind: 'ssh', id: 'e', title: (ctx) => ctx.args.nodes, risk: 'read', host: 'h', command: sh`true` },
    ]),
  ],
});

procedure({
  pack: 'acme',
  name: 'listed',
  summary: '',
  usage: '',
  examples: [],
  source: '',
  args,
  positional: ['node'],
  steps: [
    // @ts-expect-error: a risk is one of four words
    { kind: 'manual', id: 'd', title: 'D', risk: 'dangerous', instructions: 'x' },
    // @ts-expect-error: a plain list types the arguments too
    { kind: 'manual', id: 'e', title: (ctx) => ctx.args.nodes, risk: 'read', instructions: 'x' },
  ],
});

// @ts-expect-error: only strings, numbers, lists of them and the DSL's own values go into a command
sh`echo ${{ not: 'a word' }}`;

// forEachItem outside a typed forEach is unknown until named.
export function unnamed(ctx: StepContext): boolean {
  const item = forEachItem(ctx);
  const named = forEachItem<Service>(ctx);
  return same<typeof item, unknown>(true) && same<typeof named, Service>(true);
}
