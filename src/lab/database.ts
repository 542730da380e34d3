import mysql from 'mysql2/promise';
import { CINDER_JUNO_VOLUMES, CINDER_TABLES, NEUTRON_TABLES, NOVA_TABLES } from './openstack/schema.js';
import { COMPUTE_IPS, COMPUTES, computeFqdn, INSTANCES, instanceName, PROJECTS, stableUuid, USERS, VOLUMES, type SiteInstance, type SiteVolume } from './site.js';
import type { CinderSchema, LabDatabases } from './types.js';

/** The lab's database names: `<prefix>nova`, `<prefix>cinder`, `<prefix>neutron`. */
export function labDatabaseNames(prefix: string): LabDatabases {
  if (!/^[A-Za-z0-9_]*$/.test(prefix)) throw new Error(`dbPrefix may hold only letters, digits and _: ${JSON.stringify(prefix)}`);
  return { nova: `${prefix}nova`, cinder: `${prefix}cinder`, neutron: `${prefix}neutron` };
}

/** URL of one database on the lab's server: the server URL with the database as its path. */
export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

type Row = Record<string, unknown>;

/** Seeded times: the cloud was built a while ago; services report now. */
const BUILT = '2025-11-04 10:12:40';
const LAUNCHED = '2025-11-04 10:13:02';
const DELETED = '2026-01-20 16:40:11';

const CINDER_VOLUME_SERVICE = stableUuid('cinder-volume controller@lvm');
const DEFAULT_VOLUME_TYPE = stableUuid('volume type __DEFAULT__');
const IMAGE = stableUuid('image cirros');
const NETWORK = stableUuid('network private');
const SEGMENT = stableUuid('segment private');
const ROUTER = stableUuid('router demo');
const ROUTER_PORT = stableUuid('port router demo');

export const portOf = (instanceUuid: string) => stableUuid(`port ${instanceUuid}`);
const attachmentOf = (v: SiteVolume) => stableUuid(`attachment ${v.id}`);
const macOf = (seed: string) => `fa:16:3e:${stableUuid(seed).slice(0, 6).match(/../g)!.join(':')}`;

function attachedTo(v: SiteVolume): SiteInstance | undefined {
  if (v.instance === undefined) return undefined;
  const inst = INSTANCES.find((i) => instanceName(i.id) === v.instance);
  if (inst === undefined) throw new Error(`no seeded instance ${v.instance}`);
  return inst;
}

/** What nova and cinder keep of an iSCSI attachment (os-brick's connector; the LVM driver's target). */
function connectionInfo(v: SiteVolume): string {
  return JSON.stringify({
    driver_volume_type: 'iscsi',
    data: { target_discovered: false, target_portal: '10.100.1.10:3260', target_iqn: `iqn.2010-10.org.openstack:volume-${v.id}`, target_lun: 0, volume_id: v.id, encrypted: false },
    serial: v.id,
  });
}
function connector(compute: string): string {
  return JSON.stringify({ platform: 'x86_64', os_type: 'linux', ip: COMPUTE_IPS[compute], host: compute, multipath: false, initiator: `iqn.1993-08.org.debian:01:${compute}`, do_local_attach: false });
}

