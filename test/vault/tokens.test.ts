import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCredentialResolver } from '../../src/vault/private/resolver.js';
import { createTokenHttpClient, type TokenHttpClient } from '../../src/vault/private/token-http.js';
import type { CredentialResolver } from '../../src/vault/credentials.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { BACKENDS, createTestBackend, type TestBackend } from '../helpers/backends.js';
import { createVaultHarness, type VaultHarness } from './harness.js';
import { startFakeGithub, startFakeOAuth, type FakeTokenServer } from './token-servers.js';

const ctx = { connection: 'gh', session: 's1' };
const app = generateKeyPairSync('rsa', { modulusLength: 2048 });
const appPem = app.privateKey.export({ format: 'pem', type: 'pkcs1' }).toString();
const clientSecret = `cs-${randomBytes(16).toString('hex')}`;

let ca: TestCa;
let github: FakeTokenServer;
let oauth: FakeTokenServer;
let http: TokenHttpClient;

beforeAll(async () => {
  ca = await createTestCa();
  github = await startFakeGithub(ca, app.publicKey, '4242');
  oauth = await startFakeOAuth(ca, 'client-1', clientSecret);
  http = createTokenHttpClient({
    caPem: ca.certPem,
    connectTo: [`api.github.test:443:127.0.0.1:${github.port}`, `auth.example.test:443:127.0.0.1:${oauth.port}`, 'down.example.test:443:127.0.0.1:1'],
  });
});
afterAll(async () => {
  await github.close();
  await oauth.close();
});

