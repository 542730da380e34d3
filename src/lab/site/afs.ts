/** HCoop's AFS site: the fileserver deleuze and the machines that depend on it. */
import { runningServices, type SiteHost } from './host.js';

/** The services RebootingDeleuze stops before the reboot: they depend on AFS (and on user lookups). */
export const AFS_DEPENDENT_SERVICES = ['nscd', 'mysql', 'postgres', 'apache2', 'domtool-server', 'cron', 'spamassassin', 'courier-authdaemon', 'openbsd-inetd'];

/** HCoop's own scripts and Debian's older ones (pre-LSB skeleton) know no `status`: they print their usage. */
const NO_STATUS = ['spamassassin', 'openbsd-inetd', 'domtool-server', 'domtool-slave'];

/** Debian's init scripts (sysvinit), those of NO_STATUS without `status`; the rest of runit. */
function initScripts(names: readonly string[], runit: readonly string[] = []): SiteHost['services'] {
  const services = runningServices('sysv', names, runit);
  for (const n of NO_STATUS) if (services[n] !== undefined && !services[n]!.runit) services[n] = { ...services[n]!, lsbStatus: false };
  return services;
}

/** HCoop's AFS fileserver (Debian, sysvinit): every service running; courier-authdaemon under runit, the rest init.d. */
export function afsFileserver(name: string): SiteHost {
  const runit = ['courier-authdaemon'];
  return {
    name,
    groups: ['afs', 'afs-fileserver'],
    vars: { runit, domtoolTest: '/etc/domtool/test.hcoop.net' },
    init: 'sysv',
    runit: true,
    services: initScripts(AFS_DEPENDENT_SERVICES, runit),
    state: {
      files: { '/etc/domtool/test.hcoop.net': 'domain "test.hcoop.net" with\nend;\n' },
      afs: { salvageChecksLeft: 0 },
    },
    instances: [],
  };
}

/** The other machines (Debian, sysvinit): domtool-slave everywhere, and what the page restarts there after an outage. */
export function afsClient(name: string, services: string[]): SiteHost {
  return {
    name,
    groups: ['afs', 'afs-client'],
    vars: { restartAfterFileserver: services },
    init: 'sysv',
    services: initScripts(services),
    state: {},
    instances: [],
  };
}

