import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { branchMatches, judgePush, type RefUpdate } from '../../src/policy/push-policy.js';

const ZERO = '0'.repeat(40);
const ZERO256 = '0'.repeat(64);
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

const create = (ref: string): RefUpdate => ({ ref, oldOid: ZERO, newOid: A });
const update = (ref: string): RefUpdate => ({ ref, oldOid: A, newOid: B });
const remove = (ref: string): RefUpdate => ({ ref, oldOid: A, newOid: ZERO });

describe('judgePush: which ref updates a push may make', () => {
  it('creates and updates branches under the pattern', () => {
    expect(judgePush([create('refs/heads/tagbox/fix-1'), update('refs/heads/tagbox/a/b/c')], 'tagbox/*', undefined)).toEqual({
      allowed: true,
      refs: [
        { ref: 'refs/heads/tagbox/fix-1', action: 'create', allowed: true },
        { ref: 'refs/heads/tagbox/a/b/c', action: 'update', allowed: true },
      ],
    });
  });

  it('tells create, update and delete apart, sha256 ids included', () => {
    const ref = 'refs/heads/tagbox/x';
    expect(judgePush([{ ref, oldOid: ZERO256, newOid: 'c'.repeat(64) }], 'tagbox/*', undefined).refs[0]!.action).toBe('create');
    expect(judgePush([{ ref, oldOid: 'c'.repeat(64), newOid: 'd'.repeat(64) }], 'tagbox/*', undefined).refs[0]!.action).toBe('update');
    expect(judgePush([{ ref, oldOid: 'c'.repeat(64), newOid: ZERO256 }], 'tagbox/*', undefined).refs[0]!.action).toBe('delete');
    // an id that merely contains zeros is not the null id
    expect(judgePush([{ ref, oldOid: `${'0'.repeat(39)}1`, newOid: A }], 'tagbox/*', undefined).refs[0]!.action).toBe('update');
  });

  it('never deletes a branch, even one under the pattern', () => {
    expect(judgePush([remove('refs/heads/tagbox/x')], 'tagbox/*', undefined)).toEqual({
      allowed: false,
      refs: [{ ref: 'refs/heads/tagbox/x', action: 'delete', allowed: false, reason: 'Tagbox does not let the agent delete branches' }],
    });
    expect(judgePush([remove('refs/heads/main')], 'tagbox/*', undefined).refs[0]!.reason).toBe('Tagbox does not let the agent delete branches');
  });

  it.each(['refs/tags/v1.0', 'refs/tags/tagbox/x', 'refs/notes/commits', 'refs/pull/1/head', 'refs/remotes/origin/tagbox/x', 'refs/headsx/tagbox/x', 'refs/heads', 'refs/meta/config', 'HEAD', 'tagbox/x', 'refs/Heads/tagbox/x'])(
    'refuses %s: branches only',
    (ref) => {
      for (const [u, action] of [[create(ref), 'create'], [update(ref), 'update'], [remove(ref), 'delete']] as const) {
        expect(judgePush([u], 'tagbox/*', undefined)).toEqual({ allowed: false, refs: [{ ref, action, allowed: false, reason: `Tagbox lets the agent push branches only (tagbox/*), not ${ref}` }] });
      }
    },
  );

  it.each(['main', 'master', 'tagbox', 'tagbox/', 'Tagbox/x', 'TAGBOX/x', 'xtagbox/x', 'tag/box/x', 'feature/tagbox/x', 'tagboxx/y', ' tagbox/x', 'release/1.0'])('refuses the branch %j: outside the pattern', (branch) => {
    const ref = `refs/heads/${branch}`;
    expect(judgePush([update(ref)], 'tagbox/*', undefined)).toEqual({
      allowed: false,
      refs: [{ ref, action: 'update', allowed: false, reason: 'Tagbox lets the agent push only to branches matching tagbox/*' }],
    });
  });

  it('is all or nothing: an allowed ref beside a refused one is refused too, and says why', () => {
    expect(judgePush([create('refs/heads/tagbox/a'), update('refs/heads/main'), update('refs/heads/tagbox/b'), create('refs/tags/v1')], 'tagbox/*', undefined)).toEqual({
      allowed: false,
      refs: [
        { ref: 'refs/heads/tagbox/a', action: 'create', allowed: false, reason: 'not pushed: another ref in this push was refused' },
        { ref: 'refs/heads/main', action: 'update', allowed: false, reason: 'Tagbox lets the agent push only to branches matching tagbox/*' },
        { ref: 'refs/heads/tagbox/b', action: 'update', allowed: false, reason: 'not pushed: another ref in this push was refused' },
        { ref: 'refs/tags/v1', action: 'create', allowed: false, reason: 'Tagbox lets the agent push branches only (tagbox/*), not refs/tags/v1' },
      ],
    });
  });

  it('a delete beside allowed updates refuses the whole push', () => {
    const v = judgePush([update('refs/heads/tagbox/a'), remove('refs/heads/tagbox/b')], 'tagbox/*', undefined);
    expect(v.allowed).toBe(false);
    expect(v.refs.map((r) => r.reason)).toEqual(['not pushed: another ref in this push was refused', 'Tagbox does not let the agent delete branches']);
  });

  it('a push of no refs is allowed (nothing changes)', () => {
    expect(judgePush([], 'tagbox/*', undefined)).toEqual({ allowed: true, refs: [] });
  });

  it('expands {thread} to the thread\'s id', () => {
    expect(judgePush([create('refs/heads/tagbox/T0123')], 'tagbox/{thread}', 'T0123').allowed).toBe(true);
    expect(judgePush([create('refs/heads/tagbox/T0123/fix')], 'tagbox/{thread}/*', 'T0123').allowed).toBe(true);
    expect(judgePush([create('refs/heads/T0123-a')], '{thread}-*', 'T0123').allowed).toBe(true);
    expect(judgePush([create('refs/heads/T0123/T0123')], '{thread}/{thread}', 'T0123').allowed).toBe(true);
    // another thread's branch, or the thread's prefix without a suffix
    const other = judgePush([create('refs/heads/tagbox/T0124')], 'tagbox/{thread}', 'T0123');
    expect(other.refs[0]).toEqual({ ref: 'refs/heads/tagbox/T0124', action: 'create', allowed: false, reason: 'Tagbox lets the agent push only to branches matching tagbox/T0123' });
    expect(judgePush([create('refs/heads/tagbox/T0123')], 'tagbox/{thread}/*', 'T0123').allowed).toBe(false);
    expect(judgePush([create('refs/heads/tagbox/T01234')], 'tagbox/{thread}', 'T0123').allowed).toBe(false);
    expect(judgePush([create('refs/tags/x')], 'tagbox/{thread}', 'T0123').refs[0]!.reason).toBe('Tagbox lets the agent push branches only (tagbox/T0123), not refs/tags/x');
  });

  it('without a thread, a pattern naming {thread} matches nothing (and says the pattern as written)', () => {
    for (const branch of ['tagbox/{thread}', 'tagbox/', 'tagbox/x', 'tagbox/undefined', 'tagbox/*']) {
      expect(judgePush([create(`refs/heads/${branch}`)], 'tagbox/{thread}', undefined).refs[0]).toEqual({
        ref: `refs/heads/${branch}`,
        action: 'create',
        allowed: false,
        reason: 'Tagbox lets the agent push only to branches matching tagbox/{thread}',
      });
    }
    expect(branchMatches('tagbox/{thread}/*', undefined, 'tagbox/{thread}/x')).toBe(false);
    expect(branchMatches('{thread}', undefined, '{thread}')).toBe(false);
  });

  it.each(['', '*', 'a*', 'a/b', '../x', 'a b', 'a\nb', '{thread}', 'x$', 'a+', 'é'])('a thread id that could widen or bend the pattern (%j) matches nothing', (thread) => {
    expect(branchMatches('tagbox/{thread}', thread, `tagbox/${thread}`)).toBe(false);
    expect(branchMatches('tagbox/{thread}', thread, 'tagbox/anything')).toBe(false);
    expect(branchMatches('tagbox/{thread}', thread, 'tagbox/x/y')).toBe(false);
  });

  it('a pattern without {thread} ignores the thread', () => {
    expect(branchMatches('tagbox/*', undefined, 'tagbox/x')).toBe(true);
    expect(branchMatches('tagbox/*', '*', 'tagbox/x')).toBe(true);
    expect(branchMatches('tagbox/*', 'T1', 'tagbox/x')).toBe(true);
  });
});

