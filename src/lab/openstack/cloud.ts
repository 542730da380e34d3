/**
 * The cloud behind the OpenStack API double: its state is the lab's database rows (nova, cinder and
 * neutron, the real schemas of schema.ts), changed the way the services change them, and the
 * compute nodes' hypervisors (the lab hosts' virsh state). Asynchronous actions run on timers, as
 * the services' workers would: the API answers at once, the rows pass through the real
 * intermediate states (task_state `migrating`, `rebuilding`, `reboot_started_hard`; volume status
 * `detaching`, `reserved`) and settle seconds later.
 *
 * Followed: nova's compute API and conductor (nova/compute/api.py live_migrate, evacuate, reboot,
 * attach_volume, detach_volume; nova/servicegroup/drivers/db.py is_up), cinder's attachment calls
 * (cinder/volume/api.py _attachment_reserve, cinder/db/sqlalchemy/api.py volume_detached) and
 * admin_actions.py os-reset_status, at the commits named in schema.ts.
 */
import mysql from 'mysql2/promise';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runtime, serviceState } from '../tool-runtime.js';
import { ApiError } from './http.js';

export interface CloudOptions {
  mysqlUrl: string;
  databases: { nova: string; cinder: string; neutron: string };
  labDir: string;
  /** Multiplies every duration (see LabOptions.openstackTimeScale). */
  timeScale: number;
}

export type Row = Record<string, any>;

/** Where a test changes the double's time scale while it runs (a slower cloud, to catch a volume detaching). */
export const timeScaleFile = (labDir: string) => join(labDir, 'run', 'openstack-time-scale.json');

/** nova's power states (nova/compute/power_state.py). */
export const POWER = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const;

/** vm_state and task_state to the API's status (nova/api/openstack/common.py _STATE_MAP). */
export function serverStatus(vmState: string, taskState: string | null): string {
  const task = taskState ?? '';
  if (vmState === 'active') {
    if (['rebooting', 'reboot_pending', 'reboot_started'].includes(task)) return 'REBOOT';
    if (['rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard'].includes(task)) return 'HARD_REBOOT';
    if (['rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning'].includes(task)) return 'REBUILD';
    if (task === 'migrating') return 'MIGRATING';
    return 'ACTIVE';
  }
  if (vmState === 'stopped') {
    if (['rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning'].includes(task)) return 'REBUILD';
    if (['rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard'].includes(task)) return 'HARD_REBOOT';
    return 'SHUTOFF';
  }
  const simple: Record<string, string> = { building: 'BUILD', error: 'ERROR', deleted: 'DELETED', paused: 'PAUSED', suspended: 'SUSPENDED', soft_deleted: 'SOFT_DELETED', shelved: 'SHELVED', shelved_offloaded: 'SHELVED_OFFLOADED' };
  if (vmState === 'paused' && task === 'migrating') return 'MIGRATING';
  return simple[vmState] ?? 'UNKNOWN';
}

/** How long things take, in ms of this cloud's clock (nova.conf defaults where nova has one). */
const TIMES = { action: 2_000, reportInterval: 10_000, serviceDownTime: 60_000 };

interface Domain {
  id: number;
  name: string;
  uuid?: string;
  state: string;
}

export class Cloud {
  readonly pool: mysql.Pool;
  /** `current`: cinder ≥ Kilo (volume_attachment); `pre-kilo`: the attachment in volumes' columns. */
  cinderSchema: 'current' | 'pre-kilo' = 'current';
  private readonly timers = new Set<NodeJS.Timeout>();
  private heartbeat: NodeJS.Timeout | undefined;
  /** Actions under way; close() lets them finish, so no row is left half-changed. */
  private readonly running = new Set<Promise<void>>();

  constructor(readonly opts: CloudOptions) {
    this.pool = mysql.createPool({ uri: opts.mysqlUrl, connectionLimit: 4, timezone: 'Z', dateStrings: false });
  }

  t(db: 'nova' | 'cinder' | 'neutron', table: string): string {
    return `\`${this.opts.databases[db]}\`.\`${table}\``;
  }

