import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/events.js';
import { turnOutputs } from '../../../src/sessions/turn-outputs-repo.js';
import { createTestCa, type TestCa } from '../../fixtures/ca.js';
import { createFakeGitHub, type FakeGitHub } from '../../fixtures/fake-github.js';
import { connectGithubApp } from './github-app.js';
import { agentTexts, startSessions, type SessionHarness } from '../../sessions/harness.js';

/**
 * Issue 14's whole path, with real parts: a message to the agent (the shell
 * engine, so the commands are the test's) runs real git and curl in a real
 * bubblewrap sandbox, through the real Agent Proxy daemon, against a fake
 * GitHub (git http-backend behind HTTPS, and the REST endpoints) that the
 * proxy reaches by upstream.connectTo. The GitHub App token is minted by the
 * proxy from the vault; the sandbox never holds it.
 */
const BACKENDS = ['sqlite', 'postgres'] as const;

// What the agent runs: clone, commit, push its thread's branch, open a pull request crediting who asked.
const CHANGE = [
  'set -e',
  'git clone -q https://github.com/acme/widgets.git w && cd w',
  'echo "hello from the agent" > HELLO.md && git add HELLO.md',
  "git -c user.name='Tagbox' -c user.email='agent@tagbox.invalid' commit -q -m 'Add HELLO.md'",
  'git push -q origin "HEAD:refs/heads/$TAGBOX_BRANCH" 2>&1',
  'printf \'{"title":"Add HELLO.md","head":"%s","base":"main","body":"Adds a greeting.\\\\n\\\\n%s"}\' "$TAGBOX_BRANCH" "$TAGBOX_CREDIT" > pr.json',
  'curl -sS -o /dev/null -w "pr %{http_code}\\n" -X POST https://api.github.com/repos/acme/widgets/pulls -H "content-type: application/json" --data-binary @pr.json',
].join('\n');