async function insert(conn: mysql.Connection, table: string, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  await conn.query(`INSERT INTO \`${table}\` (${columns.map((c) => `\`${c}\``).join(', ')}) VALUES ?`, [rows.map((r) => columns.map((c) => r[c] ?? null))]);
}

/** nova: the services (a decommissioned compute node soft-deleted), the hypervisors, the instances and their block devices. */
async function seedNova(conn: mysql.Connection): Promise<void> {
  const service = (id: number, host: string, binary: string, deleted = false): Row => ({
    id,
    uuid: stableUuid(`nova service ${host} ${binary}`),
    host,
    binary,
    topic: binary.replace(/^nova-/, ''),
    report_count: deleted ? 88_120 : 4_242,
    disabled: 0,
    disabled_reason: null,
    forced_down: 0,
    version: 68,
    created_at: BUILT,
    updated_at: deleted ? DELETED : new Date(),
    last_seen_up: deleted ? DELETED : new Date(),
    deleted: deleted ? id : 0,
    deleted_at: deleted ? DELETED : null,
  });
  await insert(conn, 'services', [
    service(1, 'controller', 'nova-scheduler'),
    service(2, 'controller', 'nova-conductor'),
    ...COMPUTES.map((c, i) => service(3 + i, c, 'nova-compute')),
    service(3 + COMPUTES.length, 'c03', 'nova-compute', true),
  ]);
  await insert(
    conn,
    'compute_nodes',
    COMPUTES.map((c, i) => {
      const running = INSTANCES.filter((x) => x.compute === c && !x.deleted).length;
      return {
        id: i + 1,
        uuid: stableUuid(`compute node ${c}`),
        service_id: 3 + i,
        host: c,
        hypervisor_hostname: computeFqdn(c),
        host_ip: COMPUTE_IPS[c],
        vcpus: 32,
        memory_mb: 128_921,
        local_gb: 914,
        vcpus_used: running,
        memory_mb_used: 512 + 2048 * running,
        local_gb_used: 20 * running,
        free_ram_mb: 128_921 - 512 - 2048 * running,
        free_disk_gb: 914 - 20 * running,
        running_vms: running,
        current_workload: 0,
        hypervisor_type: 'QEMU',
        hypervisor_version: 7_002_000,
        cpu_info: JSON.stringify({ arch: 'x86_64', model: 'Cascadelake-Server-noTSX', vendor: 'Intel', topology: { cells: 2, sockets: 1, cores: 8, threads: 2 }, features: ['vmx', 'avx512f'] }),
        ram_allocation_ratio: 1.5,
        cpu_allocation_ratio: 16,
        disk_allocation_ratio: 1,
        mapped: 1,
        created_at: BUILT,
        updated_at: new Date(),
        deleted: 0,
      };
    }),
  );
  await insert(
    conn,
    'instances',
    INSTANCES.map((i) => ({
      id: i.id,
      uuid: i.uuid,
      user_id: USERS.demo,
      project_id: PROJECTS.demo,
      image_ref: IMAGE,
      launch_index: 0,
      reservation_id: `r-${stableUuid(`reservation ${i.uuid}`).slice(0, 8)}`,
      display_name: i.displayName,
      hostname: i.displayName,
      host: i.compute,
      node: computeFqdn(i.compute),
      compute_id: COMPUTES.indexOf(i.compute) + 1,
      launched_on: i.compute,
      availability_zone: 'nova',
      instance_type_id: 2,
      memory_mb: 2048,
      vcpus: 1,
      root_gb: 20,
      ephemeral_gb: 0,
      architecture: 'x86_64',
      root_device_name: '/dev/vda',
      config_drive: '',
      locked: 0,
      progress: 0,
      hidden: 0,
      vm_state: i.deleted ? 'deleted' : 'active',
      power_state: i.deleted ? 0 : 1,
      task_state: null,
      created_at: BUILT,
      updated_at: i.deleted ? DELETED : LAUNCHED,
      launched_at: LAUNCHED,
      terminated_at: i.deleted ? DELETED : null,
      deleted_at: i.deleted ? DELETED : null,
      deleted: i.deleted ? i.id : 0,
      cleaned: i.deleted ? 1 : 0,
    })),
  );
  let id = 0;
  const bdm = (row: Row): Row => ({ id: ++id, created_at: LAUNCHED, updated_at: LAUNCHED, device_type: 'disk', disk_bus: 'virtio', no_device: 0, encrypted: 0, ...row });
  const rows: Row[] = INSTANCES.map((i) => {
    const root = bdm({ instance_uuid: i.uuid, uuid: stableUuid(`bdm root ${i.uuid}`), source_type: 'image', destination_type: 'local', boot_index: 0, device_name: '/dev/vda', delete_on_termination: 1, image_id: IMAGE });
    // A deleted instance's mappings are soft-deleted with it.
    return { ...root, deleted: i.deleted ? root.id : 0, deleted_at: i.deleted ? DELETED : null };
  });
  for (const v of VOLUMES) {
    const inst = attachedTo(v);
    if (inst === undefined || v.deleted) continue;
    rows.push(
      bdm({
        instance_uuid: inst.uuid,
        uuid: stableUuid(`bdm ${v.id}`),
        source_type: 'volume',
        destination_type: 'volume',
        boot_index: null,
        device_name: v.mountpoint,
        delete_on_termination: 0,
        volume_id: v.id,
        volume_size: v.size,
        connection_info: connectionInfo(v),
        attachment_id: attachmentOf(v),
        deleted: 0,
      }),
    );
  }
  // A volume attached once to web-1 and detached since: nova soft-deletes the mapping (deleted = id).
  const web1 = INSTANCES.find((i) => i.displayName === 'web-1')!;
  const spare = VOLUMES.find((v) => v.displayName === 'spare')!;
  const detachedId = id + 1;
  rows.push(bdm({ instance_uuid: web1.uuid, uuid: stableUuid(`bdm detached ${spare.id}`), source_type: 'volume', destination_type: 'volume', device_name: '/dev/vdc', delete_on_termination: 0, volume_id: spare.id, volume_size: spare.size, attachment_id: stableUuid(`attachment detached ${spare.id}`), deleted: detachedId, deleted_at: DELETED }));
  await insert(conn, 'block_device_mapping', rows);
}

function volumeRow(v: SiteVolume): Row {
  const inst = v.deleted ? undefined : attachedTo(v);
  return {
    id: v.id,
    display_name: v.displayName,
    user_id: USERS.demo,
    project_id: PROJECTS.demo,
    host: 'controller@lvm#LVM',
    size: v.size,
    availability_zone: 'nova',
    status: v.deleted ? 'deleted' : inst ? 'in-use' : 'available',
    attach_status: inst ? 'attached' : 'detached',
    volume_type_id: DEFAULT_VOLUME_TYPE,
    bootable: 0,
    provider_location: `10.100.1.10:3260,1 iqn.2010-10.org.openstack:volume-${v.id} 0`,
    created_at: BUILT,
    updated_at: v.deleted ? DELETED : LAUNCHED,
    launched_at: BUILT,
    deleted: v.deleted ? 1 : 0,
    deleted_at: v.deleted ? DELETED : null,
    terminated_at: v.deleted ? DELETED : null,
  };
}

/** cinder as of Kilo and later: the attachment in volume_attachment (one soft-deleted, detached). */
async function seedCinder(conn: mysql.Connection): Promise<void> {
  const service = (id: number, host: string, binary: string): Row => ({
    id,
    uuid: binary === 'cinder-volume' ? CINDER_VOLUME_SERVICE : stableUuid(`cinder service ${host} ${binary}`),
    host,
    binary,
    topic: binary,
    report_count: 4_242,
    disabled: 0,
    availability_zone: 'nova',
    created_at: BUILT,
    updated_at: new Date(),
    deleted: 0,
  });
  await insert(conn, 'services', [service(1, 'controller', 'cinder-scheduler'), service(2, 'controller@lvm', 'cinder-volume')]);
  await insert(
    conn,
    'volumes',
    VOLUMES.map((v) => ({ ...volumeRow(v), service_uuid: CINDER_VOLUME_SERVICE, multiattach: 0, shared_targets: 0, use_quota: 1 })),
  );
  const rows: Row[] = [];
  for (const v of VOLUMES) {
    const inst = attachedTo(v);
    if (inst === undefined || v.deleted) continue;
    rows.push({
      id: attachmentOf(v),
      volume_id: v.id,
      instance_uuid: inst.uuid,
      attached_host: inst.compute,
      mountpoint: v.mountpoint,
      attach_time: LAUNCHED,
      attach_mode: 'rw',
      attach_status: 'attached',
      connection_info: connectionInfo(v),
      connector: connector(inst.compute),
      created_at: LAUNCHED,
      updated_at: LAUNCHED,
      deleted: 0,
    });
  }
  const web1 = INSTANCES.find((i) => i.displayName === 'web-1')!;
  const spare = VOLUMES.find((v) => v.displayName === 'spare')!;
  // VolumeAttachment.delete_values(): deleted, detached, with the detach time.
  rows.push({ id: stableUuid(`attachment detached ${spare.id}`), volume_id: spare.id, instance_uuid: web1.uuid, attached_host: web1.compute, mountpoint: '/dev/vdc', attach_time: LAUNCHED, detach_time: DELETED, attach_mode: 'rw', attach_status: 'detached', created_at: LAUNCHED, updated_at: DELETED, deleted: 1, deleted_at: DELETED });
  await insert(conn, 'volume_attachment', rows);
}

/** cinder before Kilo: the attachment is columns of the volume itself. */
async function seedJunoCinder(conn: mysql.Connection): Promise<void> {
  await insert(
    conn,
    'volumes',
    VOLUMES.map((v) => {
      const inst = v.deleted ? undefined : attachedTo(v);
      return { ...volumeRow(v), instance_uuid: inst?.uuid ?? null, attached_host: inst?.compute ?? null, mountpoint: inst ? v.mountpoint : null, attach_time: inst ? LAUNCHED : null };
    }),
  );
}

/**
 * neutron: one tenant network on a VXLAN segment, a port per live instance bound (ML2/OVS) to its
 * compute node, a distributed router's interface (DVR: one binding per compute node), and web-1's
 * port with a second, INACTIVE binding to c02 left by a live migration that did not complete
 * (multiple port bindings, neutron ≥ Rocky).
 */
async function seedNeutron(conn: mysql.Connection): Promise<void> {
  const live = INSTANCES.filter((i) => !i.deleted);
  const web1 = live.find((i) => i.displayName === 'web-1')!;
  let attr = 0;
  const standard: Row[] = [];
  const withAttr = (resource: string, row: Row): Row => {
    standard.push({ id: ++attr, resource_type: resource, description: '', revision_number: 3, created_at: BUILT, updated_at: LAUNCHED });
    return { ...row, standard_attr_id: attr };
  };
  const network = withAttr('networks', { id: NETWORK, project_id: PROJECTS.demo, name: 'private', status: 'ACTIVE', admin_state_up: 1, mtu: 1450 });
  const segment = withAttr('networksegments', { id: SEGMENT, network_id: NETWORK, network_type: 'vxlan', physical_network: null, segmentation_id: 1001, is_dynamic: 0, segment_index: 0 });
  const ports = [
    ...live.map((i) => withAttr('ports', { id: portOf(i.uuid), project_id: PROJECTS.demo, name: '', network_id: NETWORK, mac_address: macOf(`mac ${i.uuid}`), admin_state_up: 1, status: 'ACTIVE', device_id: i.uuid, device_owner: 'compute:nova' })),
    withAttr('ports', { id: ROUTER_PORT, project_id: PROJECTS.demo, name: '', network_id: NETWORK, mac_address: macOf('mac router'), admin_state_up: 1, status: 'ACTIVE', device_id: ROUTER, device_owner: 'network:router_interface_distributed' }),
  ];
  await insert(conn, 'standardattributes', standard);
  await insert(conn, 'networks', [network]);
  await insert(conn, 'networksegments', [segment]);
  await insert(conn, 'ports', ports);
  const vifDetails = JSON.stringify({ connectivity: 'l2', port_filter: true, ovs_hybrid_plug: false, datapath_type: 'system', bridge_name: 'br-int' });
  await insert(conn, 'ml2_port_bindings', [
    ...live.map((i) => ({ port_id: portOf(i.uuid), host: i.compute, vnic_type: 'normal', profile: '', vif_type: 'ovs', vif_details: vifDetails, status: 'ACTIVE' })),
    { port_id: portOf(web1.uuid), host: 'c02', vnic_type: 'normal', profile: JSON.stringify({ migrating_to: 'c02' }), vif_type: 'ovs', vif_details: vifDetails, status: 'INACTIVE' },
    { port_id: ROUTER_PORT, host: '', vnic_type: 'normal', profile: '', vif_type: 'distributed', vif_details: '', status: 'ACTIVE' },
  ]);
  await insert(conn, 'ml2_port_binding_levels', [
    ...live.map((i) => ({ port_id: portOf(i.uuid), host: i.compute, level: 0, driver: 'openvswitch', segment_id: SEGMENT })),
    { port_id: portOf(web1.uuid), host: 'c02', level: 0, driver: 'openvswitch', segment_id: SEGMENT },
    ...COMPUTES.map((c) => ({ port_id: ROUTER_PORT, host: c, level: 0, driver: 'openvswitch', segment_id: SEGMENT })),
  ]);
  await insert(
    conn,
    'ml2_distributed_port_bindings',
    COMPUTES.map((c) => ({ port_id: ROUTER_PORT, host: c, router_id: ROUTER, vif_type: 'ovs', vif_details: vifDetails, vnic_type: 'normal', profile: '', status: 'ACTIVE' })),
  );
}

/**
 * Drops and recreates the lab's databases with the real tables and seed rows. `cinder` chooses the
 * cinder shape: `current` (Kilo and later, volume_attachment) or `pre-kilo` (Juno's volumes).
 */
export async function seedDatabases(serverUrl: string, names: LabDatabases, cinder: CinderSchema = 'current'): Promise<void> {
  const conn = await mysql.createConnection({ uri: serverUrl });
  try {
    for (const db of Object.values(names)) {
      await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await conn.query(`CREATE DATABASE \`${db}\` DEFAULT CHARACTER SET utf8mb3`);
    }
    await conn.query(`USE \`${names.nova}\``);
    for (const ddl of NOVA_TABLES) await conn.query(ddl);
    await seedNova(conn);
    await conn.query(`USE \`${names.cinder}\``);
    if (cinder === 'pre-kilo') {
      await conn.query(CINDER_JUNO_VOLUMES);
      await seedJunoCinder(conn);
    } else {
      for (const ddl of CINDER_TABLES) await conn.query(ddl);
      await seedCinder(conn);
    }
    await conn.query(`USE \`${names.neutron}\``);
    for (const ddl of NEUTRON_TABLES) await conn.query(ddl);
    await seedNeutron(conn);
  } finally {
    await conn.end();
  }
}

export async function dropDatabases(serverUrl: string, names: LabDatabases): Promise<void> {
  const conn = await mysql.createConnection({ uri: serverUrl });
  try {
    for (const db of Object.values(names)) await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
  } finally {
    await conn.end();
  }
}
