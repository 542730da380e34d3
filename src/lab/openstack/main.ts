/**
 * The OpenStack API double as a process of its own, started by `runbook lab up` beside the hosts'
 * sshd (process.ts) and ended with them: `node dist/lab/openstack/main.js <lab dir>`. It reads the
 * lab's lab.json for its port and databases, and the admin password from OS_DOUBLE_PASSWORD.
 */
import { readFileSync } from 'node:fs';
import { labPaths } from '../paths.js';
import type { Lab } from '../types.js';
import { createOpenStackApi } from './api.js';
import { Cloud } from './cloud.js';

async function main(): Promise<void> {
  const dir = process.argv[2];
  const password = process.env.OS_DOUBLE_PASSWORD;
  if (!dir || !password) throw new Error('usage: OS_DOUBLE_PASSWORD=… node main.js <lab dir>');
  const lab = JSON.parse(readFileSync(labPaths(dir).labJson, 'utf8')) as Lab;
  const cloud = new Cloud({ mysqlUrl: lab.mysqlUrl, databases: lab.databases, labDir: dir, timeScale: lab.openstack.timeScale });
  await cloud.start();
  const server = createOpenStackApi({ cloud, password, logFile: labPaths(dir).openstackLog });
  const stop = () => {
    server.close();
    void cloud.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  server.listen(lab.openstack.port, '127.0.0.1', () => process.stdout.write(`listening on 127.0.0.1:${lab.openstack.port}\n`));
}

main().catch((err: unknown) => {
  process.stderr.write(`openstack double: ${(err as Error).stack}\n`);
  process.exit(1);
});
