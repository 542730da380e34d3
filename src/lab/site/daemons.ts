/**
 * What each service of the lab runs, as `ps` shows it on a real host: the daemons' users, command
 * lines and process names (which differ from the service names: `killall mysql` finds nothing,
 * `killall mysqld` does), and the description systemd and the init scripts print. Add a service here
 * when a site gains one; a service missing from this table runs one process named after it.
 */
import type { SiteProcess } from './host.js';

export interface Daemon {
  description: string;
  /** The daemon's name in its init script's messages (`Starting MySQL database server: mysqld.`). Default: its first process's. */
  name?: string;
  processes: SiteProcess[];
}

/** Python daemons of OpenStack run as their project's user; the kernel names them after the script. */
function openstack(name: string, description: string, conf: string[] = []): Daemon {
  const project = name.split('-')[0]!;
  const files = [`/etc/${project}/${project}.conf`, ...conf].map((f) => `--config-file=${f}`).join(' ');
  return { description, processes: [{ user: project, args: `/usr/bin/python3 /usr/bin/${name} ${files} --log-file=/var/log/${project}/${name}.log` }] };
}

/** PostgreSQL 8.3 (Debian lenny) still titles its processes "postmaster"; ≥ 8.4 says "postgres". */
const POSTGRES_83: Daemon = {
  description: 'PostgreSQL 8.3 database server',
  processes: [
    { user: 'postgres', args: '/usr/lib/postgresql/8.3/bin/postmaster -D /var/lib/postgresql/8.3/main -c config_file=/etc/postgresql/8.3/main/postgresql.conf' },
    { user: 'postgres', args: 'postgres: writer process', comm: 'postmaster' },
    { user: 'postgres', args: 'postgres: wal writer process', comm: 'postmaster' },
    { user: 'postgres', args: 'postgres: stats collector process', comm: 'postmaster' },
  ],
};

