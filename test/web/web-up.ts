import { expect } from 'vitest';
import { startUp, type Up } from '../e2e/up-harness.js';
import type { TestPage } from './browser.js';

/**
 * The browser tests' server: the real `tagbox up` (launcher, server, Agent
 * Proxy, sandboxes) serving the built app, and its first Owner.
 */
export interface WebUp {
  up: Up;
  /** The first Owner's API token (for setting things up around the browser). */
  owner: string;
  ownerId: string;
}

export async function startWebUp(env: Record<string, string>): Promise<WebUp> {
  const up = await startUp(env);
  const owner = up.token;
  if (!owner) throw new Error('tagbox up printed no owner token (not a fresh TAGBOX_HOME?)');
  const me = await up.api(owner, 'GET', '/me');
  expect(me.status, me.text).toBe(200);
  return { up, owner, ownerId: me.body.member.id };
}

/** A one-time sign-in link for `memberId`, minted by `adminToken`, opened in the page. */
export async function signInAs(tp: TestPage, web: WebUp, memberId: string, adminToken = web.owner): Promise<void> {
  const link = await web.up.api(adminToken, 'POST', `/members/${encodeURIComponent(memberId)}/login-links`, {});
  expect(link.status, link.text).toBe(201);
  await tp.page.goto(link.body.url);
  await tp.page.locator('.topbar').waitFor();
}
