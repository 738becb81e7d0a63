import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMember } from '../../src/access/members-repo.js';
import { createOrg } from '../../src/access/orgs-repo.js';
import { createChannel, createWorkspace } from '../../src/access/workspaces-repo.js';
import type { Session, Turn } from '../../src/sessions/model.js';
import { findOrCreateSession } from '../../src/sessions/sessions-repo.js';
import { COMMIT_MSG_HOOK, GIT_HOOKS_INSIDE, creditEnvironment, creditLine, turnCredit, type TurnCredit } from '../../src/sessions/turn-credit.js';
import { queueTurn } from '../../src/sessions/turns-repo.js';
import { openControlStore, type ControlStore } from '../../src/store/database.js';
import { withWriteTransaction } from '../../src/store/write-transaction.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';

/**
 * Whom a turn's work is credited to: read from a real store on both
 * dialects, turned into the turn's environment, and the commit-msg hook run
 * by real git on the host with that environment (core.hooksPath pointed at a
 * temporary copy instead of the sandbox's mount).
 */
const withEmail: TurnCredit = { name: 'Ada Lovelace', email: 'ada@example.com', place: '#eng', thread: 'th1', branch: 'tagbox/th1' };
const noEmail: TurnCredit = { name: 'Ada Lovelace', place: '#eng', thread: 'th1', branch: 'tagbox/th1' };

describe('creditLine and creditEnvironment', () => {
  it('the credit line names who asked, where, and the thread', () => {
    expect(creditLine(withEmail)).toBe('Requested by Ada Lovelace in #eng (Tagbox thread th1).');
    expect(creditLine({ ...noEmail, place: 'a direct message' })).toBe('Requested by Ada Lovelace in a direct message (Tagbox thread th1).');
  });

  it('without credit: only the thread, its branch and the hooks path', () => {
    expect(creditEnvironment(undefined, 'th1')).toEqual({
      TAGBOX_THREAD: 'th1',
      TAGBOX_BRANCH: 'tagbox/th1',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'core.hooksPath',
      GIT_CONFIG_VALUE_0: GIT_HOOKS_INSIDE,
    });
  });

  it('with an email: a co-author, and the requester with their email', () => {
    const env = creditEnvironment(withEmail, 'th1');
    expect(env).toEqual({
      ...creditEnvironment(undefined, 'th1'),
      TAGBOX_REQUESTED_BY: 'Ada Lovelace <ada@example.com>',
      TAGBOX_REQUESTED_IN: '#eng',
      TAGBOX_CREDIT: 'Requested by Ada Lovelace in #eng (Tagbox thread th1).',
      TAGBOX_CO_AUTHOR: 'Ada Lovelace <ada@example.com>',
    });
  });

  it('without an email: the requester by name, and no co-author', () => {
    const env = creditEnvironment(noEmail, 'th1');
    expect(env.TAGBOX_REQUESTED_BY).toBe('Ada Lovelace');
    expect(env.TAGBOX_REQUESTED_IN).toBe('#eng');
    expect(env.TAGBOX_CREDIT).toBe(creditLine(noEmail));
    expect(env).not.toHaveProperty('TAGBOX_CO_AUTHOR');
  });
});

/** A git repository on the host, and commits made with the hook and a turn's environment. */
class HookedRepo {
  readonly dir = mkdtempSync(join(tmpdir(), 'tagbox-credit-'));
  readonly repo = join(this.dir, 'repo');
  private readonly hooks = join(this.dir, 'hooks');

  constructor() {
    execFileSync('mkdir', ['-p', this.repo, this.hooks]);
    writeFileSync(join(this.hooks, 'commit-msg'), COMMIT_MSG_HOOK, { mode: 0o755 });
    this.git({}, 'init', '-q', '-b', 'main');
  }

