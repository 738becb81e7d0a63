import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/events.js';
import type { GithubEvent } from '../../src/proxy/github-event.js';
import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { createFakeGitHub, type FakeGitHub, type FakeGitHubRequest } from '../fixtures/fake-github.js';
import { policyOf, sleep, startHarness, type Harness } from './harness.js';

/**
 * Attacks on the GitHub App connection, at the Agent Proxy alone: real
 * sockets, a real vault holding a `github-app` secret, the fake GitHub (git
 * http-backend and the REST side) as the upstream via connect-to. The client
 * holds no token: real git through HTTPS_PROXY, and crafted receive-pack
 * bodies over CONNECT + TLS. A push is judged before a byte of it goes
 * upstream; a refused one never reaches GitHub and leaves its refs alone.
 */
const SESSION = 'thread-7';
const ZERO = '0'.repeat(40);
const BUNDLES = (pushBranches = 'tagbox/*') => `
bundles:
  - name: gh-bundle
    connections:
      - name: gh
        secret: gh-app
        github:
          repositories: [acme/widgets]
          pushBranches: "${pushBranches}"
`;

let ca: TestCa;
let fake: FakeGitHub;
let h: Harness;
let mainOid: string;
let work: string;
const githubEvents: GithubEvent[] = [];

beforeAll(async () => {
  ca = await createTestCa('Fake GitHub CA');
  fake = await createFakeGitHub({ ca });
  mainOid = await fake.createRepo('acme', 'widgets', { 'README.md': '# widgets\n' });
  await fake.createRepo('acme', 'other', { 'README.md': '# other\n' });
  const connectTo = fake.connectTo.split(',');
  h = await startHarness({
    bundles: BUNDLES(),
    upstreamCa: ca,
    connectTo,
    tokenHttp: { connectTo, caPem: ca.certPem },
    session: SESSION,
    onGithub: (e) => githubEvents.push(e),
  });
  await h.vault!.sealer.put('gh-app', Buffer.from(fake.credentialDocument), 'github-app');
  work = mkdtempSync(join(h.dir, 'git-'));
}, 60_000);

afterAll(async () => {
  await h?.close();
  await fake?.close();
});

// ---------------------------------------------------------------- helpers

function basicOf(token: string): string {
  return `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}`;
}

function pkt(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  return Buffer.concat([Buffer.from((body.length + 4).toString(16).padStart(4, '0')), body]);
}
const FLUSH = Buffer.from('0000');

/** A pack with no objects: what a push creating a branch at an existing commit carries. */
const EMPTY_PACK = (() => {
  const head = Buffer.concat([Buffer.from('PACK'), Buffer.from([0, 0, 0, 2, 0, 0, 0, 0])]);
  return Buffer.concat([head, createHash('sha1').update(head).digest()]);
})();

/** A receive-pack request body: the commands (the first with capabilities), a flush, a pack. */
function pushBody(commands: Array<[old: string, nu: string, ref: string]>, caps = 'report-status'): Buffer {
  const lines = commands.map(([o, n, r], i) => pkt(`${o} ${n} ${r}${i === 0 ? `\0${caps}` : ''}\n`));
  return Buffer.concat([...lines, FLUSH, EMPTY_PACK]);
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
}

/**
 * One request over CONNECT + TLS (trusting the deployment CA), Connection:
 * close; the body as given pieces, each written on its own after `delayMs`.
 */
