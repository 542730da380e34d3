import { describe, expect, it } from 'vitest';
import { quote, raw, secret, sh } from '../../../src/procedures/shell.js';

describe('sh tagged template', () => {
  it('leaves plain words bare so commands read like the runbook', () => {
    expect(sh`virsh suspend ${30}`.text).toBe('virsh suspend 30');
    expect(sh`qemu-nbd -c /dev/nbd0 ${'/var/lib/nova/instances/instance-0000274a/disk'}`.text).toBe('qemu-nbd -c /dev/nbd0 /var/lib/nova/instances/instance-0000274a/disk');
  });

  it('quotes every shell metacharacter in an interpolated value into one literal word', () => {
    const evil = `node-3; rm -rf / $(reboot) \`halt\` | tee x && y > z 'q' "d" \n`;
    const cmd = sh`ovs vdisk list ${evil}`;
    expect(cmd.text).toBe(`ovs vdisk list 'node-3; rm -rf / $(reboot) \`halt\` | tee x && y > z '\\''q'\\'' "d" \n'`);
  });

  it('quotes an empty string as an empty word', () => {
    expect(quote('')).toBe("''");
  });

  it('joins arrays as separately quoted words', () => {
    expect(sh`service ${['nscd', 'my sql']} stop`.text).toBe("service nscd 'my sql' stop");
  });

  it('shows a secret as *** but runs its value', () => {
    const cmd = sh`mysql -p${secret('hunter2')} -e ${'select 1'}`;
    expect(cmd.text).toBe("mysql -phunter2 -e 'select 1'");
    expect(cmd.display).toBe("mysql -p*** -e 'select 1'");
    expect(JSON.stringify({ c: secret('x') })).toBe('{"c":"***"}');
  });

  it('inserts raw fragments untouched and nests commands', () => {
    const inner = sh`ls ${'a b'}`;
    expect(sh`sudo ${inner} ${raw('| head')}`.text).toBe("sudo ls 'a b' | head");
  });

  it('refuses values that are not text or numbers', () => {
    expect(() => sh`x ${{} as never}`).toThrow(/cannot put a object/);
    expect(() => sh`x ${Number.NaN}`).toThrow(/cannot put NaN/);
  });
});
