import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { answered, readEvents, startUp, webWorkspace, type Up, E2E_TIMEOUT } from './up-harness.js';

/**
 * `tagbox up` stops on SIGTERM even while a client holds a thread's event
 * stream open (a browser tab, `tagbox chat`): the stream ends, the client
 * resumes elsewhere with Last-Event-ID, and nothing waits for it to leave.
 */
describe('stopping with an open event stream (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let up: Up;

  beforeAll(async () => {
    backend = await createTestBackend('sqlite');
    up = await startUp(backend.env);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    if (up?.launcher.exitCode === null) up.launcher.kill('SIGKILL');
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  it('ends the stream and exits 0', async () => {
    const owner = up.token!;
    const { generalId } = await webWorkspace(up, owner);
    const posted = await up.api(owner, 'POST', `/channels/${generalId}/messages`, { text: 'echo hi' });
    await readEvents(up, owner, posted.body.thread, answered(posted.body.message));

    // A client that stays: it reads until the server ends the stream.
    const res = await fetch(`${up.url}/api/v1/threads/${posted.body.thread}/events`, { headers: { authorization: `Bearer ${owner}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read();
    up.launcher.kill('SIGTERM');
    expect(await up.exited).toBe(0);
    // The server ended it (a reset would be a failure to read, not an end).
    const drain = async (): Promise<'ended'> => ((await reader.read()).done ? 'ended' : drain());
    expect(await drain()).toBe('ended');
  });
});
