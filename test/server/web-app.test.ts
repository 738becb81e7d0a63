import Fastify, { type FastifyInstance } from 'fastify';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installErrorHandlers } from '../../src/server/error-handler.js';
import { APP_PATHS, CONTENT_SECURITY_POLICY, webApp } from '../../src/server/web-app.js';

/** The web app's static serving: the page on every app path, assets cached, the API's 404s untouched. */
describe('web app serving', () => {
  let root: string;
  let app: FastifyInstance;
  let bare: FastifyInstance;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tagbox-web-'));
    mkdirSync(join(root, 'assets'));
    writeFileSync(join(root, 'index.html'), '<!doctype html><title>Tagbox</title><div id="app"></div>');
    writeFileSync(join(root, 'assets', 'index-abc123.js'), 'console.log(1)');
    writeFileSync(join(root, 'secret.txt'), 'not an asset');
    app = Fastify();
    installErrorHandlers(app);
    await app.register(async (api) => void api.get('/ping', async () => ({ ok: true })), { prefix: '/api/v1' });
    await app.register(webApp(root));
    bare = Fastify();
    installErrorHandlers(bare);
    await bare.register(webApp(join(root, 'missing')));
  });
  afterAll(async () => {
    await app.close();
    await bare.close();
    rmSync(root, { recursive: true, force: true });
  });

  it.each(['/', '/signin', '/chat', '/chat/c/ch_1/t/th_2', '/admin', '/admin/bundles/platform-eng'])('answers %s with the page, never cached, under a strict CSP', async (path) => {
    const res = await app.inject({ method: 'GET', url: path });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('<div id="app">');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
  });

  it('allows no inline script, no framing and no foreign connections', () => {
    const directives = Object.fromEntries(CONTENT_SECURITY_POLICY.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
    expect(directives['script-src']).toEqual(["'self'"]);
    expect(directives['connect-src']).toEqual(["'self'"]);
    expect(directives['frame-ancestors']).toEqual(["'none'"]);
    expect(directives['default-src']).toEqual(["'none'"]);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
  });

  it('serves hashed assets for good, and nothing outside assets/', async () => {
    const js = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['cache-control']).toContain('immutable');
    expect(js.headers['x-content-type-options']).toBe('nosniff');
    for (const url of ['/secret.txt', '/assets/../secret.txt', '/assets/%2e%2e/secret.txt', '/index.html/../secret.txt']) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.body, url).not.toContain('not an asset');
    }
  });

  it('leaves the API its JSON 404s and unknown paths their 404', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/v1/ping' })).json()).toEqual({ ok: true });
    const missing = await app.inject({ method: 'GET', url: '/api/v1/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
    expect((await app.inject({ method: 'GET', url: '/elsewhere' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/chat' })).statusCode).toBe(404);
  });

  it('says how to build the app when it is not built', async () => {
    for (const path of APP_PATHS.map((p) => p.replace('*', 'x'))) {
      const res = await bare.inject({ method: 'GET', url: path });
      expect(res.statusCode, path).toBe(503);
      expect(res.body).toContain('npm run build');
    }
  });
});