for (const backend of BACKENDS) {
  describe(`GitHub: clone, push the thread's branch, open a pull request (${backend})`, () => {
    let ca: TestCa;
    let fake: FakeGitHub;
    let h: SessionHarness;
    let aliceId: string;
    let mainOid: string;

    beforeAll(async () => {
      ca = await createTestCa();
      fake = await createFakeGitHub({ ca });
      mainOid = await fake.createRepo('acme', 'widgets', { 'README.md': '# widgets\n' });
      h = await startSessions(backend, {}, [], { daemonEnv: { TAGBOX_UPSTREAM_CONNECT_TO: fake.connectTo, TAGBOX_UPSTREAM_CA_FILE: ca.certFile } });
      ({ aliceId } = await connectGithubApp(h, fake));
    }, 120_000);

    afterAll(async () => {
      await h?.close();
      await fake?.close();
    });

    it('a message asks for a change: the branch is pushed, the pull request opened and linked in the thread, credited to who asked', async () => {
      const asked = await h.say(`@tagbox ${CHANGE}`, { by: { ...h.owner, id: aliceId, displayName: 'Alice' } });
      const thread = asked.thread;
      const branch = `tagbox/${thread}`;
      const events = await h.untilDone(thread, 1, 90_000);
      const reply = agentTexts(events).join('\n');
      expect(reply).toContain('pr 201');
      expect(reply).toContain('[exit code 0]');

      // The fake GitHub has the branch, its commit credits Alice, main is untouched.
      const refs = await fake.refs('acme', 'widgets');
      expect(refs[`refs/heads/${branch}`]).toMatch(/^[0-9a-f]{40}$/);
      expect(refs['refs/heads/main']).toBe(mainOid);
      expect(await fake.log('acme', 'widgets', branch)).toMatch(/^Add HELLO\.md\n\nCo-authored-by: Alice <alice@example\.com>$/);
      expect(fake.pulls).toHaveLength(1);
      expect(fake.pulls[0]).toMatchObject({ owner: 'acme', repo: 'widgets', head: branch, base: 'main' });
      expect(fake.pulls[0]!.body).toContain(`Requested by Alice in #general (Tagbox thread ${thread}).`);

      // The thread shows the link and the push, once each.
      const notices = await h.until('the pull request notice', async () => {
        const all = (await h.events(thread)).filter((e) => e.type === 'notice');
        return all.some((e) => e.data.kind === 'pull-request') ? all : undefined;
      });
      const pr = notices.filter((e) => e.data.kind === 'pull-request');
      expect(pr).toHaveLength(1);
      expect(pr[0]!.data).toMatchObject({ url: 'https://github.com/acme/widgets/pull/1', number: 1, repository: 'acme/widgets' });
      expect(pr[0]!.data.text).toBe('Opened pull request acme/widgets#1 “Add HELLO.md”: https://github.com/acme/widgets/pull/1');
      expect(notices.filter((e) => e.data.kind === 'push').map((e) => e.data.text)).toEqual([`Pushed branch ${branch} to acme/widgets.`]);

      // What the turn left, recorded with it.
      const left = await turnOutputs(h.store.db, thread);
      expect(left.map(({ at: _at, ...o }) => o)).toEqual([
        { kind: 'branch', repository: 'acme/widgets', ref: `refs/heads/${branch}`, turn: asked.turn },
        { kind: 'pull-request', repository: 'acme/widgets', number: 1, url: 'https://github.com/acme/widgets/pull/1', title: 'Add HELLO.md', turn: asked.turn },
      ]);

      // Attribution: the invocation and the push and the pull request share the turn and the thread.
      const audit = await auditEvents(h);
      const invocation = audit.find((e) => e.type === 'invocation' && e.turn === asked.turn);
      expect(invocation).toMatchObject({ actor: aliceId, session: thread, message: asked.message });
      const github = audit.filter((e) => e.type === 'github' && e.turn === asked.turn);
      expect(github.map((e) => e.action)).toEqual(['push', 'pull-request']);
      for (const e of github) expect(e).toMatchObject({ actor: aliceId, session: thread, thread, repository: 'acme/widgets', channel: h.channelId });
      expect(github[1]).toMatchObject({ number: 1, url: 'https://github.com/acme/widgets/pull/1', head: branch, base: 'main' });
      const pushes = audit.filter((e) => e.type === 'egress' && e.session === thread && String(e.path).endsWith('/git-receive-pack'));
      expect(pushes).toHaveLength(1);
      expect(pushes[0]).toMatchObject({ outcome: 'credential', connection: 'acme-github', github: { kind: 'push', repository: 'acme/widgets' } });
      expect((pushes[0]!.github as { refs: unknown[] }).refs).toEqual([expect.objectContaining({ ref: `refs/heads/${branch}`, action: 'create', ok: true })]);
    }, 120_000);

    it('the token was minted narrowed, seen by the fake GitHub on every git and API request, and never by the sandbox', async () => {
      expect(fake.mints.length).toBeGreaterThanOrEqual(1);
      expect(fake.mints[0]).toMatchObject({ repositories: ['widgets'], permissions: { contents: 'write', pull_requests: 'write' } });
      const tokens = fake.tokensIssued;
      const gitCalls = fake.requests.filter((r) => r.host === 'github.com');
      expect(gitCalls.length).toBeGreaterThan(2);
      for (const r of gitCalls) expect(tokens.map((t) => `Basic ${Buffer.from(`x-access-token:${t}`).toString('base64')}`)).toContain(r.authorization);
      const pullCalls = fake.requests.filter((r) => r.host === 'api.github.com' && r.path === '/repos/acme/widgets/pulls');
      expect(pullCalls.map((r) => r.authorization)).toEqual([`Bearer ${tokens[0]}`]);

      // Everything the sandbox can see: its environment, git's configuration, the clone's files.
      const looked = await h.say('@tagbox env; git -C w config --list --show-origin; cat w/.git/config; grep -r . w/.git --include=config --include=FETCH_HEAD || true; ls -la ~ /tmp', { threadKey: await firstThread(h), mustExist: true });
      const events = await h.untilDone(looked.thread, 2, 60_000);
      const seen = agentTexts(events).at(-1)!;
      expect(seen).toContain('remote.origin.url=https://github.com/acme/widgets.git');
      for (const token of tokens) expect(seen).not.toContain(token);
      expect(seen).not.toContain('PRIVATE KEY');
      expect(seen).not.toMatch(/x-access-token|extraheader/i);
    }, 120_000);

    it('a push to main and a branch deletion are refused at the proxy with a reason git shows; nothing changes upstream', async () => {
      const thread = await firstThread(h);
      const before = await fake.refs('acme', 'widgets');
      const asked = await h.say(
        '@tagbox cd w; echo more >> HELLO.md; git -c user.name=T -c user.email=t@t.invalid commit -qam more; git push origin HEAD:main 2>&1; echo "main exit $?"; git push origin ":refs/heads/$TAGBOX_BRANCH" 2>&1; echo "delete exit $?"; git push origin HEAD:refs/tags/v1 2>&1; echo "tag exit $?"',
        { threadKey: thread, mustExist: true },
      );
      const events = await h.untilDone(thread, 3, 60_000);
      const out = agentTexts(events).at(-1)!;
      expect(out).toContain('! [remote rejected] HEAD -> main (Tagbox lets the agent push only to branches matching tagbox/*)');
      expect(out).toMatch(/main exit [1-9]/);
      expect(out).toContain(`! [remote rejected] tagbox/${thread} (Tagbox does not let the agent delete branches)`);
      expect(out).toMatch(/delete exit [1-9]/);
      expect(out).toContain('! [remote rejected] HEAD -> v1 (Tagbox lets the agent push branches only (tagbox/*), not refs/tags/v1)');
      expect(out).toContain('remote: Tagbox refused this push');
      expect(await fake.refs('acme', 'widgets')).toEqual(before);

      // The thread is told once (per turn), and the audit has each refusal with its refs.
      const refusals = (await h.events(thread)).filter((e) => e.type === 'notice' && e.turn === asked.turn && e.data.kind === 'blocked');
      expect(refusals.map((e) => e.data.text)).toEqual(['Refused a push to github.com: Tagbox lets the agent push only to branches matching tagbox/* (refs/heads/main).']);
      const audit = (await auditEvents(h)).filter((e) => e.type === 'egress' && e.session === thread && e.outcome === 'blocked' && String(e.path).endsWith('/git-receive-pack'));
      expect(audit.map((e) => (e.github as { refs: Array<{ ref: string; action: string }> }).refs.map((r) => `${r.action} ${r.ref}`))).toEqual([
        ['update refs/heads/main'],
        [`delete refs/heads/tagbox/${thread}`],
        ['create refs/tags/v1'],
      ]);
      for (const e of audit) expect(e).toMatchObject({ status: 403, github: { refusedBy: 'tagbox' } });
    }, 120_000);
  });
}

async function firstThread(h: SessionHarness): Promise<string> {
  const row = await h.store.db.selectFrom('sessions').select('id').orderBy('created_at').executeTakeFirstOrThrow();
  return row.id;
}

async function auditEvents(h: SessionHarness): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for await (const e of h.audit.query({})) out.push(e);
  return out;
}