describe.each(BACKENDS)('credential kinds on %s', (backendName) => {
  let backend: TestBackend;
  let vault: VaultHarness;
  let resolver: CredentialResolver;
  let now: number;

  beforeEach(async () => {
    backend = await createTestBackend(backendName);
    vault = await createVaultHarness(backend.sibling('vault'));
    now = Date.now();
    resolver = createCredentialResolver({ opener: await vault.opener(), http, now: () => now });
    github.calls = 0;
    oauth.calls = 0;
  });
  afterEach(async () => {
    await vault.close();
    await backend.cleanup();
  });

  const githubDoc = (installationId = 77) => Buffer.from(JSON.stringify({ appId: 4242, installationId, privateKey: appPem, apiUrl: 'https://api.github.test' }));
  const oauthYaml = (extra = '') => Buffer.from(`tokenUrl: https://auth.example.test/oauth/token\nclientId: client-1\nclientSecret: ${clientSecret}\nscope: read write\n${extra}`);

  it('static: the value itself', async () => {
    await vault.sealer.put('plain', Buffer.from('abc'));
    expect(await resolver.resolve('plain', ctx)).toEqual({ kind: 'value', value: 'abc', version: 1 });
  });

  it('github-app: JWT -> installation token, cached until shortly before expires_at', async () => {
    github.respond = { status: 201, body: JSON.stringify({ token: 'ghs_first', expires_at: new Date(now + 3600_000).toISOString() }) };
    await vault.sealer.put('gh-app', githubDoc(), 'github-app');
    expect(await resolver.resolve('gh-app', ctx)).toEqual({ kind: 'value', value: 'ghs_first', version: 1 });
    expect(github.lastRequest?.path).toBe('/app/installations/77/access_tokens');
    expect(github.lastRequest?.headers['x-github-api-version']).toBe('2022-11-28');
    now += 50 * 60_000;
    expect((await resolver.resolve('gh-app', ctx)).kind).toBe('value');
    expect(github.calls).toBe(1);

    // Within five minutes of expiry: many concurrent requests share one fetch.
    now += 6 * 60_000;
    github.respond = { status: 201, body: JSON.stringify({ token: 'ghs_second', expires_at: new Date(now + 3600_000).toISOString() }), delayMs: 50 };
    const many = await Promise.all(Array.from({ length: 25 }, () => resolver.resolve('gh-app', ctx)));
    expect(new Set(many.map((r) => (r.kind === 'value' ? r.value : '')))).toEqual(new Set(['ghs_second']));
    expect(github.calls).toBe(2);
    // Every resolve is an audited open.
    expect(vault.audit.events.filter((e) => e.outcome === 'opened')).toHaveLength(27);

    // A new version of the secret fetches a new token.
    github.respond = { status: 201, body: JSON.stringify({ token: 'ghs_third', expires_at: new Date(now + 3600_000).toISOString() }) };
    await vault.sealer.put('gh-app', githubDoc(78), 'github-app');
    expect(await resolver.resolve('gh-app', ctx)).toEqual({ kind: 'value', value: 'ghs_third', version: 2 });
    expect(github.lastRequest?.path).toBe('/app/installations/78/access_tokens');
  });

  it('oauth2-client-credentials: basic client auth, YAML document, cached by expires_in', async () => {
    oauth.respond = { status: 200, body: JSON.stringify({ access_token: 'at-1', token_type: 'Bearer', expires_in: 3600 }) };
    await vault.sealer.put('oauth', oauthYaml(), 'oauth2-client-credentials');
    expect(await resolver.resolve('oauth', ctx)).toEqual({ kind: 'value', value: 'at-1', version: 1 });
    expect(new URLSearchParams(oauth.lastRequest!.body).get('scope')).toBe('read write');
    expect(oauth.lastRequest!.body).not.toContain(clientSecret);
    await resolver.resolve('oauth', ctx);
    expect(oauth.calls).toBe(1);
    now += 3600_000;
    await resolver.resolve('oauth', ctx);
    expect(oauth.calls).toBe(2);
  });

  it('oauth2-client-credentials: client_secret_post', async () => {
    oauth.respond = { status: 200, body: JSON.stringify({ access_token: 'at-post', token_type: 'bearer', expires_in: 60 }) };
    await vault.sealer.put('oauth', oauthYaml('clientAuth: post\n'), 'oauth2-client-credentials');
    expect(await resolver.resolve('oauth', ctx)).toMatchObject({ value: 'at-post' });
    expect(oauth.lastRequest!.headers.authorization).toBeUndefined();
  });

  it.each([
    ['a refusal', { status: 401, body: '{"error":"invalid_client","error_description":"bad secret"}' }, /OAuth 2.0 token request to https:\/\/auth\.example\.test\/oauth\/token was refused: HTTP 401 \(invalid_client\)/],
    ['a 500', { status: 500, body: 'oops' }, /was refused: HTTP 500$/],
    ['malformed JSON', { status: 200, body: '{"access_token": ' }, /the answer is not a JSON object/],
    ['no access_token', { status: 200, body: '{"token_type":"Bearer"}' }, /no usable "access_token"/],
  ])('fails closed on %s, without the secret in the message', async (_label, respond, message) => {
    oauth.respond = respond;
    await vault.sealer.put('oauth', oauthYaml(), 'oauth2-client-credentials');
    const error = await resolver.resolve('oauth', ctx).then(() => undefined, (e: Error) => e);
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain(clientSecret);
  });

  it('fails closed when the token endpoint is unreachable or its certificate is not trusted', async () => {
    await vault.sealer.put('down', Buffer.from(JSON.stringify({ tokenUrl: 'https://down.example.test/t', clientId: 'a', clientSecret: 'b' })), 'oauth2-client-credentials');
    await expect(resolver.resolve('down', ctx)).rejects.toThrow(/token request to https:\/\/down\.example\.test\/t failed: ECONNREFUSED/);

    const untrusting = createCredentialResolver({
      opener: await vault.opener(),
      http: createTokenHttpClient({ connectTo: [`auth.example.test:443:127.0.0.1:${oauth.port}`] }),
    });
    await vault.sealer.put('oauth', oauthYaml(), 'oauth2-client-credentials');
    await expect(untrusting.resolve('oauth', ctx)).rejects.toThrow(/token request to https:\/\/auth\.example\.test\/oauth\/token failed: .*(certificate|self.signed|issuer)/i);
  });

  it('aws-sigv4: the resolver hands back a signer', async () => {
    await vault.sealer.put('aws', Buffer.from('{"accessKeyId":"AKID","secretAccessKey":"SECRET","region":"us-east-1","service":"sts"}'), 'aws-sigv4');
    const resolved = await resolver.resolve('aws', ctx);
    expect(resolved.kind).toBe('sign');
    if (resolved.kind !== 'sign') return;
    const headers = resolved.sign({ method: 'POST', url: new URL('https://sts.amazonaws.com/'), headers: { host: 'sts.amazonaws.com' }, body: Buffer.from('Action=GetCallerIdentity') });
    expect(headers.Authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/sts\/aws4_request, SignedHeaders=host;x-amz-date, Signature=[0-9a-f]{64}$/);
  });

  it('dynamic documents are validated on write; errors name the field, never the value', async () => {
    const attempt = (doc: string, kind: 'github-app' | 'oauth2-client-credentials' | 'aws-sigv4') =>
      vault.sealer.put('x', Buffer.from(doc), kind).then(() => undefined, (e: Error & { exitCode?: number }) => e);
    const missing = await attempt(`tokenUrl: https://a.test/t\nclientId: id\n`, 'oauth2-client-credentials');
    expect(missing?.exitCode).toBe(2);
    expect(missing?.message).toMatch(/clientSecret/);
    const notHttps = await attempt(`{"tokenUrl":"http://a.test/t","clientId":"i","clientSecret":"${clientSecret}"}`, 'oauth2-client-credentials');
    expect(notHttps?.message).toMatch(/tokenUrl: expected an https:\/\/ URL/);
    expect(notHttps?.message).not.toContain(clientSecret);
    const badPem = await attempt(JSON.stringify({ appId: 1, installationId: 2, privateKey: clientSecret }), 'github-app');
    expect(badPem?.message).toMatch(/privateKey: expected the GitHub App private key in PEM form/);
    expect(badPem?.message).not.toContain(clientSecret);
    const typo = await attempt('{"accessKeyId":"a","secretAccessKey":"b","region":"us-east-1","service":"s3","sesionToken":"x"}', 'aws-sigv4');
    expect(typo?.message).toMatch(/unknown field "sesionToken"/);
    const broken = await attempt(`clientSecret: ${clientSecret}\n  bad: [indent`, 'oauth2-client-credentials');
    expect(broken?.message).toMatch(/not valid JSON or YAML/);
    expect(broken?.message).not.toContain(clientSecret);
  });
});

