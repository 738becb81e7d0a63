import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMember } from '../../src/access/members-repo.js';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { buildServer } from '../../src/server/app.js';
import { createToken } from '../../src/server/tokens-repo.js';
import type { Invocation } from '../../src/sessions/invocation.js';
import { BACKENDS } from '../helpers/backends.js';
import { agentTexts, logger, startSessions, type SessionHarness } from '../sessions/harness.js';

/**
 * Channel memory over HTTP, with the memory written by real turns: admins
 * read a channel's memory and its versions and clear it (audited), and the
 * next thread starts empty; a DM's memory is its member's and the admins';
 * everyone else is refused, and bad input is named.
 */
describe.each(BACKENDS)('the memory API (%s)', (name) => {
  let h: SessionHarness;
  let app: FastifyInstance;
  let url: string;
  const tokens: Record<string, string> = {};
  const ids: Record<string, string> = {};

  const call = async (who: string, method: string, path: string) => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${tokens[who]}` } });
    return { status: res.status, body: (await res.json()) as any }; // eslint-disable-line @typescript-eslint/no-explicit-any -- responses read ad hoc
  };
  const turn = async (text: string, options: Partial<Invocation> = {}) => {
    const before = options.threadKey ? (await h.events(options.threadKey)).filter((e) => e.type === 'done').length : 0;
    const { thread } = await h.say(text, options);
    return { thread, reply: agentTexts(await h.untilDone(thread, before + 1)).at(-1)! };
  };
  const memoryEvents = async () => {
    const events: AuditEvent[] = [];
    for await (const e of h.audit.query({ type: 'memory' })) events.push(e);
    return events;
  };

  beforeAll(async () => {
    h = await startSessions(name);
    app = await buildServer({
      store: h.store,
      audit: h.audit,
      access: h.access,
      sealer: async () => {
        throw new Error('no vault in this test');
      },
      logger,
      chat: { service: h.layer.service, hub: h.layer.hub, engines: h.layer.engines.names() },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const label of ['alice', 'bob']) {
      const member = await createMember(h.store.db, { workspaceId: h.workspaceId, externalId: label, displayName: label, hasAccount: true });
      ids[label] = member.id;
      tokens[label] = (await createToken(h.store.db, { orgId: h.orgId, memberId: member.id, role: 'member', name: 't', createdBy: 'test' })).token;
    }
    tokens.owner = (await createToken(h.store.db, { orgId: h.orgId, memberId: h.owner.id, role: 'owner', name: 't', createdBy: 'test' })).token;
    // Another org's admin, and its channel.
    const other = await createOrg(h.store.db, `other-${name}`);
    const ws = await createWorkspace(h.store.db, { orgId: other.id, kind: 'slack', externalId: `T-${name}`, name: 'Other' });
    const stranger = await createMember(h.store.db, { workspaceId: ws.id, externalId: 's', displayName: 's', hasAccount: true, roles: ['admin'] });
    tokens.stranger = (await createToken(h.store.db, { orgId: other.id, memberId: stranger.id, role: 'admin', name: 't', createdBy: 'test' })).token;
    ids.strangerChannel = (await createChannel(h.store.db, { workspaceId: ws.id, externalId: 'o', name: 'o' })).id;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await h?.close();
  });

  it("shows admins a channel's memory and its versions, clears it (audited), and the next thread starts empty", async () => {
    const path = `/api/v1/channels/${h.channelId}/memory`;
    const empty = await call('owner', 'GET', path);
    expect(empty).toEqual({ status: 200, body: { scope: `channel:${h.channelId}`, version: null, content: '', bytes: 0, updatedAt: null, history: [] } });

    const first = await turn('echo "remember: X" >> ~/.tagbox/memory.md');
    const second = await turn('echo "remember: Y" >> ~/.tagbox/memory.md');
    const shown = await call('owner', 'GET', path);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({ scope: `channel:${h.channelId}`, version: 2, content: 'remember: X\nremember: Y\n', bytes: 24, updatedAt: expect.any(String) });
    expect(shown.body.history).toEqual([
      { version: 2, bytes: 24, createdAt: shown.body.updatedAt, session: second.thread, turn: expect.any(String), baseVersion: 1 },
      { version: 1, bytes: 12, createdAt: expect.any(String), session: first.thread, turn: expect.any(String), baseVersion: null },
    ]);
    expect((await call('owner', 'GET', `${path}/versions/1`)).body).toMatchObject({ version: 1, content: 'remember: X\n', session: first.thread });
    expect(await call('owner', 'GET', `${path}/versions/3`)).toMatchObject({ status: 404, body: { error: { message: expect.stringMatching(/params.version: .* no memory version 3/) } } });
    for (const bad of ['abc', '0', '-1', '1.5']) {
      expect(await call('owner', 'GET', `${path}/versions/${bad}`)).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/params\.version: expected a version number/) } } });
    }

    // Members (of a public channel too) and other orgs' admins are refused, and clear nothing.
    expect(await call('alice', 'GET', path)).toMatchObject({ status: 403, body: { error: { message: expect.stringMatching(/admin role/) } } });
    expect((await call('alice', 'DELETE', path)).status).toBe(403);
    expect(await call('stranger', 'GET', path)).toMatchObject({ status: 404, body: { error: { message: `channel "${h.channelId}" not found` } } });
    expect((await call('stranger', 'DELETE', path)).status).toBe(404);
    expect((await call('owner', 'GET', `/api/v1/channels/${ids.strangerChannel}/memory`)).status).toBe(404);
    expect((await call('owner', 'GET', path)).body.version).toBe(2);

    expect(await call('owner', 'DELETE', path)).toEqual({ status: 200, body: { scope: `channel:${h.channelId}`, cleared: 2 } });
    expect((await call('owner', 'GET', path)).body).toMatchObject({ version: null, content: '', history: [] });
    // The next thread, and the next turn of a live one, start empty.
    expect((await turn('cat ~/.tagbox/memory.md; echo "[end]"')).reply).toBe('[end]\n[exit code 0]');
    const live = await turn('cat ~/.tagbox/memory.md; echo "[end]"', { threadKey: second.thread, mustExist: true });
    expect(live.reply).toBe('[end]\n[exit code 0]');

    const events = (await memoryEvents()).filter((e) => e.scope === `channel:${h.channelId}`);
    expect(events.map((e) => `${String(e.action)}:${String(e.outcome)}`)).toEqual(['update:ok', 'update:ok', 'clear:ok']);
    expect(events[2]).toMatchObject({ actor: h.owner.id, credential: expect.stringMatching(/^token:/), count: 2, channel: h.channelId, org: h.orgId });
    expect(JSON.stringify(events)).not.toContain('remember');
  });

  it("keeps a DM's memory to its member and the admins: they read and clear it, nobody else", async () => {
    const dm = { place: { kind: 'dm' as const, memberId: ids.alice! }, memberId: ids.alice! };
    await turn('echo "alice only" > ~/.tagbox/memory.md', dm);
    const path = `/api/v1/members/${ids.alice}/memory`;
    const own = await call('alice', 'GET', path);
    expect(own).toMatchObject({ status: 200, body: { scope: `dm:${ids.alice}`, version: 1, content: 'alice only\n' } });
    expect((await call('alice', 'GET', `${path}/versions/1`)).body).toMatchObject({ content: 'alice only\n' });
    expect(await call('bob', 'GET', path)).toMatchObject({ status: 403, body: { error: { message: expect.stringMatching(/only they or an admin may read it/) } } });
    expect((await call('bob', 'GET', `${path}/versions/1`)).status).toBe(403);
    expect(await call('bob', 'DELETE', path)).toMatchObject({ status: 403, body: { error: { message: expect.stringMatching(/only they or an admin may clear it/) } } });
    expect((await call('stranger', 'GET', path)).status).toBe(404);
    expect(await call('owner', 'GET', '/api/v1/members/nobody/memory')).toMatchObject({ status: 404, body: { error: { message: 'member "nobody" not found' } } });
    // An admin may read it; that is recorded, the member's own reads are not.
    expect((await call('owner', 'GET', path)).body.content).toBe('alice only\n');
    const reads = (await memoryEvents()).filter((e) => e.action === 'read');
    expect(reads).toEqual([expect.objectContaining({ scope: `dm:${ids.alice}`, member: ids.alice, actor: h.owner.id })]);
    // Bob's own DM memory is his, and empty.
    expect((await call('bob', 'GET', `/api/v1/members/${ids.bob}/memory`)).body).toMatchObject({ version: null, content: '' });

    expect(await call('alice', 'DELETE', path)).toEqual({ status: 200, body: { scope: `dm:${ids.alice}`, cleared: 1 } });
    expect((await turn('cat ~/.tagbox/memory.md; echo "[end]"', dm)).reply).toBe('[end]\n[exit code 0]');
    const clear = (await memoryEvents()).find((e) => e.action === 'clear' && e.scope === `dm:${ids.alice}`);
    expect(clear).toMatchObject({ actor: ids.alice, count: 1, member: ids.alice });
  });
});