  /** A duration on this cloud's clock: the lab's time scale, or the one a test set since (setOpenStackTimeScale). */
  ms(what: keyof typeof TIMES): number {
    const scale = runtime.readJson<{ timeScale?: number }>(timeScaleFile(this.opts.labDir), {}).timeScale ?? this.opts.timeScale;
    return Math.round(TIMES[what] * scale);
  }

  async start(): Promise<void> {
    const [rows] = await this.pool.query('SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?', [this.opts.databases.cinder, 'volume_attachment']);
    this.cinderSchema = (rows as Row[]).length > 0 ? 'current' : 'pre-kilo';
    await this.reportServices();
    // Due every report_interval of the clock as it is now: a test may change the time scale meanwhile.
    let last = Date.now();
    const beat = () => {
      this.heartbeat = setTimeout(() => {
        const due = Date.now() - last >= this.ms('reportInterval');
        if (due) last = Date.now();
        void (due ? this.reportServices() : Promise.resolve()).catch(() => undefined).finally(beat);
      }, Math.min(250, this.ms('reportInterval')));
    };
    beat();
  }

  async close(): Promise<void> {
    if (this.heartbeat) clearTimeout(this.heartbeat);
    for (const t of this.timers) clearTimeout(t);
    await Promise.allSettled([...this.running]);
    await this.pool.end();
  }

  async query<T = Row>(sql: string, params: unknown[] = []): Promise<T[]> {
    const [rows] = await this.pool.query(sql, params);
    return rows as T[];
  }