/**
 * Token fetches go through the same resolve-once SSRF guard as requests: a
 * token URL (or a GitHub App apiUrl) naming loopback, a private or metadata
 * address, or a name that resolves to one, is refused before any connection
 * is made. An explicit connect-to mapping stays allowed (the tests above use one).
 */
describe('token fetches: SSRF guard', () => {
  let listener: NetServer;
  let openPort: number;
  let closedPort: number;
  let connections = 0;
  beforeAll(async () => {
    listener = createNetServer((s) => {
      connections += 1;
      s.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()));
    openPort = (listener.address() as AddressInfo).port;
    const probe = createNetServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    closedPort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
  });
  afterAll(async () => {
    await new Promise<void>((r) => listener.close(() => r()));
  });

  const client = () => createTokenHttpClient({ caPem: ca.certPem });
  const post = (url: string) => client().request({ method: 'POST', url: new URL(url), headers: {}, body: Buffer.alloc(0) }).then(() => undefined, (e: Error & { code?: string }) => e);

  it.each([
    ['loopback, open port', () => `https://127.0.0.1:${openPort}/token`],
    ['loopback, closed port', () => `https://127.0.0.1:${closedPort}/token`],
    ['loopback in decimal', () => `https://2130706433:${openPort}/token`],
    ['127.0.0.2', () => `https://127.0.0.2:${openPort}/token`],
    ['IPv6 loopback', () => `https://[::1]:${openPort}/token`],
    ['IPv4-mapped loopback', () => `https://[::ffff:127.0.0.1]:${openPort}/token`],
    ['a name resolving to loopback', () => `https://localhost:${openPort}/token`],
    ['cloud metadata', () => 'https://169.254.169.254/latest/api/token'],
    ['a private address', () => 'https://10.0.0.1/token'],
  ])('%s: refused before connecting, with the code token_fetch_failed', async (_label, url) => {
    const before = connections;
    const error = await post(url());
    expect(error?.code).toBe('token_fetch_failed');
    expect(error?.message).toMatch(/refused before connecting: .* resolves to a forbidden address/);
    expect(connections).toBe(before);
  });

  it('open and closed loopback ports give the same answer (no port scanning through the token endpoint)', async () => {
    const open = await post(`https://127.0.0.1:${openPort}/t`);
    const closed = await post(`https://127.0.0.1:${closedPort}/t`);
    expect(open?.message.replace(String(openPort), 'PORT')).toBe(closed?.message.replace(String(closedPort), 'PORT'));
    expect(connections).toBe(0);
  });

  it('only https', async () => {
    const error = await post(`http://auth.example.test/oauth/token`);
    expect(error?.message).toMatch(/only https:\/\/ is allowed/);
  });

  it('the resolver fails closed with token_fetch_failed for a GitHub App apiUrl on loopback', async () => {
    const backend = await createTestBackend('sqlite');
    const vault = await createVaultHarness(backend.sibling('vault'));
    try {
      const resolver = createCredentialResolver({ opener: await vault.opener(), http: client() });
      await vault.sealer.put('gh-loop', Buffer.from(JSON.stringify({ appId: 1, installationId: 2, privateKey: appPem, apiUrl: `https://127.0.0.1:${openPort}` })), 'github-app');
      const error = await resolver.resolve('gh-loop', ctx).then(() => undefined, (e: Error & { code?: string }) => e);
      expect(error?.code).toBe('token_fetch_failed');
      expect(error?.message).toMatch(/forbidden address/);
      expect(connections).toBe(0);
    } finally {
      await vault.close();
      await backend.cleanup();
    }
  });
});
