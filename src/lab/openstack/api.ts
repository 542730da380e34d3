/**
 * The lab's OpenStack API double: Keystone v3, Compute v2.1, Block Storage v3, Image v2 and the
 * Object Storage account, on one loopback port under devstack's paths (`/identity`, `/compute`,
 * `/volume`, `/image`, `/object-store`), for the real clients (Debian's python3-openstackclient
 * 6.0.0, python3-novaclient 18.1.0, python3-glanceclient 4.1.0, python3-swiftclient 4.1.0) run on
 * the lab's controller. As moto does for AWS, each response is written from the service's API
 * reference (docs.openstack.org/api-ref/{identity/v3,compute,block-storage/v3,image/v2,object-store})
 * and its source at the commits of schema.ts: nova/api/openstack/compute/views/servers.py (the
 * server view by microversion), services.py, migrate_server.py, evacuate.py, volume_attachments.py,
 * migrations.py; cinder/api/v3/views/volumes.py; keystone/api/auth.py.
 *
 * Microversions as nova and cinder negotiate them: `X-OpenStack-Nova-API-Version` or
 * `OpenStack-API-Version: compute 2.x` (2.1 to 2.104, `latest` the maximum), `OpenStack-API-Version:
 * volume 3.x` (3.0 to 3.71); a version out of range is 406.
 *
 * An API whose service is stopped on the controller (the lab host's service state: keystone,
 * nova-api, cinder-api, glance-api, swift-proxy) drops the connection, as a closed port would.
 * Every request is logged, one JSON line each, to the lab's run/openstack-api.log.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { PROJECTS, USERS } from '../site/openstack.js';
import { stableUuid } from '../site/host.js';
import { serverStatus, type Cloud, type Row } from './cloud.js';
import { ApiError, bodyOf, faultBody, match, readBody, route, send, type Reply, type Request, type Route } from './http.js';

export interface ApiOptions {
  cloud: Cloud;
  /** The admin user's password, as the controller's credentials file has it. */
  password: string;
  /** JSON lines of every request. */
  logFile: string;
}

const NOVA = { min: [2, 1], max: [2, 104] } as const;
const CINDER = { min: [3, 0], max: [3, 71] } as const;
const REGION = 'RegionOne';
const IMAGE = { id: stableUuid('image cirros'), name: 'cirros-0.6.2-x86_64-disk', size: 21_430_272, checksum: 'c8fc807773e5354afe61636071771906' };
const FLAVOR = { id: '2', name: 'm1.small', ram: 2048, vcpus: 1, disk: 20 };
const ROLES = ['admin', 'member', 'reader'].map((name) => ({ id: stableUuid(`role ${name}`).replace(/-/g, ''), name }));

type Version = readonly [number, number];
const atLeast = (v: Version, major: number, minor: number) => v[0] > major || (v[0] === major && v[1] >= minor);
const iso = (d: unknown) => (d instanceof Date ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : d === null || d === undefined ? null : String(d));
/** nova's datetimes without a zone, as str() of a naive datetime (views/servers.py OS-SRV-USG). */
const naive = (d: unknown) => (d instanceof Date ? d.toISOString().replace(/\.(\d{3})Z$/, '.$1000') : null);

/** The microversion a request asks for, checked against the service's range (nova/api/openstack/wsgi.py). */
function microversion(req: Request, service: 'compute' | 'volume', range: { min: Version; max: Version }): Version {
  const generic = String(req.headers['openstack-api-version'] ?? '');
  const legacy = service === 'compute' ? String(req.headers['x-openstack-nova-api-version'] ?? '') : '';
  const asked = new RegExp(`(?:^|,)\\s*${service}\\s+(\\S+)`, 'i').exec(generic)?.[1] ?? (legacy || undefined);
  if (asked === undefined) return range.min;
  if (asked === 'latest') return range.max;
  const m = /^(\d+)\.(\d+)$/.exec(asked);
  if (!m) throw new ApiError(400, `Invalid format for version: ${asked}`);
  const v: Version = [Number(m[1]), Number(m[2])];
  if (!atLeast(v, ...range.min) || !atLeast(range.max, ...v)) {
    throw new ApiError(406, `Version ${asked} is not supported by the API. Minimum is ${range.min.join('.')} and maximum is ${range.max.join('.')}.`);
  }
  return v;
}