describe('branchMatches: the pattern language', () => {
  it.each([
    ['tagbox/*', 'tagbox/x', true],
    ['tagbox/*', 'tagbox/x/y/z', true],
    ['tagbox/*', 'tagbox/', false],
    ['tagbox/*', 'tagbox', false],
    ['tagbox/*', 'x/tagbox/y', false],
    ['tagbox/*', 'tagboxy', false],
    ['tagbox', 'tagbox', true],
    ['tagbox', 'tagbox/x', false],
    ['tagbox', 'tagboxx', false],
    ['tagbox', 'xtagbox', false],
    ['a/*/b', 'a/x/b', true],
    ['a/*/b', 'a/x/y/b', true],
    ['a/*/b', 'a//b', false],
    ['a/*/b', 'a/x/b/c', false],
    ['*-fix', 'bug-fix', true],
    ['*-fix', '-fix', false],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'abc', false],
    // each "*" is one or more characters: two of them need two
    ['a**', 'abc', true],
    ['a**', 'ab', false],
    ['a**', 'a', false],
  ])('%s vs %s: %s', (pattern, branch, expected) => {
    expect(branchMatches(pattern, undefined, branch)).toBe(expected);
  });

  it.each([
    ['a.b', 'aXb'],
    ['a+b', 'aab'],
    ['a?b', 'ab'],
    ['(a|b)', 'a'],
    ['a|b', 'a'],
    ['[ab]', 'a'],
    ['a{2}', 'aa'],
    ['^a', 'a'],
    ['a$', 'a'],
    ['a\\d', 'a1'],
    ['a\\', 'a\\\\'],
    ['.*', 'anything'],
    ['tagbox/.+', 'tagbox/x'],
  ])('regex metacharacters are literal: %j does not match %j', (pattern, branch) => {
    expect(branchMatches(pattern, undefined, branch)).toBe(false);
  });

  it.each(['a.b', 'a+b', 'a?b', '(a|b)', '[ab]', 'a{2}', '^a$', 'a\\d', '$&', 'x{thread'])('%j matches itself', (pattern) => {
    expect(branchMatches(pattern, undefined, pattern)).toBe(true);
  });

  it('a thread id with "." is literal too', () => {
    expect(branchMatches('t/{thread}', 'a.b', 't/a.b')).toBe(true);
    expect(branchMatches('t/{thread}', 'a.b', 't/aXb')).toBe(false);
  });

  // git refs are never multi-line (refs cannot hold control characters), and a
  // line break never matching fails closed.
  it('a line break in a branch never matches', () => {
    for (const branch of ['tagbox/a\nb', 'tagbox/\n', 'tagbox/x\r', 'tagbox/x\u2028']) expect(branchMatches('tagbox/*', undefined, branch)).toBe(false);
    expect(branchMatches('tagbox', undefined, 'tagbox\n')).toBe(false);
  });
});

