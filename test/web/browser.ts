import { mkdirSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * A real headless Chromium (Debian's `chromium` package, driven by
 * playwright-core; nothing is downloaded). `--no-sandbox` only as root, where
 * Chromium refuses to start its own sandbox.
 */

export const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'web');

export function chromiumPath(): string {
  const candidates = [process.env.TAGBOX_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((c): c is string => Boolean(c) && existsSync(c!));
  if (!found) throw new Error('Chromium is not installed: apt-get install chromium (scripts/test-prereqs.sh does it)');
  return found;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
}

export interface TestPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and failed page loads (a CSP violation is one): asserted empty by tests that care. */
  problems: string[];
}

export async function openPage(browser: Browser, baseURL: string, options: { viewport?: { width: number; height: number }; ignoreHTTPSErrors?: boolean } = {}): Promise<TestPage> {
  const context = await browser.newContext({ baseURL, viewport: options.viewport ?? { width: 1280, height: 800 }, reducedMotion: 'reduce', ...(options.ignoreHTTPSErrors ? { ignoreHTTPSErrors: true } : {}) });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return { context, page, problems };
}

/** Saves a full-page screenshot under test-artifacts/web/ (kept by CI as an artifact). */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name.replace(/[^a-z0-9-]+/gi, '-').toLowerCase()}.png`);
  // From the top: a full-page capture draws the sticky top bar where the page was scrolled to.
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A phone-sized viewport (the issue: every page fits a laptop and a phone). */
export const PHONE = { width: 390, height: 844 };