  /** Runs `fn` after `ms` of this cloud's clock, as a service's worker would; a failure is left in the rows it reached. */
  later(ms: number, fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      const p: Promise<void> = fn()
        .catch((err: unknown) => {
          process.stderr.write(`openstack double: ${(err as Error).stack}\n`);
        })
        .finally(() => this.running.delete(p));
      this.running.add(p);
    }, ms);
    this.timers.add(t);
  }

  // ---- the lab's hosts: what runs there and what their hypervisor holds ----

  /** Is `service` running on lab host `host`, by the host's service manager (a host the lab lacks runs nothing). */
  serviceRunning(host: string, service: string): boolean {
    if (!existsSync(runtime.hostDir(this.opts.labDir, host))) return false;
    return serviceState.read(new runtime.HostContext(this.opts.labDir, host)).services[service]?.status === 'running';
  }

  private updateDomains(host: string, fn: (domains: Domain[]) => void): void {
    if (!existsSync(runtime.hostDir(this.opts.labDir, host))) return;
    runtime.updateJson<{ domains: Domain[] }, void>(this.opts.labDir, host, runtime.statePath(this.opts.labDir, host, 'virsh'), { domains: [] }, (v) => fn(v.domains));
  }

  /** The instance's libvirt domain leaves `from` (when given) and runs on `to` with a fresh id. */
  private moveDomain(inst: Row, from: string | undefined, to: string, state = 'running'): void {
    const name = `instance-${Number(inst.id).toString(16).padStart(8, '0')}`;
    if (from !== undefined && from !== to) this.updateDomains(from, (ds) => void ds.splice(0, ds.length, ...ds.filter((d) => d.name !== name)));
    this.updateDomains(to, (ds) => {
      const existing = ds.find((d) => d.name === name);
      if (existing) existing.state = state;
      else ds.push({ id: Math.max(0, ...ds.map((d) => d.id)) + 1, name, uuid: String(inst.uuid), state });
    });
  }

  // ---- nova: services ----

  /** nova-compute and the controller's services report as nova's ServiceGroup DB driver does, while they run. */
  async reportServices(): Promise<void> {
    for (const s of await this.query(`SELECT id, host, \`binary\` FROM ${this.t('nova', 'services')} WHERE deleted = 0`)) {
      if (!this.serviceRunning(String(s.host), String(s.binary))) continue;
      await this.pool.query(`UPDATE ${this.t('nova', 'services')} SET report_count = report_count + 1, updated_at = UTC_TIMESTAMP(), last_seen_up = UTC_TIMESTAMP() WHERE id = ?`, [s.id]);
    }
  }

  /** nova/servicegroup/drivers/db.py is_up: not forced down, and reported within service_down_time. */
  isUp(s: Row): boolean {
    if (s.forced_down) return false;
    const last = (s.updated_at ?? s.created_at) as Date | null;
    return last !== null && Date.now() - last.getTime() <= this.ms('serviceDownTime');
  }

  async services(filter: { host?: string | null; binary?: string | null } = {}): Promise<Row[]> {
    const where = ['deleted = 0'];
    const params: unknown[] = [];
    if (filter.host) (where.push('host = ?'), params.push(filter.host));
    if (filter.binary) (where.push('`binary` = ?'), params.push(filter.binary));
    return this.query(`SELECT * FROM ${this.t('nova', 'services')} WHERE ${where.join(' AND ')} ORDER BY id`, params);
  }

  async computeService(host: string): Promise<Row | undefined> {
    return (await this.services({ host, binary: 'nova-compute' }))[0];
  }

  async updateService(id: number, values: Row): Promise<void> {
    await this.pool.query(`UPDATE ${this.t('nova', 'services')} SET ?, updated_at = updated_at WHERE id = ?`, [values, id]);
  }

  async computeNode(host: string): Promise<Row | undefined> {
    return (await this.query(`SELECT * FROM ${this.t('nova', 'compute_nodes')} WHERE host = ? AND deleted = 0`, [host]))[0];
  }

  /** The scheduler's pick: an up, enabled compute node other than `not`. */
  private async schedule(not: string): Promise<string> {
    for (const s of await this.services({ binary: 'nova-compute' })) {
      if (s.host !== not && !s.disabled && this.isUp(s)) return String(s.host);
    }
    throw new ApiError(400, 'No valid host was found. There are not enough hosts available.');
  }

  // ---- nova: instances ----

  async instance(uuid: string): Promise<Row> {
    const row = (await this.query(`SELECT * FROM ${this.t('nova', 'instances')} WHERE uuid = ? AND deleted = 0`, [uuid]))[0];
    if (!row) throw new ApiError(404, `Instance ${uuid} could not be found.`);
    return row;
  }

  async instances(filter: { host?: string | null; node?: string | null; projectId?: string | null; status?: string | null }): Promise<Row[]> {
    const where = ['deleted = 0'];
    const params: unknown[] = [];
    if (filter.host) (where.push('host = ?'), params.push(filter.host));
    if (filter.node) (where.push('node = ?'), params.push(filter.node));
    if (filter.projectId) (where.push('project_id = ?'), params.push(filter.projectId));
    const rows = await this.query(`SELECT * FROM ${this.t('nova', 'instances')} WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC`, params);
    return filter.status ? rows.filter((r) => serverStatus(r.vm_state, r.task_state) === filter.status!.toUpperCase()) : rows;
  }

  async volumeBdms(instanceUuid: string): Promise<Row[]> {
    return this.query(`SELECT * FROM ${this.t('nova', 'block_device_mapping')} WHERE instance_uuid = ? AND destination_type = 'volume' AND deleted = 0 ORDER BY id`, [instanceUuid]);
  }

  private async setInstance(uuid: string, values: Row): Promise<void> {
    await this.pool.query(`UPDATE ${this.t('nova', 'instances')} SET ?, updated_at = UTC_TIMESTAMP() WHERE uuid = ? AND deleted = 0`, [values, uuid]);
  }

  private invalidState(action: string, inst: Row, attr: 'vm_state' | 'task_state'): ApiError {
    return new ApiError(409, `Cannot '${action}' instance ${inst.uuid} while it is in ${attr} ${inst[attr]}`);
  }

  private async migration(inst: Row, type: 'live-migration' | 'evacuation', dest: string | null, status: string): Promise<number> {
    const [res] = await this.pool.query(`INSERT INTO ${this.t('nova', 'migrations')} SET ?`, [
      {
        created_at: new Date(),
        uuid: crypto.randomUUID(),
        instance_uuid: inst.uuid,
        migration_type: type,
        source_compute: inst.host,
        source_node: inst.node,
        dest_compute: dest,
        status,
        old_instance_type_id: inst.instance_type_id,
        new_instance_type_id: inst.instance_type_id,
        user_id: inst.user_id,
        project_id: inst.project_id,
        hidden: 0,
        cross_cell_move: 0,
        deleted: 0,
      },
    ]);
    return (res as mysql.ResultSetHeader).insertId;
  }

  private async setMigration(id: number, values: Row): Promise<void> {
    await this.pool.query(`UPDATE ${this.t('nova', 'migrations')} SET ?, updated_at = UTC_TIMESTAMP() WHERE id = ?`, [values, id]);
  }

  async migrations(filter: { instanceUuid?: string | null; type?: string | null; host?: string | null; status?: string | null }): Promise<Row[]> {
    const where = ['deleted = 0'];
    const params: unknown[] = [];
    if (filter.instanceUuid) (where.push('instance_uuid = ?'), params.push(filter.instanceUuid));
    if (filter.type) (where.push('migration_type = ?'), params.push(filter.type));
    if (filter.host) (where.push('(source_compute = ? OR dest_compute = ?)'), params.push(filter.host, filter.host));
    if (filter.status) (where.push('status = ?'), params.push(filter.status));
    return this.query(`SELECT * FROM ${this.t('nova', 'migrations')} WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC`, params);
  }

  /**
   * The instance now lives on `host`: the instance row (host, node, compute_id), its ports' ACTIVE
   * binding (neutron activates the destination binding and drops the source's, as for a live
   * migration with multiple port bindings), its volume attachments (cinder's attached_host and
   * connector) and the hypervisors.
   */
  private async land(inst: Row, host: string, values: Row, domainState = 'running'): Promise<void> {
    const node = await this.computeNode(host);
    await this.setInstance(String(inst.uuid), { host, node: node?.hypervisor_hostname ?? null, compute_id: node?.id ?? null, task_state: null, ...values });
    const ports = await this.query<{ id: string }>(`SELECT id FROM ${this.t('neutron', 'ports')} WHERE device_id = ?`, [inst.uuid]);
    for (const { id } of ports) {
      await this.pool.query(`DELETE FROM ${this.t('neutron', 'ml2_port_bindings')} WHERE port_id = ? AND host <> ?`, [id, inst.host]);
      await this.pool.query(`DELETE FROM ${this.t('neutron', 'ml2_port_binding_levels')} WHERE port_id = ? AND host <> ?`, [id, inst.host]);
      await this.pool.query(`UPDATE ${this.t('neutron', 'ml2_port_bindings')} SET host = ?, status = 'ACTIVE', profile = '' WHERE port_id = ?`, [host, id]);
      await this.pool.query(`UPDATE ${this.t('neutron', 'ml2_port_binding_levels')} SET host = ? WHERE port_id = ?`, [host, id]);
    }
    if (this.cinderSchema === 'current') {
      await this.pool.query(`UPDATE ${this.t('cinder', 'volume_attachment')} SET attached_host = ?, updated_at = UTC_TIMESTAMP() WHERE instance_uuid = ? AND deleted = 0`, [host, inst.uuid]);
    } else {
      await this.pool.query(`UPDATE ${this.t('cinder', 'volumes')} SET attached_host = ?, updated_at = UTC_TIMESTAMP() WHERE instance_uuid = ? AND deleted = 0`, [host, inst.uuid]);
    }
    this.moveDomain(inst, inst.host ? String(inst.host) : undefined, host, domainState);
  }

  /** POST /servers/{id}/action os-migrateLive (nova/compute/api.py live_migrate; asynchronous from 2.34). */
  async liveMigrate(uuid: string, target: string | null, asyncChecks: boolean): Promise<void> {
    const inst = await this.instance(uuid);
    if (!['active', 'paused'].includes(inst.vm_state)) throw this.invalidState('os-migrateLive', inst, 'vm_state');
    if (inst.task_state !== null) throw this.invalidState('os-migrateLive', inst, 'task_state');
    const check = async (): Promise<string> => {
      if (target === null) return this.schedule(String(inst.host));
      if (target === inst.host) throw new ApiError(400, `Unable to migrate instance (${uuid}) to current host (${target}).`);
      const s = await this.computeService(target);
      if (!s) throw new ApiError(400, `Compute host ${target} could not be found.`);
      if (!this.isUp(s)) throw new ApiError(400, `Compute service of ${target} is unavailable at this time.`);
      return target;
    };
    if (!asyncChecks) await check();
    await this.setInstance(uuid, { task_state: 'migrating' });
    const migration = await this.migration(inst, 'live-migration', target, 'accepted');
    this.later(this.ms('action') / 2, async () => {
      let dest: string;
      try {
        dest = await check();
      } catch (err) {
        // The conductor's pre-checks failed: the instance stays where it is, the migration is in error.
        await this.setInstance(uuid, { task_state: null });
        await this.setMigration(migration, { status: 'error' });
        process.stderr.write(`openstack double: live migration of ${uuid} failed: ${(err as Error).message}\n`);
        return;
      }
      const node = await this.computeNode(dest);
      await this.setMigration(migration, { status: 'running', dest_compute: dest, dest_host: node?.host_ip ?? null, dest_node: node?.hypervisor_hostname ?? null, dest_compute_id: node?.id ?? null });
      this.later(this.ms('action') / 2, async () => {
        await this.land(inst, dest, {});
        await this.setMigration(migration, { status: 'completed' });
      });
    });
  }

  /** POST /servers/{id}/action evacuate (nova/compute/api.py evacuate): only from a compute node that is down. */
  async evacuate(uuid: string, target: string | null, stopAtDestination: boolean): Promise<void> {
    const inst = await this.instance(uuid);
    if (!['active', 'stopped', 'error'].includes(inst.vm_state)) throw this.invalidState('evacuate', inst, 'vm_state');
    const source = await this.computeService(String(inst.host));
    if (source && this.isUp(source)) throw new ApiError(400, `Compute service of ${inst.host} is still in use.`);
    if (target !== null) {
      const s = await this.computeService(target);
      if (!s) throw new ApiError(404, `Compute host ${target} not found.`);
    }
    await this.setInstance(uuid, { task_state: 'rebuilding' });
    const migration = await this.migration(inst, 'evacuation', target, 'accepted');
    this.later(this.ms('action') / 2, async () => {
      let dest: string;
      try {
        dest = target ?? (await this.schedule(String(inst.host)));
        const s = await this.computeService(dest);
        if (!s || !this.isUp(s)) throw new Error(`Compute service of ${dest} is unavailable at this time.`);
      } catch (err) {
        await this.setInstance(uuid, { task_state: null, vm_state: 'error' });
        await this.setMigration(migration, { status: 'error' });
        process.stderr.write(`openstack double: evacuation of ${uuid} failed: ${(err as Error).message}\n`);
        return;
      }
      const node = await this.computeNode(dest);
      await this.setMigration(migration, { status: 'pre-migrating', dest_compute: dest, dest_host: node?.host_ip ?? null, dest_node: node?.hypervisor_hostname ?? null, dest_compute_id: node?.id ?? null });
      await this.setInstance(uuid, { task_state: 'rebuild_spawning' });
      this.later(this.ms('action') / 2, async () => {
        // An active instance is rebuilt active; a stopped one stays stopped; from 2.95 every one is stopped.
        const stopped = stopAtDestination || inst.vm_state === 'stopped';
        await this.land(inst, dest, { vm_state: stopped ? 'stopped' : 'active', power_state: stopped ? POWER.SHUTDOWN : POWER.RUNNING }, stopped ? 'shut off' : 'running');
        await this.setMigration(migration, { status: 'done' });
      });
    });
  }

  /** POST /servers/{id}/action reboot: SOFT only from ACTIVE; HARD also starts a stopped or errored instance. */
  async reboot(uuid: string, hard: boolean): Promise<void> {
    const inst = await this.instance(uuid);
    const allowed = hard ? ['active', 'stopped', 'paused', 'suspended', 'error'] : ['active'];
    if (!allowed.includes(inst.vm_state)) throw this.invalidState('reboot', inst, 'vm_state');
    const busy = ['migrating', 'rebuilding', 'rebuild_spawning', 'deleting', 'reboot_started_hard', 'reboot_pending_hard'];
    if (inst.task_state !== null && (busy.includes(inst.task_state) || !hard)) throw this.invalidState('reboot', inst, 'task_state');
    await this.setInstance(uuid, { task_state: hard ? 'reboot_pending_hard' : 'reboot_pending' });
    this.later(this.ms('action') / 4, () => this.setInstance(uuid, { task_state: hard ? 'reboot_started_hard' : 'reboot_started' }));
    this.later(this.ms('action'), async () => {
      const now = await this.instance(uuid);
      await this.setInstance(uuid, { vm_state: 'active', power_state: POWER.RUNNING, task_state: null });
      this.moveDomain(now, undefined, String(now.host));
    });
  }

  /** POST /servers/{id}/action os-start: only a stopped instance. */
  async startServer(uuid: string): Promise<void> {
    const inst = await this.instance(uuid);
    if (inst.vm_state !== 'stopped') throw this.invalidState('start', inst, 'vm_state');
    if (inst.task_state !== null) throw this.invalidState('start', inst, 'task_state');
    await this.setInstance(uuid, { task_state: 'powering-on' });
    this.later(this.ms('action') / 2, async () => {
      await this.setInstance(uuid, { vm_state: 'active', power_state: POWER.RUNNING, task_state: null });
      this.moveDomain(inst, undefined, String(inst.host));
    });
  }

  // ---- volumes, nova's side and cinder's ----

  async volume(id: string): Promise<Row> {
    const row = (await this.query(`SELECT * FROM ${this.t('cinder', 'volumes')} WHERE id = ? AND deleted = 0`, [id]))[0];
    if (!row) throw new ApiError(404, `Volume ${id} could not be found.`);
    return row;
  }

  async volumes(filter: { projectId?: string | null; status?: string | null; name?: string | null }): Promise<Row[]> {
    const where = ['deleted = 0'];
    const params: unknown[] = [];
    if (filter.projectId) (where.push('project_id = ?'), params.push(filter.projectId));
    if (filter.status) (where.push('status = ?'), params.push(filter.status));
    if (filter.name) (where.push('display_name = ?'), params.push(filter.name));
    return this.query(`SELECT * FROM ${this.t('cinder', 'volumes')} WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC`, params);
  }

  /** cinder's attachments of a volume as the API shows them (volume_attachment, or the volume's own columns before Kilo). */
  async attachments(volume: Row): Promise<Row[]> {
    if (this.cinderSchema === 'pre-kilo') {
      return volume.attach_status === 'attached' && volume.instance_uuid ? [{ id: volume.id, volume_id: volume.id, instance_uuid: volume.instance_uuid, attached_host: volume.attached_host, mountpoint: volume.mountpoint, attach_time: volume.attach_time }] : [];
    }
    return this.query(`SELECT * FROM ${this.t('cinder', 'volume_attachment')} WHERE volume_id = ? AND deleted = 0 AND attach_status = 'attached' ORDER BY created_at`, [volume.id]);
  }

  private async setVolume(id: string, values: Row): Promise<void> {
    await this.pool.query(`UPDATE ${this.t('cinder', 'volumes')} SET ?, updated_at = UTC_TIMESTAMP() WHERE id = ?`, [values, id]);
  }

  /**
   * POST /servers/{id}/os-volume_attachments: nova's duplicate check (_check_volume_already_attached),
   * cinder's reservation (_attachment_reserve: only an available volume), a block device mapping at
   * once; the attachment completes in the background. libvirt chooses the device name.
   */
  async attachVolume(uuid: string, volumeId: string): Promise<{ device: string; bdmUuid: string; attachmentId: string }> {
    const inst = await this.instance(uuid);
    if (!['active', 'paused', 'stopped', 'suspended', 'resized', 'soft_deleted', 'shelved', 'shelved_offloaded'].includes(inst.vm_state)) throw this.invalidState('attach_volume', inst, 'vm_state');
    const vol = await this.volume(volumeId);
    const holders = await this.query<{ instance_uuid: string }>(`SELECT instance_uuid FROM ${this.t('nova', 'block_device_mapping')} WHERE volume_id = ? AND deleted = 0`, [volumeId]);
    if (holders.length > 0) {
      if (holders.some((h) => h.instance_uuid === uuid)) throw new ApiError(400, `Invalid volume: volume ${volumeId} already attached`);
      throw new ApiError(400, `Invalid volume: volume ${volumeId} is already attached to instances: ${holders.map((h) => h.instance_uuid).join(' ')}`);
    }
    if (!['available', 'downloading'].includes(vol.status)) {
      throw new ApiError(400, `Invalid input received: Invalid volume: Volume ${volumeId} status must be available or downloading to reserve, but the current status is ${vol.status}. (HTTP 400)`);
    }
    const used = new Set((await this.query<{ device_name: string }>(`SELECT device_name FROM ${this.t('nova', 'block_device_mapping')} WHERE instance_uuid = ? AND deleted = 0`, [uuid])).map((b) => b.device_name));
    const device = ['b', 'c', 'd', 'e', 'f', 'g', 'h'].map((l) => `/dev/vd${l}`).find((d) => !used.has(d)) ?? '/dev/vdz';
    const bdmUuid = crypto.randomUUID();
    const attachmentId = crypto.randomUUID();
    await this.setVolume(volumeId, { status: 'reserved' });
    if (this.cinderSchema === 'current') {
      await this.pool.query(`INSERT INTO ${this.t('cinder', 'volume_attachment')} SET ?`, [{ id: attachmentId, volume_id: volumeId, instance_uuid: uuid, attach_status: 'reserved', created_at: new Date(), deleted: 0 }]);
    }
    await this.pool.query(`INSERT INTO ${this.t('nova', 'block_device_mapping')} SET ?`, [
      { created_at: new Date(), uuid: bdmUuid, instance_uuid: uuid, source_type: 'volume', destination_type: 'volume', device_type: 'disk', disk_bus: 'virtio', device_name: device, delete_on_termination: 0, volume_id: volumeId, volume_size: vol.size, no_device: 0, encrypted: 0, attachment_id: this.cinderSchema === 'current' ? attachmentId : null, deleted: 0 },
    ]);
    this.later(this.ms('action') / 2, async () => {
      const info = JSON.stringify({ driver_volume_type: 'iscsi', data: { target_portal: '10.100.1.10:3260', target_iqn: `iqn.2010-10.org.openstack:volume-${volumeId}`, target_lun: 0, volume_id: volumeId }, serial: volumeId });
      await this.pool.query(`UPDATE ${this.t('nova', 'block_device_mapping')} SET connection_info = ?, updated_at = UTC_TIMESTAMP() WHERE uuid = ?`, [info, bdmUuid]);
      if (this.cinderSchema === 'current') {
        await this.pool.query(`UPDATE ${this.t('cinder', 'volume_attachment')} SET attach_status = 'attached', attached_host = ?, mountpoint = ?, attach_time = UTC_TIMESTAMP(), attach_mode = 'rw', connection_info = ?, updated_at = UTC_TIMESTAMP() WHERE id = ?`, [inst.host, device, info, attachmentId]);
        await this.setVolume(volumeId, { status: 'in-use', attach_status: 'attached' });
      } else {
        await this.setVolume(volumeId, { status: 'in-use', attach_status: 'attached', instance_uuid: uuid, attached_host: inst.host, mountpoint: device, attach_time: new Date().toISOString() });
      }
    });
    return { device, bdmUuid, attachmentId };
  }

  /** DELETE /servers/{id}/os-volume_attachments/{volume}: 202, the volume `detaching`, then detached and the mapping soft-deleted. */
  async detachVolume(uuid: string, volumeId: string): Promise<void> {
    const inst = await this.instance(uuid);
    await this.volume(volumeId);
    const bdm = (await this.query(`SELECT * FROM ${this.t('nova', 'block_device_mapping')} WHERE instance_uuid = ? AND volume_id = ? AND deleted = 0`, [uuid, volumeId]))[0];
    if (!bdm) throw new ApiError(404, `Instance ${uuid} is not attached to volume ${volumeId}`);
    if (bdm.boot_index === 0) throw new ApiError(400, 'Cannot detach a root device volume');
    if (inst.task_state !== null) throw this.invalidState('detach_volume', inst, 'task_state');
    await this.setVolume(volumeId, { status: 'detaching' });
    this.later(this.ms('action'), async () => {
      await this.pool.query(`UPDATE ${this.t('nova', 'block_device_mapping')} SET deleted = id, deleted_at = UTC_TIMESTAMP(), updated_at = UTC_TIMESTAMP() WHERE id = ?`, [bdm.id]);
      await this.detached(volumeId, uuid);
    });
  }

  /** cinder's volume_detached: the instance's attachments of the volume deleted, the volume available once none is left. */
  private async detached(volumeId: string, instanceUuid?: string): Promise<void> {
    if (this.cinderSchema === 'current') {
      await this.pool.query(
        `UPDATE ${this.t('cinder', 'volume_attachment')} SET deleted = 1, deleted_at = UTC_TIMESTAMP(), attach_status = 'detached', detach_time = UTC_TIMESTAMP(), updated_at = UTC_TIMESTAMP() WHERE volume_id = ? AND deleted = 0${instanceUuid ? ' AND instance_uuid = ?' : ''}`,
        instanceUuid ? [volumeId, instanceUuid] : [volumeId],
      );
      const left = await this.query(`SELECT id FROM ${this.t('cinder', 'volume_attachment')} WHERE volume_id = ? AND deleted = 0`, [volumeId]);
      if (left.length === 0) await this.setVolume(volumeId, { status: 'available', attach_status: 'detached' });
    } else {
      await this.setVolume(volumeId, { status: 'available', attach_status: 'detached', instance_uuid: null, attached_host: null, mountpoint: null, attach_time: null });
    }
  }

  /** POST /volumes/{id}/action os-reset_status (cinder/api/contrib/admin_actions.py _reset_status). */
  async resetStatus(id: string, update: { status?: string; attach_status?: string; migration_status?: string }): Promise<void> {
    await this.volume(id);
    // Upstream's tuple ('deleting', 'error_deleting' 'detaching') lacks a comma: 'detaching' is allowed.
    if (update.status && ['deleting', 'error_deletingdetaching'].includes(update.status)) throw new ApiError(400, `Cannot reset-state to ${update.status}`);
    const values: Row = {};
    if (update.status) values.status = update.status.toLowerCase();
    if (update.attach_status) values.attach_status = update.attach_status.toLowerCase();
    if (update.migration_status) values.migration_status = update.migration_status.toLowerCase() === 'none' ? null : update.migration_status.toLowerCase();
    if (values.status === 'in-use' && (await this.attachments(await this.volume(id))).length === 0) {
      throw new ApiError(400, 'Cannot reset-state to in-use because volume does not have any attachments.');
    }
    await this.setVolume(id, values);
    if (values.attach_status === 'detached') {
      if (this.cinderSchema === 'current') {
        await this.pool.query(`UPDATE ${this.t('cinder', 'volume_attachment')} SET deleted = 1, deleted_at = UTC_TIMESTAMP(), attach_status = 'detached', detach_time = UTC_TIMESTAMP() WHERE volume_id = ? AND deleted = 0`, [id]);
      } else {
        await this.setVolume(id, { instance_uuid: null, attached_host: null, mountpoint: null, attach_time: null });
      }
    }
  }
}
