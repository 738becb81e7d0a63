import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openControlStore } from '../../src/store/database.js';
import { insertUsageEvents, usageEvent } from '../../src/usage/usage-repo.js';
import { createTestBackend, type TestBackend } from '../helpers/backends.js';
import { answered, auditEvents, E2E_TIMEOUT, newMember, readEvents, until, webWorkspace } from '../e2e/up-harness.js';
import { launchBrowser, openPage, PHONE, screenshot, type TestPage } from './browser.js';
import { signInAs, startWebUp, type WebUp } from './web-up.js';

/**
 * The admin console's organisation and oversight pages, in a real Chromium
 * against the real `tagbox up` (engine `shell`: a message is a shell command,
 * so turns are deterministic). One server and one browser for the file.
 */
describe('admin console: organisation and oversight (sqlite)', { timeout: E2E_TIMEOUT }, () => {
  let backend: TestBackend;
  let web: WebUp;
  let browser: Browser;
  let tp: TestPage;
  let generalId: string;
  let workspaceId: string;

  beforeAll(async () => {
    backend = await createTestBackend('sqlite');
    writeFileSync(join(backend.home, 'tagbox.yaml'), 'agent:\n  engine: shell\n');
    web = await startWebUp({ ...backend.env, TAGBOX_AGENT_ENGINE: 'shell' });
    ({ generalId, workspaceId } = await webWorkspace(web.up, web.owner));
    browser = await launchBrowser();
    tp = await openPage(browser, web.up.url);
    await signInAs(tp, web, web.ownerId);
  }, E2E_TIMEOUT);
  afterAll(async () => {
    await browser?.close();
    await web?.up.stop();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  /** Runs a shell command as a turn in #general (as the owner) and waits for it to end. */
  async function turn(text: string): Promise<string> {
    const posted = await web.up.api(web.owner, 'POST', `/channels/${generalId}/messages`, { text });
    expect(posted.status, posted.text).toBe(202);
    await readEvents(web.up, web.owner, posted.body.thread, answered(posted.body.message));
    return posted.body.thread as string;
  }

  // One page for the file: each test answers for the problems of its own steps.
  beforeEach(() => void tp?.problems.splice(0));
  const noProblems = () => expect(tp.problems).toEqual([]);

  it("the audit viewer follows a thread's chain, invocation to egress, and the chain verifies intact", async () => {
    const thread = await turn('curl -sS -o /dev/null https://blocked.example/ || true');
    await until('the blocked egress audited', async () => ((await auditEvents(web.up, web.owner, { session: thread, type: 'egress' })).length ? true : undefined));
    const { page } = tp;
    await page.goto(`/admin/audit?thread=${thread}`);
    // The filter came from the URL: the form shows it and the table holds only that thread.
    await expect.poll(() => page.getByLabel('Thread').inputValue()).toBe(thread);
    await page.getByRole('button', { name: 'Follow this thread' }).first().click();
    expect(page.url()).toContain(`follow=${thread}`);
    const chain = page.getByRole('list', { name: "The thread's chain, in order" });
    await chain.getByText('Egress request').first().waitFor();
    const steps = await chain.locator('.chain-type').allTextContents();
    const at = (label: string) => steps.findIndex((s) => s.startsWith(label));
    // The session is opened as the message arrives, so it may come first; then who asked, the sandbox, the request.
    expect(at('Invocation'), steps.join(' / ')).toBeGreaterThanOrEqual(0);
    expect(at('Session'), steps.join(' / ')).toBeGreaterThanOrEqual(0);
    expect(at('Sandbox'), steps.join(' / ')).toBeGreaterThan(at('Invocation'));
    expect(at('Egress request'), steps.join(' / ')).toBeGreaterThan(at('Sandbox'));
    // In the order of the log itself.
    const seqs = (await auditEvents(web.up, web.owner, { thread })).map((e) => e.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(steps).toHaveLength(seqs.length);
    await expect.poll(() => chain.locator('.chain-egress').first().textContent()).toMatch(/blocked\.example/);
    await expect.poll(() => chain.locator('.chain-egress').first().textContent()).toMatch(/blocked/);

    await screenshot(page, 'admin-org-audit-thread');
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await page.getByRole('status').filter({ hasText: /Intact: \d+ events checked/ }).waitFor();
    await screenshot(page, 'admin-org-audit-chain');
    // A shared link to the filtered view lands on the same view.
    await page.reload();
    await chain.getByText('Egress request').first().waitFor();
    noProblems();
  });

  it('invites a member in the page; the shown link signs them in (another browser context) and they see no Admin section', async () => {
    const { page } = tp;
    await page.goto('/admin/members');
    await page.getByRole('heading', { name: 'Invite someone' }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Grace Hopper');
    await page.getByLabel('Role', { exact: true }).selectOption('member');
    await page.getByRole('button', { name: 'Invite' }).click();
    const reveal = page.getByRole('region', { name: 'Sign-in link for Grace Hopper' });
    await reveal.waitFor();
    const url = await reveal.getByLabel('Sign-in link').inputValue();
    expect(url).toMatch(/^http/);
    await expect.poll(() => reveal.textContent()).toMatch(/expires/);
    await page.getByRole('rowheader', { name: /Grace Hopper/ }).waitFor();
    await screenshot(page, 'admin-org-members-invite');
    // Shown once: after Done it is gone from the page.
    await reveal.getByRole('button', { name: 'Done' }).click();
    await expect.poll(() => page.getByRole('region', { name: /Sign-in link for/ }).count()).toBe(0);

    const other = await openPage(browser, web.up.url);
    try {
      await other.page.goto(url);
      await other.page.locator('.topbar').waitFor();
      await other.page.getByText('Grace Hopper').first().waitFor();
      const sections = other.page.getByRole('navigation', { name: 'Sections' });
      await sections.getByRole('link', { name: 'Chat' }).waitFor();
      expect(await sections.getByRole('link', { name: 'Admin' }).count()).toBe(0);
      await other.page.goto('/admin/members');
      await other.page.getByText('This page is for admins.').waitFor();
      await screenshot(other.page, 'admin-org-invited-member');
      // Before the link is used, the page asks who is signed in and hears 401: that one is expected.
      expect(other.problems.filter((p) => !p.includes('401'))).toEqual([]);
    } finally {
      await other.context.close();
    }
    noProblems();
  });

  it('an admin who is not an owner is refused what only owners may do, and each page says why', async () => {
    const admin = await web.up.api(web.owner, 'POST', '/invitations', { name: 'Ada Admin', role: 'admin' });
    const plain = await web.up.api(web.owner, 'POST', '/invitations', { name: 'Linus Member' });
    expect([admin.status, plain.status], admin.text + plain.text).toEqual([201, 201]);
    const other = await openPage(browser, web.up.url);
    try {
      await other.page.goto(admin.body.link.url);
      await other.page.locator('.topbar').getByText('Ada Admin').waitFor();
      const { page } = other;

      // Making someone an owner: the server refuses, the row says why, and nothing changed.
      await page.goto('/admin/members');
      await page.getByLabel('Roles of Linus Member').fill('owner');
      await page.getByRole('row', { name: /Linus Member/ }).getByRole('button', { name: 'Save' }).click();
      const refusal = page.getByRole('row', { name: /Linus Member/ }).getByRole('alert');
      await refusal.waitFor();
      expect(await refusal.textContent()).toMatch(/owner/);
      const roles = await web.up.api(web.owner, 'GET', `/workspaces/${workspaceId}/members`);
      expect(roles.body.find((m: { id: string }) => m.id === plain.body.member.id).roles).toEqual([]);
      // A link to be the owner: refused too (it would make the admin the owner).
      await page.getByRole('button', { name: 'Sign-in link for Owner' }).click();
      await page.getByRole('row', { name: /^Owner/ }).getByRole('alert').waitFor();
      await screenshot(page, 'admin-org-admin-refused');

      // Org settings are the owner's: shown, disabled, and said so.
      await page.goto('/admin/settings');
      await page.getByText('Only an owner can change this.').first().waitFor();
      expect(await page.getByRole('button', { name: 'Save settings' }).isDisabled()).toBe(true);
      expect(other.problems.filter((p) => !/40[13]/.test(p))).toEqual([]);
    } finally {
      await other.context.close();
    }
  });

  it('refuses a state change without the CSRF token, with a wrong one, and from a page on another origin', async () => {
    const { page } = tp;
    await page.goto('/admin/settings');
    await page.getByLabel('Direct messages with the agent').waitFor();
    const patchOrg = (token?: string) =>
      page.evaluate(async (t) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (t) headers['x-csrf-token'] = t;
        const r = await fetch('/api/v1/org', { method: 'PATCH', headers, body: JSON.stringify({ dmsAllowed: false }) });
        return { status: r.status, body: await r.text() };
      }, token);
    const none = await patchOrg();
    expect(none.status).toBe(403);
    expect(JSON.parse(none.body).error.code).toBe('csrf');
    const wrong = await patchOrg('not-the-token');
    expect(wrong.status).toBe(403);
    expect(JSON.parse(wrong.body).error.code).toBe('csrf');

    // Another origin (same site: only the port differs, so the cookie does travel) tries a fetch and a form.
    let hits = 0;
    const evil: Server = createServer((req, res) => {
      hits++;
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><body>
        <form id="f" method="POST" action="${web.up.url}/api/v1/invitations" enctype="text/plain"><input name='{"name":"Mallory","x":"' value='"}'></form>
        <script>
          fetch('${web.up.url}/api/v1/org', { method: 'PATCH', credentials: 'include', headers: { 'content-type': 'application/json' }, body: '{"dmsAllowed":false}' })
            .then((r) => (document.title = 'fetch ' + r.status), (e) => (document.title = 'fetch refused'))
            .finally(() => document.getElementById('f').submit());
        </script></body>`);
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const attacker = await tp.context.newPage();
      await attacker.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      // The form's navigation lands on Tagbox's answer to it.
      await attacker.waitForURL(`${web.up.url}/api/v1/invitations`);
      const answer = await attacker.locator('body').textContent();
      expect(answer).toMatch(/csrf|unsupported|content-type|403|415|400/i);
      await attacker.close();
      expect(hits).toBeGreaterThan(0);
    } finally {
      await new Promise((resolve) => evil.close(resolve));
    }
    const org = await web.up.api(web.owner, 'GET', '/org');
    expect(org.body.dmsAllowed).toBe(true);
    const members = await web.up.api(web.owner, 'GET', `/workspaces/${workspaceId}/members`);
    expect((members.body as Array<{ displayName: string }>).map((m) => m.displayName)).not.toContain('Mallory');
    await screenshot(page, 'admin-org-csrf');
    // The two refused requests are the page's only complaints.
    expect(tp.problems.filter((p) => !p.includes('403 (Forbidden)'))).toEqual([]);
  });

  it('org settings: DMs off and back on, each persisting across a reload', async () => {
    const { page } = tp;
    await page.goto('/admin/settings');
    const dms = page.getByLabel('Direct messages with the agent');
    await dms.waitFor();
    expect(await dms.isChecked()).toBe(true);
    await dms.uncheck();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    await page.reload();
    await dms.waitFor();
    expect(await dms.isChecked()).toBe(false);
    expect((await web.up.api(web.owner, 'GET', '/org')).body.dmsAllowed).toBe(false);
    await screenshot(page, 'admin-org-settings-dms-off');
    await dms.check();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
    await page.reload();
    await dms.waitFor();
    expect(await dms.isChecked()).toBe(true);
    // The change was audited, with the owner as its actor.
    const changes = await auditEvents(web.up, web.owner, { type: 'admin-change' });
    expect(changes.some((e) => e.actor === web.ownerId && JSON.stringify(e).includes('dmsAllowed'))).toBe(true);
    noProblems();
  });

  it('schedules: the next five firings as you type, the reason for an invalid cron on its field, create (keyboard only) and delete', async () => {
    const { page } = tp;
    await page.goto('/admin/schedules');
    const cron = page.getByLabel('Cron');
    await cron.waitFor();
    await page.getByLabel('Time zone').fill('UTC');
    await cron.fill('0 9 * * 1-5');
    const next = page.getByRole('list', { name: /Next 5 firings/ });
    await next.waitFor();
    expect(await next.getByRole('listitem').count()).toBe(5);
    await screenshot(page, 'admin-org-schedules-preview');

    await cron.fill('61 * * * *');
    await expect.poll(() => cron.getAttribute('aria-invalid')).toBe('true');
    const reason = await page.locator('.field-invalid .field-error').first().textContent();
    expect(reason).toMatch(/cron|minute|61/i);
    expect(await page.getByRole('list', { name: /Next \d firings/ }).count()).toBe(0);
    await screenshot(page, 'admin-org-schedules-invalid');

    // Keyboard only: from the channel picker, Tab through the form and press Enter on Create.
    await page.getByLabel('Channel').focus();
    await page.keyboard.press('Tab');
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.type('30 7 * * *');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.type('echo good-morning');
    await page.getByRole('list', { name: /Next 5 firings/ }).waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Create schedule');
    await page.keyboard.press('Enter');
    const row = page.getByRole('row').filter({ hasText: 'echo good-morning' });
    await row.waitFor();
    expect(await row.textContent()).toContain('#general');
    expect(await row.textContent()).toContain('30 7 * * *');
    const listed = await web.up.api(web.owner, 'GET', '/schedules');
    expect(listed.body).toEqual([expect.objectContaining({ cron: '30 7 * * *', prompt: 'echo good-morning', createdBy: web.ownerId })]);
    await screenshot(page, 'admin-org-schedules-created');

    await row.getByRole('button', { name: 'Delete' }).click();
    await row.getByRole('button', { name: 'Yes, delete' }).click();
    await expect.poll(() => page.getByRole('row').filter({ hasText: 'echo good-morning' }).count()).toBe(0);
    expect((await web.up.api(web.owner, 'GET', '/schedules')).body).toEqual([]);
    // The invalid cron's preview was answered 400 (its reason is what the field shows); nothing else went wrong.
    expect(tp.problems.filter((p) => !p.includes('400 (Bad Request)'))).toEqual([]);
  });

  it('channel memory: what a turn wrote is shown with its versions, and cleared after a confirmation', async () => {
    await turn('mkdir -p /home/agent/.tagbox && echo "deploys happen on Tuesdays" > /home/agent/.tagbox/memory.md');
    await until('the memory copied out', async () => {
      const m = await web.up.api(web.owner, 'GET', `/channels/${generalId}/memory`);
      return m.body?.version ? true : undefined;
    });
    const { page } = tp;
    await page.goto('/admin/channels');
    await page.getByRole('link', { name: '#general' }).click();
    await page.getByRole('heading', { name: '#general' }).waitFor();
    const current = page.getByLabel('Current memory');
    await current.waitFor();
    expect(await current.textContent()).toContain('deploys happen on Tuesdays');
    await page.getByRole('button', { name: 'Version 1' }).click();
    expect(await page.getByLabel('Memory version 1').textContent()).toContain('deploys happen on Tuesdays');
    await page.getByRole('heading', { name: 'Model budgets' }).waitFor();
    await screenshot(page, 'admin-org-channel-settings');

    await page.getByRole('button', { name: 'Clear memory' }).click();
    await page.getByRole('button', { name: 'Yes, clear it' }).click();
    await page.getByText('The memory is empty.').waitFor();
    const after = await web.up.api(web.owner, 'GET', `/channels/${generalId}/memory`);
    expect(after.body).toMatchObject({ version: null, content: '' });
    noProblems();
  });

  it('usage: per-day bars with a table equivalent, by channel and by member, and the totals; fits a phone', async () => {
    // No model is reachable in a test: usage rows are seeded in the server's own database, as the proxy's meter writes them.
    const store = await openControlStore(backend.location, { migrate: false });
    const ada = await newMember(web.up, web.owner, workspaceId, 'Ada');
    try {
      const orgId = (await web.up.api(web.owner, 'GET', '/org')).body.id as string;
      const day = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
      const base = { orgId, sessionId: 'seeded', model: 'claude-test', cacheReadTokens: 0, cacheCreationTokens: 0 };
      await insertUsageEvents(store.db, [
        usageEvent({ ...base, place: { kind: 'channel', channelId: generalId }, inputTokens: 1200, outputTokens: 300, cost: 45_000, createdAt: day(0) }),
        usageEvent({ ...base, place: { kind: 'channel', channelId: generalId }, inputTokens: 800, outputTokens: 200, cost: 30_000, createdAt: day(2) }),
        usageEvent({ ...base, place: { kind: 'dm', memberId: ada.id }, inputTokens: 500, outputTokens: 100, cost: 18_000, createdAt: day(1) }),
      ]);
    } finally {
      await store.close();
    }
    const { page } = tp;
    await page.goto('/admin/usage');
    await page.locator('svg.usage-chart rect').first().waitFor();
    const table = page.getByRole('table', { name: /Tokens per day by channel/ });
    expect(await table.getByRole('row').filter({ hasText: 'general' }).count()).toBeGreaterThan(0);
    expect(await page.getByLabel('Totals for the range').textContent()).toMatch(/2,000|2,500/);
    await screenshot(page, 'admin-org-usage-by-channel');
    await page.getByRole('button', { name: 'By member' }).click();
    await page.getByRole('table', { name: /Tokens per day by member/ }).getByRole('row').filter({ hasText: 'Ada' }).waitFor();
    await screenshot(page, 'admin-org-usage-by-member');

    const phone = await openPage(browser, web.up.url, { viewport: PHONE });
    try {
      await signInAs(phone, web, web.ownerId);
      for (const path of ['/admin/usage', '/admin/audit', '/admin/members']) {
        await phone.page.goto(path);
        await phone.page.locator('#page-title').waitFor();
        await phone.page.locator('.loading').waitFor({ state: 'detached' });
        const overflow = await phone.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
        expect(overflow, path).toBeLessThanOrEqual(0);
        await screenshot(phone.page, `admin-org-phone-${path.split('/').pop()!}`);
      }
      expect(phone.problems).toEqual([]);
    } finally {
      await phone.context.close();
    }
    noProblems();
  });
});
