import { describe, expect, it } from 'vitest';
import { checkInvocation, type InvocationInput, type InvocationPlace } from '../../src/access/invocation.js';
import type { MemberAccessPolicy } from '../../src/access/model.js';

type Who = 'account' | 'no-account' | 'role' | 'guest-account' | 'guest' | 'unknown';
const people: Record<Who, InvocationInput['member']> = {
  account: { hasAccount: true, isGuest: false, roles: ['eng'] },
  'no-account': { hasAccount: false, isGuest: false, roles: [] },
  role: { hasAccount: true, isGuest: false, roles: ['ops'] },
  'guest-account': { hasAccount: true, isGuest: true, roles: ['ops'] },
  guest: { hasAccount: false, isGuest: true, roles: ['ops'] },
  unknown: undefined,
};
const org = (memberAccess: MemberAccessPolicy, extra: Partial<InvocationInput['org']> = {}): InvocationInput['org'] => ({
  memberAccess,
  memberAccessRoles: ['ops'],
  dmsAllowed: true,
  zeroDataRetention: false,
  ...extra,
});

// [policy, who, place, expected: identity when allowed, or the denial reason]
const table: Array<[MemberAccessPolicy, Who, InvocationPlace, string]> = [];
for (const place of ['channel', 'dm'] as const) {
  const ok = place === 'dm' ? 'member' : 'agent';
  table.push(
    ['anyone', 'account', place, ok],
    ['anyone', 'no-account', place, ok],
    ['anyone', 'role', place, ok],
    ['anyone', 'guest-account', place, ok],
    ['anyone', 'guest', place, 'not-a-member'],
    ['anyone', 'unknown', place, 'unknown-member'],
    ['members', 'account', place, ok],
    ['members', 'no-account', place, 'not-a-member'],
    ['members', 'role', place, ok],
    ['members', 'guest-account', place, ok],
    ['members', 'guest', place, 'not-a-member'],
    ['members', 'unknown', place, 'unknown-member'],
    ['roles', 'account', place, 'role-required'],
    ['roles', 'no-account', place, 'not-a-member'],
    ['roles', 'role', place, ok],
    ['roles', 'guest-account', place, ok],
    ['roles', 'guest', place, 'not-a-member'],
    ['roles', 'unknown', place, 'unknown-member'],
  );
}
for (const policy of ['anyone', 'members', 'roles'] as const) {
  for (const who of Object.keys(people) as Who[]) table.push([policy, who, 'group-dm', 'group-dm-unsupported']);
}

describe('checkInvocation', () => {
  it.each(table)('%s / %s / %s -> %s', (policy, who, place, expected) => {
    const result = checkInvocation({ org: org(policy), member: people[who], place });
    if (expected === 'agent' || expected === 'member') expect(result).toEqual({ allowed: true, identity: expected });
    else {
      expect(result).toMatchObject({ allowed: false, reason: expected });
      if (!result.allowed) {
        expect(result.message.length).toBeGreaterThan(10);
        expect(result.visibility).toBe(expected === 'group-dm-unsupported' ? 'thread' : 'private');
      }
    }
  });

  it.each(['anyone', 'members', 'roles'] as const)('DMs off (%s): every DM is refused with a message saying an admin turned them off; channels unaffected', (policy) => {
    for (const who of ['account', 'role', 'no-account'] as Who[]) {
      const dm = checkInvocation({ org: org(policy, { dmsAllowed: false }), member: people[who], place: 'dm' });
      expect(dm).toMatchObject({ allowed: false, reason: 'dms-off', visibility: 'thread' });
      if (!dm.allowed) expect(dm.message).toMatch(/admin has turned off direct messages/);
    }
    expect(checkInvocation({ org: org(policy, { dmsAllowed: false }), member: people.role, place: 'channel' })).toEqual({ allowed: true, identity: 'agent' });
  });

  it.each(['channel', 'dm', 'group-dm'] as const)('zero data retention refuses everyone in a %s and says why', (place) => {
    for (const who of Object.keys(people) as Who[]) {
      const r = checkInvocation({ org: org('anyone', { zeroDataRetention: true }), member: people[who], place });
      expect(r).toMatchObject({ allowed: false, reason: 'zero-data-retention' });
      if (!r.allowed) expect(r.message).toMatch(/zero data retention.*transcripts.*memory/);
    }
  });

  it('group DMs say they are not supported', () => {
    const r = checkInvocation({ org: org('anyone'), member: people.account, place: 'group-dm' });
    if (r.allowed) throw new Error('allowed');
    expect(r.message).toMatch(/does not work in group DMs/);
  });

  it('roles policy with no roles configured admits nobody and says so', () => {
    const r = checkInvocation({ org: org('roles', { memberAccessRoles: [] }), member: people.role, place: 'channel' });
    expect(r).toMatchObject({ allowed: false, reason: 'role-required' });
  });
});
