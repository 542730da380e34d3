import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/errors.js';
import { Inventory } from '../../../src/inventory.js';
import { tokenize } from '../../../src/procedures/catalog.js';
import { defaultCatalog } from '../../../src/procedures/index.js';
import { fixtureConfig } from '../../helpers/fixtures.js';

const catalog = defaultCatalog();
const inventory = new Inventory(fixtureConfig().hosts);

function usage(text: string): string {
  try {
    catalog.parse(text, inventory);
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error(`"${text}" parsed`);
}

describe('command parsing', () => {
  it('reads positional, --option, option:value (Discord) and option=value forms alike', () => {
    for (const text of ['ovs flush node-3', 'ovs flush --node node-3', 'ovs flush --node=node-3', 'ovs flush node:node-3', 'ovs flush node=node-3']) {
      expect(catalog.parse(text, inventory).args).toEqual({ node: 'node-3' });
    }
  });

  it('suggests the pack or procedure meant', () => {
    expect(usage('ovz flush node-3')).toMatch(/^unknown pack "ovz"; did you mean "ovs"/);
    expect(usage('ovs flsh node-3')).toMatch(/"ovs flsh" is not a procedure; did you mean "ovs flush"\?/);
  });

  it('gives the usage when an argument is missing', () => {
    expect(usage('ovs flush')).toBe('missing <node>\nUsage: ovs flush <node>\nExample: ovs flush node-3');
  });

  it('lists the hosts that fit when the host is unknown, nearest first', () => {
    const msg = usage('ovs flush node-9');
    expect(msg).toMatch(/^unknown host "node-9"; did you mean "node-1"/);
    expect(msg).toMatch(/node-1, node-2, node-3, node-4, node-5, node-6$/);
  });

  it('refuses a host outside the groups the procedure accepts', () => {
    expect(usage('ovs flush c01')).toMatch(/"c01" cannot be the <node> of ovs flush: it is not in @ovs/);
  });

  it('never takes a shell command for a host name', () => {
    expect(usage("ovs flush 'node-3; touch /tmp/pwned'")).toMatch(/^unknown host "node-3; touch \/tmp\/pwned"/);
  });

  it('checks argument formats from the zod schema', () => {
    expect(usage('nova inspect-disk i-274a')).toMatch(/<instance> an instance name looks like instance-0000274a/);
  });

  it('refuses unknown options and extra words', () => {
    expect(usage('ovs flush node-3 --force')).toMatch(/has no option "force"/);
    expect(usage('ovs flush node-3 node-4')).toMatch(/too many arguments: "node-4"/);
  });

  it('splits words like a shell', () => {
    expect(tokenize(`a "b c" 'd e' f\\ g`)).toEqual(['a', 'b c', 'd e', 'f g']);
    expect(() => tokenize('a "b')).toThrow(/unclosed double quote/);
  });

  it('describes every procedure in help', () => {
    expect(catalog.help('ovs')).toMatch(/ovs flush <node>/);
    expect(catalog.help('nova', 'inspect-disk')).toMatch(/e\.g\. nova inspect-disk instance-0000274a/);
  });
});