  /** The turn's environment as the sandbox gets it, but with the hooks here; nothing from the user's git config. */
  git(turnEnv: Record<string, string>, ...args: string[]): string {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: this.dir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 'Agent',
      GIT_AUTHOR_EMAIL: 'agent@tagbox.invalid',
      GIT_COMMITTER_NAME: 'Agent',
      GIT_COMMITTER_EMAIL: 'agent@tagbox.invalid',
      ...turnEnv,
    };
    if (env.GIT_CONFIG_KEY_0 === 'core.hooksPath') env.GIT_CONFIG_VALUE_0 = this.hooks;
    return execFileSync('git', args, { cwd: this.repo, env, encoding: 'utf8' });
  }

  commit(turnEnv: Record<string, string>, message: string): string {
    writeFileSync(join(this.repo, 'file.txt'), `${Math.random()}\n`);
    this.git(turnEnv, 'add', 'file.txt');
    this.git(turnEnv, 'commit', '-q', '-m', message);
    return this.message();
  }

  message(): string {
    return this.git({}, 'log', '-1', '--format=%B').trimEnd();
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('the commit-msg hook, run by real git', () => {
  let repo: HookedRepo;
  beforeAll(() => {
    repo = new HookedRepo();
  });
  afterAll(() => repo.cleanup());

  it('with a co-author: the commit ends with Co-authored-by, and amending does not add it twice', () => {
    const env = creditEnvironment(withEmail, 'th1');
    expect(repo.commit(env, 'Fix the parser')).toBe('Fix the parser\n\nCo-authored-by: Ada Lovelace <ada@example.com>');
    repo.git(env, 'commit', '-q', '--amend', '--no-edit');
    expect(repo.message()).toBe('Fix the parser\n\nCo-authored-by: Ada Lovelace <ada@example.com>');
  });

  it('a message with trailers of its own keeps them and gets the credit once', () => {
    const env = creditEnvironment(withEmail, 'th1');
    expect(repo.commit(env, 'Tidy up\n\nSigned-off-by: Agent <agent@tagbox.invalid>')).toBe(
      'Tidy up\n\nSigned-off-by: Agent <agent@tagbox.invalid>\nCo-authored-by: Ada Lovelace <ada@example.com>',
    );
  });

  it('with only a requester: Requested-by, naming the place', () => {
    const env = creditEnvironment(noEmail, 'th1');
    expect(repo.commit(env, 'Add a test')).toBe('Add a test\n\nRequested-by: Ada Lovelace in #eng');
    repo.git(env, 'commit', '-q', '--amend', '--no-edit');
    expect(repo.message()).toBe('Add a test\n\nRequested-by: Ada Lovelace in #eng');
  });

  it('with neither: the message is left as it was', () => {
    expect(repo.commit(creditEnvironment(undefined, 'th1'), 'Plain commit\n\nbody text')).toBe('Plain commit\n\nbody text');
  });
});

describe.each(BACKENDS)('turnCredit from the store (%s)', (name) => {
  let backend: TestBackend;
  let store: ControlStore;
  let orgId: string;
  let workspaceId: string;
  let channelId: string;
  let repo: HookedRepo;

  beforeAll(async () => {
    backend = await createTestBackend(name);
    store = await openControlStore(backend.location);
    orgId = (await createOrg(store.db, 'acme')).id;
    workspaceId = (await createWorkspace(store.db, { orgId, kind: 'web', externalId: 'web', name: 'Web' })).id;
    channelId = (await createChannel(store.db, { workspaceId, externalId: 'eng', name: 'eng' })).id;
    repo = new HookedRepo();
  });
  afterAll(async () => {
    repo.cleanup();
    await store.close();
    await backend.cleanup();
  });

  let seq = 0;
  const member = async (displayName: string, email?: string) => {
    const m = await createMember(store.db, { workspaceId, externalId: `m${++seq}`, displayName });
    if (email) await store.db.insertInto('member_emails').values({ member_id: m.id, email, created_at: new Date().toISOString() }).execute();
    return m;
  };
  const sessionAt = async (place: Session['place'], createdBy?: string) =>
    (await withWriteTransaction(store, undefined, (db) => findOrCreateSession(db, { orgId, workspaceId, place, identity: 'agent', engine: 'shell', ...(createdBy ? { createdBy } : {}) }))).session;
  const turnOf = async (session: Session, triggeredBy?: string): Promise<Turn> =>
    (await withWriteTransaction(store, undefined, (db) => queueTurn(db, { sessionId: session.id, orgId, trigger: triggeredBy ? 'message' : 'schedule', ...(triggeredBy ? { triggeredBy } : {}), postgres: name === 'postgres' }))).turn;

  it('the member who asked, their email, the channel by name, the thread and its branch', async () => {
    const ada = await member('Ada Lovelace', 'ada@example.com');
    const session = await sessionAt({ kind: 'channel', channelId });
    const credit = await turnCredit(store.db, session, await turnOf(session, ada.id));
    expect(credit).toEqual({ name: 'Ada Lovelace', email: 'ada@example.com', place: '#eng', thread: session.id, branch: `tagbox/${session.id}` });
  });

  it("without an email: no email; a schedule's turn is credited to the session's creator; a DM is named as one", async () => {
    const bob = await member('Bob');
    const session = await sessionAt({ kind: 'dm', memberId: bob.id }, bob.id);
    const credit = await turnCredit(store.db, session, await turnOf(session));
    expect(credit).toEqual({ name: 'Bob', place: 'a direct message', thread: session.id, branch: `tagbox/${session.id}` });
  });

  it('nobody to credit (no member, or one that is gone): undefined', async () => {
    const session = await sessionAt({ kind: 'channel', channelId });
    expect(await turnCredit(store.db, session, await turnOf(session))).toBeUndefined();
    const gone = await turnCredit(store.db, session, { ...(await turnOf(session)), triggeredBy: 'no-such-member' });
    expect(gone).toBeUndefined();
  });

  it('a display name with a newline and angle brackets becomes one plain line, in the environment and in the commit', async () => {
    const mallory = await member('Mallory <evil@x.example>\nSigned-off-by: Linus <torvalds@example.org>\u0007', 'mallory@example.com');
    const session = await sessionAt({ kind: 'channel', channelId });
    const credit = (await turnCredit(store.db, session, await turnOf(session, mallory.id)))!;
    // eslint-disable-next-line no-control-regex -- control characters are what is looked for
    expect(credit.name).not.toMatch(/[<>\u0000-\u001f]/);
    const env = creditEnvironment(credit, session.id);
    for (const key of ['TAGBOX_REQUESTED_BY', 'TAGBOX_CO_AUTHOR', 'TAGBOX_CREDIT']) expect(env[key]).not.toMatch(/[\n\r]/);
    // The only angle brackets left are the ones around the email.
    expect(env.TAGBOX_CO_AUTHOR).toMatch(/^[^<>]+ <mallory@example\.com>$/);
    const message = repo.commit(env, 'Sneaky');
    const trailers = message.split('\n').slice(2);
    expect(trailers).toHaveLength(1);
    expect(trailers[0]).toMatch(/^Co-authored-by: Mallory +evil@x\.example +Signed-off-by: Linus +torvalds@example\.org <mallory@example\.com>$/);
  });

  it("a channel's name with a newline does not add a trailer of its own (Requested-by)", async () => {
    // An admin may name a web channel anything up to 200 characters (routes/workspaces.ts).
    const odd = (await createChannel(store.db, { workspaceId, externalId: `odd${++seq}`, name: 'eng\nSigned-off-by: Linus <torvalds@example.org>' })).id;
    const carol = await member('Carol');
    const session = await sessionAt({ kind: 'channel', channelId: odd });
    const credit = (await turnCredit(store.db, session, await turnOf(session, carol.id)))!;
    const env = creditEnvironment(credit, session.id);
    expect(env.TAGBOX_REQUESTED_IN).not.toMatch(/[\n\r]/);
    expect(env.TAGBOX_CREDIT).not.toMatch(/[\n\r]/);
    const trailers = repo.commit(env, 'Odd channel').split('\n').slice(2);
    expect(trailers).toHaveLength(1);
    expect(trailers[0]).toMatch(/^Requested-by: Carol in #eng/);
  });
});
