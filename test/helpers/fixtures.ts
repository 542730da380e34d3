import { parseRunbookConfig, type RunbookConfig } from '../../src/config/runbook-config.js';

/** A small site shaped like the lab's, for tests that touch no network. */
export function fixtureConfig(extra = ''): RunbookConfig {
  const hosts = [
    ...[1, 2, 3, 4, 5, 6].map((n) => `  node-${n}: { address: 127.0.0.${10 + n}, port: 2222, user: lab, groups: [ovs, ${n <= 3 ? 'ovs-master' : 'ovs-extra'}], vars: { ip: 10.100.1.${n} } }`),
    '  controller: { address: 127.0.0.20, port: 2222, user: lab, groups: [openstack, controller] }',
    '  c01: { address: 127.0.0.21, port: 2222, user: lab, groups: [openstack, compute], vars: { fqdn: c01.example.com } }',
    '  c02: { address: 127.0.0.22, port: 2222, user: lab, groups: [openstack, compute], vars: { fqdn: c02.example.com } }',
  ].join('\n');
  return parseRunbookConfig(
    `hosts:\n${hosts}\nssh: { privateKeyPath: /nonexistent/id, knownHostsPath: /nonexistent/known_hosts }\ndatabases:\n  nova: { url: "mysql://root@127.0.0.1:3306/nova" }\npeople:\n  alice: { roles: [operator] }\n  bob: { roles: [operator, approver] }\n  carol: { roles: [approver] }\n  dave: { roles: [viewer] }\n${extra}`,
    '/tmp/fixture/runbook.yaml',
    {},
  );
}
