import { describe, expect, it } from 'vitest';
import { Inventory } from '../../../src/inventory.js';
import { UsageError } from '../../../src/errors.js';
import { defaultCatalog } from '../../../src/procedures/index.js';
import { commandRisk, exec } from '../../../src/procedures/ops.js';
import { tokenizeRest } from '../../../src/procedures/catalog.js';
import { fixtureConfig } from '../../helpers/fixtures.js';

const cfg = fixtureConfig();
const inv = new Inventory(cfg.hosts);
const catalog = defaultCatalog();

describe('ops exec command line', () => {
  it('takes everything after -- verbatim as the command', () => {
    expect(catalog.parse('ops exec node-[1-3] -- uptime', inv).args).toEqual({ targets: 'node-[1-3]', command: 'uptime' });
    expect(catalog.parse(`ops exec @ovs!node-3 -- mount | grep "vpool 1" ; echo '$HOME'`, inv).args).toEqual({ targets: '@ovs!node-3', command: `mount | grep "vpool 1" ; echo '$HOME'` });
    expect(catalog.parse('ops exec node-1 --   ovs monitor services  ', inv).args.command).toBe('ovs monitor services');
    expect(catalog.parse('ops exec --targets c[01-02] -- df -h', inv).args).toEqual({ targets: 'c[01-02]', command: 'df -h' });
  });

  it('takes a one-word command without --', () => {
    expect(catalog.parse('ops exec node-1 uptime', inv).args).toEqual({ targets: 'node-1', command: 'uptime' });
  });

  it('a quoted -- is an ordinary word', () => {
    expect(tokenizeRest(`a "--" b -- c "d"`)).toEqual({ words: ['a', '--', 'b'], rest: 'c "d"' });
  });

  it('refuses a missing command and internal arguments', () => {
    expect(() => catalog.parse('ops exec node-1 --', inv)).toThrow(/missing <command>/);
    expect(() => catalog.parse('ops exec node-1 --risk read -- reboot', inv)).toThrow(/set by the bot/);
    expect(() => catalog.parse('ops exec node-1 --command x -- y', inv)).toThrow(UsageError);
  });

  it('leaves -- alone for procedures without a rest argument', () => {
    expect(() => catalog.parse('ovs flush node-3 -- x', inv)).toThrow(/too many arguments: "--"/);
  });
});

describe('ops exec risk', () => {
  const none = {};
  it('reads the default allowlist over the whole command', () => {
    for (const c of ['uptime', 'df -h', 'service ovs-workers status', 'rabbitmqctl cluster_status', 'mount | grep vpool1', 'systemctl status nginx', "systemctl list-units 'ovs-*' --all --no-legend --plain", 'initctl list', 'initctl status ovs-workers', 'sv status courier-authdaemon', 'ovs config list /ovs/arakoon', 'openstack compute service list']) {
      expect(commandRisk(c, none), c).toEqual({ risk: 'read' });
    }
    // Not read-only by default: `ovs monitor services` never ends (an endless watch loop in every
    // release), and `nova-manage service list` is gone since nova 14.0.0; as ad-hoc commands they
    // need an approval like any other.
    for (const c of ['ovs monitor services', 'nova-manage service list']) expect(commandRisk(c, none), c).toEqual({ risk: 'destructive' });
    for (const c of ['uptime; reboot', 'uptime && rm -f x', 'df -h > /etc/x', 'service ovs-workers restart', 'echo $(reboot)', 'service x status\nreboot', 'mount /dev/sdb /mnt']) {
      expect(commandRisk(c, none), c).toEqual({ risk: 'destructive' });
    }
  });

  it('refuses the default denylist', () => {
    for (const c of ['rm -rf /', 'sudo rm -rf --no-preserve-root /', 'mkfs.ext4 /dev/sdb', 'dd if=/dev/zero of=/dev/sda bs=1M', ':(){ :|:& };:']) {
      expect(commandRisk(c, none), c).toHaveProperty('forbidden');
    }
    expect(commandRisk('rm -rf /tmp/x', none)).toEqual({ risk: 'destructive' });
  });

  it('uses the config lists instead of the defaults', () => {
    const policy = { readOnlyCommands: ['cat /etc/hosts'], forbiddenCommands: ['.*reboot.*'] };
    expect(commandRisk('cat /etc/hosts', policy)).toEqual({ risk: 'read' });
    expect(commandRisk('uptime', policy)).toEqual({ risk: 'destructive' });
    expect(commandRisk('shutdown -r now; reboot', policy)).toHaveProperty('forbidden');
    // A multi-line command is never read-only, whatever a pattern allows.
    expect(commandRisk('cat /etc/hosts\nreboot', { readOnlyCommands: ['(.|\\n)*'] })).toEqual({ risk: 'destructive' });
  });

  it('resolve expands the targets and sets the risk; a forbidden command is refused by the guard', async () => {
    const tools = { inventory: inv, policy: cfg.policy, query: async () => [] };
    expect(await exec.resolve!({ targets: '@ovs-master', command: 'uptime' }, tools)).toMatchObject({ hosts: ['node-1', 'node-2', 'node-3'], risk: 'read' });
    const bad = await exec.resolve!({ targets: 'node-1', command: 'rm -rf /' }, tools);
    expect(bad.risk).toBe('forbidden');
    const ctx = { args: bad } as Parameters<NonNullable<typeof exec.guard>>[0];
    expect(exec.guard!(ctx)).toMatch(/forbidden by the policy/);
    await expect(exec.resolve!({ targets: 'node-9', command: 'uptime' }, tools)).rejects.toThrow(/unknown host "node-9"/);
  });
});
