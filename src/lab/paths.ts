import { join } from 'node:path';
import { runtime } from './tool-runtime.js';

/**
 * Where everything of a lab lives. Host directories (`hosts/<host>/`, owned by the lab user) follow
 * the layout of tools/runtime.cjs; everything else is owned by whoever started the lab.
 */
export function labPaths(dir: string) {
  return {
    /** The Lab, as JSON: present while the lab is up. */
    labJson: join(dir, 'lab.json'),
    config: join(dir, 'runbook.yaml'),
    /** One symlink per simulated tool; first on the sessions' PATH. */
    bin: join(dir, 'bin'),
    /** Copy of src/lab/tools, so a running lab does not depend on the source tree. */
    tools: join(dir, 'tools'),
    client: join(dir, 'client'),
    privateKey: join(dir, 'client', 'id_ed25519'),
    knownHosts: join(dir, 'client', 'known_hosts'),
    authorizedKeys: join(dir, 'client', 'authorized_keys'),
    hosts: join(dir, 'hosts'),
    /** sshd pid files and logs; owned by the lab user, who runs sshd. */
    run: join(dir, 'run'),
    hostDir: (host: string) => runtime.hostDir(dir, host),
    hostKey: (host: string) => join(runtime.hostDir(dir, host), 'ssh_host_ed25519_key'),
    sshdConfig: (host: string) => join(runtime.hostDir(dir, host), 'sshd_config'),
    pidFile: (host: string) => join(dir, 'run', `${host}.pid`),
    sshdLog: (host: string) => join(dir, 'run', `${host}.log`),
    /** The OpenStack API double's output, and its requests (one JSON line each). */
    openstackOut: join(dir, 'run', 'openstack-api.out'),
    openstackLog: join(dir, 'run', 'openstack-api.log'),
  };
}
