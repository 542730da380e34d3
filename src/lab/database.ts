import mysql from 'mysql2/promise';
import { computeFqdn, INSTANCES, instanceName, stableUuid, VOLUMES } from './site.js';
import type { LabDatabases } from './types.js';

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

const PROJECT = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const USER = '0f9e8d7c6b5a49382716f5e4d3c2b1a0';

/** Tables shaped like OpenStack's: the columns the runbooks read and write, not every column. */
const NOVA_SCHEMA = `
CREATE TABLE instances (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  uuid VARCHAR(36) NOT NULL UNIQUE,
  display_name VARCHAR(255),
  hostname VARCHAR(255),
  host VARCHAR(255),
  node VARCHAR(255),
  vm_state VARCHAR(255),
  power_state INT,
  task_state VARCHAR(255),
  project_id VARCHAR(255),
  user_id VARCHAR(255),
  created_at DATETIME,
  updated_at DATETIME,
  deleted_at DATETIME,
  deleted INT DEFAULT 0,
  KEY instances_host_deleted_idx (host, deleted)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const CINDER_SCHEMA = `
CREATE TABLE volumes (
  id VARCHAR(36) NOT NULL PRIMARY KEY,
  display_name VARCHAR(255),
  status VARCHAR(255),
  attach_status VARCHAR(255),
  instance_uuid VARCHAR(36),
  instance_id INT,
  mountpoint VARCHAR(255),
  host VARCHAR(255),
  size INT,
  created_at DATETIME,
  updated_at DATETIME,
  deleted_at DATETIME,
  deleted INT DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

const NEUTRON_SCHEMA = [
  `CREATE TABLE ml2_port_bindings (
  port_id VARCHAR(36) NOT NULL,
  host VARCHAR(255) NOT NULL DEFAULT '',
  vif_type VARCHAR(64) NOT NULL,
  vnic_type VARCHAR(64) NOT NULL DEFAULT 'normal',
  profile VARCHAR(4095) NOT NULL DEFAULT '',
  vif_details VARCHAR(4095) NOT NULL DEFAULT '',
  status VARCHAR(16) NOT NULL DEFAULT 'ACTIVE',
  PRIMARY KEY (port_id, host)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  `CREATE TABLE ml2_port_binding_levels (
  port_id VARCHAR(36) NOT NULL,
  host VARCHAR(255) NOT NULL,
  level INT NOT NULL,
  driver VARCHAR(64),
  segment_id VARCHAR(36),
  PRIMARY KEY (port_id, host, level)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
];

function instanceRows(): unknown[][] {
  return INSTANCES.map((i) => {
    const fqdn = computeFqdn(i.compute);
    return [
      i.id,
      i.uuid,
      i.displayName,
      i.displayName,
      fqdn,
      fqdn,
      i.deleted ? 'deleted' : 'active',
      i.deleted ? 0 : 1,
      null,
      PROJECT,
      USER,
      '2012-06-19 00:48:11',
      '2012-07-03 00:35:11',
      i.deleted ? '2012-07-01 09:00:00' : null,
      i.deleted ? 1 : 0,
    ];
  });
}

/** The site's volumes: two in use by instances on c01 (at /dev/vdb and /dev/vdc), one available. */
function volumeRows(): unknown[][] {
  return VOLUMES.map((v) => {
    if (v.instance === undefined) return [v.id, v.displayName, 'available', 'detached', null, null, null, 'controller@lvm#LVM', v.size, 0];
    const inst = INSTANCES.find((i) => instanceName(i.id) === v.instance);
    if (inst === undefined) throw new Error(`no seeded instance ${v.instance}`);
    return [v.id, v.displayName, 'in-use', 'attached', inst.uuid, inst.id, v.mountpoint, 'controller@lvm#LVM', v.size, 0];
  });
}

/** A port per live instance, bound to the instance's compute node. */
function portRows(): { bindings: unknown[][]; levels: unknown[][] } {
  const live = INSTANCES.filter((i) => !i.deleted);
  const segment = stableUuid('segment physnet1');
  return {
    bindings: live.map((i) => [stableUuid(`port ${i.uuid}`), computeFqdn(i.compute), 'ovs', 'normal', '{}', '{"port_filter": true, "ovs_hybrid_plug": true}', 'ACTIVE']),
    levels: live.map((i) => [stableUuid(`port ${i.uuid}`), computeFqdn(i.compute), 0, 'openvswitch', segment]),
  };
}

/** Drops and recreates the lab's databases with their tables and seed rows. */
export async function seedDatabases(serverUrl: string, names: LabDatabases): Promise<void> {
  const conn = await mysql.createConnection({ uri: serverUrl });
  try {
    for (const db of Object.values(names)) {
      await conn.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await conn.query(`CREATE DATABASE \`${db}\` DEFAULT CHARACTER SET utf8mb4`);
    }
    await conn.query(`USE \`${names.nova}\``);
    await conn.query(NOVA_SCHEMA);
    await conn.query(
      'INSERT INTO instances (id, uuid, display_name, hostname, host, node, vm_state, power_state, task_state, project_id, user_id, created_at, updated_at, deleted_at, deleted) VALUES ?',
      [instanceRows()],
    );
    await conn.query(`USE \`${names.cinder}\``);
    await conn.query(CINDER_SCHEMA);
    await conn.query('INSERT INTO volumes (id, display_name, status, attach_status, instance_uuid, instance_id, mountpoint, host, size, deleted) VALUES ?', [volumeRows()]);
    await conn.query(`USE \`${names.neutron}\``);
    for (const ddl of NEUTRON_SCHEMA) await conn.query(ddl);
    const ports = portRows();
    await conn.query('INSERT INTO ml2_port_bindings (port_id, host, vif_type, vnic_type, profile, vif_details, status) VALUES ?', [ports.bindings]);
    await conn.query('INSERT INTO ml2_port_binding_levels (port_id, host, level, driver, segment_id) VALUES ?', [ports.levels]);
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
