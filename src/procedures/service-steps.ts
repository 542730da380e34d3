/**
 * Service steps of the OpenStack packs on the host's detected service manager (ctx.facts(host).init):
 * systemd's systemctl on current hosts, upstart's verbs and the page's own commands (the init files
 * moved aside) where the host runs upstart, Debian's `service` on init.d hosts. Interim: the
 * commands and parsers per service manager belong to src/procedures/services.ts (lab-services
 * branch); these steps move onto it when it lands.
 */
import { parse, sh, type Step, type StepContext } from './dsl.js';

type Action = 'stop' | 'start' | 'stop-for-maintenance' | 'start-after-maintenance' | 'ensure-running';

interface ServiceSpec<A> {
  id: string;
  action: Action;
  host: (ctx: StepContext<A>) => string;
  service: string | string[];
  title: string;
}

const init = (ctx: Pick<StepContext, 'facts'>, host: string) => ctx.facts(host).init;

/** The host's name for a service: Ubuntu's upstart-era libvirt job is libvirt-bin. */
function unit(ctx: Pick<StepContext, 'facts'>, host: string, service: string): string {
  return service === 'libvirtd' && init(ctx, host) === 'upstart' ? 'libvirt-bin' : service;
}

function verb<A>(spec: ServiceSpec<A>, v: 'start' | 'stop', service: string, id: string): Step<A> {
  return {
    kind: 'ssh',
    id,
    title: `${spec.title}: ${v} ${service}`,
    risk: 'write',
    idempotent: true,
    host: spec.host,
    command: (ctx) => {
      const h = spec.host(ctx);
      const name = unit(ctx, h, service);
      const i = init(ctx, h);
      if (i === 'systemd') return sh`systemctl ${v} ${name}`;
      // upstart's stop of a stopped job exits 1 ("Unknown instance"): only what runs is stopped.
      if (i === 'upstart') return v === 'stop' ? sh`status ${name} | grep -q start/ && stop ${name} || true` : sh`status ${name} | grep -q start/ || start ${name}`;
      return sh`service ${name} ${v}`;
    },
    reference: `service ${service} ${v}`,
    variant: (ctx) => init(ctx, spec.host(ctx)),
  };
}

function runningPoll<A>(spec: ServiceSpec<A>, service: string, id: string): Step<A> {
  return {
    kind: 'poll',
    id,
    title: `Ensure that the ${service} service is running`,
    risk: 'read',
    host: spec.host,
    command: (ctx) => {
      const h = spec.host(ctx);
      const i = init(ctx, h);
      const name = unit(ctx, h, service);
      return i === 'systemd' ? sh`systemctl is-active ${name} || true` : i === 'upstart' ? sh`status ${name}` : sh`service ${name} status || true`;
    },
    reference: `status ${service}`,
    capture: parse.map(parse.text(), (s) => /^active$|start\/running| is running/m.test(s)),
    until: (running: boolean) => running,
    intervalMs: 2_000,
    timeoutMs: 60_000,
  };
}

export function serviceSteps<A>(spec: ServiceSpec<A>): Step<A>[] {
  const services = Array.isArray(spec.service) ? spec.service : [spec.service];
  const [first] = services;
  switch (spec.action) {
    case 'stop':
    case 'start':
      return services.map((s) => verb(spec, spec.action as 'stop' | 'start', s, `${spec.id}-${s}`));
    case 'ensure-running':
      return [verb(spec, 'start', first!, `start-${first}`), runningPoll(spec, first!, `running-${first}`)];
    case 'stop-for-maintenance':
      return [
        verb(spec, 'stop', first!, `stop-${first}`),
        {
          kind: 'ssh',
          id: `hold-${first}`,
          title: `Temporarily keep ${first} from being started (configuration management)`,
          risk: 'write',
          host: spec.host,
          command: (ctx) =>
            init(ctx, spec.host(ctx)) === 'upstart'
              ? sh`mkdir -p /root/tmp && mv /etc/init/${first!}.conf /root/tmp && mv /etc/init.d/${first!} /root/tmp`
              : init(ctx, spec.host(ctx)) === 'systemd'
                ? sh`systemctl mask ${first!}`
                : sh`mkdir -p /root/tmp && mv /etc/init.d/${first!} /root/tmp`,
          reference: `mkdir /root/tmp; mv /etc/init/${first!}.conf /root/tmp; mv /etc/init.d/${first!} /root/tmp`,
          variant: (ctx) => init(ctx, spec.host(ctx)),
        },
      ];
    case 'start-after-maintenance':
      return [
        {
          kind: 'ssh',
          id: `release-${first}`,
          title: `Undo the previous commands: ${first} may be started again`,
          risk: 'write',
          host: spec.host,
          command: (ctx) =>
            init(ctx, spec.host(ctx)) === 'upstart'
              ? sh`mv /root/tmp/${first!}.conf /etc/init && mv /root/tmp/${first!} /etc/init.d/`
              : init(ctx, spec.host(ctx)) === 'systemd'
                ? sh`systemctl unmask ${first!}`
                : sh`mv /root/tmp/${first!} /etc/init.d/`,
          reference: `mv /root/tmp/${first!}.conf /etc/init; mv /root/tmp/${first!} /etc/init.d/`,
          variant: (ctx) => init(ctx, spec.host(ctx)),
        },
        verb(spec, 'start', first!, `start-${first}`),
        runningPoll(spec, first!, `running-${first}`),
      ];
  }
}
