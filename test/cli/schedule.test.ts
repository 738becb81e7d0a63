import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addChannelMember } from '../../src/access/channel-access.js';
import { formatSchedules, pickChannel, type ChannelRef } from '../../src/cli/schedule.js';
import { isTagboxError } from '../../src/errors.js';
import { scheduleRoutes } from '../../src/server/routes/schedules.js';
import { BACKENDS } from '../helpers/backends.js';
import { runTagbox } from '../helpers/cli.js';
import { startApi, type ApiHarness } from '../server/harness.js';

/**
 * The built `tagbox schedule` against a real API server on loopback (the
 * harness, with the schedule routes registered as the integrator will).
 */
describe.each(BACKENDS)('tagbox schedule (%s)', (backend) => {
  let h: ApiHarness;
  let home: string;
  let bob: { token: string; memberId: string };
  let carol: { token: string; memberId: string };
  let eng: string;
  let secret: string;
  const tagbox = (token: string, ...args: string[]) => runTagbox(['schedule', ...args, '--url', h.url, '--token', token], { env: { TAGBOX_HOME: home } });

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'tagbox-cli-home-'));
    h = await startApi(backend, { routes: [(deps) => scheduleRoutes(deps, { maxPromptBytes: 100 })] });
    bob = await h.tokenFor('member', 'bob');
    carol = await h.tokenFor('member', 'carol');
    eng = (await h.api(h.ownerToken, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: 'eng', name: 'eng' })).body.id;
    secret = (await h.api(h.ownerToken, 'POST', `/api/v1/workspaces/${h.webWorkspaceId}/channels`, { externalId: 'secret', name: 'secret', isPrivate: true })).body.id;
    await addChannelMember(h.store.db, secret, bob.memberId);
  });
  afterAll(async () => {
    await h?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it('adds, lists and removes a schedule', async () => {
    const added = await tagbox(bob.token, 'add', '--channel', eng, '--cron', '0 9 * * 1-5', '--timezone', 'Europe/Paris', '--json', 'summarise', 'the', 'PRs');
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    const created = JSON.parse(added.stdout) as { id: string; prompt: string; timezone: string; createdBy: string };
    expect(created).toMatchObject({ prompt: 'summarise the PRs', timezone: 'Europe/Paris', createdBy: bob.memberId, channel: eng });

    const plain = await tagbox(bob.token, 'add', '--channel', eng, '--cron', '30 6 * * *', 'morning');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^created schedule [0-9a-f-]{36}: "30 6 \* \* \*" \(UTC\), next run \d{4}-\d\d-\d\dT06:30:00\.000Z\n$/);

    const table = await tagbox(bob.token, 'list');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+CHANNEL\s+CRON\s+TIMEZONE\s+NEXT RUN\s+CREATED BY\s+PROMPT$/);
    expect(lines.find((l) => l.startsWith(created.id))).toMatch(new RegExp(`^${created.id}\\s+${eng}\\s+0 9 \\* \\* 1-5\\s+Europe/Paris\\s+\\S+Z\\s+${bob.memberId}\\s+summarise the PRs$`));

    const json = JSON.parse((await tagbox(bob.token, 'list', '--channel', eng, '--json')).stdout) as { id: string }[];
    expect(json.map((s) => s.id)).toContain(created.id);

    const removed = await tagbox(bob.token, 'rm', created.id);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(`removed schedule ${created.id}\n`);
    const again = await tagbox(bob.token, 'rm', created.id);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`tagbox: DELETE /api/v1/schedules/${created.id}: 404 schedule "${created.id}" not found\n`);
  });

  it('exits 2 with the server\'s message for input only the server can judge, 1 for a refusal', async () => {
    const long = await tagbox(bob.token, 'add', '--channel', eng, '--cron', '0 9 * * *', 'x'.repeat(101));
    expect(long.code).toBe(2);
    expect(long.stderr).toContain('prompt: expected at most 100 bytes of UTF-8 (agent.maxMessageBytes), got 101');

    const refused = await tagbox(carol.token, 'add', '--channel', secret, '--cron', '0 9 * * *', 'peek');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`403 channel "${secret}": you may not use it (it is private and you are not one of its members)`);
  });

  it('exits 2 on bad input before contacting any server', async () => {
    const bad = await runTagbox(['schedule', 'add', '--channel', eng, '--cron', '0 9 * * 8', '--url', 'http://127.0.0.1:1', '--token', 'x', 'hi'], { env: { TAGBOX_HOME: home } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^tagbox: --cron: expected five fields/);
    const zone = await runTagbox(['schedule', 'add', '--channel', eng, '--cron', '0 9 * * *', '--timezone', 'Moon/Base', 'hi'], { env: { TAGBOX_HOME: home } });
    expect(zone.code).toBe(2);
    expect(zone.stderr).toBe('tagbox: --timezone: expected an IANA time zone such as "Europe/Paris" or "UTC", got "Moon/Base"\n');
    expect((await runTagbox(['schedule', 'add', '--cron', '0 9 * * *', 'hi'], { env: { TAGBOX_HOME: home } })).code).toBe(2);
    expect((await runTagbox(['schedule', 'rm', '../tokens'], { env: { TAGBOX_HOME: home } })).code).toBe(2);
  });

  it('says so when the server cannot look channel names up', async () => {
    const byName = await tagbox(bob.token, 'add', '--channel', '#eng', '--cron', '0 9 * * *', 'hi');
    expect(byName.code).toBe(1);
    expect(byName.stderr).toBe('tagbox: --channel "#eng": this server cannot look channels up by name (no GET /api/v1/channels); pass the channel\'s id\n');
  });

  it("never prints another member's control characters to the terminal", async () => {
    const hostile = 'hi \u001b]0;owned\u0007\u001b[2J\u202eevil';
    expect((await h.api(carol.token, 'POST', `/api/v1/channels/${eng}/schedules`, { cron: '0 9 * * *', prompt: hostile })).status).toBe(201);
    const table = await tagbox(bob.token, 'list');
    expect(table.code).toBe(0);
    for (const c of ['\u001b', '\u0007', '\u202e']) expect(table.stdout).not.toContain(c);
    expect(table.stdout).toContain('hi ?]0;owned??[2J?evil');
    // JSON keeps the text exactly, escaped.
    const json = await tagbox(bob.token, 'list', '--json');
    expect(json.stdout).not.toContain('\u001b');
    expect((JSON.parse(json.stdout) as { prompt: string }[]).map((s) => s.prompt)).toContain(hostile);
  });
});

