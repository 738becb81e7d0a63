import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EchoReply, EchoUpstream } from '../fixtures/echo-upstream.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { agentTexts, answered, auditEvents, eventsOfTurn, newMember, readEvents, startUp, turnOfMessage, until, webWorkspace, type Up, E2E_TIMEOUT, echoUpstreamFor } from './up-harness.js';

/**
 * Issue 10, "Done when" 1-3 and 11, through the real `tagbox up`: a message in
 * #general runs curl in a real sandbox whose only way out is its session's
 * listener on the real Agent Proxy. The channel's bundle injects its
 * credential (the echo upstream sees it), the sandbox never holds it, every
 * member of the channel gets the same reach, a DM gets the member's own
 * connector and never the channel's, and the audit log ties it all together.
 */
describe.each(BACKENDS)('chat -> session -> sandbox -> Agent Proxy (%s)', { timeout: E2E_TIMEOUT }, (backendName) => {
  let backend: TestBackend;
  let echo: EchoUpstream;
  let up: Up;
  let owner: string;
  let generalId: string;
  let ada: { id: string; token: string };
  let bob: { id: string; token: string };
  // Two secrets that must only ever travel in the proxy's requests upstream.
  const channelSecret = `chan-${randomBytes(16).toString('hex')}`;
  const personalSecret = `mine-${randomBytes(16).toString('hex')}`;
  let channelThread: string;

  beforeAll(async () => {
    const upstream = await echoUpstreamFor(['chan.echo.test', 'dm.echo.test', 'open.echo.test', 'elsewhere.echo.test']);
    echo = upstream.echo;
    backend = await createTestBackend(backendName);
    up = await startUp({ ...backend.env, ...upstream.env });
    owner = up.token!;
    const web = await webWorkspace(up, owner);
    generalId = web.generalId;
    ada = await newMember(up, owner, web.workspaceId, 'Ada');
    bob = await newMember(up, owner, web.workspaceId, 'Bob');

    expect((await up.api(owner, 'PUT', '/secrets/chan-token', { value: channelSecret })).status).toBe(200);
    const bundle = await up.api(owner, 'PUT', '/bundles/general-eng', {
      domains: ['open.echo.test'],
      connections: [{ name: 'chan', secret: 'chan-token', allowedWebsites: ['chan.echo.test'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' } }],
    });
    expect(bundle.status, bundle.text).toBe(200);
    expect((await up.api(owner, 'POST', '/bundles/general-eng/scopes', { scope: `channel:${generalId}` })).status).toBe(200);
    // Ada's own connector, for her DMs only.
    const connector = await up.api(ada.token, 'PUT', '/me/connectors/mine', {
      allowedWebsites: ['dm.echo.test'],
      inject: { header: 'Authorization', value: 'Bearer {{secret}}' },
      secretValue: personalSecret,
    });
    expect(connector.status, connector.text).toBe(200);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await up?.stop();
    await echo?.close();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  /** Posts a command, waits for its turn to end; the thread and what the agent said. */
  async function run(token: string, text: string, where: { channel?: string; thread?: string } = { channel: generalId }) {
    const path = where.channel ? `/channels/${where.channel}/messages` : '/dms/messages';
    const posted = await up.api(token, 'POST', path, { text, ...(where.thread ? { thread: where.thread } : {}) });
    expect(posted.status, posted.text).toBe(202);
    const thread = posted.body.thread as string;
    const all = await readEvents(up, token, thread, answered(posted.body.message));
    const events = eventsOfTurn(all, turnOfMessage(all, posted.body.message)!);
    const done = events.find((e) => e.event === 'done')!;
    return { thread, reply: agentTexts(events).join('\n'), done: done.data as { status: string; exitCode?: number } };
  }

  const received = (path: string): EchoReply[] => echo.received.filter((r) => r.path === path);

  // Run after the credential was used. The secret is assembled at run time from two halves: it is in
  // no command's text, argv or file until the positive control writes it, so any hit before that is a
  // leak into the sandbox (its env, any process's environment, any file it can read and write).
  const searchFor = (secret: string) => {
    const half = Math.floor(secret.length / 2);
    return [
      `S="$(printf %s '${secret.slice(0, half)}')$(printf %s '${secret.slice(half)}')"`,
      'echo "env: $(env | grep -cF -- "$S")"',
      `echo "environ: $(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cF -- "$S")"`,
      'echo "files: $(grep -rlsF -- "$S" /etc /home /workspace /tmp /run /dev/shm | wc -l)"',
      // The search works: the same search finds the value once it is written to a file.
      'printf %s "$S" > /workspace/control',
      'echo "control: $(grep -rlsF -- "$S" /etc /home /workspace /tmp /run /dev/shm | wc -l)"',
      'rm /workspace/control',
    ].join('; ');
  };

  it('a channel message injects the channel credential at the proxy; the sandbox never holds it', async () => {
    const path = `/v1/ada-${randomBytes(4).toString('hex')}`;
    const { thread, reply, done } = await run(
      ada.token,
      `echo "upstream: $(curl -s -o /dev/null -w '%{http_code}' https://chan.echo.test${path})"; env | grep -c '^HTTPS_PROXY=http://127.0.0.1:3128$'; ${searchFor(channelSecret)}`,
    );
    channelThread = thread;
    expect(done).toMatchObject({ status: 'done', exitCode: 0 });
    expect(reply).toContain('upstream: 200\n1\nenv: 0\nenviron: 0\nfiles: 0\ncontrol: 1\n');
    expect(reply).not.toContain(channelSecret);
    const [request] = received(path);
    expect(request?.headers.authorization).toBe(`Bearer ${channelSecret}`);
  });

  it('gives every member of the channel the same reach: the credential is the channel’s, not the asker’s', async () => {
    const paths = { ada: `/v1/same-ada-${randomBytes(4).toString('hex')}`, bob: `/v1/same-bob-${randomBytes(4).toString('hex')}` };
    const command = (path: string) => `curl -s -o /dev/null -w '%{http_code}' https://chan.echo.test${path}`;
    const [a, b] = await Promise.all([run(ada.token, command(paths.ada)), run(bob.token, command(paths.bob))]);
    expect(a.reply).toMatch(/^200/);
    expect(b.reply).toMatch(/^200/);
    expect(received(paths.ada).map((r) => r.headers.authorization)).toEqual([`Bearer ${channelSecret}`]);
    expect(received(paths.bob).map((r) => r.headers.authorization)).toEqual([`Bearer ${channelSecret}`]);
    // Bob steering Ada's thread acts with the same identity too.
    const steer = `/v1/steer-${randomBytes(4).toString('hex')}`;
    const c = await run(bob.token, command(steer), { channel: generalId, thread: channelThread });
    expect(c.thread).toBe(channelThread);
    expect(received(steer).map((r) => r.headers.authorization)).toEqual([`Bearer ${channelSecret}`]);
  });

  it('a channel never uses a member’s personal connector', async () => {
    const path = `/v1/chan-to-dm-${randomBytes(4).toString('hex')}`;
    const { thread, reply } = await run(ada.token, `curl -s -o /dev/null -w '%{http_connect} %{http_code}' https://dm.echo.test${path}; echo " curl=$?"`);
    expect(reply).toMatch(/^403 000 curl=56/);
    expect(received(path)).toEqual([]);
    // Default deny, decided and audited for this thread (a CONNECT refused: no path is known).
    const [blocked] = await until('the blocked egress event', async () => {
      const events = await auditEvents(up, owner, { session: thread, type: 'egress' });
      return events.length ? events : undefined;
    });
    expect(blocked).toMatchObject({ outcome: 'blocked', host: 'dm.echo.test', port: 443, session: thread });
  });

  it('a DM uses the member’s personal connector and never the channel’s', async () => {
    const mine = `/v1/dm-${randomBytes(4).toString('hex')}`;
    const theirs = `/v1/dm-chan-${randomBytes(4).toString('hex')}`;
    const { thread, reply, done } = await run(
      ada.token,
      [
        `echo "mine: $(curl -s -o /dev/null -w '%{http_code}' https://dm.echo.test${mine})"`,
        `C=$(curl -s -o /dev/null -w '%{http_connect} %{http_code}' https://chan.echo.test${theirs}); echo "channel's: $C curl=$?"`,
        searchFor(personalSecret),
      ].join('; '),
      {},
    );
    expect(done.status).toBe('done');
    expect(reply).toContain('mine: 200\nchannel\'s: 403 000 curl=56\nenv: 0\nenviron: 0\nfiles: 0\ncontrol: 1\n');
    expect(received(mine).map((r) => r.headers.authorization)).toEqual([`Bearer ${personalSecret}`]);
    expect(received(theirs)).toEqual([]);
    // The DM is Ada's alone: Bob cannot read it, nor post in it.
    expect((await up.api(bob.token, 'GET', `/threads/${thread}`)).status).toBe(404);
    expect((await up.api(bob.token, 'POST', '/dms/messages', { text: 'true', thread })).status).toBe(404);
    const view = await up.api(ada.token, 'GET', `/threads/${thread}`);
    expect(view.body).toMatchObject({ place: { kind: 'dm', member: ada.id }, session: { identity: 'member', engine: 'shell' } });
  });

  it('attributes it all: `tagbox audit export --session` ties invocation, session, sandbox and egress to the thread', async () => {
    // The proxy commits its egress events in groups, a moment after the request: the thread made two.
    const viaApi = await until('the thread\'s two egress events', async () => {
      const events = await auditEvents(up, owner, { session: channelThread, type: 'egress' });
      return events.length >= 2 ? events : undefined;
    });
    const exported = await runTagbox(['audit', 'export', '--session', channelThread], { env: up.env });
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).not.toContain(channelSecret);
    const events = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.every((e) => e.session === channelThread)).toBe(true);
    const invocations = events.filter((e) => e.type === 'invocation');
    // Ada opened the thread, Bob steered it: each invocation is the asker's; the identity is the agent's.
    expect(invocations.map((e) => e.actor)).toEqual([ada.id, bob.id]);
    expect(invocations.every((e) => e.outcome === 'accepted' && e.identity === 'agent' && e.channel === generalId)).toBe(true);
    expect(events.find((e) => e.type === 'session' && e.action === 'create')).toMatchObject({ actor: ada.id, channel: generalId, identity: 'agent' });
    expect(events.find((e) => e.type === 'sandbox' && e.action === 'create')).toMatchObject({ provider: 'bubblewrap', channel: generalId });
    const egress = events.filter((e) => e.type === 'egress');
    expect(egress).toEqual([
      expect.objectContaining({ outcome: 'credential', method: 'GET', scheme: 'https', host: 'chan.echo.test', port: 443, connection: 'chan', bundle: 'general-eng', status: 200 }),
      expect.objectContaining({ outcome: 'credential', host: 'chan.echo.test', connection: 'chan', bundle: 'general-eng', status: 200 }),
    ]);
    // The same filter through the admin API.
    expect(viaApi.map((e) => e.seq)).toEqual(egress.map((e) => e.seq));
    expect((await runTagbox(['audit', 'verify'], { env: up.env })).code).toBe(0);
  });
});
