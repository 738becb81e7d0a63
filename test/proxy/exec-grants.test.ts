import { describe, expect, it } from 'vitest';
import { ExecGrants } from '../../src/proxy/exec-grants.js';
import type { Bundle } from '../../src/policy/bundle-schema.js';

const bundle = (name: string) => ({ name, domains: [], connections: [] }) as unknown as Bundle;

/** Exec grants: what a client gave the proxy, for the server to apply once, by name only. */
describe('exec grants', () => {
  it('gives the bundles back once, then never again', () => {
    const grants = new ExecGrants();
    const id = grants.issue([bundle('a')]);
    expect(grants.take(id)?.map((b) => b.name)).toEqual(['a']);
    expect(grants.take(id)).toBeUndefined();
  });

  it('knows no name it did not issue, and issues names that cannot be guessed', () => {
    const grants = new ExecGrants();
    const ids = new Set(Array.from({ length: 50 }, () => grants.take(grants.issue([])) && ''));
    expect(ids.size).toBe(1);
    const a = grants.issue([]);
    const b = grants.issue([]);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(grants.take('')).toBeUndefined();
    expect(grants.take(`${a}x`)).toBeUndefined();
    expect(grants.take(a.slice(1))).toBeUndefined();
  });

  it('expires a grant unused after its time, exactly at it', () => {
    let now = 1000;
    const grants = new ExecGrants({ ttlMs: 100, now: () => now });
    const id = grants.issue([bundle('a')]);
    const later = grants.issue([bundle('b')]);
    now = 1099;
    expect(grants.take(id)?.map((x) => x.name)).toEqual(['a']);
    now = 1100;
    expect(grants.take(later)).toBeUndefined();
    expect(grants.size).toBe(0);
  });

  it('refuses a new grant when too many wait, and makes room as they expire or are used', () => {
    let now = 0;
    const grants = new ExecGrants({ max: 3, ttlMs: 10, now: () => now });
    const ids = [grants.issue([]), grants.issue([]), grants.issue([])];
    expect(() => grants.issue([])).toThrow(/too many exec grants/);
    grants.take(ids[0]!);
    expect(() => grants.issue([])).not.toThrow();
    now = 10;
    expect(grants.size).toBe(0);
    expect(() => grants.issue([])).not.toThrow();
  });
});
