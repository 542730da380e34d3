/** HCoop's AFS site: the fileserver deleuze and the machines that depend on it. */
import type { SiteHost } from './host.js';

/** The services RebootingDeleuze stops before the reboot: they depend on AFS (and on user lookups). */
export const AFS_DEPENDENT_SERVICES = ['nscd', 'mysql', 'postgres', 'apache2', 'domtool-server', 'cron', 'spamassassin', 'courier-authdaemon', 'openbsd-inetd'];

/** HCoop's AFS fileserver: every service running; courier-authdaemon under runit, the rest init.d. */
export function afsFileserver(name: string): SiteHost {
  return {
    name,
    groups: ['afs', 'afs-fileserver'],
    vars: { runit: ['courier-authdaemon'], domtoolTest: '/etc/domtool/test.hcoop.net' },
    state: {
      services: Object.fromEntries(AFS_DEPENDENT_SERVICES.map((s) => [s, 'running'])),
      files: { '/etc/domtool/test.hcoop.net': 'domain "test.hcoop.net" with\nend;\n' },
      // deleuze's bosserver is slow to start: the first two `bos status` after a boot find it not up.
      afs: { salvageChecksLeft: 0, bosserverStartChecks: 2 },
    },
    instances: [],
  };
}

/** The other machines: domtool-slave everywhere, and what the page restarts there after an outage. */
export function afsClient(name: string, services: string[]): SiteHost {
  return {
    name,
    groups: ['afs', 'afs-client'],
    vars: { restartAfterFileserver: services },
    state: { services: Object.fromEntries(services.map((s) => [s, 'running'])) },
    instances: [],
  };
}

