import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envBindings, envNameFor } from '../../src/config/env.js';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { TagboxError } from '../../src/errors.js';

function writeConfig(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tagbox-config-')), 'tagbox.yaml');
  writeFileSync(file, text);
  return file;
}

function loadError(file: string, env: NodeJS.ProcessEnv = {}): TagboxError {
  try {
    loadConfig({ file, explicit: true, env });
  } catch (error) {
    expect(error).toBeInstanceOf(TagboxError);
    return error as TagboxError;
  }
  throw new Error('expected the config to be rejected');
}

describe('config', () => {
  it('uses defaults when there is no file', () => {
    const { config, file } = loadConfig({ file: '/nonexistent/tagbox.yaml', explicit: false, env: {} });
    expect(file).toBeUndefined();
    expect(config.server.port).toBe(8787);
    expect(config.upstream.connectTo).toEqual([]);
    expect(config.database.url).toBeUndefined();
  });

  it('refuses a missing file named explicitly', () => {
    const error = loadError('/nonexistent/tagbox.yaml');
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain('/nonexistent/tagbox.yaml');
  });

  it('reads upstream.connectTo and upstream.caFile', () => {
    const file = writeConfig('upstream:\n  connectTo:\n    - api.github.com:443:127.0.0.1:8443\n  caFile: /etc/ca.pem\n');
    const { config } = loadConfig({ file, explicit: true, env: {} });
    expect(config.upstream).toEqual({ connectTo: ['api.github.com:443:127.0.0.1:8443'], caFile: '/etc/ca.pem' });
  });

  it('reads proxy.passthrough as host patterns, with ports where given', () => {
    const file = writeConfig('proxy:\n  passthrough:\n    - pinned.example.com\n    - host: "*.pinned.test"\n      ports: [8443]\n');
    const { config } = loadConfig({ file, explicit: true, env: {} });
    expect(config.proxy.passthrough).toEqual(['pinned.example.com', { host: '*.pinned.test', ports: [8443] }]);
    const error = loadError(writeConfig('proxy:\n  passthrough:\n    - host: x.test\n      ports: [0]\n'));
    expect(error.message).toMatch(/:4: proxy\.passthrough\.0\.ports\.0: /);
  });

  it('reads the proxy caps (proxy.*), keeps maxTunnels working alone, and refuses a per-session cap over a quarter of the global one', async () => {
    const { proxyLimits } = await import('../../src/proxy/runtime.js');
    const old = loadConfig({ file: writeConfig('proxy:\n  maxTunnels: 100\n'), explicit: true, env: {} }).config.proxy;
    expect(old).toMatchObject({ maxTunnels: 100, maxConnections: 4096, handshakeTimeoutMs: 5000, fdReserve: 256 });
    expect(old.maxTunnelsPerSession).toBeUndefined();
    expect(proxyLimits(old)).toEqual({ maxTunnels: 100, maxConnections: 4096, handshakeTimeoutMs: 5000, fdReserve: 256 });
    const file = writeConfig('proxy:\n  maxTunnels: 400\n  maxTunnelsPerSession: 100\n  maxConnections: 1000\n  maxConnectionsPerSession: 250\n  handshakeTimeoutMs: 3000\n  fdReserve: 64\n');
    expect(proxyLimits(loadConfig({ file, explicit: true, env: {} }).config.proxy)).toEqual({
      maxTunnels: 400, maxTunnelsPerSession: 100, maxConnections: 1000, maxConnectionsPerSession: 250, handshakeTimeoutMs: 3000, fdReserve: 64,
    });
    const fromEnv = loadConfig({ file: '/nonexistent/tagbox.yaml', explicit: false, env: { TAGBOX_PROXY_MAX_CONNECTIONS_PER_SESSION: '12', TAGBOX_PROXY_FD_RESERVE: '32' } }).config.proxy;
    expect([fromEnv.maxConnectionsPerSession, fromEnv.fdReserve]).toEqual([12, 32]);
    const tooBig = loadError(writeConfig('proxy:\n  maxTunnels: 400\n  maxTunnelsPerSession: 101\n'));
    expect(tooBig.message).toMatch(/:3: proxy\.maxTunnelsPerSession: 101 is more than a quarter of proxy\.maxTunnels \(400\): one session could starve the others/);
    expect(loadError(writeConfig('proxy:\n  handshakeTimeoutMs: 10\n')).message).toMatch(/proxy\.handshakeTimeoutMs/);
  });

  it('names the file, the line, the key path and what was expected', () => {
    const file = writeConfig('server:\n  port: 8787\nupstream:\n  connectTo:\n    - not-a-mapping\n');
    const error = loadError(file);
    expect(error.exitCode).toBe(2);
    expect(error.message).toBe(`${file}:5: upstream.connectTo.0: expected HOST:PORT:TOHOST:TOPORT (curl --connect-to form)`);
  });

  it('names unknown keys', () => {
    const error = loadError(writeConfig('upstream:\n  conectTo: []\n'));
    expect(error.message).toMatch(/tagbox\.yaml:2: upstream: unknown key "conectTo"$/);
  });

  it('names wrong types', () => {
    const error = loadError(writeConfig('server:\n  port: "eighty"\n'));
    expect(error.message).toMatch(/:2: server\.port: .*number/);
  });

  it('reports YAML syntax errors with a line', () => {
    const error = loadError(writeConfig('server:\n  port: [1,\n'));
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(/tagbox\.yaml:\d+: invalid YAML/);
  });

  it('lets every key be set from a TAGBOX_* variable', () => {
    const names = envBindings(configSchema).map((b) => b.variable);
    expect(names).toEqual(expect.arrayContaining(['TAGBOX_SERVER_PORT', 'TAGBOX_DATABASE_URL', 'TAGBOX_UPSTREAM_CONNECT_TO', 'TAGBOX_UPSTREAM_CA_FILE', 'TAGBOX_LOG_LEVEL']));
    expect(envNameFor(['upstream', 'connectTo'])).toBe('TAGBOX_UPSTREAM_CONNECT_TO');

    const file = writeConfig('server:\n  port: 9000\n');
    const { config } = loadConfig({
      file,
      explicit: true,
      env: { TAGBOX_SERVER_PORT: '9100', TAGBOX_UPSTREAM_CONNECT_TO: 'a.test:443:127.0.0.1:1, b.test:80:127.0.0.1:2', TAGBOX_DATABASE_URL: 'postgres://localhost/x' },
    });
    expect(config.server.port).toBe(9100);
    expect(config.upstream.connectTo).toEqual(['a.test:443:127.0.0.1:1', 'b.test:80:127.0.0.1:2']);
    expect(config.database.url).toBe('postgres://localhost/x');
  });

  it('names the variable when an environment value is invalid', () => {
    const error = loadError(writeConfig(''), { TAGBOX_SERVER_PORT: 'lots' });
    expect(error.message).toMatch(/^TAGBOX_SERVER_PORT \(server\.port\): /);
    const url = loadError(writeConfig(''), { TAGBOX_DATABASE_URL: 'mysql://x' });
    expect(url.message).toContain('TAGBOX_DATABASE_URL (database.url): expected a postgres:// or postgresql:// URL');
  });

  it('reads the web section with its defaults, the OIDC client secret from the environment, and names bad values', () => {
    const defaults = loadConfig({ file: '/nonexistent/tagbox.yaml', explicit: false, env: {} }).config.web;
    expect(defaults).toEqual({ sessionHours: 168, sessionIdleHours: 24, signInLinkHours: 24 });
    const file = writeConfig('web:\n  publicUrl: https://tagbox.example.com\n  oidc:\n    issuer: https://sso.example.com\n    clientId: tagbox\n    allowedEmailDomains: [example.com]\n');
    const { config } = loadConfig({ file, explicit: true, env: { TAGBOX_WEB_OIDC_CLIENT_SECRET: 's3cret' } });
    expect(config.web.publicUrl).toBe('https://tagbox.example.com');
    expect(config.web.oidc).toEqual({ issuer: 'https://sso.example.com', clientId: 'tagbox', clientSecret: 's3cret', name: 'SSO', scopes: ['openid', 'email', 'profile'], allowedEmailDomains: ['example.com'] });
    for (const [text, key] of [
      ['web:\n  publicUrl: https://tagbox.example.com/app\n', 'web.publicUrl'],
      ['web:\n  publicUrl: ftp://tagbox.example.com\n', 'web.publicUrl'],
      ['web:\n  sessionHours: 0\n', 'web.sessionHours'],
      ['web:\n  oidc:\n    issuer: not-a-url\n    clientId: x\n', 'web.oidc.issuer'],
      ['web:\n  oidc:\n    issuer: https://sso.example.com\n', 'web.oidc.clientId'],
    ] as const) {
      const error = loadError(writeConfig(text));
      expect(error.exitCode).toBe(2);
      expect(error.message).toContain(key);
    }
  });
});
