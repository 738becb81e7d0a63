import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCa } from '../fixtures/ca.js';
import { createFakeGitHub, type FakeGitHub } from '../fixtures/fake-github.js';
import { systemText, toolResults } from '../fixtures/fake-anthropic.js';
import { agentTexts, systemTexts } from '../sessions/harness.js';
import { connectGithubApp } from '../surfaces/github/github-app.js';
import { startClaude, type ClaudeHarness } from './claude-harness.js';

/**
 * Issue 14 with the `claude` engine: the real binary, told by Tagbox's system
 * prompt where to push and how to credit, runs the model's Bash tool use (real
 * git and curl in a real sandbox) through the real proxy to a fake GitHub.
 * The tool's output goes back to the model, so the fake Anthropic API sees
 * everything the sandbox saw: no installation token may be in it.
 */
const CHANGE = [
  'set -e',
  'git clone -q https://github.com/acme/widgets.git w && cd w',
  'echo "hello from claude" > HELLO.md && git add HELLO.md',
  "git -c user.name='Tagbox' -c user.email='agent@tagbox.invalid' commit -q -m 'Add HELLO.md'",
  'git push -q origin "HEAD:refs/heads/$TAGBOX_BRANCH" 2>&1',
  'printf \'{"title":"Add HELLO.md","head":"%s","base":"main","body":"Adds a greeting.\\\\n\\\\n%s"}\' "$TAGBOX_BRANCH" "$TAGBOX_CREDIT" > pr.json',
  'curl -sS -w "\\npr %{http_code}\\n" -X POST https://api.github.com/repos/acme/widgets/pulls -H "content-type: application/json" --data-binary @pr.json',
].join('\n');

describe('the claude engine on GitHub: clone, push the thread branch, open a credited pull request (sqlite)', () => {
  let fake: FakeGitHub;
  let h: ClaudeHarness;
  let aliceId: string;

  beforeAll(async () => {
    // One CA for the fake Anthropic API and the fake GitHub: the daemon trusts one CA file.
    const ca = await createTestCa();
    fake = await createFakeGitHub({ ca });
    await fake.createRepo('acme', 'widgets', { 'README.md': '# widgets\n' });
    h = await startClaude('sqlite', {}, { ca, extraConnectTo: fake.connectTo });
    ({ aliceId } = await connectGithubApp(h, fake));
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await fake?.close();
  });

  const messagesRequests = () => h.model.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/v1/messages') && !r.path.includes('count_tokens'));

  it('the prompt says where to push and how to credit; the branch, the credited commit and the PR land; no token reaches the model or the thread', async () => {
    let toolOutput = '';
    h.model.script({ text: 'On it.', toolUse: { name: 'Bash', input: { command: CHANGE } } }, (req) => {
      toolOutput = toolResults(req).at(-1)?.content ?? '';
      return { text: 'Opened the PR.' };
    });
    const asked = await h.say('@tagbox add a HELLO.md to acme/widgets and open a PR', { by: { ...h.owner, id: aliceId, displayName: 'Alice' } });
    const thread = asked.thread;
    const branch = `tagbox/${thread}`;
    const credit = `Requested by Alice in #general (Tagbox thread ${thread}).`;
    const events = await h.untilDone(thread, 1, 90_000);
    expect(events.filter((e) => e.type === 'done').at(-1)!.data.status, JSON.stringify(systemTexts(events))).toBe('done');
    expect(agentTexts(events)).toEqual(['Opened the PR.']);
    expect(toolOutput).toContain('pr 201');

    // (1) Tagbox's system prompt told the model the thread's branch and the credit line.
    const calls = messagesRequests();
    expect(calls).toHaveLength(2);
    const system = systemText(calls[0]!);
    const section = system.slice(system.indexOf('# GitHub'));
    expect(system).toContain('# GitHub');
    expect(section).toContain(`Push your work to the branch ${branch} (also in $TAGBOX_BRANCH)`);
    expect(section).toContain(`\n${credit}\n`);

    // (2) The fake GitHub has the branch, its commit credits Alice, the PR body ends with the credit.
    const refs = await fake.refs('acme', 'widgets');
    expect(refs[`refs/heads/${branch}`]).toMatch(/^[0-9a-f]{40}$/);
    expect(await fake.log('acme', 'widgets', branch)).toMatch(/^Add HELLO\.md\n\nCo-authored-by: Alice <alice@example\.com>$/);
    expect(fake.pulls).toHaveLength(1);
    expect(fake.pulls[0]).toMatchObject({ owner: 'acme', repo: 'widgets', head: branch, base: 'main' });
    expect(fake.pulls[0]!.body).toContain(credit);

    // (3) The thread links the pull request.
    const notices = await h.until('the pull request notice', async () => {
      const all = (await h.events(thread)).filter((e) => e.type === 'notice' && e.data.kind === 'pull-request');
      return all.length ? all : undefined;
    });
    expect(notices).toHaveLength(1);
    expect(notices[0]!.data).toMatchObject({ url: 'https://github.com/acme/widgets/pull/1', number: 1, repository: 'acme/widgets' });
    expect(notices[0]!.data.text).toBe('Opened pull request acme/widgets#1 “Add HELLO.md”: https://github.com/acme/widgets/pull/1');

    // (4) The token was used upstream, but never seen by the model (the tool results went back to it) nor in the thread.
    const tokens = fake.tokensIssued;
    expect(tokens.length).toBeGreaterThanOrEqual(1);
    expect(fake.requests.filter((r) => r.host === 'api.github.com' && r.path === '/repos/acme/widgets/pulls').map((r) => r.authorization)).toEqual([`Bearer ${tokens[0]}`]);
    // The second request carries the PR's JSON the sandbox got back: the check below has something to look in.
    expect(JSON.stringify(calls[1]!.body)).toContain('https://github.com/acme/widgets/pull/1');
    const seenByModel = JSON.stringify(h.model.requests.map((r) => ({ path: r.path, headers: r.headers, body: r.body as unknown })));
    const inThread = JSON.stringify(await h.events(thread));
    for (const token of tokens) {
      expect(seenByModel).not.toContain(token);
      expect(inThread).not.toContain(token);
    }
    expect(seenByModel).not.toMatch(/x-access-token|ghs_/);
  }, 120_000);
});
