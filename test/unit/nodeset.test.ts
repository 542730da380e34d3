import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { Inventory } from '../../src/inventory.js';
import { expandNodeSet, expandPattern, foldNodeSet, parseNodeSet } from '../../src/nodeset.js';
import { fixtureConfig } from '../helpers/fixtures.js';

const inv = new Inventory(fixtureConfig().hosts);
const names = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i + 1));
const big = new Inventory(Object.fromEntries(names(12, (i) => `lab-${String(i).padStart(3, '0')}`).map((n) => [n, { address: '127.0.0.1', port: 22, user: 'lab', groups: ['generic'], vars: {} }])));

function usage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a UsageError');
}

describe('node set ranges', () => {
  it('expands ranges, comma lists inside brackets and steps', () => {
    expect(expandPattern('node-[1-3,5]')).toEqual(['node-1', 'node-2', 'node-3', 'node-5']);
    expect(expandPattern('node-[1-9/4]')).toEqual(['node-1', 'node-5', 'node-9']);
    expect(expandPattern('node-7')).toEqual(['node-7']);
  });

  it('keeps zero padding from the lower bound', () => {
    expect(expandPattern('c[01-02]')).toEqual(['c01', 'c02']);
    expect(expandPattern('lab-[008-011]')).toEqual(['lab-008', 'lab-009', 'lab-010', 'lab-011']);
    expect(expandPattern('n[9-10]')).toEqual(['n9', 'n10']);
  });

  it('expands several ranges in one name as a product', () => {
    expect(expandPattern('r[1-2]n[01-02]')).toEqual(['r1n01', 'r1n02', 'r2n01', 'r2n02']);
  });

  it('refuses malformed ranges with a UsageError', () => {
    expect(usage(() => parseNodeSet('node-[1-3'))).toMatch(/unclosed "\["/);
    expect(usage(() => parseNodeSet('node-1-3]'))).toMatch(/"\]" without "\["/);
    expect(usage(() => parseNodeSet('node-[3-1]'))).toMatch(/runs backwards/);
    expect(usage(() => parseNodeSet('node-[a-c]'))).toMatch(/not a range list/);
    expect(usage(() => parseNodeSet('node-[]'))).toMatch(/empty "\[\]"/);
    expect(usage(() => parseNodeSet('node-1,,node-2'))).toMatch(/empty name/);
    expect(usage(() => parseNodeSet(''))).toMatch(/say which hosts/);
    expect(usage(() => parseNodeSet('node-[1-99999999]'))).toMatch(/more than/);
    expect(usage(() => parseNodeSet('node;reboot'))).toMatch(/not a host name/);
  });
});

describe('node sets against the inventory', () => {
  it('expands names, ranges and comma lists in inventory order', () => {
    expect(expandNodeSet('node-[1-3]', inv)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(expandNodeSet('c[01-02],node-5,controller', inv)).toEqual(['node-5', 'controller', 'c01', 'c02']);
    expect(expandNodeSet(' node-1 , node-1 ', inv)).toEqual(['node-1']);
  });

  it('expands groups, @all and exclusion, left to right', () => {
    expect(expandNodeSet('@ovs-master', inv)).toEqual(['node-1', 'node-2', 'node-3']);
    expect(expandNodeSet('@ovs!node-3', inv)).toEqual(['node-1', 'node-2', 'node-4', 'node-5', 'node-6']);
    expect(expandNodeSet('@ovs!node-[1-4],c01', inv)).toEqual(['node-5', 'node-6', 'c01']);
    expect(expandNodeSet('@ovs!@ovs-master', inv)).toEqual(['node-4', 'node-5', 'node-6']);
    expect(expandNodeSet('@ovs&node-[3-4],c02', inv)).toEqual(['node-3', 'node-4', 'c02']);
    expect(expandNodeSet('@ovs-master^node-[3-4]', inv)).toEqual(['node-1', 'node-2', 'node-4']);
    expect(expandNodeSet('@all', inv)).toHaveLength(9);
  });

  it('names the nearest hosts for an unknown name', () => {
    const m = usage(() => expandNodeSet('node-33', inv));
    expect(m).toMatch(/unknown host "node-33"/);
    expect(m).toMatch(/did you mean "node-3"/);
    expect(m).toMatch(/The hosts are: node-1, node-2/);
  });

  it('names every unknown host of a range, folded', () => {
    const m = usage(() => expandNodeSet('node-[5-9]', inv));
    expect(m).toMatch(/unknown hosts node-\[7-9\] \(3\)/);
  });

  it('names the nearest groups for an unknown group', () => {
    const m = usage(() => expandNodeSet('@ovs-masters', inv));
    expect(m).toMatch(/no group "@ovs-masters"/);
    expect(m).toMatch(/did you mean "@ovs-master"/);
    expect(m).toMatch(/Groups: .*@compute/);
  });

  it('refuses a set that excludes everything it names', () => {
    expect(usage(() => expandNodeSet('node-[1-2]!@ovs-master', inv))).toMatch(/leaves no host/);
  });

  it('folds a large inventory in the error message', () => {
    const m = usage(() => expandNodeSet('lab-0013', big));
    expect(m).toMatch(/did you mean "lab-001"/);
  });
});

describe('folding names into a node set', () => {
  it('folds consecutive numbers into ranges', () => {
    expect(foldNodeSet(['node-1', 'node-2', 'node-3', 'node-5'])).toBe('node-[1-3,5]');
    expect(foldNodeSet(['node-5', 'node-1', 'node-3', 'node-2'])).toBe('node-[1-3,5]');
    expect(foldNodeSet(['node-3'])).toBe('node-3');
    expect(foldNodeSet(['node-9', 'node-10', 'node-11'])).toBe('node-[9-11]');
  });

  it('keeps zero padding', () => {
    expect(foldNodeSet(['c01', 'c02'])).toBe('c[01-02]');
    expect(foldNodeSet(names(12, (i) => `lab-${String(i).padStart(3, '0')}`))).toBe('lab-[001-012]');
    expect(foldNodeSet(['c09', 'c10', 'c12'])).toBe('c[09-10,12]');
  });

  it('keeps names of different shapes apart', () => {
    expect(foldNodeSet(['controller', 'c01', 'node-1', 'c02', 'node-2', 's01'])).toBe('controller,c[01-02],node-[1-2],s01');
    expect(foldNodeSet(['r1n1', 'r1n2', 'r2n1'])).toBe('r1n[1-2],r2n1');
  });

  it('round-trips through expansion', () => {
    const list = ['node-1', 'node-2', 'node-4', 'node-5', 'node-6'];
    expect(expandNodeSet(foldNodeSet(list), inv)).toEqual(list);
    expect(expandPattern(foldNodeSet(['c01', 'c02']))).toEqual(['c01', 'c02']);
  });
});
