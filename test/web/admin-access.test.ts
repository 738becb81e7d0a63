import { randomBytes } from 'node:crypto';
import type { Browser, Locator, Page, Response } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EchoUpstream } from '../fixtures/echo-upstream.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { agentTexts, answered, E2E_TIMEOUT, echoUpstreamFor, eventsOfTurn, readEvents, turnOfMessage, until, webWorkspace } from '../e2e/up-harness.js';
import { launchBrowser, openPage, PHONE, screenshot, type TestPage } from './browser.js';
import { signInAs, startWebUp, type WebUp } from './web-up.js';

/**
 * The console's access pages, driven in a real Chromium against the real
 * `tagbox up` (engine `shell`, so a message is a command): what an admin does
 * in the page is what the Agent Proxy then enforces, and a secret typed into
 * the page never comes back to it.
 */
describe.each(BACKENDS)('admin console: access (%s)', { timeout: E2E_TIMEOUT }, (backendName) => {
  let backend: TestBackend;
  let echo: EchoUpstream;
  let web: WebUp;
  let browser: Browser;
  let tp: TestPage;
  let page: Page;
  let generalId: string;
  const shot = (name: string) => screenshot(page, `admin-access-${backendName}-${name}`);

  beforeAll(async () => {
    const upstream = await echoUpstreamFor(['reach.echo.test', 'secret.echo.test']);
    echo = upstream.echo;
    backend = await createTestBackend(backendName);
    web = await startWebUp({ ...backend.env, ...upstream.env, TAGBOX_AGENT_ENGINE: 'shell' });
    generalId = (await webWorkspace(web.up, web.owner)).generalId;
    browser = await launchBrowser();
    tp = await openPage(browser, web.up.url);
    page = tp.page;
    await signInAs(tp, web, web.ownerId);
  }, E2E_TIMEOUT);
  beforeEach(() => {
    tp.problems.length = 0;
  });
  afterAll(async () => {
    await tp?.context.close();
    await browser?.close();
    await web?.up.stop();
    await echo?.close();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  /** Runs a command in #general as the owner (a new thread); what the turn said, its notices. */
  async function run(text: string) {
    const posted = await web.up.api(web.owner, 'POST', `/channels/${generalId}/messages`, { text });
    expect(posted.status, posted.text).toBe(202);
    const all = await readEvents(web.up, web.owner, posted.body.thread, answered(posted.body.message));
    const events = eventsOfTurn(all, turnOfMessage(all, posted.body.message)!);
    return { reply: agentTexts(events).join('\n'), notices: events.filter((e) => e.event === 'notice').map((e) => e.data as { host: string; text: string }) };
  }

  const connection = (n: number) => page.getByRole('group', { name: new RegExp(`^Connection ${n}`) });

  it('a bundle made in the form and attached on the Scopes page is what lets the agent reach its host', async () => {
    const before = await run(`curl -s -o /dev/null -w '%{http_connect}' https://reach.echo.test/before; echo " curl=$?"`);
    expect(before.reply).toContain('403 curl=56');
    expect(before.notices.map((n) => n.host)).toContain('reach.echo.test');

    await page.goto('/admin/bundles/new');
    await page.getByLabel('Bundle name').fill('reach');
    await page.getByLabel('Description').fill('The echo host, for the tests');
    await page.getByRole('button', { name: 'Add domain' }).click();
    await page.getByLabel('Domain 1', { exact: true }).fill('reach.echo.test');
    await shot('bundle-form');
    await page.getByRole('button', { name: 'Save bundle' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved bundle reach.' }).waitFor();
    const row = page.getByRole('row').filter({ hasText: 'reach.echo.test' });
    await expect(row.getByRole('cell').last().textContent()).resolves.toBe('nowhere');
    await shot('bundles-list');

    await page.getByRole('navigation', { name: 'Admin sections' }).getByRole('link', { name: 'Scopes' }).click();
    await page.getByLabel('Bundle to attach to #general').selectOption('reach');
    await page.getByRole('button', { name: 'Attach to #general' }).click();
    await page.getByRole('list', { name: 'bundles attached to #general' }).getByText('reach', { exact: true }).waitFor();
    await shot('scopes');

    const path = `/after-${randomBytes(4).toString('hex')}`;
    const after = await run(`curl -sS -o /dev/null -w '%{http_code}' https://reach.echo.test${path}`);
    expect(after.reply).toMatch(/^200/);
    expect(after.notices).toEqual([]);
    expect(echo.received.filter((r) => r.path === path)).toHaveLength(1);
    // The list says where it is attached now.
    await page.goto('/admin/bundles');
    await page.getByRole('row').filter({ hasText: 'reach.echo.test' }).getByRole('cell').last().getByText('#general', { exact: true }).waitFor();
    expect(tp.problems).toEqual([]);
  });

  it('a secret set and replaced in the page never appears in the page or in any answer it receives', async () => {
    const first = `first-${randomBytes(16).toString('hex')}`;
    const second = `second-${randomBytes(16).toString('hex')}`;
    const bodies: string[] = [];
    const reading: Array<Promise<unknown>> = [];
    const record = (r: Response) => void reading.push(r.text().then((t) => bodies.push(t), () => undefined));
    page.on('response', record);
    const leaks = async () => {
      await Promise.all(reading);
      const html = await page.content();
      const values = await page.$$eval('input, textarea, select', (els) => els.map((e) => (e as unknown as { value: string }).value).join('\n'));
      return [first, second].filter((s) => html.includes(s) || values.includes(s) || bodies.some((b) => b.includes(s)));
    };

    await page.goto('/admin/secrets');
    const form = page.getByRole('form', { name: 'Set a secret' });
    await form.getByLabel('Secret name').fill('page-token');
    const value = form.getByLabel('Value', { exact: true });
    await expect(value.getAttribute('type')).resolves.toBe('password');
    await expect(value.getAttribute('autocomplete')).resolves.toBe('off');
    await value.fill(first);
    await form.getByRole('button', { name: 'Save secret' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved page-token: version 1' }).waitFor();
    await expect(form.getByLabel('Value', { exact: true }).inputValue()).resolves.toBe('');
    await page.getByRole('row').filter({ hasText: 'page-token' }).waitFor();
    expect(await leaks()).toEqual([]);

    await page.getByRole('button', { name: 'Replace page-token' }).click();
    const replace = page.getByRole('form', { name: 'Replace secret page-token' });
    await replace.getByLabel('Value', { exact: true }).fill(second);
    await shot('secret-replace');
    await replace.getByRole('button', { name: 'Replace secret' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved page-token: version 2' }).waitFor();
    await page.reload();
    await page.getByRole('row').filter({ hasText: 'page-token' }).getByText('v2').waitFor();
    await shot('secrets');
    expect(await leaks()).toEqual([]);

    // Positive control: the vault holds what the page sent, and the proxy injects it upstream.
    const put = await web.up.api(web.owner, 'PUT', '/bundles/secret-check', {
      connections: [{ name: 'check', secret: 'page-token', allowedWebsites: ['secret.echo.test'], inject: { header: 'Authorization', value: 'Bearer {{secret}}' } }],
    });
    expect(put.status, put.text).toBe(200);
    expect((await web.up.api(web.owner, 'POST', '/bundles/secret-check/scopes', { scope: `channel:${generalId}` })).status).toBe(200);
    const path = `/secret-${randomBytes(4).toString('hex')}`;
    expect((await run(`curl -sS -o /dev/null -w '%{http_code}' https://secret.echo.test${path}`)).reply).toMatch(/^200/);
    expect(echo.received.filter((r) => r.path === path).map((r) => r.headers.authorization)).toEqual([`Bearer ${second}`]);
    // The list now says who sends it (still never what).
    await page.reload();
    const row = page.getByRole('row').filter({ hasText: 'page-token' });
    await row.getByText('sent', { exact: true }).waitFor();
    await expect(row.textContent()).resolves.toContain('secret-check / check');
    expect(await leaks()).toEqual([]);
    page.off('response', record);
    expect(tp.problems).toEqual([]);
  });

  it('a dynamic kind is assembled from its own form, and the vault’s complaint lands on the field it names', async () => {
    await page.goto('/admin/secrets');
    const form = page.getByRole('form', { name: 'Set a secret' });
    await form.getByLabel('Secret name').fill('aws-deploy');
    await form.getByLabel('Kind').selectOption('aws-sigv4');
    await form.getByLabel('Access key ID').fill('AKIAEXAMPLE');
    await form.getByLabel('Secret access key').fill(`sak-${randomBytes(8).toString('hex')}`);
    await expect(form.getByLabel('Secret access key').getAttribute('type')).resolves.toBe('password');
    await form.getByLabel('Region').fill('Not A Region');
    await form.getByLabel('Service').fill('s3');
    await form.getByRole('button', { name: 'Save secret' }).click();
    const region = form.getByLabel('Region');
    await invalidSoon(region);
    await expect(form.getByRole('alert').textContent()).resolves.toContain('expected an AWS region');
    await shot('secret-kind-error');
    await region.fill('eu-west-1');
    await form.getByRole('button', { name: 'Save secret' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved aws-deploy: version 1' }).waitFor();
    await expect(page.getByRole('row').filter({ hasText: 'aws-deploy' }).textContent()).resolves.toContain('AWS SigV4');
    expect(unexpected(tp.problems)).toEqual([]);
  });

  it("a GitHub App connection opens as one in the form, and saving it keeps its settings (repositories, push branches, permissions)", async () => {
    const github = { repositories: ['acme/widgets'], permissions: { contents: 'write' }, pushBranches: 'tagbox/{thread}' };
    const put = await web.up.api(web.owner, 'PUT', '/bundles/gh-form', { connections: [{ name: 'acme', secret: 'gh-app', github }] });
    expect(put.status, put.text).toBe(200);
    await page.goto('/admin/bundles');
    await page.getByRole('row').filter({ hasText: 'gh-form' }).getByText('GitHub App; pushes to tagbox/{thread} only').waitFor();
    await page.goto('/admin/bundles/gh-form');
    const c = connection(1);
    await expect(c.getByRole('radio', { name: 'GitHub App' }).isChecked()).resolves.toBe(true);
    await expect(c.getByLabel('Repositories').inputValue()).resolves.toBe('acme/widgets');
    await expect(c.getByLabel('Push branches').inputValue()).resolves.toBe('tagbox/{thread}');
    await expect(c.getByLabel('Permissions').inputValue()).resolves.toBe('contents: write');
    // GitHub's websites and injection are not the admin's to edit here.
    await expect(c.getByLabel('Allowed website 1', { exact: true }).count()).resolves.toBe(0);
    await c.getByLabel('Repositories').fill('acme/widgets, acme/docs');
    await page.getByRole('button', { name: 'Save bundle' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved bundle gh-form.' }).waitFor();
    const stored = await web.up.api(web.owner, 'GET', '/bundles/gh-form');
    expect(stored.body.connections[0]).toMatchObject({ github: { ...github, repositories: ['acme/widgets', 'acme/docs'] }, inject: { basic: { username: 'x-access-token' } } });

    // A bad repository is named on its field.
    await page.goto('/admin/bundles/gh-form');
    await c.getByLabel('Repositories').fill('acme/widgets, not-a-repo');
    await page.getByRole('button', { name: 'Save bundle' }).click();
    await invalidSoon(c.getByLabel('Repositories'));
    await expect(c.getByRole('alert').first().textContent()).resolves.toContain('expected a repository as owner/name');
    expect(unexpected(tp.problems)).toEqual([]);
  });

  it('a server validation error is shown on the field it names, and the form keeps what was typed', async () => {
    await page.goto('/admin/bundles/new');
    await page.getByLabel('Bundle name').fill('bad-one');
    await page.getByRole('button', { name: 'Add connection' }).click();
    const c = connection(1);
    await c.getByLabel('Connection name').fill('gh');
    await c.getByLabel('Secret', { exact: true }).fill('page-token');
    await c.getByLabel('Allowed website 1', { exact: true }).fill('api.github.com');
    await c.getByRole('button', { name: 'Add allowed website' }).click();
    await c.getByLabel('Allowed website 2', { exact: true }).fill('https://github.com/x');
    await page.getByRole('button', { name: 'Save bundle' }).click();

    const bad = c.getByLabel('Allowed website 2', { exact: true });
    await invalidSoon(bad);
    const describedBy = (await bad.getAttribute('aria-describedby'))!.split(' ').find((id) => id.endsWith('-error'))!;
    // The server's own words for what is wrong with that host.
    await expect(page.locator(`[id="${describedBy}"]`).textContent()).resolves.toMatch(/without a scheme/);
    await expect(bad.evaluate((el) => el === (el.ownerDocument as unknown as { activeElement: unknown }).activeElement)).resolves.toBe(true);
    // Only that field is marked; everything typed is still there.
    await expect(page.locator('[aria-invalid="true"]').count()).resolves.toBe(1);
    await expect(page.getByLabel('Bundle name').inputValue()).resolves.toBe('bad-one');
    await expect(c.getByLabel('Allowed website 1', { exact: true }).inputValue()).resolves.toBe('api.github.com');
    await expect(bad.inputValue()).resolves.toBe('https://github.com/x');
    await shot('bundle-field-error');

    // Another field, another message: a header the proxy owns.
    await bad.fill('github.com');
    await c.getByLabel('Header name').fill('Host');
    await page.getByRole('button', { name: 'Save bundle' }).click();
    const header = c.getByLabel('Header name');
    await invalidSoon(header);
    await expect(c.getByRole('alert').textContent()).resolves.toContain('"Host" is managed by the proxy');
    expect((await web.up.api(web.owner, 'GET', '/bundles/bad-one')).status).toBe(404);
    expect(unexpected(tp.problems)).toEqual([]);
  });

  it('imports YAML: the preview shows the diff and applies nothing, Apply applies it, the export round-trips', async () => {
    await page.goto('/admin/bundles-yaml');
    const editor = page.getByLabel('Bundle file to apply');
    await editor.fill('bundles:\n  - name: from-yaml\n    domains:\n      - [oops\n');
    await page.getByRole('button', { name: 'Preview changes' }).click();
    await invalidSoon(editor);
    await expect(page.getByRole('alert').first().textContent()).resolves.toMatch(/^Line \d+: /);
    await shot('yaml-error');

    await editor.fill('bundles:\n  - name: from-yaml\n    domains: [yaml.echo.test, {host: yaml2.echo.test, ports: [8443]}]\n');
    await page.getByRole('button', { name: 'Preview changes' }).click();
    const changes = page.getByRole('list', { name: 'Changes' });
    await changes.getByText('+ bundle from-yaml').waitFor();
    expect((await web.up.api(web.owner, 'GET', '/bundles/from-yaml')).status).toBe(404);
    await shot('yaml-preview');
    await page.getByRole('button', { name: 'Apply', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Applied 1 change(s)' }).waitFor();
    const stored = await web.up.api(web.owner, 'GET', '/bundles/from-yaml');
    expect(stored.status).toBe(200);
    expect(stored.body.domains).toEqual([{ host: 'yaml.echo.test' }, { host: 'yaml2.echo.test', ports: [8443] }]);

    // The export lists it; applying the export back plans no change.
    const exported = page.getByLabel('Current bundles (bundles.yaml)');
    await expect(exported.getAttribute('readonly')).resolves.not.toBeNull();
    await until('the export to list it', async () => ((await exported.inputValue()).includes('name: from-yaml') ? true : undefined));
    const api = await web.up.api(web.owner, 'GET', '/bundles/export');
    await expect(exported.inputValue()).resolves.toBe(api.body.yaml);
    await page.getByRole('button', { name: 'Copy into the editor below' }).click();
    await page.getByRole('button', { name: 'Preview changes' }).click();
    await page.locator('.plan').getByText('no changes').waitFor();
    await expect(page.getByRole('button', { name: 'Apply', exact: true }).isDisabled()).resolves.toBe(true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download bundles.yaml' }).click()]);
    expect(download.suggestedFilename()).toBe('bundles.yaml');
    await shot('yaml');
    expect(unexpected(tp.problems)).toEqual([]);
  });

  it('effective access: the bundles of the org and of the channel, each with where it comes from', async () => {
    await page.goto('/admin/scopes');
    await page.getByLabel('Bundle to attach to the org').selectOption('from-yaml');
    await page.getByRole('button', { name: 'Attach to the org' }).click();
    await page.getByRole('list', { name: 'bundles attached to the org' }).getByText('from-yaml', { exact: true }).waitFor();
    await page.getByRole('link', { name: 'Effective access of #general' }).click();
    await page.getByRole('heading', { name: 'Effective access of #general' }).waitFor();
    const card = (name: string) => page.getByRole('region', { name, exact: true });
    await expect(card('from-yaml').textContent()).resolves.toContain('from the org');
    await expect(card('from-yaml').textContent()).resolves.toContain('yaml2.echo.test:8443');
    await expect(card('reach').textContent()).resolves.toContain('from #general');
    await expect(card('secret-check').textContent()).resolves.toContain('sends secret page-token');
    await shot('effective-access');

    // Detached from the org on the Scopes page, it is gone from the channel's union.
    await page.goto('/admin/scopes');
    await page.getByRole('button', { name: 'Detach from-yaml from the org' }).click();
    await page.getByRole('list', { name: 'bundles attached to the org' }).waitFor({ state: 'detached' });
    const access = await web.up.api(web.owner, 'GET', `/channels/${generalId}/access`);
    expect(access.body.bundles.map((b: { name: string }) => b.name).sort()).toEqual(['reach', 'secret-check']);
    expect(tp.problems).toEqual([]);
  });

  it('creates a bundle with the keyboard alone', async () => {
    await page.goto('/admin/bundles/new');
    await page.getByRole('button', { name: 'Save bundle' }).waitFor();
    await tabTo(page, 'Bundle name');
    await page.keyboard.type('keyboard-made');
    await tabTo(page, 'Add domain');
    await page.keyboard.press('Enter');
    // The new row has the focus.
    await expect(focusedName(page)).resolves.toBe('Domain 1');
    await page.keyboard.type('kb.example.com');
    await page.keyboard.press('Tab');
    await page.keyboard.type('443, 8443');
    await tabTo(page, 'Save bundle');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Saved bundle keyboard-made.' }).waitFor();
    const stored = await web.up.api(web.owner, 'GET', '/bundles/keyboard-made');
    expect(stored.body.domains).toEqual([{ host: 'kb.example.com', ports: [443, 8443] }]);

    // Deleting asks first; Escape cancels, the confirming button deletes.
    await page.goto('/admin/bundles/keyboard-made');
    await page.getByRole('button', { name: 'Save bundle' }).waitFor();
    await tabTo(page, 'Delete bundle');
    await page.keyboard.press('Enter');
    await expect(focusedName(page)).resolves.toBe('Yes, delete keyboard-made');
    await page.keyboard.press('Escape');
    await expect(focusedName(page)).resolves.toBe('Delete bundle');
    await page.keyboard.press('Enter');
    await expect(focusedName(page)).resolves.toBe('Yes, delete keyboard-made');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Deleted bundle keyboard-made.' }).waitFor();
    expect((await web.up.api(web.owner, 'GET', '/bundles/keyboard-made')).status).toBe(404);
    expect(tp.problems).toEqual([]);
  });

  it('plugins: listed with where they are mounted; attached and detached in the page', async () => {
    const file = (path: string, text: string) => ({ path, data: Buffer.from(text).toString('base64') });
    const added = await web.up.api(web.owner, 'POST', '/plugins', {
      name: 'review-kit',
      files: [
        file('.claude-plugin/plugin.json', JSON.stringify({ name: 'review-kit', version: '1.2.0', description: 'Review helpers' })),
        file('commands/review.md', '# Review\nReview the diff.\n'),
      ],
    });
    expect(added.status, added.text).toBe(201);
    await page.goto('/admin/plugins');
    const card = page.getByRole('region', { name: 'review-kit', exact: true });
    await expect(card.textContent()).resolves.toContain('1 commands');
    await card.getByLabel('Scope to attach to review-kit').selectOption({ label: '#general' });
    await card.getByRole('button', { name: 'Attach to review-kit' }).click();
    await card.getByRole('list', { name: 'scopes attached to review-kit' }).getByText('#general').waitFor();
    const access = await web.up.api(web.owner, 'GET', `/channels/${generalId}/access`);
    expect(access.body.plugins).toEqual([expect.objectContaining({ name: 'review-kit', from: `channel:${generalId}` })]);
    await shot('plugins');
    await card.getByRole('button', { name: 'Detach #general from review-kit' }).click();
    await card.getByText('No scopes attached.').waitFor();
    expect(tp.problems).toEqual([]);
  });

  it('fits a phone', async () => {
    const phone = await openPage(browser, web.up.url, { viewport: PHONE });
    try {
      await signInAs(phone, web, web.ownerId);
      // A day and more later: times read as dates, wider than "just now" (a wider table once widened the page).
      await phone.page.clock.setSystemTime(new Date(Date.now() + 30 * 3600_000));
      for (const path of ['/admin/bundles', '/admin/bundles/reach', '/admin/secrets', '/admin/scopes']) {
        await phone.page.goto(path);
        await phone.page.getByRole('heading', { level: 1 }).waitFor();
        await phone.page.locator('.loading').waitFor({ state: 'detached' });
        const overflow = await phone.page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
        if (overflow > 0) console.log('WIDE', path, await phone.page.evaluate<string>(`[...document.querySelectorAll('*')].filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + (e.textContent || '').slice(0, 40)).slice(0, 15).join('\\n')`));
        expect(overflow, path).toBeLessThanOrEqual(0);
        await screenshot(phone.page, `admin-access-${backendName}-phone${path.replace(/\//g, '-')}`);
      }
      expect(phone.problems).toEqual([]);
    } finally {
      await phone.context.close();
    }
  });
});

/** Presses Tab until the focused element is named `name` (its label, aria-label or text); fails after 80 presses. */
async function tabTo(page: Page, name: string): Promise<void> {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press('Tab');
    if ((await focusedName(page)) === name) return;
  }
  throw new Error(`Tab never reached "${name}"`);
}

/** The page's problems, less the browser's log line for each 400 the test provoked on purpose (and the page showed). */
function unexpected(problems: string[]): string[] {
  return problems.filter((p) => !p.includes('the server responded with a status of 400 (Bad Request)'));
}

/** The focused element's name: its label, aria-label or text (page code, as a string: this file has no DOM types). */
function focusedName(page: Page): Promise<string> {
  return page.evaluate<string>(`(() => {
    const el = document.activeElement;
    return ((el && el.labels && el.labels[0] && el.labels[0].textContent) || (el && el.getAttribute('aria-label')) || (el && el.textContent) || '').trim();
  })()`);
}

/** Waits until the server's answer has marked `field` invalid. */
async function invalidSoon(field: Locator): Promise<void> {
  await until('the field marked invalid', async () => ((await field.getAttribute('aria-invalid')) === 'true' ? true : undefined));
}
