import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { effectiveBundles, effectivePolicy, PERSONAL_BUNDLE } from '../../src/access/effective-policy.js';
import type { BundleSpec } from '../../src/access/model.js';
import { decide } from '../../src/policy/decide.js';
import { BACKENDS } from '../helpers/backends.js';
import { createWorld, type World } from './fixtures.js';

const only = (name: string, host: string): BundleSpec => ({ name, domains: [{ host }], connections: [] });

describe.each(BACKENDS)('effective policy on %s', (backendName) => {
  let w: World;
  beforeEach(async () => {
    w = await createWorld(backendName);
    const a = (name: string, host: string, scope: Parameters<typeof w.admin.attach>[3]) =>
      w.admin.putBundle('t', w.org.id, only(name, host)).then(() => w.admin.attach('t', w.org.id, name, scope));
    await a('org-wide', 'org.example.com', { kind: 'org' });
    await a('eng-ws', 'ws1.example.com', { kind: 'workspace', id: w.ws1.id });
    await a('sales-ws', 'ws2.example.com', { kind: 'workspace', id: w.ws2.id });
    await a('eng-channel', 'eng.example.com', { kind: 'channel', id: w.eng.id });
    await w.admin.putBundle('t', w.org.id, only('unattached', 'nowhere.example.com'));
    await w.admin.putPersonalConnector(w.ada.id, w.org.id, w.ada.id, {
      name: 'ada-gh', allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'token {{secret}}' },
    });
    await w.admin.putPersonalConnector(w.bob.id, w.org.id, w.bob.id, {
      name: 'bob-gh', allowedWebsites: ['bob.example.com'], inject: { basic: { username: 'bob' } },
    });
  });
  afterEach(async () => w.close());

  const names = async (place: Parameters<typeof effectiveBundles>[1]) => (await effectiveBundles(w.store.db, place)).map((b) => b.name).sort();

  it('a channel gets the union of its own, its workspace’s and the org’s bundles', async () => {
    expect(await names({ kind: 'channel', channelId: w.eng.id })).toEqual(['eng-channel', 'eng-ws', 'org-wide']);
  });

  it('a workspace bundle reaches all its channels and not another workspace’s', async () => {
    expect(await names({ kind: 'channel', channelId: w.random.id })).toEqual(['eng-ws', 'org-wide']);
    expect(await names({ kind: 'channel', channelId: w.sales.id })).toEqual(['org-wide', 'sales-ws']);
  });

  it('an org bundle reaches every channel; an unattached bundle reaches none', async () => {
    for (const ch of [w.eng, w.random, w.sales]) {
      const got = await names({ kind: 'channel', channelId: ch.id });
      expect(got).toContain('org-wide');
      expect(got).not.toContain('unattached');
    }
  });

  it('a channel’s policy never depends on who asked (there is no asker input) and decides as compiled', async () => {
    const policy = await effectivePolicy(w.store.db, { kind: 'channel', channelId: w.random.id });
    const at = (host: string) => decide(policy, { method: 'GET', scheme: 'https', host, port: 443, path: '/' }).outcome;
    expect(at('ws1.example.com')).toBe('allowlist');
    expect(at('org.example.com')).toBe('allowlist');
    expect(at('eng.example.com')).toBe('blocked');
    expect(at('ws2.example.com')).toBe('blocked');
    expect(at('api.github.com')).toBe('blocked'); // a personal connector never reaches a channel
  });

  it('with agent.modelSecret, every session (channel and DM) has the model connection, narrowed to what the engine calls', async () => {
    for (const place of [{ kind: 'channel' as const, channelId: w.random.id }, { kind: 'dm' as const, memberId: w.ada.id }]) {
      const without = await effectivePolicy(w.store.db, place);
      const policy = await effectivePolicy(w.store.db, place, { modelSecret: 'anthropic-key' });
      const at = (method: string, path: string, p = policy) => decide(p, { method, scheme: 'https', host: 'api.anthropic.com', port: 443, path });
      expect(at('POST', '/v1/messages', without).outcome).toBe('blocked');
      const messages = at('POST', '/v1/messages?beta=true');
      expect([messages.outcome, messages.bundle, messages.inject?.secret, (messages.inject as { header?: string } | undefined)?.header]).toEqual(['credential', 'tagbox-model', 'anthropic-key', 'x-api-key']);
      expect(at('POST', '/v1/messages/count_tokens').outcome).toBe('credential');
      expect(at('GET', '/api/claude_code/policy_limits').outcome).toBe('credential');
      expect(at('GET', '/api/claude_code/settings').outcome).toBe('credential');
      // Not the rest of the host, and not writes to the read-only start-up calls: no key for those.
      for (const [method, path] of [['POST', '/api/claude_code/settings'], ['GET', '/v1/files'], ['POST', '/v1/messages/batches/../../v1/files'], ['GET', '/v1/messagesX'], ['POST', '/v1/organizations/invites']]) {
        expect(at(method!, path!).outcome, `${method} ${path}`).not.toBe('credential');
      }
      // Port 443 only, TLS only.
      expect(decide(policy, { method: 'POST', scheme: 'https', host: 'api.anthropic.com', port: 8443, path: '/v1/messages' }).outcome).toBe('blocked');
      expect(decide(policy, { method: 'POST', scheme: 'http', host: 'api.anthropic.com', port: 443, path: '/v1/messages' }).outcome).toBe('blocked');
    }
  });

  it('the model connection\'s bundle name is reserved: no stored bundle can take it', async () => {
    await expect(w.admin.putBundle('t', w.org.id, only('tagbox-model', 'evil.example.com'))).rejects.toThrow(/reserved/);
  });

  it('a DM gets only that member’s personal connectors: no org, workspace or channel bundle, never another member’s', async () => {
    const bundles = await effectiveBundles(w.store.db, { kind: 'dm', memberId: w.ada.id });
    expect(bundles.map((b) => b.name)).toEqual([PERSONAL_BUNDLE]);
    expect(bundles[0]!.connections.map((c) => c.name)).toEqual(['ada-gh']);
    expect(bundles[0]!.domains).toEqual([]);
    const policy = await effectivePolicy(w.store.db, { kind: 'dm', memberId: w.ada.id });
    const at = (host: string) => decide(policy, { method: 'GET', scheme: 'https', host, port: 443, path: '/' }).outcome;
    expect(at('api.github.com')).toBe('credential');
    expect(at('org.example.com')).toBe('blocked');
    expect(at('ws1.example.com')).toBe('blocked');
    expect(at('bob.example.com')).toBe('blocked');
  });

  it('a member without connectors gets nothing in a DM', async () => {
    const carol = await w.admin.createMember('t', { workspaceId: w.ws1.id, externalId: 'U3', displayName: 'Carol' });
    expect(await effectiveBundles(w.store.db, { kind: 'dm', memberId: carol.id })).toEqual([]);
  });

  it('unknown places are not_found', async () => {
    await expect(effectiveBundles(w.store.db, { kind: 'channel', channelId: 'nope' })).rejects.toMatchObject({ code: 'not_found' });
    await expect(effectiveBundles(w.store.db, { kind: 'dm', memberId: 'nope' })).rejects.toMatchObject({ code: 'not_found' });
  });
});
