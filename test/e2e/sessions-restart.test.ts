import { createHash } from 'node:crypto';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestBackend, type BackendName, type TestBackend } from '../helpers/backends.js';
import { processes, stillAlive, treeOf, type HostProcess } from './processes.js';
import { agentTexts, answered, auditEvents, newMember, readEvents, startUp, systemTexts, until, webWorkspace, type Up, E2E_TIMEOUT } from './up-harness.js';

/**
 * Issue 10, "Done when" 6: `kill -9` in the middle of a long turn — of the
 * `tagbox up` launcher, and of its server child — then a restart on the same
 * home. The thread says its turn was interrupted (one `done`, `interrupted`),
 * the message queued behind it runs after the restart and is answered once,
 * and nothing of the old server survives: no sandbox process, no listener socket.
 */
// The crash (the server killed) on both stores; the launcher killed, which the server
// notices and stops itself, on one: what differs there is not the store's.
const CASES: Array<['launcher' | 'server', BackendName]> = [
  ['launcher', 'sqlite'],
  ['server', 'sqlite'],
  ['server', 'postgres'],
];

describe('kill -9 and restart', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend | undefined;
  const ups: Up[] = [];
  afterEach(async () => {
    for (const up of ups.splice(0)) {
      if (up.launcher.exitCode === null && up.launcher.signalCode === null) await up.stop();
    }
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  it.each(CASES)('kill -9 of the %s mid-turn (%s): interrupted once, the queued message answered once, nothing left over', async (victim, backendName) => {
    backend = await createTestBackend(backendName);
    const up = await startUp(backend.env);
    ups.push(up);
    const owner = up.token!;
    const web = await webWorkspace(up, owner);
    const ada = await newMember(up, owner, web.workspaceId, 'Ada');

    // An odd duration names the command among the host's processes.
    const long = await post(up, ada.token, web.generalId, 'echo long-start; sleep 631; echo never');
    await readEvents(up, ada.token, long.thread, (events) => events.some((e) => e.event === 'progress' && String(e.data.text).includes('long-start')));
    const queued = await post(up, ada.token, web.generalId, 'echo queued-after', long.thread);
    expect((await up.api(ada.token, 'GET', `/threads/${long.thread}`)).body.session.state).toBe('running');

    const server = serverOf(up);
    const old = treeOf(server.pid).filter((p) => p.pid !== server.pid);
    // The snapshot holds the sandbox: bubblewrap, the relay and the command itself run below the server.
    expect(old.some((p) => /^(\S*\/)?bwrap /.test(p.cmdline))).toBe(true);
    expect(old.some((p) => p.cmdline.includes('tagbox-relay'))).toBe(true);
    expect(old.some((p) => p.cmdline === 'sleep 631')).toBe(true);
    const proxy = processes().find((p) => p.pid === up.proxyPid)!;
    const sockets = socketDirOf(backend.home, long.thread);

    process.kill(victim === 'launcher' ? up.launcher.pid! : server.pid, 'SIGKILL');
    await up.exited;
    for (const p of [server, proxy, ...old]) await until(`${p.pid} (${p.cmdline.slice(0, 60)}) to be gone`, () => (stillAlive(p) ? undefined : true));
    // The old proxy's listener sockets went with it.
    expect(readdirSync(sockets).filter((f) => f.startsWith('s-'))).toEqual([]);

    const again = await startUp(backend.env);
    ups.push(again);
    expect(again.token).toBeUndefined();
    const events = await readEvents(again, ada.token, long.thread, answered(queued.message));
    const interrupted = events.filter((e) => e.data?.turn === turnOf(events, long.message));
    expect(interrupted.filter((e) => e.event === 'done').map((e) => e.data.status)).toEqual(['interrupted']);
    expect(systemTexts(interrupted)).toEqual([expect.stringMatching(/^This turn was interrupted: the Tagbox server/)]);
    expect(agentTexts(events).join('\n')).not.toContain('never');

    // Answered once: a later turn of the thread is the barrier behind which a second run would show.
    const barrier = await post(again, ada.token, web.generalId, 'echo barrier', long.thread);
    const all = await readEvents(again, ada.token, long.thread, answered(barrier.message));
    expect(agentTexts(all).filter((t) => t.includes('queued-after'))).toEqual(['queued-after\n[exit code 0]']);
    expect(all.filter((e) => e.event === 'done').map((e) => e.data.status)).toEqual(['interrupted', 'done', 'done']);
    // A turn's end is audited just after its `done`.
    const turnEnds = await until('three turn-end audit events', async () => {
      const ends = (await auditEvents(again, owner, { session: long.thread, type: 'session' })).filter((e) => e.action === 'turn-end');
      return ends.length >= 3 ? ends : undefined;
    });
    expect(turnEnds.map((e) => e.outcome)).toEqual(['interrupted', 'done', 'done']);

    // Nothing of the old server runs, and every Tagbox process of this home is the new launcher's.
    for (const p of old) expect(stillAlive(p), p.cmdline).toBe(false);
    expect(processes().filter((p) => p.cmdline === 'sleep 631')).toEqual([]);
    const current = new Set(treeOf(again.launcher.pid!).map((p) => p.pid));
    const ofThisHome = processes().filter((p) => p.cmdline.includes(backend!.home) || p.cmdline.includes(sockets));
    expect(ofThisHome.length).toBeGreaterThan(0);
    expect(ofThisHome.filter((p) => !current.has(p.pid))).toEqual([]);
  });
});

async function post(up: Up, token: string, channel: string, text: string, thread?: string): Promise<{ thread: string; message: string }> {
  const res = await up.api(token, 'POST', `/channels/${channel}/messages`, { text, ...(thread ? { thread } : {}) });
  expect(res.status, res.text).toBe(202);
  return res.body as { thread: string; message: string };
}

function turnOf(events: Array<{ event: string; data: { id?: string; turn?: string } }>, messageId: string): string | undefined {
  return events.find((e) => e.event === 'message' && e.data.id === messageId)?.data.turn;
}

/** The launcher's `server-daemon` child. */
function serverOf(up: Up): HostProcess {
  const server = processes().find((p) => p.ppid === up.launcher.pid && p.cmdline.includes('server-daemon'));
  if (!server) throw new Error('no server-daemon child of the launcher');
  return server;
}

/**
 * The directory where the proxy listens for the session: TAGBOX_HOME/run when
 * the server runs bubblewrap as itself, or the runtime directory of the home
 * (/run/tagbox/<hash of TAGBOX_HOME>/run) when a root process does.
 */
function socketDirOf(home: string, session: string): string {
  const candidates = [join(home, 'run'), join('/run/tagbox', createHash('sha256').update(realpathSync(home)).digest('hex').slice(0, 16), 'run')];
  const dir = candidates.find((d) => existsSync(join(d, `s-${session}.sock`)));
  if (!dir) throw new Error(`no listener socket s-${session}.sock in ${candidates.join(' or ')}`);
  return dir;
}
