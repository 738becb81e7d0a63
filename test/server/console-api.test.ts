import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessAdmin } from '../../src/access/admin-service.js';
import { exportBundlesYaml } from '../../src/access/bundles-as-code.js';
import { effectiveBundles, effectivePolicy } from '../../src/access/effective-policy.js';
import { createMember } from '../../src/access/members-repo.js';
import { createWorkspace } from '../../src/access/workspaces-repo.js';
import { decide } from '../../src/policy/decide.js';
import { scheduleRoutes } from '../../src/server/routes/schedules.js';
import { findOrCreateSession } from '../../src/sessions/sessions-repo.js';
import { insertUsageEvents, usageEvent } from '../../src/usage/usage-repo.js';
import { BACKENDS } from '../helpers/backends.js';
import { minimal } from '../plugins/fixtures.js';
import { startApi, type ApiHarness } from './harness.js';


/**
 * The routes the web console needs beyond the chat: effective access, bundles
 * as code, audit filters and verify, schedule previews, usage per day and the
 * org's members — each through a real server, on both stores.
 */
describe.each(BACKENDS)('the console API (%s)', (backend) => {
  let h: ApiHarness;
  let admin: { token: string; memberId: string };
  let member: { token: string; memberId: string };
  let orgId: string;
  let eng: string;
  let ops: string;
  const channel = async (name: string) => (await h.api(admin.token, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: name, name })).body.id as string;
  const bundle = async (name: string, body: unknown, ...scopes: string[]) => {
    const put = await h.api(admin.token, 'PUT', `/api/v1/bundles/${name}`, body);
    expect(put.status, put.text).toBe(200);
    for (const scope of scopes) expect((await h.api(admin.token, 'POST', `/api/v1/bundles/${name}/scopes`, { scope })).status).toBe(200);
  };

  beforeAll(async () => {
    h = await startApi(backend, { modelSecret: 'model-key', routes: [(deps) => scheduleRoutes(deps, { maxPromptBytes: 1000 })] });
    admin = await h.tokenFor('admin', 'Ada');
    member = await h.tokenFor('member', 'Bob');
    orgId = (await h.api(admin.token, 'GET', '/api/v1/org')).body.id;
    eng = await channel('eng');
    ops = await channel('ops');
  }, 60_000);
  afterAll(async () => h?.close());

  it("shows a channel's effective access, part by part, exactly as the proxy's policy allows it", async () => {
    expect((await h.api(admin.token, 'PUT', '/api/v1/secrets/gh-token', { value: 'ghp_not-shown-anywhere' })).status).toBe(200);
    await bundle('org-wide', { domains: ['org.example.com'] }, 'org', `channel:${eng}`);
    await bundle(
      'ws-kit',
      {
        domains: [{ host: 'ws.example.com', ports: [8443] }],
        connections: [{ name: 'gh', secret: 'gh-token', allowedWebsites: ['api.github.com'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' }, narrow: { pathPrefix: '/repos/acme/' } }],
      },
      `workspace:${h.webWorkspaceId}`,
    );
    await bundle('eng-only', { domains: ['eng.example.com'] }, `channel:${eng}`);
    await bundle('ops-only', { domains: ['ops.example.com'] }, `channel:${ops}`);
    const upload = { name: 'kit', files: Object.entries(minimal('kit')).map(([path, data]) => ({ path, data: Buffer.from(data).toString('base64') })) };
    expect((await h.api(admin.token, 'POST', '/api/v1/plugins', upload)).status).toBe(201);
    expect((await h.api(admin.token, 'POST', '/api/v1/plugins/kit/attachments', { scope: { kind: 'channel', id: eng } })).status).toBe(200);
    const web = (await h.api(admin.token, 'GET', '/api/v1/workspaces')).body.find((w: { id: string }) => w.id === h.webWorkspaceId);

    const got = await h.api(admin.token, 'GET', `/api/v1/channels/${eng}/access`);
    expect(got.status, got.text).toBe(200);
    expect(got.body).toEqual({
      channel: { id: eng, name: 'eng' },
      bundles: [
        { name: 'eng-only', from: `channel:${eng}`, fromLabel: '#eng', scopes: [`channel:${eng}`], domains: ['eng.example.com'], connections: [] },
        { name: 'org-wide', from: 'org', fromLabel: 'the org', scopes: ['org', `channel:${eng}`], domains: ['org.example.com'], connections: [] },
        {
          name: 'ws-kit',
          from: `workspace:${h.webWorkspaceId}`,
          fromLabel: `workspace ${web.name}`,
          scopes: [`workspace:${h.webWorkspaceId}`],
          domains: [{ host: 'ws.example.com', ports: [8443] }],
          connections: [{ name: 'gh', secret: 'gh-token', allowedWebsites: ['api.github.com'], inject: 'header:Authorization', narrow: { pathPrefix: '/repos/acme/' } }],
        },
      ],
      model: { host: 'api.anthropic.com', secret: 'model-key' },
      plugins: [{ name: 'kit', from: `channel:${eng}`, fromLabel: '#eng' }],
    });
    expect(got.text).not.toContain('ghp_not-shown-anywhere');

    // The breakdown is the proxy's union: the same bundles, and what the compiled policy decides.
    const place = { kind: 'channel' as const, channelId: eng };
    expect((await effectiveBundles(h.store.db, place)).map((b) => b.name)).toEqual(got.body.bundles.map((b: { name: string }) => b.name));
    const policy = await effectivePolicy(h.store.db, place, { modelSecret: 'model-key' });
    const at = (host: string, path = '/', port = 443, method = 'GET') => decide(policy, { method, scheme: 'https', host, port, path }).outcome;
    expect([at('eng.example.com'), at('org.example.com'), at('ws.example.com', '/', 8443)]).toEqual(['allowlist', 'allowlist', 'allowlist']);
    expect(at('api.github.com', '/repos/acme/x')).toBe('credential');
    expect(at('api.anthropic.com', '/v1/messages', 443, 'POST')).toBe('credential');
    // Another channel's bundle is not this channel's, in the breakdown or in the policy.
    expect(at('ops.example.com')).toBe('blocked');
    expect(JSON.stringify(got.body)).not.toContain('ops.example.com');
    const other = await h.api(admin.token, 'GET', `/api/v1/channels/${ops}/access`);
    expect(other.body.bundles.map((b: { name: string }) => b.name)).toEqual(['ops-only', 'org-wide', 'ws-kit']);
    expect(other.body.plugins).toEqual([]);

    expect((await h.api(member.token, 'GET', `/api/v1/channels/${eng}/access`)).status).toBe(403);
    expect((await h.api(admin.token, 'GET', '/api/v1/channels/nope/access')).status).toBe(404);
  });

  it('applies a bundle file over HTTP as the CLI does: plan, dry run, one transaction, audited, line-numbered errors; export round-trips', async () => {
    const yaml = 'bundles:\n  - name: code-a\n    domains: [a.example.com]\n  - name: code-b\n    domains:\n      - host: b.example.com\n        ports: [8443]\n';
    const dry = await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml, dryRun: true });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body).toEqual({
      applied: false,
      changes: [
        { bundle: 'code-a', action: 'create', description: '+ bundle code-a' },
        { bundle: 'code-b', action: 'create', description: '+ bundle code-b' },
      ],
    });
    expect((await h.api(admin.token, 'GET', '/api/v1/bundles/code-a')).status).toBe(404);

    const applied = await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml });
    expect(applied.body).toMatchObject({ applied: true, changes: [{ bundle: 'code-a', action: 'create' }, { bundle: 'code-b', action: 'create' }] });
    expect((await h.api(admin.token, 'GET', '/api/v1/bundles/code-b')).body.domains).toEqual([{ host: 'b.example.com', ports: [8443] }]);
    const events = (await h.api(admin.token, 'GET', `/api/v1/audit?type=admin-change&member=${admin.memberId}`)).body.events;
    expect(events.at(-1)).toMatchObject({ actor: admin.memberId, credential: expect.stringMatching(/^token:/) });
    expect(JSON.stringify(events)).toContain('code-a');
    expect((await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml })).body).toEqual({ applied: false, changes: [] });

    // An update and a prune, planned with the CLI's lines.
    const changed = 'bundles:\n  - name: code-a\n    domains: [a.example.com, a2.example.com]\n';
    const plan = await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml: changed, prune: true, dryRun: true });
    expect(plan.body.changes).toContainEqual({ bundle: 'code-a', action: 'update', description: '~ bundle code-a (domains)' });
    expect(plan.body.changes).toContainEqual({ bundle: 'code-b', action: 'delete', description: '- bundle code-b' });

    // Bad files: 400 naming the line and the field; nothing applied.
    const bad = await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml: 'bundles:\n  - name: code-c\n    domains:\n      - "https://c.example.com/x"\n' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/^body\.yaml:4: .*domains\[0\]/);
    const broken = await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml: 'bundles:\n  - name: [unclosed\n' });
    expect([broken.status, broken.body.error.message]).toEqual([400, expect.stringMatching(/^body\.yaml(:\d+)?: invalid YAML/)]);
    expect((await h.api(admin.token, 'GET', '/api/v1/bundles/code-c')).status).toBe(404);
    expect((await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml: 1 })).body.error.message).toMatch(/^body\.yaml: /);

    // Export is the CLI's export, and applying it changes nothing.
    const exported = await h.api(admin.token, 'GET', '/api/v1/bundles/export');
    expect(exported.body.yaml).toBe(await exportBundlesYaml(new AccessAdmin(h.store, h.audit), orgId));
    expect(exported.body.yaml).toContain('code-b');
    expect(exported.body.yaml).not.toContain('ghp_not-shown-anywhere');
    expect((await h.api(admin.token, 'POST', '/api/v1/bundles/apply', { yaml: exported.body.yaml, prune: true })).body).toEqual({ applied: false, changes: [] });

    for (const [method, path, body] of [['POST', '/api/v1/bundles/apply', { yaml }], ['GET', '/api/v1/bundles/export']] as Array<[string, string, unknown?]>) {
      expect((await h.api(member.token, method, path, body)).status).toBe(403);
    }
  });

  it('filters the audit log by host, outcome and member (who asked, and the threads they started), in the store query', async () => {
    const { session } = await findOrCreateSession(h.store.db, { orgId, workspaceId: h.webWorkspaceId, place: { kind: 'channel', channelId: eng }, identity: 'agent', engine: 'shell', createdBy: member.memberId });
    await h.audit.appendMany([
      { type: 'invocation', outcome: 'ok', actor: member.memberId, session: session.id, channel: eng },
      { type: 'egress', outcome: 'blocked', session: session.id, method: 'GET', scheme: 'https', host: 'evil.example', port: 443, path: '/' },
      { type: 'egress', outcome: 'credential', session: session.id, method: 'GET', scheme: 'https', host: 'api.github.com', port: 443, path: '/repos/acme/x' },
      { type: 'egress', outcome: 'allowlist', method: 'GET', scheme: 'https', host: 'evil.example', port: 443, path: '/other' },
    ]);
    const q = async (query: string) => (await h.api(admin.token, 'GET', `/api/v1/audit?${query}`)).body.events as Array<Record<string, unknown>>;
    expect((await q('host=EVIL.example')).map((e) => [e.outcome, e.path])).toEqual([['blocked', '/'], ['allowlist', '/other']]);
    expect((await q('outcome=credential')).map((e) => e.host)).toEqual(['api.github.com']);
    expect((await q('host=evil.example&outcome=blocked')).length).toBe(1);
    const bobs = await q(`member=${member.memberId}`);
    expect(bobs.map((e) => [e.type, e.outcome])).toEqual([
      ['invocation', 'ok'],
      ['egress', 'blocked'],
      ['egress', 'credential'],
    ]);
    expect(await q('member=nobody')).toEqual([]);
    expect(await q('host=nowhere.example')).toEqual([]);
    expect((await h.api(admin.token, 'GET', '/api/v1/audit?hostname=x')).status).toBe(400);
    expect((await h.api(member.token, 'GET', '/api/v1/audit?host=evil.example')).status).toBe(403);
  });

  it('previews the next fire times of a schedule, validated as creation is', async () => {
    const got = await h.api(member.token, 'GET', `/api/v1/schedules/preview?cron=${encodeURIComponent('0 9 * * 1-5')}&timezone=Europe/Paris&count=3`);
    expect(got.status, got.text).toBe(200);
    expect(got.body.next).toHaveLength(3);
    for (const iso of got.body.next as string[]) {
      const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(iso));
      expect(parts).toMatch(/^(Mon|Tue|Wed|Thu|Fri) 09:00$/);
      expect(Date.parse(iso)).toBeGreaterThan(Date.now());
    }
    expect([...got.body.next].sort()).toEqual(got.body.next);
    expect((await h.api(member.token, 'GET', '/api/v1/schedules/preview?cron=@hourly')).body.next).toHaveLength(5);
    const bad = async (query: string) => (await h.api(member.token, 'GET', `/api/v1/schedules/preview?${query}`)).body.error?.message as string;
    expect(await bad(`cron=${encodeURIComponent('61 * * * *')}`)).toMatch(/^query\.cron: /);
    expect(await bad(`cron=${encodeURIComponent('0 0 30 2 *')}`)).toMatch(/^query\.cron: .*never fires/);
    expect(await bad('cron=@hourly&timezone=Mars/Olympus')).toMatch(/^query\.timezone: /);
    expect(await bad('cron=@hourly&count=21')).toMatch(/^query\.count: /);
    expect(await bad('cron=@hourly&count=0')).toMatch(/^query\.count: /);
    expect(await bad('timezone=UTC')).toMatch(/^query\.cron: /);
    expect((await h.api(undefined, 'GET', '/api/v1/schedules/preview?cron=@hourly')).status).toBe(401);
  });

  it('gives usage per UTC day by channel, member and org (bucket=day), keeping the totals', async () => {
    const day = (d: string, s: number) => new Date(Date.parse(`${d}T00:00:00Z`) + s * 1000).toISOString();
    const counts = (input: number, output: number, cost: number) => ({ inputTokens: input, outputTokens: output, cacheReadTokens: 1, cacheCreationTokens: 0, cost });
    await insertUsageEvents(h.store.db, [
      usageEvent({ orgId, sessionId: 'u1', place: { kind: 'channel', channelId: eng }, model: 'm', ...counts(100, 10, 1_000_000), createdAt: day('2026-12-01', 10) }),
      usageEvent({ orgId, sessionId: 'u1', place: { kind: 'channel', channelId: eng }, model: 'm', ...counts(50, 5, 500_000), createdAt: day('2026-12-01', 86_399) }),
      usageEvent({ orgId, sessionId: 'u2', place: { kind: 'channel', channelId: ops }, model: 'm', ...counts(7, 1, 0), createdAt: day('2026-12-01', 20) }),
      usageEvent({ orgId, sessionId: 'u1', place: { kind: 'channel', channelId: eng }, model: 'm', ...counts(1, 1, 0), createdAt: day('2026-12-02', 0) }),
      usageEvent({ orgId, sessionId: 'u3', place: { kind: 'dm', memberId: member.memberId }, model: 'm', ...counts(3, 3, 3), createdAt: day('2026-12-02', 5) }),
    ]);
    const range = 'since=2026-12-01T00:00:00Z&until=2026-12-03T00:00:00Z';
    const byChannel = await h.api(admin.token, 'GET', `/api/v1/usage?by=channel&bucket=day&${range}`);
    expect(byChannel.status, byChannel.text).toBe(200);
    expect(byChannel.body.rows.map((r: Record<string, unknown>) => [r.day, r.key, r.label, r.inputTokens, r.requests])).toEqual(
      [
        ['2026-12-01', eng, '#eng', 150, 2],
        ['2026-12-01', ops, '#ops', 7, 1],
        ['2026-12-02', eng, '#eng', 1, 1],
      ].sort((a, b) => `${a[0]}${a[1]}`.localeCompare(`${b[0]}${b[1]}`)),
    );
    expect(byChannel.body.rows[0]).toMatchObject({ id: expect.any(String), name: expect.any(String), outputTokens: expect.any(Number), cacheReadTokens: expect.any(Number), costUsd: expect.any(Number) });
    expect(byChannel.body.totals).toEqual(byChannel.body.total);
    expect(byChannel.body.total).toMatchObject({ inputTokens: 158, requests: 4 });
    const byMember = await h.api(admin.token, 'GET', `/api/v1/usage?by=member&bucket=day&${range}`);
    expect(byMember.body.rows.map((r: Record<string, unknown>) => [r.day, r.key, r.label])).toEqual([['2026-12-02', member.memberId, 'Bob']]);
    const byOrg = await h.api(admin.token, 'GET', `/api/v1/usage?bucket=day&${range}`);
    expect(byOrg.body.rows.map((r: Record<string, unknown>) => [r.day, r.label, r.inputTokens])).toEqual([
      ['2026-12-01', 'org', 157],
      ['2026-12-02', 'org', 4],
    ]);
    // Without bucket: the shape it always had.
    const plain = await h.api(admin.token, 'GET', `/api/v1/usage?by=channel&${range}`);
    expect(plain.body.rows.every((r: Record<string, unknown>) => !('day' in r))).toBe(true);
    expect(plain.body.totals).toBeUndefined();
    expect((await h.api(admin.token, 'GET', `/api/v1/usage?bucket=week&${range}`)).body.error.message).toMatch(/^query\.bucket: /);
  });

  it("lists every member of the org across workspaces, with roles and workspace; not another org's", async () => {
    const slack = await createWorkspace(h.store.db, { orgId, kind: 'slack', externalId: `T-${backend}`, name: 'Acme Slack' });
    const carol = await createMember(h.store.db, { workspaceId: slack.id, externalId: 'U1', displayName: 'Carol', roles: ['eng'] });
    const elsewhere = await h.store.db.insertInto('orgs').values({ ...(await h.store.db.selectFrom('orgs').selectAll().executeTakeFirstOrThrow()), id: `other-${backend}`, name: 'Other' }).execute().then(() => `other-${backend}`);
    const foreignWs = await createWorkspace(h.store.db, { orgId: elsewhere, kind: 'slack', externalId: 'T-other', name: 'Other' });
    await createMember(h.store.db, { workspaceId: foreignWs.id, externalId: 'U2', displayName: 'Mallory' });

    const got = await h.api(admin.token, 'GET', '/api/v1/members');
    expect(got.status, got.text).toBe(200);
    const names = got.body.members.map((m: { displayName: string }) => m.displayName);
    expect(names).toEqual(expect.arrayContaining(['Ada', 'Bob', 'Carol']));
    expect(names).not.toContain('Mallory');
    expect(got.body.members.find((m: { id: string }) => m.id === carol.id)).toMatchObject({ roles: ['eng'], workspace: { id: slack.id, name: 'Acme Slack', kind: 'slack' } });
    expect(got.body.members.find((m: { id: string }) => m.id === admin.memberId)).toMatchObject({ roles: ['admin'], workspace: { id: h.webWorkspaceId, kind: 'web' } });
    expect((await h.api(member.token, 'GET', '/api/v1/members')).status).toBe(403);
  });

  // Last: it tampers with the log.
  it('verifies the audit log as `tagbox audit verify` does, and names the first tampered event', async () => {
    const ok = await h.api(admin.token, 'POST', '/api/v1/audit/verify');
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, events: expect.any(Number), head: expect.any(Number), checkpoints: 0 });
    expect(ok.body.events).toBeGreaterThan(5);
    expect(ok.body.summary[0]).toBe(`audit chain intact: ${ok.body.events} events`);
    expect((await h.api(member.token, 'POST', '/api/v1/audit/verify')).status).toBe(403);

    // An attacker with the database rewrites who did something.
    await sql`update audit_events set actor = 'mallory' where seq = 3`.execute(h.store.db);
    const broken = await h.api(admin.token, 'POST', '/api/v1/audit/verify');
    expect(broken.status).toBe(200);
    expect(broken.body).toMatchObject({ ok: false, brokenAt: { seq: 3, kind: 'event', problem: expect.stringMatching(/actor/) }, message: expect.stringMatching(/^audit chain broken at event 3 /) });
    await sql`update audit_events set actor = null where seq = 3`.execute(h.store.db);
  });
});
