import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { agentTexts, readEvents, startUp, until, webWorkspace, type Up, E2E_TIMEOUT } from './up-harness.js';

/**
 * Issue 10, "Done when": a schedule fires exactly once with two `tagbox up` on
 * one Postgres (two replicas: their own homes, proxies and sandboxes; one
 * database, one master key, one audit signing key). Both schedulers see the
 * firing; the claim in the store lets one of them run it.
 */
describe('a schedule with two servers on one Postgres', { timeout: 150_000 }, () => {
  let backend: TestBackend;
  let secondHome: string;
  const ups: Up[] = [];
  let owner: string;
  let generalId: string;

  beforeAll(async () => {
    backend = await createTestBackend('postgres');
    secondHome = mkdtempSync(join(tmpdir(), 'tagbox-replica-'));
    const shared = { TAGBOX_AUDIT_SIGNING_KEY: randomBytes(32).toString('base64') };
    ups.push(await startUp({ ...backend.env, ...shared }));
    ups.push(await startUp({ ...backend.env, ...shared, TAGBOX_HOME: secondHome }));
    owner = ups[0]!.token!;
    expect(ups[1]!.token).toBeUndefined();
    generalId = (await webWorkspace(ups[0]!, owner)).generalId;
  }, E2E_TIMEOUT);
  afterAll(async () => {
    for (const up of ups) await up.stop();
    rmSync(secondHome, { recursive: true, force: true });
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  it('fires each fire time once, into one new thread, answered once, audited once', async () => {
    const created = await ups[1]!.api(owner, 'POST', `/channels/${generalId}/schedules`, { cron: '* * * * *', timezone: 'UTC', prompt: 'echo scheduled-run' });
    expect(created.status, created.text).toBe(201);
    const id = created.body.id as string;
    // Both servers serve the same schedule.
    expect((await ups[0]!.api(owner, 'GET', `/schedules/${id}`)).status).toBe(200);
    const run = await until(
      'the first firing',
      async () => {
        const runs = (await ups[0]!.api(owner, 'GET', `/schedules/${id}`)).body.runs as Array<{ fireTime: string; status: string; thread: string | null }>;
        return runs.find((r) => r.status === 'started' && r.thread);
      },
      90_000,
    );
    expect(new Date(run.fireTime).getUTCSeconds()).toBe(0);
    const events = await readEvents(ups[0]!, owner, run.thread!, (all) => all.some((e) => e.event === 'done'));
    expect(agentTexts(events)).toEqual(['scheduled-run\n[exit code 0]']);
    // Removed now, so that no later minute fires while we count.
    expect((await ups[0]!.api(owner, 'DELETE', `/schedules/${id}`)).status).toBe(204);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    // One schedule-run event and one invocation for that fire time, from whichever server claimed it.
    const audit = (await ups[1]!.api(owner, 'GET', '/audit?type=schedule-run')).body.events as Array<{ schedule: string; fireTime: string; session?: string }>;
    expect(audit.filter((e) => e.schedule === id && e.fireTime === run.fireTime)).toHaveLength(1);
    const invocations = (await ups[1]!.api(owner, 'GET', `/audit?type=invocation&session=${run.thread}`)).body.events as Array<{ trigger: string; schedule?: string }>;
    expect(invocations).toEqual([expect.objectContaining({ trigger: 'schedule', schedule: id })]);
    // One thread for that firing, with the prompt once, as its creator.
    const thread = await ups[1]!.api(owner, 'GET', `/threads/${run.thread}`);
    expect(thread.body.messages.filter((m: { author: { kind: string } }) => m.author.kind === 'member')).toEqual([expect.objectContaining({ text: 'echo scheduled-run' })]);
    expect(agentTexts(await readEvents(ups[1]!, owner, run.thread!, (all) => all.some((e) => e.event === 'done')))).toHaveLength(1);
  });
});
