import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { E2E_TIMEOUT, newMember, until, webWorkspace } from '../e2e/up-harness.js';
import { launchBrowser, openPage, PHONE, screenshot, type TestPage } from './browser.js';
import { signInAs, startWebUp, type WebUp } from './web-up.js';

/**
 * The web chat against the real `tagbox up` with the shell engine (a message
 * is a shell command: its output is the deterministic "answer"), in a real
 * headless Chromium: sign-in, live streaming, Stop, two browsers on one thread,
 * notices, background-tab notifications, hostile text, a phone.
 */
describe.each(BACKENDS)('the web chat (%s)', { timeout: E2E_TIMEOUT }, (backendName) => {
  let backend: TestBackend;
  let web: WebUp;
  let browser: Browser;
  let generalId: string;
  let ada: { id: string; token: string };
  let bob: { id: string; token: string };
  const open: TestPage[] = [];

  beforeAll(async () => {
    backend = await createTestBackend(backendName);
    web = await startWebUp({ ...backend.env, TAGBOX_AGENT_ENGINE: 'shell' });
    const ws = await webWorkspace(web.up, web.owner);
    generalId = ws.generalId;
    ada = await newMember(web.up, web.owner, ws.workspaceId, 'Ada');
    bob = await newMember(web.up, web.owner, ws.workspaceId, 'Bob');
    browser = await launchBrowser();
  }, E2E_TIMEOUT);
  afterAll(async () => {
    for (const tp of open) await tp.context.close().catch(() => undefined);
    await browser?.close();
    await web?.up.stop();
    await backend?.cleanup();
  }, E2E_TIMEOUT);

  const shot = (page: Page, name: string) => screenshot(page, `chat-${backendName}-${name}`);

  /** A page signed in as `member`, at `path`. */
  async function pageAs(member: { id: string }, path = '/chat', options: { viewport?: { width: number; height: number } } = {}): Promise<TestPage> {
    const tp = await openPage(browser, web.up.url, options);
    open.push(tp);
    await signInAs(tp, web, member.id);
    await tp.page.goto(path);
    return tp;
  }

  async function done(tp: TestPage): Promise<void> {
    expect(tp.problems).toEqual([]);
    await tp.context.close();
    open.splice(open.indexOf(tp), 1);
  }

  const focused = (l: Locator) => l.evaluate((el) => el === (el as unknown as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement);
  const composer = (page: Page) => page.getByRole('textbox', { name: /^(New thread in|Reply in) / });
  const log = (page: Page) => page.getByRole('log', { name: 'Messages' });
  const agentAnswers = (page: Page) => log(page).getByRole('article', { name: 'Agent, message' });

  /** Types a message and sends it with Enter; in a new thread, waits for the thread's URL. */
  async function send(page: Page, text: string): Promise<string> {
    const box = composer(page);
    await box.fill(text);
    await box.press('Enter');
    await page.waitForURL(/\/t\/[^/]+$/);
    return decodeURIComponent(page.url().split('/t/')[1]!);
  }

  it('signs in by a link, lands in #general (the focus left at the top), lists the places', async () => {
    const tp = await pageAs(ada);
    const { page } = tp;
    await page.waitForURL(new RegExp(`/chat/c/${generalId}$`));
    const places = page.getByRole('navigation', { name: 'Places' });
    await expect(places.getByRole('link', { name: /general/ }).isVisible()).resolves.toBe(true);
    await expect(places.getByRole('link', { name: /your DM/ }).isVisible()).resolves.toBe(true);
    await page.getByRole('heading', { name: 'New thread' }).waitFor();
    await composer(page).waitFor();
    // Landing takes no focus: Tab from the top is the skip link first.
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string | undefined>('document.activeElement?.textContent')).toBe('Skip to content');
    expect(await page.title()).toBe('#general · Tagbox');
    await shot(page, 'signed-in');
    await done(tp);
  });

  it('posts a message and shows the streamed output before the answer, folded under it once done', async () => {
    const tp = await pageAs(ada, `/chat/c/${generalId}`);
    const { page } = tp;
    // Shift+Enter is a new line, not a send.
    await composer(page).fill('first');
    await composer(page).press('Shift+Enter');
    expect(await composer(page).inputValue()).toBe('first\n');
    const thread = await send(page, 'for i in 1 2 3; do echo line $i; sleep 0.4; done');
    expect(page.url()).toBe(`${web.up.url}/chat/c/${generalId}/t/${thread}`);
    await log(page).getByRole('article', { name: 'Ada, message' }).getByText('for i in 1 2 3').waitFor();
    const work = log(page).locator('details.work');
    await work.getByText('line 1').waitFor();
    // Progress is on screen while the turn runs: no answer yet, the fold open, the status running, Stop offered.
    expect(await agentAnswers(page).count()).toBe(0);
    expect(await work.evaluate((el) => (el as unknown as { open: boolean }).open)).toBe(true);
    expect(await work.locator('summary').textContent()).toMatch(/^Working… \d+ steps?$/);
    await shot(page, 'streaming');
    await agentAnswers(page).getByText('line 3').waitFor();
    await page.getByRole('status').getByText('Idle').waitFor();
    expect(await page.getByRole('button', { name: 'Stop' }).count()).toBe(0);
    await until('the work folded', async () => ((await work.evaluate((el) => !(el as unknown as { open: boolean }).open)) ? true : undefined), 10_000);
    expect(await work.locator('summary').textContent()).toMatch(/^Worked: \d+ steps?$/);
    // The answer, once: the stream's replay (and the thread's own messages) never duplicate it.
    expect(await agentAnswers(page).count()).toBe(1);
    // The new thread is listed in the sidebar and marked current.
    await page.getByRole('navigation', { name: 'Threads' }).getByRole('link', { name: /for i in 1 2 3/ }).waitFor();
    await shot(page, 'streamed-reply');
    // A reload shows the same thread, the same once.
    await page.reload();
    await agentAnswers(page).getByText('line 3').waitFor();
    expect(await agentAnswers(page).count()).toBe(1);
    await done(tp);
  });

  it('stops a running turn from the keyboard alone, and the thread says it was stopped', async () => {
    const started = await web.up.api(ada.token, 'POST', `/channels/${generalId}/messages`, { text: 'echo ready' });
    expect(started.status, started.text).toBe(202);
    const tp = await pageAs(ada, `/chat/c/${generalId}/t/${started.body.thread}`);
    const { page } = tp;
    await agentAnswers(page).getByText('ready').waitFor();
    // Keyboard only: entering a thread puts the focus in its composer; Enter sends; Shift+Tab reaches Stop.
    await until('the composer focused', async () => ((await focused(composer(page))) ? true : undefined), 10_000);
    await page.keyboard.type('sleep 60');
    await page.keyboard.press('Enter');
    await page.getByRole('status').getByText('Agent running').waitFor();
    const stop = page.getByRole('button', { name: 'Stop' });
    await until('the composer focused again', async () => ((await focused(composer(page))) ? true : undefined), 10_000);
    // Back past the log (and the earlier turn's fold in it) to the thread's header.
    for (let i = 0; i < 8 && !(await focused(stop)); i++) await page.keyboard.press('Shift+Tab');
    expect(await focused(stop)).toBe(true);
    await shot(page, 'running');
    await page.keyboard.press('Enter');
    await log(page).getByRole('note').getByText('Stopped by Ada.').waitFor();
    await page.getByRole('status').getByText('Idle').waitFor();
    expect(await stop.count()).toBe(0);
    await log(page).getByText(/^Stopped/).first().waitFor();
    await shot(page, 'stopped');
    await done(tp);
  });

  it('two browsers on one thread both see every message and answer live', async () => {
    const a = await pageAs(ada, `/chat/c/${generalId}`);
    const thread = await send(a.page, 'echo hello-from-ada');
    await agentAnswers(a.page).getByText('hello-from-ada').waitFor();
    const b = await pageAs(bob, `/chat/c/${generalId}/t/${thread}`);
    await agentAnswers(b.page).getByText('hello-from-ada').waitFor();

    // Bob writes; Ada sees his message and its answer arrive without reloading, and the other way round.
    await composer(b.page).fill('echo bob-was-here');
    await composer(b.page).press('Enter');
    for (const tp of [a, b]) {
      await log(tp.page).getByRole('article', { name: 'Bob, message' }).getByText('echo bob-was-here').waitFor();
      await agentAnswers(tp.page).getByText('bob-was-here').waitFor();
    }
    await composer(a.page).fill('echo ada-again');
    await composer(a.page).press('Enter');
    for (const tp of [a, b]) await agentAnswers(tp.page).getByText('ada-again').waitFor();
    for (const tp of [a, b]) {
      expect(await agentAnswers(tp.page).count()).toBe(3);
      expect(await log(tp.page).getByRole('article', { name: /^(Ada|Bob), message$/ }).count()).toBe(3);
    }
    await shot(a.page, 'two-browsers-ada');
    await shot(b.page, 'two-browsers-bob');
    await done(a);
    await done(b);
  });

  it("sets a blocked host's notice apart, naming the host and what would allow it", async () => {
    const tp = await pageAs(ada, `/chat/c/${generalId}`);
    const { page } = tp;
    await send(page, 'curl -sS https://not-allowed.example/');
    const notice = log(page).getByRole('note', { name: 'Blocked request to not-allowed.example' });
    await notice.waitFor();
    expect(await notice.textContent()).toMatch(/Blocked a request to not-allowed\.example: .*ask an admin to add not-allowed\.example to a bundle attached to #general/);
    await page.getByRole('status').getByText('Idle').waitFor();
    await shot(page, 'blocked-notice');
    await done(tp);
  });

  it('a turn that ends while the tab is hidden: a notification (permission granted) and an unread count in the title', async () => {
    const tp = await pageAs(ada, `/chat/c/${generalId}`);
    const { page, context } = tp;
    await context.grantPermissions(['notifications'], { origin: web.up.url });
    // Notifications the page makes are recorded (the real constructor's are invisible to a headless test).
    await context.addInitScript(RECORD_NOTIFICATIONS);
    await page.reload();
    await composer(page).fill('sleep 1; echo background-answer');
    await composer(page).press('Enter');
    await page.waitForURL(/\/t\/[^/]+$/);
    await page.getByRole('status').getByText('Agent running').waitFor();
    await page.evaluate(HIDE);
    const notes = await until('a notification', async () => {
      const n = await page.evaluate<Array<{ title: string; body?: string }>>('window.__notes');
      return n.length > 0 ? n : undefined;
    });
    expect(notes).toEqual([{ title: 'Tagbox: agent answered in #general', body: expect.stringContaining('background-answer') }]);
    expect(await page.title()).toBe('(1) #general · Tagbox');
    // Visible again: the count goes.
    await page.evaluate(SHOW);
    expect(await page.title()).toBe('#general · Tagbox');
    await shot(page, 'background-notification');
    await done(tp);
  });

  it('shows hostile markup and a javascript: link as text: nothing runs, no such link exists', async () => {
    const tp = await pageAs(ada, `/chat/c/${generalId}`);
    const { page } = tp;
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const hostile = '<img src=x onerror=alert(1)> [x](javascript:alert(1))';
    await send(page, `printf '%s\\n' '${hostile}'`);
    await agentAnswers(page).getByText('<img src=x onerror=alert(1)>').waitFor();
    await log(page).getByRole('article', { name: 'Ada, message' }).getByText(hostile, { exact: false }).waitFor();
    expect(await log(page).locator('img').count()).toBe(0);
    expect(await page.locator('a[href^="javascript:" i]').count()).toBe(0);
    expect(await agentAnswers(page).first().textContent()).toContain('[x](javascript:alert(1))');
    expect(dialogs).toEqual([]);
    await shot(page, 'hostile-text');
    await done(tp);
  });

  it('fits a phone: the places fold away behind a toggle, no sideways scrolling', async () => {
    const a = await pageAs(ada, `/chat/c/${generalId}`);
    const thread = await send(a.page, 'echo on-a-phone; printf "%s\\n" "a long line that a phone must wrap rather than scroll sideways for, however long it goes on and on"');
    await agentAnswers(a.page).getByText('on-a-phone').waitFor();
    await done(a);
    const tp = await pageAs(ada, `/chat/c/${generalId}/t/${thread}`, { viewport: PHONE });
    const { page } = tp;
    await agentAnswers(page).getByText('on-a-phone').waitFor();
    const toggle = page.getByRole('button', { name: /Channels and threads/ });
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    expect(await page.getByRole('navigation', { name: 'Places' }).isVisible()).toBe(false);
    const sideways = () => page.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(await sideways()).toBeLessThanOrEqual(0);
    await shot(page, 'phone-thread');
    await toggle.click();
    expect(await page.getByRole('button', { name: /channels and threads/i }).getAttribute('aria-expanded')).toBe('true');
    await page.getByRole('navigation', { name: 'Places' }).waitFor();
    expect(await sideways()).toBeLessThanOrEqual(0);
    await shot(page, 'phone-places');
    // Picking a place folds the list away again.
    await page.getByRole('navigation', { name: 'Places' }).getByRole('link', { name: /your DM/ }).click();
    await page.waitForURL(/\/chat\/dm$/);
    await composer(page).waitFor();
    expect(await page.getByRole('button', { name: /channels and threads/i }).getAttribute('aria-expanded')).toBe('false');
    await shot(page, 'phone-dm');
    await done(tp);
  });
});

/** Records the page's Notifications in window.__notes (a headless browser shows none), the real permission kept. */
const RECORD_NOTIFICATIONS = `
  window.__notes = [];
  const Real = window.Notification;
  function Fake(title, options) {
    window.__notes.push(options && options.body ? { title, body: options.body } : { title });
    return { close() {}, onclick: null };
  }
  Object.defineProperty(Fake, 'permission', { get: () => Real.permission });
  Fake.requestPermission = () => Real.requestPermission();
  window.Notification = Fake;
`;

/** The tab hidden, or shown again, as the browser says it when the member switches tabs. */
const visibility = (state: 'hidden' | 'visible') => `
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => '${state}' });
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${state === 'hidden'} });
  document.dispatchEvent(new Event('visibilitychange'));
`;
const HIDE = visibility('hidden');
const SHOW = visibility('visible');
