import type { ConnectionSpec } from '../../../src/access/model.js';
import type { FakeGitHub } from '../../fixtures/fake-github.js';
import type { SessionHarness } from '../../sessions/harness.js';

/**
 * What an admin does to let #general's agent work on acme/widgets: the App's
 * key in the vault, a GitHub App connection in a bundle attached to the
 * channel. And Alice, a member with a verified email, to ask for the change.
 */
export async function connectGithubApp(h: SessionHarness, fake: FakeGitHub): Promise<{ aliceId: string }> {
  await h.proxy.secrets.put('gh-app', Buffer.from(fake.credentialDocument), 'github-app');
  // Its websites and injection are GitHub's, so the spec leaves them out.
  const github = { name: 'acme-github', secret: 'gh-app', github: { repositories: ['acme/widgets'], permissions: { contents: 'write', pull_requests: 'write' } } };
  await h.access.putBundle(h.owner.id, h.orgId, { name: 'github', domains: [], connections: [github as unknown as ConnectionSpec] });
  await h.access.attach(h.owner.id, h.orgId, 'github', { kind: 'channel', id: h.channelId });
  const alice = await h.member('Alice');
  await h.store.db.insertInto('member_emails').values({ member_id: alice.id, email: 'alice@example.com', created_at: new Date().toISOString() }).execute();
  return { aliceId: alice.id };
}
