import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { startApi, type ApiHarness } from './harness.js';

/** POST /api/v1/workspaces with `slack` (CONTRACT.md "Slack"): names in the vault, never values, checked before anything is made. */
for (const backend of BACKENDS) {
  describe(`connecting a Slack workspace (${backend})`, () => {
    let h: ApiHarness;
    beforeAll(async () => {
      h = await startApi(backend);
      for (const [name, value] of [['slack-bot', 'xoxb-1-secret-bot-value'], ['slack-app', 'xapp-1-secret-app-value']]) {
        expect((await h.api(h.ownerToken, 'PUT', `/api/v1/secrets/${name}`, { value })).status).toBeLessThan(300);
      }
    });
    afterAll(async () => h?.close());

    it('connects a team in Socket Mode and shows its settings, never a token', async () => {
      const r = await h.api(h.ownerToken, 'POST', '/api/v1/workspaces', { kind: 'slack', externalId: 'T0ACME', name: 'Acme', slack: { mode: 'socket', botTokenSecret: 'slack-bot', appTokenSecret: 'slack-app' } });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ kind: 'slack', externalId: 'T0ACME', slack: { mode: 'socket', botTokenSecret: 'slack-bot', appTokenSecret: 'slack-app' } });
      const listed = await h.api(h.ownerToken, 'GET', '/api/v1/workspaces');
      expect(listed.body.find((w: { id: string }) => w.id === r.body.id)).toMatchObject({ slack: { mode: 'socket', botTokenSecret: 'slack-bot' } });
      expect(listed.text).not.toContain('secret-bot-value');
      const audit = (await h.store.db.selectFrom('audit_events').selectAll().where('type', '=', 'admin-change').execute()).filter((e) => e.data.includes(`workspace:${r.body.id}`));
      expect(audit).toHaveLength(1);
      expect(JSON.parse(audit[0]!.data).fields).toContain('slack');
      expect(JSON.stringify(audit)).not.toContain('secret-bot-value');
    });

    it('says what is missing, and makes nothing', async () => {
      const before = (await h.api(h.ownerToken, 'GET', '/api/v1/workspaces')).body.length;
      const cases: Array<[unknown, RegExp]> = [
        [{ mode: 'socket', botTokenSecret: 'slack-bot' }, /slack\.appTokenSecret: Socket Mode needs the app-level token/],
        [{ mode: 'events', botTokenSecret: 'slack-bot' }, /slack\.signingSecret/],
        [{ mode: 'socket', botTokenSecret: 'no-such', appTokenSecret: 'slack-app' }, /slack\.botTokenSecret: no secret named "no-such"/],
        [{ mode: 'socket', botTokenSecret: 'slack-bot', appTokenSecret: 'missing-app' }, /slack\.appTokenSecret: no secret named "missing-app"/],
        [{ mode: 'webhook', botTokenSecret: 'slack-bot' }, /slack\.mode/],
        [{ mode: 'socket', botTokenSecret: 'Bad Name!' }, /slack\.botTokenSecret: expected a vault secret name/],
        [{ mode: 'socket', botTokenSecret: 'slack-bot', token: 'xoxb-raw' }, /slack/],
      ];
      for (const [slack, message] of cases) {
        const r = await h.api(h.ownerToken, 'POST', '/api/v1/workspaces', { kind: 'slack', externalId: 'T0BAD', name: 'Bad', slack });
        expect(r.status, JSON.stringify(slack)).toBe(400);
        expect(r.body.error.message).toMatch(message);
      }
      const web = await h.api(h.ownerToken, 'POST', '/api/v1/workspaces', { kind: 'web', externalId: 'w2', name: 'W', slack: { mode: 'socket', botTokenSecret: 'slack-bot', appTokenSecret: 'slack-app' } });
      expect(web.status).toBe(400);
      expect((await h.api(h.ownerToken, 'GET', '/api/v1/workspaces')).body.length).toBe(before);
    });

    it('is for admins only', async () => {
      const member = await h.tokenFor('member', `m-${backend}`);
      const r = await h.api(member.token, 'POST', '/api/v1/workspaces', { kind: 'slack', externalId: 'T0MEM', name: 'M', slack: { mode: 'socket', botTokenSecret: 'slack-bot', appTokenSecret: 'slack-app' } });
      expect(r.status).toBe(403);
    });
  });
}
