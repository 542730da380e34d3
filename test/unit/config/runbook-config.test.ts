import { describe, expect, it } from 'vitest';
import { parseRunbookConfig } from '../../../src/config/runbook-config.js';
import { ConfigError } from '../../../src/errors.js';

const GOOD = `
hosts:
  node-1:
    address: 10.0.0.1
    user: root
    groups: [ovs, ovs-master]
ssh:
  privateKeyPath: keys/id_ed25519
  knownHostsPath: /etc/runbook/known_hosts
databases:
  nova:
    url: mysql://nova:\${NOVA_DB_PASSWORD}@db:3306/nova
people:
  alice: { roles: [operator], slack: U1 }
  bob: { roles: [approver], slack: U2 }
`;

function problems(text: string, env: NodeJS.ProcessEnv = {}) {
  try {
    parseRunbookConfig(text, '/etc/runbook/runbook.yaml', env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('runbook.yaml', () => {
  it('accepts a good file, fills defaults and resolves key paths against its folder', () => {
    const cfg = parseRunbookConfig(GOOD, '/etc/runbook/runbook.yaml', { NOVA_DB_PASSWORD: 's3cret' });
    expect(cfg.hosts['node-1']!.port).toBe(22);
    expect(cfg.ssh.privateKeyPath).toBe('/etc/runbook/keys/id_ed25519');
    expect(cfg.ssh.maxSessions).toBe(10);
    expect(cfg.policy.approvalExpiryMinutes).toBe(15);
    expect(cfg.policy.gate).toEqual(['destructive', 'sensitive']);
    // The secret stays a reference: it is read from the environment only when connecting.
    expect(cfg.databases.nova!.url).toContain('${NOVA_DB_PASSWORD}');
  });

  it('names the path and line of every problem at once', () => {
    const bad = GOOD.replace('address: 10.0.0.1', 'address: 10.0.0.1\n    port: 70000').replace('roles: [approver]', 'roles: []').replace('ssh:', 'sshh: 1\nssh:');
    const p = problems(bad, { NOVA_DB_PASSWORD: 'x' });
    const byPath = Object.fromEntries(p.map((x) => [x.path, x]));
    expect(byPath['hosts.node-1.port']).toMatchObject({ line: 5 });
    expect(byPath['hosts.node-1.port']!.message).toMatch(/65535/);
    expect(byPath['people.bob.roles']).toBeDefined();
    expect(p.find((x) => /unknown key "sshh"/.test(x.message))).toMatchObject({ line: 8 });
  });

  it('says which environment variable a database URL is missing', () => {
    const p = problems(GOOD);
    expect(p).toEqual([expect.objectContaining({ path: 'databases.nova.url', line: 12, message: 'environment variable NOVA_DB_PASSWORD is not set' })]);
  });

  it('refuses a chat user mapped to two people', () => {
    const p = problems(GOOD.replace('slack: U2', 'slack: U1'), { NOVA_DB_PASSWORD: 'x' });
    expect(p[0]).toMatchObject({ path: 'people.bob.slack', message: 'slack user U1 is already mapped to alice' });
  });

  it('reports broken YAML with its line', () => {
    const p = problems('hosts:\n  a: [1, 2\nssh: {}\n');
    expect(p[0]!.path).toBe('(yaml)');
    expect(p[0]!.line).toBe(3);
  });

  it('refuses a policy regular expression that does not compile', () => {
    const p = problems(GOOD + 'policy:\n  readOnlyCommands: ["uptime(", "^df -h$"]\n', { NOVA_DB_PASSWORD: 'x' });
    expect(p).toEqual([expect.objectContaining({ path: 'policy.readOnlyCommands[0]' })]);
    expect(p[0]!.message).toMatch(/not a regular expression/);
  });

  it('takes people\'s e-mail, operating-system users and token hashes, and refuses a token pasted in clear', () => {
    const hash = `scrypt$16384$8$1$${'a'.repeat(22)}$${'b'.repeat(43)}`;
    const cfg = parseRunbookConfig(GOOD.replace('alice: { roles: [operator], slack: U1 }', `alice: { roles: [operator], slack: U1, email: alice@example.com, unix: [alice, root], tokens: [{ id: 0123456789ab, hash: "${hash}" }] }`), '/etc/runbook/runbook.yaml', { NOVA_DB_PASSWORD: 'x' });
    expect(cfg.people.alice).toMatchObject({ email: 'alice@example.com', unix: ['alice', 'root'], tokens: [{ id: '0123456789ab', hash }] });
    const pasted = problems(GOOD.replace('slack: U1 }', 'slack: U1, tokens: [rbk_0123456789ab_secret] }'), { NOVA_DB_PASSWORD: 'x' });
    expect(pasted).toEqual([expect.objectContaining({ path: 'people.alice.tokens[0]', message: expect.stringMatching(/never the token itself/) })]);
  });

  it('refuses one e-mail address or operating-system user mapped to two people', () => {
    const p = problems(GOOD.replace('slack: U1 }', 'slack: U1, email: Bob@example.com, unix: root }').replace('slack: U2 }', 'slack: U2, email: bob@EXAMPLE.com, unix: [bob, root] }'), { NOVA_DB_PASSWORD: 'x' });
    expect(p.map((x) => x.message)).toEqual(['e-mail address bob@example.com is already mapped to alice', 'operating-system user root is already mapped to alice']);
  });
});

describe('runbook.yaml: the OpenStack clients\' credentials (hosts.<name>.vars.openstack)', () => {
  const withVars = (vars: string) => GOOD.replace('    groups: [ovs, ovs-master]', `    groups: [ovs, ovs-master]\n    vars:\n${vars}`);
  const env = { NOVA_DB_PASSWORD: 'x' };

  it('accepts a clouds.yaml entry (with or without its file) or an openrc file, and keeps only the file\'s name', () => {
    for (const vars of ['      openstack: { cloud: prod }', '      openstack: { cloud: prod, cloudsFile: /etc/openstack/clouds.yaml }', '      openstack: { openrc: /root/admin-openrc.sh }\n      swiftRingDir: /etc/swift\n      novaHost: node-1']) {
      expect(() => parseRunbookConfig(withVars(vars), '/etc/runbook/runbook.yaml', env)).not.toThrow();
    }
  });

  it('refuses both kinds at once, a relative path, an unknown key or a bad cloud name, with the path and line', () => {
    const cases: [string, RegExp][] = [
      ['      openstack: { cloud: prod, openrc: /root/openrc }', /one kind of credentials, not both/],
      ['      openstack: { openrc: admin-openrc.sh }', /the openrc file on the host, as an absolute path/],
      ['      openstack: { cloud: prod, cloudsFile: clouds.yaml }', /the clouds.yaml on the host, as an absolute path/],
      ['      openstack: { cloud: prod, password: hunter2 }', /unknown key "password"/],
      ['      openstack: { cloud: "my cloud" }', /the name of the cloud in clouds.yaml/],
      ['      openstack: admin-openrc.sh', /the OpenStack clients' credentials: give either/],
      ['      swiftRingDir: swift', /the ring builder directory, as an absolute path/],
    ];
    for (const [vars, message] of cases) {
      const p = problems(withVars(vars), env);
      expect(p).toHaveLength(1);
      expect(p[0]!.path).toMatch(/^hosts\.node-1\.vars\.(openstack|swiftRingDir)/);
      expect(p[0]!.message).toMatch(message);
      expect(p[0]!.line).toBeGreaterThanOrEqual(6);
    }
  });
});