describe('push policy properties', () => {
  // Every character git allows in a ref (and some it does not) except line breaks.
  const ch = fc.oneof(fc.stringMatching(/^[\x20-\x7e]$/), fc.constantFrom('\t', '\0', 'é', '\u00ff', '😀', '\\'));
  const suffix = fc.array(ch, { minLength: 1, maxLength: 30 }).map((cs) => cs.join(''));
  const thread = fc.option(fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/), { nil: undefined });

  it('tagbox/* matches tagbox/ followed by anything non-empty', () => {
    fc.assert(
      fc.property(thread, suffix, (t, x) => {
        expect(branchMatches('tagbox/*', t, `tagbox/${x}`)).toBe(true);
      }),
    );
  });

  it('tagbox/* never matches a branch that does not start with tagbox/', () => {
    fc.assert(
      fc.property(thread, fc.string({ unit: 'binary' }), (t, b) => {
        fc.pre(!b.startsWith('tagbox/'));
        expect(branchMatches('tagbox/*', t, b)).toBe(false);
      }),
    );
  });

  it('tagbox/{thread} matches that thread\'s branch only', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/);
    fc.assert(
      fc.property(id, id, (t, other) => {
        expect(branchMatches('tagbox/{thread}', t, `tagbox/${t}`)).toBe(true);
        expect(branchMatches('tagbox/{thread}', t, `tagbox/${other}`)).toBe(other === t);
        expect(branchMatches('tagbox/{thread}/*', t, `tagbox/${other}/x`)).toBe(other === t);
      }),
    );
  });

  it('a pattern without "*" or {thread} matches exactly itself', () => {
    const literal = fc.stringMatching(/^[A-Za-z0-9._/-]{1,30}$/);
    fc.assert(
      fc.property(literal, fc.string(), (p, b) => {
        expect(branchMatches(p, undefined, b)).toBe(b === p);
      }),
    );
  });

  it('judgePush is all or nothing, keeps order, and gives every refused ref a reason', () => {
    const ref = fc.oneof(
      fc.stringMatching(/^[a-z]{1,6}$/).map((s) => `refs/heads/tagbox/${s}`),
      fc.constantFrom('refs/heads/main', 'refs/tags/v1', 'refs/heads/tagbox/', 'refs/notes/x'),
    );
    const oid = fc.constantFrom(ZERO, A, B);
    const updates = fc.array(fc.record({ ref, oldOid: oid, newOid: oid }), { maxLength: 8 });
    fc.assert(
      fc.property(updates, (us) => {
        const v = judgePush(us, 'tagbox/*', undefined);
        expect(v.refs.map((r) => r.ref)).toEqual(us.map((u) => u.ref));
        const alone = us.map((u) => judgePush([u], 'tagbox/*', undefined).allowed);
        expect(v.allowed).toBe(alone.every(Boolean));
        for (const [i, r] of v.refs.entries()) {
          expect(r.allowed).toBe(v.allowed);
          if (!v.allowed) expect(r.reason).toBe(alone[i] ? 'not pushed: another ref in this push was refused' : judgePush([us[i]!], 'tagbox/*', undefined).refs[0]!.reason);
          else expect(r.reason).toBeUndefined();
          const u = us[i]!;
          expect(r.action).toBe(u.newOid === ZERO ? 'delete' : u.oldOid === ZERO ? 'create' : 'update');
        }
      }),
    );
  });
});