const DAEMONS: Record<string, Daemon> = {
  // The AFS site (HCoop's deleuze and its neighbours, Debian).
  nscd: { description: 'Name Service Cache Daemon', processes: [{ user: 'root', args: '/usr/sbin/nscd' }] },
  mysql: {
    description: 'MySQL database server',
    name: 'mysqld',
    processes: [
      { user: 'root', args: '/bin/sh /usr/bin/mysqld_safe', comm: 'mysqld_safe' },
      { user: 'mysql', args: '/usr/sbin/mysqld --basedir=/usr --datadir=/var/lib/mysql --user=mysql --pid-file=/var/run/mysqld/mysqld.pid --socket=/var/run/mysqld/mysqld.sock --port=3306', respawn: true },
    ],
  },
  // The page calls the service postgres; Debian's script is postgresql-8.3 (lenny), postgresql later.
  postgres: POSTGRES_83,
  postgresql: POSTGRES_83,
  'postgresql-8.3': POSTGRES_83,
  apache2: {
    description: 'web server',
    processes: [
      { user: 'root', args: '/usr/sbin/apache2 -k start' },
      { user: 'www-data', args: '/usr/sbin/apache2 -k start' },
      { user: 'www-data', args: '/usr/sbin/apache2 -k start' },
    ],
  },
  'domtool-server': { description: 'Domtool server', processes: [{ user: 'domtool', args: '/usr/local/bin/domtool-server' }] },
  'domtool-slave': { description: 'Domtool slave', processes: [{ user: 'domtool', args: '/usr/local/bin/domtool-slave' }] },
  cron: { description: 'periodic command scheduler', processes: [{ user: 'root', args: '/usr/sbin/cron' }] },
  // spamd is a Perl script: the kernel names it spamd, and it rewrites its command line.
  spamassassin: {
    description: 'SpamAssassin Mail Filter Daemon',
    processes: [
      { user: 'root', args: '/usr/sbin/spamd --create-prefs --max-children 5 --helper-home-dir -d --pidfile=/var/run/spamd.pid', comm: 'spamd' },
      { user: 'root', args: 'spamd child', comm: 'spamd' },
      { user: 'root', args: 'spamd child', comm: 'spamd' },
    ],
  },
  'courier-authdaemon': {
    description: 'Courier authentication services',
    processes: [
      { user: 'root', args: '/usr/sbin/courierlogger -pid=/var/run/courier/authdaemon/pid -start /usr/lib/courier/courier-authlib/authdaemond' },
      { user: 'root', args: '/usr/lib/courier/courier-authlib/authdaemond' },
      { user: 'root', args: '/usr/lib/courier/courier-authlib/authdaemond' },
    ],
  },
  'openbsd-inetd': { description: 'internet superserver', processes: [{ user: 'root', args: '/usr/sbin/inetd' }] },
  bind9: { description: 'domain name service', processes: [{ user: 'bind', args: '/usr/sbin/named -u bind' }] },

  // Open vStorage (the 2014-2015 service list of the troubleshooting page).
  'ovs-workers': { description: 'Open vStorage workers', processes: [{ user: 'ovs', args: '/usr/bin/python /usr/bin/celery worker -A ovs.celery_run -l info -Q ovs_generic -n celery@%h', comm: 'celery' }] },
  'ovs-scheduled-tasks': { description: 'Open vStorage scheduled tasks', processes: [{ user: 'ovs', args: '/usr/bin/python /usr/bin/celery beat -A ovs.celery_run -l info', comm: 'celery' }] },
  'ovs-watcher': { description: 'Watcher for Open vStorage master services', processes: [{ user: 'root', args: '/usr/bin/python2 /opt/OpenvStorage/ovs/extensions/generic/watcher.py', comm: 'python2' }] },
  memcached: { description: 'memcached daemon', processes: [{ user: 'memcache', args: '/usr/bin/memcached -m 64 -p 11211 -u memcache -l 127.0.0.1' }] },
  nginx: {
    description: 'A high performance web server and a reverse proxy server',
    processes: [
      { user: 'root', args: 'nginx: master process /usr/sbin/nginx -g daemon on; master_process on;', comm: 'nginx' },
      { user: 'www-data', args: 'nginx: worker process', comm: 'nginx' },
    ],
  },
  'rabbitmq-server': {
    description: 'RabbitMQ Messaging Server',
    processes: [
      { user: 'rabbitmq', args: '/usr/lib/erlang/erts-13.1.5/bin/beam.smp -W w -MBas ageffcbf -MHas ageffcbf -MBlmbcs 512 -MHlmbcs 512 -MMmcs 30 -P 1048576 -t 5000000 -stbt db -zdbbl 128000 -sbwt none -sbwtdcpu none -sbwtdio none -B i -- -root /usr/lib/erlang -bindir /usr/lib/erlang/erts-13.1.5/bin -progname erl -- -home /var/lib/rabbitmq -- -noshell -noinput -s rabbit boot -boot start_sasl' },
      { user: 'rabbitmq', args: '/usr/lib/erlang/erts-13.1.5/bin/epmd -daemon' },
    ],
  },

  // OpenStack (Debian packages).
  'nova-compute': openstack('nova-compute', 'OpenStack Compute', ['/etc/nova/nova-compute.conf']),
  'nova-api': openstack('nova-api', 'OpenStack Compute API'),
  'nova-scheduler': openstack('nova-scheduler', 'OpenStack Compute Scheduler'),
  'nova-conductor': openstack('nova-conductor', 'OpenStack Compute Conductor'),
  'nova-consoleauth': openstack('nova-consoleauth', 'OpenStack Compute Console Auth'),
  'nova-novncproxy': openstack('nova-novncproxy', 'OpenStack Compute NoVNC proxy'),
  'cinder-api': openstack('cinder-api', 'OpenStack Cinder API'),
  'cinder-scheduler': openstack('cinder-scheduler', 'OpenStack Cinder Scheduler'),
  'cinder-volume': openstack('cinder-volume', 'OpenStack Cinder Volume'),
  'glance-api': openstack('glance-api', 'OpenStack Image Service API'),
  'glance-registry': openstack('glance-registry', 'OpenStack Image Service Registry'),
  keystone: openstack('keystone', 'OpenStack Identity'),
  'neutron-server': openstack('neutron-server', 'OpenStack Neutron Server', ['/etc/neutron/plugins/ml2/ml2_conf.ini']),
  'neutron-openvswitch-agent': openstack('neutron-openvswitch-agent', 'Openstack Neutron Open vSwitch Plugin Agent', ['/etc/neutron/plugins/ml2/openvswitch_agent.ini']),
  'swift-proxy': { description: 'OpenStack Object Storage (swift) - Proxy Server', processes: [{ user: 'swift', args: '/usr/bin/python3 /usr/bin/swift-proxy-server /etc/swift/proxy-server.conf' }] },
  'swift-object': { description: 'OpenStack Object Storage (swift) - Object Server', processes: [{ user: 'swift', args: '/usr/bin/python3 /usr/bin/swift-object-server /etc/swift/object-server.conf' }] },
  'swift-container': { description: 'OpenStack Object Storage (swift) - Container Server', processes: [{ user: 'swift', args: '/usr/bin/python3 /usr/bin/swift-container-server /etc/swift/container-server.conf' }] },
  'swift-account': { description: 'OpenStack Object Storage (swift) - Account Server', processes: [{ user: 'swift', args: '/usr/bin/python3 /usr/bin/swift-account-server /etc/swift/account-server.conf' }] },
  'libvirt-bin': { description: 'libvirt daemon', processes: [{ user: 'root', args: '/usr/sbin/libvirtd -d' }] },
  libvirtd: { description: 'Virtualization daemon', processes: [{ user: 'root', args: '/usr/sbin/libvirtd --timeout 120' }] },
  rsync: { description: 'fast remote file copy program daemon', processes: [{ user: 'root', args: '/usr/bin/rsync --no-detach --daemon --config /etc/rsyncd.conf' }] },
};

const INTERPRETERS = /^(python[\d.]*|perl|ruby|sh|bash|dash|node)$/;

/** The kernel's name of a process: the executable's, or the script's when an interpreter runs one; 15 characters. */
export function commOf(p: SiteProcess): string {
  if (p.comm !== undefined) return p.comm.slice(0, 15);
  const [exe = '', script] = p.args.split(' ');
  const base = (s: string) => s.slice(s.lastIndexOf('/') + 1);
  return (INTERPRETERS.test(base(exe)) && script !== undefined && script.startsWith('/') ? base(script) : base(exe)).slice(0, 15);
}

/** What a service runs, from the site, the table, or (unknown to both) one process named after it. */
export function daemonOf(name: string): Daemon {
  return DAEMONS[name] ?? { description: name, processes: [{ user: 'root', args: `/usr/sbin/${name}` }] };
}