function viaTunnel(host: string, head: string, pieces: Buffer[] = [], delayMs = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: h.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${host} within 20 s`));
    }, 20_000);
    socket.once('error', reject);
    let connectAnswer = Buffer.alloc(0);
    const onConnect = (c: Buffer) => {
      connectAnswer = Buffer.concat([connectAnswer, c]);
      if (connectAnswer.indexOf('\r\n\r\n') === -1) return;
      socket.off('data', onConnect);
      if (!connectAnswer.toString('latin1').startsWith('HTTP/1.1 200')) return reject(new Error(`CONNECT: ${connectAnswer.toString('latin1')}`));
      const tls = tlsConnect({ socket, servername: host, ca: h.deployCa.certPem, ALPNProtocols: ['http/1.1'] });
      const chunks: Buffer[] = [];
      tls.on('data', (d: Buffer) => chunks.push(d));
      tls.on('error', () => undefined);
      tls.on('close', () => {
        clearTimeout(timer);
        resolve(parseAnswer(Buffer.concat(chunks)));
      });
      tls.once('secureConnect', async () => {
        tls.write(head.replace(/\n/g, '\r\n').replace(/\r\r/g, '\r'));
        for (const piece of pieces) {
          if (delayMs > 0) await sleep(delayMs);
          if (tls.destroyed) return;
          tls.write(piece);
        }
      });
    };
    socket.on('data', onConnect);
    socket.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  });
}

function parseAnswer(raw: Buffer): Answer {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return { status: 0, headers: {}, body: raw, text: raw.toString('latin1') };
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0]!)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(end + 4);
  if (headers['transfer-encoding']?.includes('chunked')) body = dechunk(body);
  return { status, headers, body, text: body.toString('latin1') };
}

function dechunk(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (!size) break;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** A crafted push to github.com at `path` (Content-Length, or the given transfer headers). */
function craftedPush(path: string, body: Buffer, extraHeaders = '', pieces?: Buffer[], delayMs = 0): Promise<Answer> {
  const framing = pieces ? 'Transfer-Encoding: chunked\n' : `Content-Length: ${body.length}\n`;
  return viaTunnel(
    'github.com',
    `POST ${path} HTTP/1.1\nHost: github.com\nContent-Type: application/x-git-receive-pack-request\nAccept: application/x-git-receive-pack-result\n${extraHeaders}${framing}Connection: close\n\n`,
    pieces ?? [body],
    delayMs,
  );
}

/** `body` as chunked transfer-encoding, `size` bytes per chunk, each chunk its own write. */
function chunked(body: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const part = body.subarray(i, i + size);
    out.push(Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]));
  }
  out.push(Buffer.from('0\r\n\r\n'));
  return out;
}

function restRequest(method: string, path: string, json?: unknown): Promise<Answer> {
  const body = json === undefined ? '' : JSON.stringify(json);
  return viaTunnel(
    'api.github.com',
    `${method} ${path} HTTP/1.1\nHost: api.github.com\nAccept: application/vnd.github+json\nUser-Agent: attack\n${body ? 'Content-Type: application/json\n' : ''}Content-Length: ${Buffer.byteLength(body)}\nConnection: close\n\n`,
    body ? [Buffer.from(body)] : [],
  );
}

function runGit(args: string[], cwd = work): Promise<{ code: number; stdout: string; stderr: string }> {
  // No token, no credential helper, no user configuration: only what the proxy adds.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: h.dir,
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    HTTPS_PROXY: h.proxyUrl,
    https_proxy: h.proxyUrl,
    GIT_SSL_CAINFO: h.deployCaFile,
    GIT_AUTHOR_NAME: 'Agent',
    GIT_AUTHOR_EMAIL: 'agent@tagbox.invalid',
    GIT_COMMITTER_NAME: 'Agent',
    GIT_COMMITTER_EMAIL: 'agent@tagbox.invalid',
  };
  return new Promise((resolve) => {
    execFile('git', args, { cwd, env, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const repoDir = () => join(work, 'w');

function requestsSince(n: number): FakeGitHubRequest[] {
  return fake.requests.slice(n);
}

function receivePacks(requests: FakeGitHubRequest[]): FakeGitHubRequest[] {
  return requests.filter((r) => r.method === 'POST' && r.path.includes('git-receive-pack'));
}

type PushFacts = { kind: 'push'; repository: string; refusedBy?: string; refs: Array<{ ref: string; action: string; ok: boolean; reason?: string }> };
const factsOf = (e: AuditEvent | undefined) => e?.github as PushFacts | undefined;

/** The single egress event of a receive-pack POST after `mark`. */
async function pushEvent(mark: number): Promise<AuditEvent> {
  const events = (await h.egressSince(mark, 1)).filter((e) => String(e.path).includes('git-receive-pack'));
  expect(events).toHaveLength(1);
  return events[0]!;
}

/** A push refused by Tagbox, as the audit records it. */
function expectRefusedEvent(e: AuditEvent, refs: string[]): void {
  expect(e).toMatchObject({ type: 'egress', outcome: 'blocked', status: 403, connection: 'gh', session: SESSION, github: { kind: 'push', repository: 'acme/widgets', refusedBy: 'tagbox' } });
  expect(factsOf(e)!.refs.map((r) => `${r.action} ${r.ref}`)).toEqual(refs);
  for (const r of factsOf(e)!.refs) expect(r.ok).toBe(false);
}

/** Asserts a crafted push was answered by Tagbox, not forwarded, and changed nothing. */
async function expectUnforwarded(before: Record<string, string>, seen: number, answer: Answer): Promise<void> {
  expect(answer.status).toBe(200);
  expect(answer.headers['x-tagbox-decision']).toBe('blocked');
  expect(answer.headers['content-type']).toBe('application/x-git-receive-pack-result');
  expect(receivePacks(requestsSince(seen))).toEqual([]);
  expect(await fake.refs('acme', 'widgets')).toEqual(before);
}

// ---------------------------------------------------------------- tests

describe('the token cache', () => {
  it('two requests mint one token, narrowed to the repository names', async () => {
    const seen = fake.requests.length;
    const a = await restRequest('GET', '/repos/acme/widgets/pulls/99');
    const b = await restRequest('GET', '/repos/acme/widgets/pulls/98');
    expect([a.status, b.status]).toEqual([404, 404]);
    expect(fake.mints).toHaveLength(1);
    expect(fake.mints[0]!.repositories).toEqual(['widgets']);
    const token = fake.mints[0]!.token;
    const reads = requestsSince(seen).filter((r) => r.path.startsWith('/repos/'));
    expect(reads.map((r) => r.authorization)).toEqual([`Bearer ${token}`, `Bearer ${token}`]);
  });
});

describe('real git through the proxy, no credential on the client', () => {
  it('clone, then push of tagbox/x: lands; the fake saw x-access-token:<the minted token> on every git request', async () => {
    const seen = fake.requests.length;
    const clone = await runGit(['clone', '-q', 'https://github.com/acme/widgets.git', 'w']);
    expect(clone.stderr).toBe('');
    expect(clone.code).toBe(0);
    await runGit(['commit', '-q', '--allow-empty', '-m', 'agent work'], repoDir());
    const mark = await h.mark();
    const push = await runGit(['push', 'origin', 'HEAD:refs/heads/tagbox/x'], repoDir());
    expect(push.code, push.stderr).toBe(0);
    const refs = await fake.refs('acme', 'widgets');
    expect(refs['refs/heads/tagbox/x']).toMatch(/^[0-9a-f]{40}$/);
    expect(refs['refs/heads/main']).toBe(mainOid);

    const gitCalls = requestsSince(seen).filter((r) => r.host === 'github.com');
    expect(gitCalls.length).toBeGreaterThanOrEqual(4);
    expect(new Set(gitCalls.map((r) => r.authorization))).toEqual(new Set([basicOf(fake.mints[0]!.token)]));

    const e = await pushEvent(mark);
    expect(e).toMatchObject({ outcome: 'credential', status: 200, connection: 'gh', github: { kind: 'push', repository: 'acme/widgets' } });
    expect(factsOf(e)!.refusedBy).toBeUndefined();
    expect(factsOf(e)!.refs).toEqual([expect.objectContaining({ ref: 'refs/heads/tagbox/x', action: 'create', ok: true })]);
    expect(githubEvents.filter((g) => g.kind === 'push')).toEqual([
      expect.objectContaining({ session: SESSION, kind: 'push', repository: 'acme/widgets', refs: [expect.objectContaining({ ref: 'refs/heads/tagbox/x', ok: true })] }),
    ]);
  });

  it('a push to main is refused with git\'s "! [remote rejected]" line and the reason; nothing reaches GitHub', async () => {
    await runGit(['commit', '-q', '--allow-empty', '-m', 'to main'], repoDir());
    const before = await fake.refs('acme', 'widgets');
    const seen = fake.requests.length;
    const told = githubEvents.length;
    const mark = await h.mark();
    const push = await runGit(['push', 'origin', 'HEAD:main'], repoDir());
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('! [remote rejected] HEAD -> main (Tagbox lets the agent push only to branches matching tagbox/*)');
    expect(push.stderr).toContain('remote: Tagbox refused this push');
    await expectUnforwardedRefs(before, seen);
    expectRefusedEvent(await pushEvent(mark), ['update refs/heads/main']);
    expect(githubEvents.length).toBe(told);
  });

  it('a branch deletion is refused', async () => {
    const before = await fake.refs('acme', 'widgets');
    const seen = fake.requests.length;
    const mark = await h.mark();
    const push = await runGit(['push', 'origin', ':refs/heads/tagbox/x'], repoDir());
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('! [remote rejected] tagbox/x (Tagbox does not let the agent delete branches)');
    await expectUnforwardedRefs(before, seen);
    expectRefusedEvent(await pushEvent(mark), ['delete refs/heads/tagbox/x']);
  });

  it('a tag is refused', async () => {
    const before = await fake.refs('acme', 'widgets');
    const seen = fake.requests.length;
    const mark = await h.mark();
    const push = await runGit(['push', 'origin', 'HEAD:refs/tags/v1'], repoDir());
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('! [remote rejected] HEAD -> v1 (Tagbox lets the agent push branches only (tagbox/*), not refs/tags/v1)');
    await expectUnforwardedRefs(before, seen);
    expectRefusedEvent(await pushEvent(mark), ['create refs/tags/v1']);
  });

  it('a push of two refs (tagbox/ok and main) is refused whole: tagbox/ok is not created', async () => {
    const before = await fake.refs('acme', 'widgets');
    const seen = fake.requests.length;
    const mark = await h.mark();
    const push = await runGit(['push', 'origin', 'HEAD:refs/heads/tagbox/ok', 'HEAD:refs/heads/main'], repoDir());
    expect(push.code).not.toBe(0);
    expect(push.stderr).toContain('! [remote rejected] HEAD -> main (Tagbox lets the agent push only to branches matching tagbox/*)');
    expect(push.stderr).toContain('! [remote rejected] HEAD -> tagbox/ok (not pushed: another ref in this push was refused)');
    await expectUnforwardedRefs(before, seen);
    expect((await fake.refs('acme', 'widgets'))['refs/heads/tagbox/ok']).toBeUndefined();
    const e = await pushEvent(mark);
    expectRefusedEvent(e, ['update refs/heads/main', 'create refs/heads/tagbox/ok']);
    expect(factsOf(e)!.refs.find((r) => r.ref === 'refs/heads/tagbox/ok')!.reason).toBe('not pushed: another ref in this push was refused');
  });

  it('with pushBranches "tagbox/{thread}", only the listener\'s own thread branch may be pushed', async () => {
    h.listener.setPolicy(policyOf(BUNDLES('tagbox/{thread}')));
    try {
      const before = await fake.refs('acme', 'widgets');
      const other = await runGit(['push', 'origin', 'HEAD:refs/heads/tagbox/thread-8'], repoDir());
      expect(other.stderr).toContain(`! [remote rejected] HEAD -> tagbox/thread-8 (Tagbox lets the agent push only to branches matching tagbox/${SESSION})`);
      expect(await fake.refs('acme', 'widgets')).toEqual(before);
      const own = await runGit(['push', 'origin', `HEAD:refs/heads/tagbox/${SESSION}`], repoDir());
      expect(own.code, own.stderr).toBe(0);
      expect((await fake.refs('acme', 'widgets'))[`refs/heads/tagbox/${SESSION}`]).toMatch(/^[0-9a-f]{40}$/);
    } finally {
      h.listener.setPolicy(policyOf(BUNDLES()));
    }
  });
});

async function expectUnforwardedRefs(before: Record<string, string>, seen: number): Promise<void> {
  expect(receivePacks(requestsSince(seen))).toEqual([]);
  expect(await fake.refs('acme', 'widgets')).toEqual(before);
}

describe('crafted receive-pack bodies', () => {
  const GIT = '/acme/widgets.git/git-receive-pack';
  const toMain = () => pushBody([[mainOid, 'b'.repeat(40), 'refs/heads/main']]);

  /** Sends `body`, expects Tagbox's refusal naming `why`, nothing forwarded, one blocked audit event. */
  async function expectRefused(body: Buffer, why: string | RegExp, options: { headers?: string; pieces?: Buffer[]; refs?: string[] } = {}): Promise<Answer> {
    const before = await fake.refs('acme', 'widgets');
    const seen = fake.requests.length;
    const mark = await h.mark();
    const answer = await craftedPush(GIT, body, options.headers, options.pieces);
    await expectUnforwarded(before, seen, answer);
    if (typeof why === 'string') expect(answer.text).toContain(why);
    else expect(answer.text).toMatch(why);
    const e = await pushEvent(mark);
    expectRefusedEvent(e, options.refs ?? []);
    expect(e.reason).toMatch(/^push refused: /);
    return answer;
  }

  it('Content-Encoding: gzip is refused, not forwarded (a compressed body\'s commands cannot be read)', async () => {
    const body = gzipSync(pushBody([[ZERO, mainOid, 'refs/heads/tagbox/gz']]));
    const answer = await expectRefused(body, "Tagbox reads a push's ref updates and cannot read a gzip-encoded one", { headers: 'Content-Encoding: gzip\n' });
    // Without refs to name, git prints the unpack line's reason.
    expect(answer.text).toMatch(/^[0-9a-f]{4}unpack Tagbox reads/);
    expect((await fake.refs('acme', 'widgets'))['refs/heads/tagbox/gz']).toBeUndefined();
  });

  it('other encodings, a duplicated Content-Encoding and an empty one are refused too', async () => {
    const body = pushBody([[ZERO, mainOid, 'refs/heads/tagbox/enc']]);
    for (const headers of ['Content-Encoding: deflate\n', 'Content-Encoding: identity\nContent-Encoding: gzip\n', 'Content-Encoding: x-gzip\n']) {
      await expectRefused(body, /cannot read a .*-encoded one/, { headers });
    }
    expect((await fake.refs('acme', 'widgets'))['refs/heads/tagbox/enc']).toBeUndefined();
  });

  it('a push certificate (signed push) is refused', async () => {
    const cert = Buffer.concat([pkt('push-cert\0report-status push-cert=x\n'), pkt('certificate version 0.1\n'), pkt(`${ZERO} ${mainOid} refs/heads/tagbox/signed\n`), pkt('push-cert-end\n'), FLUSH, EMPTY_PACK]);
    await expectRefused(cert, 'signed pushes (push certificates) are not supported through Tagbox');
  });

  for (const [name, bad, why] of [
    ['not hex', Buffer.from('zzzz'), 'a pkt-line length is not four hex digits'],
    ['0003 (below the header)', Buffer.from('0003abc'), 'a pkt-line length of 3 is out of range'],
    ['fff1 (above 65520)', Buffer.from('fff1'), 'a pkt-line length of 65521 is out of range'],
    ['a delimiter 0001', Buffer.from('0001'), 'unexpected delimiter in the ref-update commands'],
    ['an empty data packet 0004', Buffer.from('0004'), 'a ref-update command is not "<old-oid> <new-oid> <ref>"'],
  ] as const) {
    it(`invalid pkt-line: ${name}`, async () => {
      await expectRefused(Buffer.concat([bad, toMain()]), why);
    });
  }

  it('a valid command after an invalid length is not reached: refused whole', async () => {
    const body = Buffer.concat([pkt(`${ZERO} ${mainOid} refs/heads/tagbox/a\0report-status\n`), Buffer.from('00zz'), FLUSH, EMPTY_PACK]);
    await expectRefused(body, 'a pkt-line length is not four hex digits');
    expect((await fake.refs('acme', 'widgets'))['refs/heads/tagbox/a']).toBeUndefined();
  });

  it('commands in 1-byte chunks (chunked transfer-encoding) are still judged: main refused', async () => {
    const body = toMain();
    const before = await fake.refs('acme', 'widgets');
    const seen = fake.requests.length;
    const mark = await h.mark();
    const answer = await craftedPush(GIT, body, '', chunked(body, 1), 1);
    await expectUnforwarded(before, seen, answer);
    expect(answer.text).toContain('ng refs/heads/main Tagbox lets the agent push only to branches matching tagbox/*');
    expectRefusedEvent(await pushEvent(mark), ['update refs/heads/main']);
  });

  it('commands in 1-byte chunks: tagbox/chunked is allowed, forwarded whole, and lands', async () => {
    const body = pushBody([[ZERO, mainOid, 'refs/heads/tagbox/chunked']]);
    const seen = fake.requests.length;
    const mark = await h.mark();
    const answer = await craftedPush(GIT, body, '', chunked(body, 1), 1);
    expect(answer.status).toBe(200);
    expect(answer.headers['x-tagbox-decision']).toBeUndefined();
    expect(answer.text).toContain('ok refs/heads/tagbox/chunked');
    expect(receivePacks(requestsSince(seen))).toHaveLength(1);
    expect((await fake.refs('acme', 'widgets'))['refs/heads/tagbox/chunked']).toBe(mainOid);
    const e = await pushEvent(mark);
    expect(e).toMatchObject({ outcome: 'credential', status: 200 });
    expect(factsOf(e)!.refs).toEqual([expect.objectContaining({ ref: 'refs/heads/tagbox/chunked', action: 'create', ok: true })]);
  });

  it('a command section over 1 MiB (1.25 MiB of shallow lines before the commands) is refused', async () => {
    // The limit is checked per read: a flush within the read that crosses 1 MiB is still parsed and judged (that is safe);
    // 256 KiB past it is beyond any one read.
    const shallow = pkt(`shallow ${'a'.repeat(40)}\n`);
    const body = Buffer.concat([...Array<Buffer>(Math.ceil((1.25 * 1024 * 1024) / shallow.length)).fill(shallow), toMain()]);
    await expectRefused(body, "Tagbox could not read this push's ref updates: more than 1048576 bytes of them");
  });

  it('a body that ends before the flush is refused', async () => {
    const body = pkt(`${ZERO} ${mainOid} refs/heads/tagbox/short\0report-status\n`);
    await expectRefused(body, "Tagbox could not read this push's ref updates: the request ended before them");
    await expectRefused(Buffer.from('00'), 'the request ended before them');
    expect((await fake.refs('acme', 'widgets'))['refs/heads/tagbox/short']).toBeUndefined();
  });

  it('oids of mixed length (sha1 old, sha256 new) are refused', async () => {
    const body = pushBody([[mainOid, 'c'.repeat(64), 'refs/heads/tagbox/mixed']]);
    await expectRefused(body, 'a ref-update command is not "<old-oid> <new-oid> <ref>"');
  });

  it('upper-case oids, a ref with a NUL or a space, and a second capability list are refused', async () => {
    for (const body of [
      pushBody([[ZERO, mainOid.toUpperCase(), 'refs/heads/tagbox/up']]),
      Buffer.concat([pkt(`${ZERO} ${mainOid} refs/heads/tagbox/a\0report-status\n`), pkt(`${ZERO} ${mainOid} refs/heads/main\0report-status\n`), FLUSH, EMPTY_PACK]),
      pushBody([[ZERO, mainOid, 'refs/heads/tagbox/a b']]),
      Buffer.concat([pkt(`${ZERO} ${mainOid} refs/heads/tagbox/a\0report-status\n`), pkt(`shallow ${mainOid}\n`), FLUSH, EMPTY_PACK]),
    ]) {
      await expectRefused(body, /could not read this push's ref updates/);
    }
  });
});

describe('path variants on github.com', () => {
  const toMain = () => pushBody([[mainOid, 'b'.repeat(40), 'refs/heads/main']]);

  for (const path of ['/acme/widgets/git-receive-pack', '/acme/widgets.git/git-receive-pack', '/acme/WIDGETS.git/git-receive-pack', '/ACME/widgets/git-receive-pack', '/acme/x/../widgets.git/git-receive-pack', '/acme/widgets.git/./git-receive-pack', '/acme/widgets.git/git-receive-pack?x=1']) {
    it(`${path}: judged (main refused, not forwarded)`, async () => {
      const before = await fake.refs('acme', 'widgets');
      const seen = fake.requests.length;
      const mark = await h.mark();
      const answer = await craftedPush(path, toMain());
      await expectUnforwarded(before, seen, answer);
      expect(answer.text).toContain('ng refs/heads/main Tagbox lets the agent push only to branches matching tagbox/*');
      const e = await pushEvent(mark);
      expect(e).toMatchObject({ outcome: 'blocked', status: 403, github: { refusedBy: 'tagbox', repository: 'acme/widgets' } });
    });
  }

  /** A request that must get no credential: forwarded bare, the fake sees no Authorization. */
  async function expectBare(host: string, head: string, body: Buffer[] = []): Promise<FakeGitHubRequest[]> {
    const seen = fake.requests.length;
    const mark = await h.mark();
    const before = await fake.refs('acme', 'widgets');
    await viaTunnel(host, head, body);
    const got = requestsSince(seen).filter((r) => r.host === host);
    expect(got).toHaveLength(1);
    expect(got[0]!.authorization).toBeUndefined();
    const [e] = await h.egressSince(mark, 1);
    expect(e!.outcome).not.toBe('credential');
    expect(e!.github).toBeUndefined();
    expect(await fake.refs('acme', 'widgets')).toEqual(before);
    return got;
  }

  const pushHead = (path: string, length: number) => `POST ${path} HTTP/1.1\nHost: github.com\nContent-Type: application/x-git-receive-pack-request\nContent-Length: ${length}\nConnection: close\n\n`;

  for (const path of ['/acme%2Fwidgets.git/git-receive-pack', '/acme/widgets.git%2Fgit-receive-pack', '/acme/other.git/git-receive-pack', '/acme/widgets.git/git-receive-pack/', '/acme/widgets.git//git-receive-pack', '/acme/widgets.git/GIT-RECEIVE-PACK']) {
    it(`${path}: no credential`, async () => {
      const body = toMain();
      await expectBare('github.com', pushHead(path, body.length), [body]);
    });
  }

  it('git services outside repositories get no credential (info/refs of acme/other)', async () => {
    await expectBare('github.com', 'GET /acme/other.git/info/refs?service=git-upload-pack HTTP/1.1\nHost: github.com\nConnection: close\n\n');
  });

  it('a non-git path on github.com (GET /acme/widgets) gets no credential', async () => {
    await expectBare('github.com', 'GET /acme/widgets HTTP/1.1\nHost: github.com\nConnection: close\n\n');
  });

  it('GET on git-receive-pack (not the service\'s method) gets no credential', async () => {
    await expectBare('github.com', 'GET /acme/widgets.git/git-receive-pack HTTP/1.1\nHost: github.com\nConnection: close\n\n');
  });

  it('api.github.com /graphql gets no credential when repositories are set', async () => {
    const q = Buffer.from(JSON.stringify({ query: '{ viewer { login } }' }));
    await expectBare('api.github.com', `POST /graphql HTTP/1.1\nHost: api.github.com\nContent-Type: application/json\nContent-Length: ${q.length}\nConnection: close\n\n`, [q]);
  });

  it('api.github.com /repos/acme/other/... gets no credential', async () => {
    await expectBare('api.github.com', 'GET /repos/acme/other/pulls/1 HTTP/1.1\nHost: api.github.com\nConnection: close\n\n');
  });

  it('/repos/acme/widgets/pulls gets the Bearer token', async () => {
    const seen = fake.requests.length;
    await restRequest('GET', '/repos/acme/widgets/pulls');
    const [got] = requestsSince(seen).filter((r) => r.host === 'api.github.com');
    expect(got).toMatchObject({ method: 'GET', path: '/repos/acme/widgets/pulls', authorization: `Bearer ${fake.mints[0]!.token}` });
  });
});

describe('upgrades', () => {
  for (const [host, path] of [
    ['github.com', '/acme/widgets.git/info/refs?service=git-receive-pack'],
    ['api.github.com', '/repos/acme/widgets/pulls'],
  ] as const) {
    it(`Connection: Upgrade (websocket) to ${host}${path} is refused 403; the fake sees nothing`, async () => {
      const seen = fake.requests.length;
      const mark = await h.mark();
      const answer = await viaTunnel(
        host,
        `GET ${path} HTTP/1.1\nHost: ${host}\nConnection: Upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n\n`,
      );
      expect(answer.status).toBe(403);
      expect(answer.text).toContain('is reached with a GitHub App token: upgrades are refused');
      await sleep(100);
      expect(requestsSince(seen)).toEqual([]);
      const [e] = await h.egressSince(mark, 1);
      expect(e).toMatchObject({ outcome: 'blocked', status: 403, host });
    });
  }
});

describe('pull requests', () => {
  it('a 201 from POST /repos/acme/widgets/pulls yields the audit event\'s github {kind: pull-request, number, url} and tells the session', async () => {
    const mark = await h.mark();
    const told = githubEvents.length;
    const answer = await restRequest('POST', '/repos/acme/widgets/pulls', { title: 'Agent work', head: 'tagbox/x', base: 'main' });
    expect(answer.status).toBe(201);
    expect(fake.pulls).toHaveLength(1);
    const [e] = await h.egressSince(mark, 1);
    expect(e).toMatchObject({ outcome: 'credential', status: 201, path: '/repos/acme/widgets/pulls' });
    expect(e!.github).toEqual({ kind: 'pull-request', repository: 'acme/widgets', number: 1, url: 'https://github.com/acme/widgets/pull/1', title: 'Agent work', head: 'tagbox/x', base: 'main' });
    expect(githubEvents.slice(told)).toEqual([expect.objectContaining({ session: SESSION, kind: 'pull-request', number: 1, url: 'https://github.com/acme/widgets/pull/1' })]);
  });

  it('a creation that fails (422, head branch missing) yields none', async () => {
    const mark = await h.mark();
    const told = githubEvents.length;
    const answer = await restRequest('POST', '/repos/acme/widgets/pulls', { title: 'Nope', head: 'tagbox/missing', base: 'main' });
    expect(answer.status).toBe(422);
    const [e] = await h.egressSince(mark, 1);
    expect(e).toMatchObject({ outcome: 'credential', status: 422 });
    expect(e!.github).toBeUndefined();
    expect(githubEvents.length).toBe(told);
  });

  it('a GET of a pull does not count', async () => {
    const mark = await h.mark();
    const told = githubEvents.length;
    const answer = await restRequest('GET', '/repos/acme/widgets/pulls/1');
    expect(answer.status).toBe(200);
    const [e] = await h.egressSince(mark, 1);
    expect(e).toMatchObject({ outcome: 'credential', status: 200 });
    expect(e!.github).toBeUndefined();
    expect(githubEvents.length).toBe(told);
  });

  it('all of the above used the one token minted first', () => {
    expect(fake.mints).toHaveLength(1);
    expect(fake.mints[0]!.repositories).toEqual(['widgets']);
  });
});

/**
 * Found by these attacks; both fail until src/ is fixed. (1) pushBranches
 * guards git pushes only: the same installation token (contents: write by
 * default) is injected into REST writes of refs, contents and merges, so
 * main can be moved without a push. (2) inspectPush (github-traffic.ts)
 * concatenates everything read so far and re-parses it from byte 0 on every
 * read: a command section trickled in small pieces costs the shared proxy
 * event loop ~13 ms per 53-byte read near the 1 MiB cap.
 */
describe('the REST API: branches move only by git push', () => {
  it('ref writes, contents writes, merges and GraphQL are refused at the proxy with the reason; the fake GitHub sees none of them', async () => {
    const writes: Array<[string, string, unknown]> = [
      ['PATCH', '/repos/acme/widgets/git/refs/heads/main', { sha: mainOid, force: true }],
      ['DELETE', '/repos/acme/widgets/git/refs/heads/tagbox/x', undefined],
      ['POST', '/repos/acme/widgets/git/refs', { ref: 'refs/tags/v1', sha: mainOid }],
      ['PUT', '/repos/acme/widgets/contents/README.md', { message: 'x', content: Buffer.from('x').toString('base64'), branch: 'main' }],
      ['PUT', '/repos/acme/widgets/pulls/1/merge', { merge_method: 'squash' }],
      ['POST', '/repos/acme/widgets/merges', { base: 'main', head: 'tagbox/x' }],
      ['POST', '/repos/acme/widgets/pulls/1/reviews', { event: 'APPROVE' }],
      ['PUT', '/repos/acme/widgets/branches/main/protection', {}],
    ];
    const reached: string[] = [];
    for (const [method, path, json] of writes) {
      const seen = fake.requests.length;
      const answer = await restRequest(method, path, json);
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect(answer.headers['x-tagbox-decision']).toBe('blocked');
      expect(answer.text).toContain('branches and tags change only by git push');
      for (const r of requestsSince(seen)) reached.push(`${r.method} ${r.path}`);
    }
    expect(reached).toEqual([]);
  });

  it('the writes a pull request needs still carry the token: create, edit, comment', async () => {
    const seen = fake.requests.length;
    await restRequest('PATCH', '/repos/acme/widgets/pulls/1', { title: 'edited' });
    await restRequest('POST', '/repos/acme/widgets/issues/1/comments', { body: 'a comment' });
    const sent = requestsSince(seen);
    expect(sent.map((r) => `${r.method} ${r.path} ${r.authorization === `Bearer ${fake.mints[0]!.token}`}`)).toEqual([
      'PATCH /repos/acme/widgets/pulls/1 true',
      'POST /repos/acme/widgets/issues/1/comments true',
    ]);
  });

  it('a command section trickled in small reads is judged like one sent whole', async () => {
    const shallow = pkt(`shallow ${'a'.repeat(40)}\n`);
    const prefix = Buffer.concat(Array<Buffer>(Math.floor((960 * 1024) / shallow.length)).fill(shallow));
    const frame = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const pieces = [frame(prefix), ...Array<Buffer>(300).fill(frame(shallow)), frame(pushBody([[mainOid, 'b'.repeat(40), 'refs/heads/main']])), Buffer.from('0\r\n\r\n')];
    const before = await fake.refs('acme', 'widgets');
    const answer = await craftedPush('/acme/widgets.git/git-receive-pack', Buffer.alloc(0), '', pieces, 1);
    expect(answer.text).toContain('ng refs/heads/main Tagbox lets the agent push only to branches matching tagbox/*');
    expect(await fake.refs('acme', 'widgets')).toEqual(before);
  }, 30_000);
});
