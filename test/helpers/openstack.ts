import { existsSync, readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import type { Lab } from '../../src/lab/index.js';
import { labPaths } from '../../src/lab/paths.js';
import { labSsh, type SshResult } from './lab.js';

/** Rows of a query on one of the lab's databases (nova, cinder, neutron). */
export async function query<T = Record<string, unknown>>(lab: Lab, db: 'nova' | 'cinder' | 'neutron', sql: string, params: unknown[] = []): Promise<T[]> {
  const conn = await mysql.createConnection({ uri: lab.mysqlUrl, database: lab.databases[db] });
  try {
    const [rows] = await conn.query(sql, params);
    return rows as T[];
  } finally {
    await conn.end();
  }
}

/** A client command run on the lab's controller with the credentials runbook.yaml names for it, as the procedures run them. */
export function onController(lab: Lab, command: string): Promise<SshResult> {
  const vars = lab.hosts.find((h) => h.name === 'controller')!.vars.openstack as { cloud?: string; cloudsFile?: string; openrc?: string };
  const prefix = vars.openrc ? `. ${vars.openrc} && ` : `export OS_CLOUD=${vars.cloud} OS_CLIENT_CONFIG_FILE=${vars.cloudsFile}; `;
  return labSsh(lab, 'controller', `${prefix}${command}`);
}

export interface ApiRequest {
  method: string;
  path: string;
  status: number;
  version: string | null;
}

/** Every request the lab's OpenStack API double has answered, oldest first. */
export function apiRequests(lab: Lab): ApiRequest[] {
  const log = labPaths(lab.dir).openstackLog;
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ApiRequest);
}

/** What nova, cinder and neutron say of an instance's volumes and ports: live rows only. */
export async function instanceState(lab: Lab, uuid: string) {
  const [instance] = await query<{ host: string; node: string; vm_state: string; task_state: string | null; power_state: number }>(lab, 'nova', 'select host, node, vm_state, task_state, power_state from instances where uuid = ? and deleted = 0', [uuid]);
  const bdms = await query<{ volume_id: string; device_name: string }>(lab, 'nova', "select volume_id, device_name from block_device_mapping where instance_uuid = ? and destination_type = 'volume' and deleted = 0 order by volume_id", [uuid]);
  const bindings = await query<{ host: string; status: string }>(lab, 'neutron', 'select b.host, b.status from ml2_port_bindings b join ports p on p.id = b.port_id where p.device_id = ? order by b.host', [uuid]);
  return { instance, bdms, bindings };
}