describe('channel names', () => {
  const channels: ChannelRef[] = [
    { id: 'c1', name: 'eng', workspaceId: 'w1', isPrivate: false },
    { id: 'c2', name: 'Ops', workspaceId: 'w1', isPrivate: true },
    { id: 'c3', name: 'general', workspaceId: 'w1', isPrivate: false },
    { id: 'c4', name: 'general', workspaceId: 'w2', isPrivate: false },
  ];
  const message = (ref: string) => {
    try {
      pickChannel(channels, ref);
    } catch (error) {
      if (isTagboxError(error) && error.exitCode === 2) return error.message;
      throw error;
    }
    throw new Error(`expected "${ref}" to be refused`);
  };

  it.each([
    ['eng', 'c1'],
    ['#eng', 'c1'],
    ['c2', 'c2'],
    ['ops', 'c2'],
    ['#Ops', 'c2'],
  ])('resolves %j to %s', (ref, id) => {
    expect(pickChannel(channels, ref)).toBe(id);
  });

  it('refuses an unknown or ambiguous name, saying what it knows', () => {
    expect(message('design')).toBe('--channel "design": no channel of that name among those you may use (#eng, #Ops, #general, #general)');
    expect(message('#general')).toBe('--channel "#general": 2 channels you may use have that name (in different workspaces); pass one of their ids: c3, c4');
    expect(message('#')).toBe('--channel: expected a channel id or name, got nothing');
  });

  it('prints an empty list as such', () => {
    expect(formatSchedules([])).toBe('no schedules\n');
  });
});

describe('tagbox --help', () => {
  it('lists the schedule verb', async () => {
    const help = await runTagbox(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^ {2}schedule\b/m);
  });
});