function versionHeaders(service: 'compute' | 'volume', v: Version): Record<string, string> {
  const text = v.join('.');
  return service === 'compute'
    ? { 'openstack-api-version': `compute ${text}`, 'x-openstack-nova-api-version': text, vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version' }
    : { 'openstack-api-version': `volume ${text}`, vary: 'OpenStack-API-Version' };
}

export function createOpenStackApi(opts: ApiOptions): Server {
  const { cloud } = opts;
  const tokens = new Map<string, { expires: number }>();

  const catalogEntry = (base: string, type: string, name: string, path: string) => ({
    id: stableUuid(`service ${type}`).replace(/-/g, ''),
    type,
    name,
    endpoints: ['public', 'internal', 'admin'].map((iface) => ({ id: stableUuid(`endpoint ${type} ${iface}`).replace(/-/g, ''), interface: iface, region: REGION, region_id: REGION, url: `${base}${path}` })),
  });

  function authenticated(req: Request): void {
    const token = String(req.headers['x-auth-token'] ?? '');
    const t = tokens.get(token);
    if (!t || t.expires < Date.now()) throw new ApiError(401, 'The request you have made requires authentication.');
  }

  // ---- Identity v3 (api-ref identity/v3: Password authentication with scoped authorization) ----

  const identityVersion = (base: string) => ({
    id: 'v3.14',
    status: 'stable',
    updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${base}/identity/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  });

  function issueToken(req: Request): Reply {
    const auth = bodyOf(req, 'auth');
    const identity = auth.identity as { methods?: string[]; password?: { user?: { name?: string; id?: string; password?: string; domain?: { name?: string; id?: string } } } } | undefined;
    const user = identity?.password?.user;
    const domainOk = (d: { name?: string; id?: string } | undefined) => d === undefined || d.name === 'Default' || d.id === 'default';
    if (!identity?.methods?.includes('password') || !user || !(user.name === 'admin' || user.id === USERS.admin) || user.password !== opts.password || (user.name !== undefined && !domainOk(user.domain))) {
      throw new ApiError(401, 'The request you have made requires authentication.');
    }
    const scope = (auth.scope as { project?: { name?: string; id?: string; domain?: { name?: string; id?: string } } } | undefined)?.project;
    if (scope && !(scope.name === 'admin' || scope.id === PROJECTS.admin)) throw new ApiError(401, 'The request you have made requires authentication.');
    const token = `gAAAAA${randomBytes(48).toString('base64url')}`;
    const expires = Date.now() + 3_600_000;
    tokens.set(token, { expires });
    const domain = { id: 'default', name: 'Default' };
    return {
      status: 201,
      headers: { 'x-subject-token': token },
      body: {
        token: {
          methods: ['password'],
          user: { domain, id: USERS.admin, name: 'admin', password_expires_at: null },
          audit_ids: [randomBytes(16).toString('base64url').slice(0, 22)],
          expires_at: new Date(expires).toISOString().replace('Z', '000Z'),
          issued_at: new Date().toISOString().replace('Z', '000Z'),
          ...(scope
            ? {
                project: { domain, id: PROJECTS.admin, name: 'admin' },
                is_domain: false,
                roles: ROLES,
                catalog: [
                  catalogEntry(req.base, 'identity', 'keystone', '/identity'),
                  catalogEntry(req.base, 'compute', 'nova', '/compute/v2.1'),
                  catalogEntry(req.base, 'block-storage', 'cinder', `/volume/v3/${PROJECTS.admin}`),
                  catalogEntry(req.base, 'volumev3', 'cinderv3', `/volume/v3/${PROJECTS.admin}`),
                  catalogEntry(req.base, 'image', 'glance', '/image'),
                  catalogEntry(req.base, 'object-store', 'swift', `/object-store/v1/AUTH_${PROJECTS.admin}`),
                ],
              }
            : {}),
        },
      },
    };
  }

  const identity: Route[] = [
    route('GET', '', (req) => ({ status: 300, body: { versions: { values: [identityVersion(req.base)] } } })),
    route('GET', '/v3', (req) => ({ status: 200, body: { version: identityVersion(req.base) } })),
    route('POST', '/v3/auth/tokens', issueToken),
    route('GET', '/v3/projects', (req) => {
      authenticated(req);
      const projects = Object.entries(PROJECTS).map(([name, id]) => ({ id, name, domain_id: 'default', description: '', enabled: true, is_domain: false, parent_id: 'default', tags: [], options: {}, links: { self: `${req.base}/identity/v3/projects/${id}` } }));
      return { status: 200, body: { projects, links: { self: `${req.base}/identity/v3/projects`, previous: null, next: null } } };
    }),
  ];

  // ---- Compute v2.1 ----

  const computeVersion = (base: string) => ({
    id: 'v2.1',
    status: 'CURRENT',
    version: NOVA.max.join('.'),
    min_version: NOVA.min.join('.'),
    updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${base}/compute/v2.1/` }, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  });

  const link = (base: string, kind: string, id: string) => [
    { rel: 'self', href: `${base}/compute/v2.1/${kind}/${id}` },
    { rel: 'bookmark', href: `${base}/compute/${kind}/${id}` },
  ];

  /** nova's host_status (2.16): UP, DOWN, MAINTENANCE (disabled), UNKNOWN. */
  async function hostStatus(host: string | null): Promise<string> {
    if (!host) return '';
    const s = await cloud.computeService(host);
    if (!s) return 'UNKNOWN';
    if (s.forced_down) return 'DOWN';
    if (s.disabled) return 'MAINTENANCE';
    return cloud.isUp(s) ? 'UP' : 'UNKNOWN';
  }

  /** views/servers.py show(), for an admin (every extended attribute), by microversion. */
  async function serverView(req: Request, v: Version, i: Row): Promise<Record<string, unknown>> {
    const status = serverStatus(i.vm_state, i.task_state);
    const bdms = await cloud.volumeBdms(String(i.uuid));
    const s: Record<string, unknown> = {
      id: i.uuid,
      name: i.display_name,
      status,
      tenant_id: i.project_id,
      user_id: i.user_id,
      metadata: {},
      hostId: i.host ? createHash('sha224').update(`${i.project_id}${i.host}`).digest('hex') : '',
      image: { id: i.image_ref, links: [{ rel: 'bookmark', href: `${req.base}/compute/images/${i.image_ref}` }] },
      flavor: atLeast(v, 2, 47) ? { vcpus: i.vcpus, ram: i.memory_mb, disk: i.root_gb, ephemeral: i.ephemeral_gb, swap: 0, original_name: FLAVOR.name, extra_specs: {} } : { id: FLAVOR.id, links: [{ rel: 'bookmark', href: `${req.base}/compute/flavors/${FLAVOR.id}` }] },
      created: iso(i.created_at),
      updated: iso(i.updated_at),
      addresses: {},
      accessIPv4: '',
      accessIPv6: '',
      links: link(req.base, 'servers', String(i.uuid)),
      'OS-DCF:diskConfig': 'MANUAL',
      'OS-EXT-AZ:availability_zone': i.availability_zone ?? '',
      config_drive: i.config_drive ?? '',
      key_name: i.key_name,
      'OS-SRV-USG:launched_at': naive(i.launched_at),
      'OS-SRV-USG:terminated_at': naive(i.terminated_at),
      'OS-EXT-SRV-ATTR:host': i.host,
      'OS-EXT-SRV-ATTR:instance_name': `instance-${Number(i.id).toString(16).padStart(8, '0')}`,
      'OS-EXT-SRV-ATTR:hypervisor_hostname': i.node,
      'OS-EXT-STS:task_state': i.task_state,
      'OS-EXT-STS:vm_state': i.vm_state,
      'OS-EXT-STS:power_state': i.power_state,
      'os-extended-volumes:volumes_attached': bdms.map((b) => (atLeast(v, 2, 3) ? { id: b.volume_id, delete_on_termination: Boolean(b.delete_on_termination) } : { id: b.volume_id })),
      security_groups: [{ name: 'default' }],
    };
    if (['BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING'].includes(status)) s.progress = i.progress ?? 0;
    if (atLeast(v, 2, 3)) {
      Object.assign(s, {
        'OS-EXT-SRV-ATTR:hostname': i.hostname,
        'OS-EXT-SRV-ATTR:kernel_id': i.kernel_id ?? '',
        'OS-EXT-SRV-ATTR:launch_index': i.launch_index,
        'OS-EXT-SRV-ATTR:ramdisk_id': i.ramdisk_id ?? '',
        'OS-EXT-SRV-ATTR:reservation_id': i.reservation_id,
        'OS-EXT-SRV-ATTR:root_device_name': i.root_device_name,
        'OS-EXT-SRV-ATTR:user_data': null,
      });
    }
    if (atLeast(v, 2, 9)) s.locked = Boolean(i.locked_by);
    if (atLeast(v, 2, 16)) s.host_status = await hostStatus(i.host);
    if (atLeast(v, 2, 19)) s.description = i.display_description;
    if (atLeast(v, 2, 26)) s.tags = [];
    if (atLeast(v, 2, 63)) s.trusted_image_certificates = null;
    if (atLeast(v, 2, 73)) s.locked_reason = null;
    if (atLeast(v, 2, 96)) s.pinned_availability_zone = null;
    if (atLeast(v, 2, 100)) s.scheduler_hints = {};
    if (status === 'ERROR') s.fault = { code: 500, created: iso(i.updated_at), message: 'The instance went to ERROR (lab)' };
    return s;
  }

  async function listServers(req: Request, detail: boolean): Promise<Reply> {
    authenticated(req);
    const v = microversion(req, 'compute', NOVA);
    const q = req.query;
    const all = ['1', 'true', 'True'].includes(q.get('all_tenants') ?? '');
    let rows = await cloud.instances({ host: q.get('host'), node: q.get('node'), projectId: all ? (q.get('project_id') ?? q.get('tenant_id')) : (q.get('project_id') ?? PROJECTS.admin), status: q.get('status') });
    const name = q.get('name');
    if (name) rows = rows.filter((r) => new RegExp(name).test(String(r.display_name)));
    const marker = q.get('marker');
    if (marker) {
      const at = rows.findIndex((r) => r.uuid === marker);
      if (at < 0) throw new ApiError(400, `marker [${marker}] not found`);
      rows = rows.slice(at + 1);
    }
    const limit = Math.min(Number(q.get('limit') ?? 1000), 1000);
    const page = rows.slice(0, limit);
    const servers = detail ? await Promise.all(page.map((r) => serverView(req, v, r))) : page.map((r) => ({ id: r.uuid, name: r.display_name, links: link(req.base, 'servers', String(r.uuid)) }));
    const body: Record<string, unknown> = { servers };
    if (rows.length > limit) body.servers_links = [{ rel: 'next', href: `${req.base}/compute/v2.1/servers${detail ? '/detail' : ''}?limit=${limit}&marker=${page.at(-1)!.uuid}` }];
    return { status: 200, body, headers: versionHeaders('compute', v) };
  }

  async function serverAction(req: Request): Promise<Reply> {
    authenticated(req);
    const v = microversion(req, 'compute', NOVA);
    const id = req.params.id!;
    const body = (req.body ?? {}) as Record<string, Record<string, unknown> | null>;
    const [action] = Object.keys(body);
    const args = (action ? body[action] : null) ?? {};
    const headers = versionHeaders('compute', v);
    switch (action) {
      case 'os-migrateLive': {
        // 2.25 drops disk_over_commit and allows block_migration "auto"; 2.34 makes the checks asynchronous.
        if (!('host' in args) || !('block_migration' in args)) throw new ApiError(400, "Invalid input for field/attribute os-migrateLive. Value: {}. 'block_migration' is a required property");
        if (!atLeast(v, 2, 25) && !('disk_over_commit' in args)) throw new ApiError(400, "Invalid input for field/attribute os-migrateLive. 'disk_over_commit' is a required property");
        await cloud.liveMigrate(id, (args.host as string | null) ?? null, atLeast(v, 2, 34));
        return { status: 202, headers };
      }
      case 'evacuate': {
        if (!atLeast(v, 2, 14) && !('onSharedStorage' in args)) throw new ApiError(400, "Invalid input for field/attribute evacuate. 'onSharedStorage' is a required property");
        await cloud.evacuate(id, (args.host as string | undefined) ?? null, atLeast(v, 2, 95));
        // Before 2.14 the response carries the (new) admin password.
        return atLeast(v, 2, 14) ? { status: 200, headers } : { status: 200, body: { adminPass: randomBytes(9).toString('base64url') }, headers };
      }
      case 'reboot': {
        const type = String(args.type ?? '').toUpperCase();
        if (type !== 'SOFT' && type !== 'HARD') throw new ApiError(400, `Invalid input for field/attribute type. Value: ${String(args.type)}. '${String(args.type)}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']`);
        await cloud.reboot(id, type === 'HARD');
        return { status: 202, headers };
      }
      case 'os-start':
        await cloud.startServer(id);
        return { status: 202, headers };
      default:
        throw new ApiError(400, `There is no such action: ${action ?? ''}`);
    }
  }

  function attachmentView(v: Version, b: Row, serverId: string): Record<string, unknown> {
    const a: Record<string, unknown> = { id: b.volume_id, serverId, volumeId: b.volume_id, device: b.device_name };
    if (atLeast(v, 2, 70)) a.tag = b.tag ?? null;
    if (atLeast(v, 2, 79)) a.delete_on_termination = Boolean(b.delete_on_termination);
    if (atLeast(v, 2, 89)) {
      delete a.id;
      a.attachment_id = b.attachment_id;
      a.bdm_uuid = b.uuid;
    }
    return a;
  }

  /** os-services (services.py): the id is the row's id before 2.53, its uuid from 2.53; forced_down from 2.11. */
  async function serviceView(v: Version, s: Row): Promise<Record<string, unknown>> {
    const view: Record<string, unknown> = {
      id: atLeast(v, 2, 53) ? s.uuid : s.id,
      binary: s.binary,
      host: s.host,
      zone: s.binary === 'nova-compute' ? 'nova' : 'internal',
      status: s.disabled ? 'disabled' : 'enabled',
      state: cloud.isUp(s) ? 'up' : 'down',
      updated_at: iso(s.updated_at ?? s.created_at),
      disabled_reason: s.disabled_reason,
    };
    if (atLeast(v, 2, 11)) view.forced_down = Boolean(s.forced_down);
    return view;
  }

  async function updateServiceLegacy(req: Request): Promise<Reply> {
    authenticated(req);
    const v = microversion(req, 'compute', NOVA);
    const action = req.params.action!;
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (atLeast(v, 2, 53)) {
      // From 2.53 the path names the service by uuid.
      const s = (await cloud.services()).find((x) => x.uuid === action);
      if (!s) throw new ApiError(404, `Service ${action} could not be found.`);
      const values: Row = {};
      if (body.status === 'disabled') (values.disabled = 1), (values.disabled_reason = (body.disabled_reason as string | undefined) ?? null);
      if (body.status === 'enabled') (values.disabled = 0), (values.disabled_reason = null);
      if ('forced_down' in body) values.forced_down = body.forced_down ? 1 : 0;
      if (Object.keys(values).length === 0) throw new ApiError(400, "At least one of 'status' or 'forced_down' must be specified in the request body.");
      await cloud.updateService(Number(s.id), values);
      return { status: 200, body: { service: await serviceView(v, (await cloud.services()).find((x) => x.uuid === action)!) }, headers: versionHeaders('compute', v) };
    }
    const host = body.host as string | undefined;
    const binary = body.binary as string | undefined;
    if (!host || !binary) throw new ApiError(400, "Invalid input for field/attribute host. 'host' is a required property");
    const s = (await cloud.services({ host, binary }))[0];
    if (!s) throw new ApiError(404, `Service ${binary} on host ${host} could not be found.`);
    let reply: Record<string, unknown>;
    if (action === 'disable' || action === 'disable-log-reason') {
      const reason = action === 'disable-log-reason' ? String(body.disabled_reason ?? '') : null;
      await cloud.updateService(Number(s.id), { disabled: 1, disabled_reason: reason });
      reply = { host, binary, status: 'disabled', ...(reason !== null ? { disabled_reason: reason } : {}) };
    } else if (action === 'enable') {
      await cloud.updateService(Number(s.id), { disabled: 0, disabled_reason: null });
      reply = { host, binary, status: 'enabled' };
    } else if (action === 'force-down' && atLeast(v, 2, 11)) {
      await cloud.updateService(Number(s.id), { forced_down: body.forced_down ? 1 : 0 });
      reply = { host, binary, forced_down: Boolean(body.forced_down) };
    } else {
      throw new ApiError(404, `Unknown action`);
    }
    return { status: 200, body: { service: reply }, headers: versionHeaders('compute', v) };
  }

  const flavorView = (base: string) => ({ id: FLAVOR.id, name: FLAVOR.name, ram: FLAVOR.ram, vcpus: FLAVOR.vcpus, disk: FLAVOR.disk, 'OS-FLV-EXT-DATA:ephemeral': 0, swap: '', rxtx_factor: 1, 'os-flavor-access:is_public': true, 'OS-FLV-DISABLED:disabled': false, links: link(base, 'flavors', FLAVOR.id) });

  const compute: Route[] = [
    route('GET', '', (req) => ({ status: 300, body: { versions: [{ id: 'v2.0', status: 'SUPPORTED', version: '', min_version: '', updated: '2011-01-21T11:33:21Z', links: [{ rel: 'self', href: `${req.base}/compute/v2/` }] }, computeVersion(req.base)] } })),
    route('GET', '/v2.1', (req) => ({ status: 200, body: { version: computeVersion(req.base) } })),
    route('GET', '/v2.1/servers', (req) => listServers(req, false)),
    route('GET', '/v2.1/servers/detail', (req) => listServers(req, true)),
    route('GET', '/v2.1/servers/:id', async (req) => {
      authenticated(req);
      const v = microversion(req, 'compute', NOVA);
      const row = (await cloud.query(`SELECT * FROM ${cloud.t('nova', 'instances')} WHERE uuid = ? AND deleted = 0`, [req.params.id])).at(0);
      if (!row) throw new ApiError(404, `Instance ${req.params.id} could not be found.`);
      return { status: 200, body: { server: await serverView(req, v, row) }, headers: versionHeaders('compute', v) };
    }),
    route('POST', '/v2.1/servers/:id/action', serverAction),
    route('GET', '/v2.1/servers/:id/os-volume_attachments', async (req) => {
      authenticated(req);
      const v = microversion(req, 'compute', NOVA);
      await cloud.instance(req.params.id!);
      const bdms = await cloud.volumeBdms(req.params.id!);
      return { status: 200, body: { volumeAttachments: bdms.map((b) => attachmentView(v, b, req.params.id!)) }, headers: versionHeaders('compute', v) };
    }),
    route('POST', '/v2.1/servers/:id/os-volume_attachments', async (req) => {
      authenticated(req);
      const v = microversion(req, 'compute', NOVA);
      const a = bodyOf(req, 'volumeAttachment');
      if (typeof a.volumeId !== 'string') throw new ApiError(400, "Invalid input for field/attribute volumeAttachment. 'volumeId' is a required property");
      const done = await cloud.attachVolume(req.params.id!, a.volumeId);
      if (atLeast(v, 2, 101)) return { status: 202, headers: versionHeaders('compute', v) };
      const view = attachmentView(v, { volume_id: a.volumeId, device_name: done.device, tag: a.tag ?? null, delete_on_termination: a.delete_on_termination ?? false, attachment_id: done.attachmentId, uuid: done.bdmUuid }, req.params.id!);
      return { status: 200, body: { volumeAttachment: view }, headers: versionHeaders('compute', v) };
    }),
    route('DELETE', '/v2.1/servers/:id/os-volume_attachments/:volume', async (req) => {
      authenticated(req);
      const v = microversion(req, 'compute', NOVA);
      await cloud.detachVolume(req.params.id!, req.params.volume!);
      return { status: 202, headers: versionHeaders('compute', v) };
    }),
    route('GET', '/v2.1/os-services', async (req) => {
      authenticated(req);
      const v = microversion(req, 'compute', NOVA);
      const services = await cloud.services({ host: req.query.get('host'), binary: req.query.get('binary') });
      return { status: 200, body: { services: await Promise.all(services.map((s) => serviceView(v, s))) }, headers: versionHeaders('compute', v) };
    }),
    route('PUT', '/v2.1/os-services/:action', updateServiceLegacy),
    route('GET', '/v2.1/os-migrations', async (req) => {
      authenticated(req);
      const v = microversion(req, 'compute', NOVA);
      const rows = await cloud.migrations({ instanceUuid: req.query.get('instance_uuid'), type: req.query.get('migration_type'), host: req.query.get('host'), status: req.query.get('status') });
      const migrations = rows.map((m) => {
        const view: Record<string, unknown> = {
          id: m.id,
          source_node: m.source_node,
          dest_node: m.dest_node,
          source_compute: m.source_compute,
          dest_compute: m.dest_compute,
          dest_host: m.dest_host,
          status: m.status,
          instance_uuid: m.instance_uuid,
          old_instance_type_id: m.old_instance_type_id,
          new_instance_type_id: m.new_instance_type_id,
          created_at: naive(m.created_at),
          updated_at: naive(m.updated_at),
        };
        if (atLeast(v, 2, 23)) view.migration_type = m.migration_type;
        if (atLeast(v, 2, 59)) view.uuid = m.uuid;
        if (atLeast(v, 2, 80)) Object.assign(view, { user_id: m.user_id, project_id: m.project_id });
        return view;
      });
      return { status: 200, body: { migrations }, headers: versionHeaders('compute', v) };
    }),
    route('GET', '/v2.1/flavors', (req) => (authenticated(req), { status: 200, body: { flavors: [{ id: FLAVOR.id, name: FLAVOR.name, links: link(req.base, 'flavors', FLAVOR.id) }] } })),
    route('GET', '/v2.1/flavors/detail', (req) => (authenticated(req), { status: 200, body: { flavors: [flavorView(req.base)] } })),
    route('GET', '/v2.1/flavors/:id', (req) => {
      authenticated(req);
      if (req.params.id !== FLAVOR.id) throw new ApiError(404, `Flavor ${req.params.id} could not be found.`);
      return { status: 200, body: { flavor: flavorView(req.base) } };
    }),
  ];

  // ---- Block Storage v3 (cinder/api/v3/views/volumes.py, by microversion) ----

  const volumeVersion = (base: string) => ({
    id: 'v3.0',
    status: 'CURRENT',
    version: CINDER.max.join('.'),
    min_version: CINDER.min.join('.'),
    updated: '2023-08-31T00:00:00Z',
    links: [{ rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' }, { rel: 'self', href: `${base}/volume/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
  });

  async function volumeView(req: Request, v: Version, vol: Row, detail: boolean): Promise<Record<string, unknown>> {
    const links = [{ rel: 'self', href: `${req.base}/volume/v3/${PROJECTS.admin}/volumes/${vol.id}` }, { rel: 'bookmark', href: `${req.base}/volume/${PROJECTS.admin}/volumes/${vol.id}` }];
    if (!detail) return { id: vol.id, name: vol.display_name, links };
    const attachments = (await cloud.attachments(vol)).map((a) => ({ id: vol.id, attachment_id: a.id, volume_id: vol.id, server_id: a.instance_uuid, host_name: a.attached_host, device: a.mountpoint, attached_at: iso(a.attach_time) }));
    const view: Record<string, unknown> = {
      id: vol.id,
      name: vol.display_name,
      description: vol.display_description,
      status: vol.status,
      size: vol.size,
      availability_zone: vol.availability_zone,
      created_at: naive(vol.created_at),
      updated_at: naive(vol.updated_at),
      attachments,
      volume_type: '__DEFAULT__',
      snapshot_id: vol.snapshot_id,
      source_volid: vol.source_volid,
      metadata: {},
      links,
      user_id: vol.user_id,
      bootable: vol.bootable ? 'true' : 'false',
      encrypted: Boolean(vol.encryption_key_id),
      replication_status: vol.replication_status,
      consistencygroup_id: vol.consistencygroup_id,
      multiattach: Boolean(vol.multiattach),
      'os-vol-host-attr:host': vol.host,
      'os-vol-tenant-attr:tenant_id': vol.project_id,
      'os-vol-mig-status-attr:migstat': vol.migration_status,
      'os-vol-mig-status-attr:name_id': vol._name_id,
    };
    if (atLeast(v, 3, 13)) view.group_id = vol.group_id ?? null;
    if (atLeast(v, 3, 21)) view.provider_id = vol.provider_id ?? null;
    if (atLeast(v, 3, 48)) Object.assign(view, { shared_targets: Boolean(vol.shared_targets), service_uuid: vol.service_uuid ?? null });
    if (atLeast(v, 3, 63)) view.volume_type_id = vol.volume_type_id;
    if (atLeast(v, 3, 65)) view.consumes_quota = vol.use_quota === undefined ? true : Boolean(vol.use_quota);
    if (atLeast(v, 3, 69)) view.cluster_name = vol.cluster_name ?? null;
    return view;
  }

  function projectMatches(req: Request): void {
    if (req.params.project !== PROJECTS.admin) throw new ApiError(404, `Project ${req.params.project} not found (lab: the admin project's endpoints only)`);
  }

  async function listVolumes(req: Request, detail: boolean): Promise<Reply> {
    authenticated(req);
    projectMatches(req);
    const v = microversion(req, 'volume', CINDER);
    const all = ['1', 'true', 'True'].includes(req.query.get('all_tenants') ?? '');
    const rows = await cloud.volumes({ projectId: all ? req.query.get('project_id') : (req.query.get('project_id') ?? PROJECTS.admin), status: req.query.get('status'), name: req.query.get('name') });
    return { status: 200, body: { volumes: await Promise.all(rows.map((r) => volumeView(req, v, r, detail))) }, headers: versionHeaders('volume', v) };
  }

  const volume: Route[] = [
    route('GET', '', (req) => ({ status: 300, body: { versions: [volumeVersion(req.base)] } })),
    route('GET', '/v3', (req) => ({ status: 200, body: { versions: [volumeVersion(req.base)] } })),
    route('GET', '/v3/:project/volumes', (req) => listVolumes(req, false)),
    route('GET', '/v3/:project/volumes/detail', (req) => listVolumes(req, true)),
    route('GET', '/v3/:project/volumes/:id', async (req) => {
      authenticated(req);
      projectMatches(req);
      const v = microversion(req, 'volume', CINDER);
      return { status: 200, body: { volume: await volumeView(req, v, await cloud.volume(req.params.id!), true) }, headers: versionHeaders('volume', v) };
    }),
    route('POST', '/v3/:project/volumes/:id/action', async (req) => {
      authenticated(req);
      projectMatches(req);
      const v = microversion(req, 'volume', CINDER);
      const reset = bodyOf(req, 'os-reset_status') as { status?: string; attach_status?: string; migration_status?: string };
      await cloud.resetStatus(req.params.id!, reset);
      return { status: 202, headers: versionHeaders('volume', v) };
    }),
  ];

  // ---- Image v2 (the one image every instance was built from) ----

  const imageView = () => ({
    id: IMAGE.id,
    name: IMAGE.name,
    status: 'active',
    visibility: 'public',
    protected: false,
    os_hidden: false,
    owner: PROJECTS.admin,
    checksum: IMAGE.checksum,
    size: IMAGE.size,
    virtual_size: 117_440_512,
    disk_format: 'qcow2',
    container_format: 'bare',
    min_disk: 0,
    min_ram: 0,
    created_at: '2025-11-04T09:58:17Z',
    updated_at: '2025-11-04T09:58:19Z',
    tags: [],
    self: `/v2/images/${IMAGE.id}`,
    file: `/v2/images/${IMAGE.id}/file`,
    schema: '/v2/schemas/image',
  });

  /** The image schema (glance/api/v2/images.py get_schema), the properties an image of the lab has. */
  const imageSchema = () => {
    const str = (description: string) => ({ type: ['null', 'string'], description });
    return {
      name: 'image',
      properties: {
        id: { type: 'string', pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$', description: 'An identifier for the image' },
        name: { ...str('Descriptive name for the image'), maxLength: 255 },
        status: { type: 'string', readOnly: true, description: 'Status of the image', enum: ['queued', 'saving', 'active', 'killed', 'deleted', 'uploading', 'importing', 'pending_delete', 'deactivated'] },
        visibility: { type: 'string', description: 'Scope of image accessibility', enum: ['community', 'public', 'private', 'shared'] },
        protected: { type: 'boolean', description: 'If true, image will not be deletable.' },
        os_hidden: { type: 'boolean', description: 'If true, image will not appear in default image list response.' },
        checksum: { ...str('md5 hash of image contents.'), readOnly: true, maxLength: 32 },
        owner: { ...str('Owner of the image'), maxLength: 255 },
        size: { type: ['null', 'integer'], readOnly: true, description: 'Size of image file in bytes' },
        virtual_size: { type: ['null', 'integer'], readOnly: true, description: 'Virtual size of image in bytes' },
        container_format: { type: ['null', 'string'], enum: [null, 'ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'], description: 'Format of the container' },
        disk_format: { type: ['null', 'string'], enum: [null, 'ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'], description: 'Format of the disk' },
        created_at: { type: 'string', readOnly: true, description: 'Date and time of image registration' },
        updated_at: { type: 'string', readOnly: true, description: 'Date and time of the last image modification' },
        tags: { type: 'array', items: { type: 'string', maxLength: 255 }, description: 'List of strings related to the image' },
        min_ram: { type: 'integer', description: 'Amount of ram (in MB) required to boot image.' },
        min_disk: { type: 'integer', description: 'Amount of disk space (in GB) required to boot image.' },
        self: { type: 'string', readOnly: true, description: 'An image self url' },
        file: { type: 'string', readOnly: true, description: 'An image file url' },
        schema: { type: 'string', readOnly: true, description: 'An image schema url' },
      },
      additionalProperties: { type: 'string' },
      links: [{ rel: 'self', href: '{self}' }, { rel: 'enclosure', href: '{file}' }, { rel: 'describedby', href: '{schema}' }],
    };
  };

  const image: Route[] = [
    route('GET', '', (req) => ({ status: 300, body: { versions: [{ id: 'v2.16', status: 'CURRENT', links: [{ rel: 'self', href: `${req.base}/image/v2/` }] }] } })),
    route('GET', '/versions', (req) => ({ status: 200, body: { versions: [{ id: 'v2.16', status: 'CURRENT', links: [{ rel: 'self', href: `${req.base}/image/v2/` }] }] } })),
    route('GET', '/v2/images', (req) => (authenticated(req), { status: 200, body: { images: [imageView()], first: '/v2/images', schema: '/v2/schemas/images' } })),
    // glanceclient builds its image model from the schema (glanceclient/v2/images.py): the fields it shows.
    route('GET', '/v2/schemas/image', (req) => (authenticated(req), { status: 200, body: imageSchema() })),
    route('GET', '/v2/images/:id', (req) => {
      authenticated(req);
      if (req.params.id !== IMAGE.id) throw new ApiError(404, `No image found with ID ${req.params.id}`);
      return { status: 200, body: imageView() };
    }),
  ];

  // ---- Object Storage: the account's totals (api-ref object-store: Show account metadata) ----

  const account = (req: Request): Reply => {
    authenticated(req);
    if (req.params.account !== `AUTH_${PROJECTS.admin}`) throw new ApiError(404, 'Not Found');
    const headers = {
      'x-account-container-count': '3',
      'x-account-object-count': '1422',
      'x-account-bytes-used': '1873612800',
      'x-timestamp': '1762250297.04219',
      'x-put-timestamp': '1762250297.04219',
      'x-account-storage-policy-policy-0-container-count': '3',
      'x-account-storage-policy-policy-0-object-count': '1422',
      'x-account-storage-policy-policy-0-bytes-used': '1873612800',
      'content-type': 'text/plain; charset=utf-8',
      'accept-ranges': 'bytes',
    };
    // The proxy names the request once, as both (swift/proxy/server.py).
    const trans = `tx${randomBytes(10).toString('hex')}-00${Math.floor(Date.now() / 1000).toString(16)}`;
    Object.assign(headers, { 'x-trans-id': trans, 'x-openstack-request-id': trans });
    return req.method === 'HEAD' ? { status: 204, headers } : { status: 200, headers, body: [{ name: 'backups', count: 1200, bytes: 1800000000, last_modified: '2026-02-01T10:00:00.000000' }, { name: 'images', count: 200, bytes: 70000000, last_modified: '2026-02-01T10:00:00.000000' }, { name: 'logs', count: 22, bytes: 3612800, last_modified: '2026-02-01T10:00:00.000000' }] };
  };
  const objectStore: Route[] = [route('GET', '/v1/:account', account)];

  const services: { prefix: string; name: string; controllerService: string; routes: Route[] }[] = [
    { prefix: '/identity', name: 'identity', controllerService: 'keystone', routes: identity },
    { prefix: '/compute', name: 'compute', controllerService: 'nova-api', routes: compute },
    { prefix: '/volume', name: 'volume', controllerService: 'cinder-api', routes: volume },
    { prefix: '/image', name: 'image', controllerService: 'glance-api', routes: image },
    { prefix: '/object-store', name: 'object-store', controllerService: 'swift-proxy', routes: objectStore },
  ];

  return createServer((req, res) => {
    const requestId = `req-${randomUUID()}`;
    const url = new URL(req.url ?? '/', 'http://lab');
    const service = services.find((s) => url.pathname === s.prefix || url.pathname.startsWith(`${s.prefix}/`));
    const log = (status: number) => {
      const line = { t: Date.now(), method: req.method, path: url.pathname + url.search, status, version: req.headers['openstack-api-version'] ?? req.headers['x-openstack-nova-api-version'] ?? null };
      appendFileSync(opts.logFile, `${JSON.stringify(line)}\n`);
    };
    if (service && !cloud.serviceRunning('controller', service.controllerService)) {
      log(0);
      req.socket.destroy();
      return;
    }
    void (async () => {
      let reply: Reply;
      try {
        if (!service) throw new ApiError(404, 'Not Found');
        const found = match(service.routes, req.method ?? 'GET', url.pathname.slice(service.prefix.length).replace(/\/$/, ''));
        if (found === undefined) throw new ApiError(404, 'The resource could not be found.');
        if (found === 'method') throw new ApiError(405, 'The method is not allowed for the requested URL.');
        const body = await readBody(req);
        reply = await found.route.handler({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body, base: `http://${req.headers.host}`, params: found.params });
      } catch (err) {
        const e = err instanceof ApiError ? err : new ApiError(500, `Unexpected API Error: ${(err as Error).message}`);
        if (!(err instanceof ApiError)) process.stderr.write(`openstack double: ${(err as Error).stack}\n`);
        reply = { status: e.status, body: faultBody(service?.name ?? 'compute', e.status, e.message) };
      }
      log(reply.status);
      const ids: Record<string, string> = service?.name === 'compute' ? { 'x-openstack-request-id': requestId, 'x-compute-request-id': requestId } : service?.name === 'object-store' ? {} : { 'x-openstack-request-id': requestId };
      send(res, req.method === 'HEAD' ? { ...reply, body: undefined } : reply, ids);
    })();
  });
}
