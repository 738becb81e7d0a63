/**
 * npm run bench:github — what the Agent Proxy costs a real `git` talking to GitHub, against the same git talking
 * to the same (fake) GitHub directly, measured in one run on loopback. The fake (test/fixtures/fake-github.ts:
 * Debian's git http-backend behind HTTPS) runs in this process; the proxy is the whole `tagbox proxy` process
 * (`node bin/tagbox.js proxy`, fresh TAGBOX_HOME, the GitHub App secret stored with `tagbox secret set --kind
 * github-app`), so its figures include the vault, the audit log and its own event loop.
 *   direct  git with the token given by the client: an installation token minted here (fetchInstallationToken,
 *           narrowed as the bundle narrows the proxy's), `-c http.extraHeader=Authorization: Basic …`,
 *           `-c http.curloptResolve=github.com:P:127.0.0.1`, https://github.com:P/acme/widgets.git, the test CA.
 *   proxy   git with no credential at all, HTTPS_PROXY to `tagbox proxy`, https://github.com/acme/widgets.git,
 *           the deployment CA (`tagbox ca cert`); the proxy mints the token and injects it.
 * Operations, timed from spawning git to its exit, BENCH_GITHUB_N times each (default 10), direct then proxy pair
 * by pair, after one unmeasured warm-up of each: clone (200 files, 2 MiB of base64 text); push of a new branch
 * holding one new commit with a 1 MiB random file (the commit made untimed; tagbox/bench-<i>-direct and
 * tagbox/bench-<i>-proxy, so every push creates its branch); ls-remote. Then a push to main through the proxy,
 * refused by its push policy, timed to git's exit (no baseline: the fake GitHub itself would accept it).
 * Prints p50/p90/max per side, the ratio proxy/direct of p50s and the overhead in ms. Every git is real and
 * separate: no connection is reused between operations. Fails (exit 1) only when something is broken.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseCredentialDocument } from '../src/vault/kinds.js';
import { fetchInstallationToken } from '../src/vault/private/github-app.js';
import { createTokenHttpClient } from '../src/vault/private/token-http.js';
import { createTestCa } from '../test/fixtures/ca.js';
import { listeningPort } from '../test/helpers/cli.js';
import { createFakeGitHub, type FakeGitHub } from '../test/fixtures/fake-github.js';
import { stats } from './stats.js';
import { cleanEnv, REPO_ROOT, TAGBOX_BIN } from './tagbox-up.js';

const N = (() => {
  const raw = process.env.BENCH_GITHUB_N;
  if (raw === undefined) return 10;
  if (!/^[1-9]\d{0,3}$/.test(raw)) {
    console.error(`bench:github: BENCH_GITHUB_N: expected a whole number from 1 to 9999, got "${raw}"`);
    process.exit(2);
  }
  return Number(raw);
})();

const FILES = 200;
const FILE_BYTES = 10 * 1024;
const PUSH_BYTES = 1024 * 1024;
const GIT_TIMEOUT_MS = 120_000;
// The bundle's narrowing; the direct token is minted with the same, so both sides carry alike tokens.
const REPOSITORIES = ['acme/widgets'];
const PERMISSIONS = { contents: 'write', pull_requests: 'write' };
const BUNDLES = `bundles:
  - name: github
    connections:
      - name: acme-github
        secret: gh-app
        github:
          repositories: [${REPOSITORIES.join(', ')}]
          permissions: { contents: write, pull_requests: write }
`;

const dir = mkdtempSync(join(tmpdir(), 'tagbox-bench-github-'));
let proxyChild: ChildProcess | undefined;
let proxyStderr = '';
let fake: FakeGitHub | undefined;
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    if (proxyChild && proxyChild.exitCode === null && proxyChild.signalCode === null) {
      const exited = new Promise<void>((resolve) => proxyChild!.once('exit', () => resolve()));
      proxyChild.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (proxyChild.exitCode === null && proxyChild.signalCode === null) proxyChild.kill('SIGKILL');
    }
    await fake?.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  })());
process.stdout.on('error', () => undefined);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (cleaning) return;
    console.error(`${signal}: stopping tagbox proxy`);
    void cleanup().finally(() => process.exit(130));
  });
}

interface Run {
  code: number | null;
  ms: number;
  stdout: string;
  stderr: string;
}

/** A child to its exit, timed from spawn; output kept for checks and failures. */
function run(command: string, args: string[], env: Record<string, string>, cwd: string, input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd, env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout = (stdout + d.toString('utf8')).slice(-64 * 1024)));
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-64 * 1024)));
    if (input !== undefined) child.stdin!.end(input);
    const timer = setTimeout(() => child.kill('SIGKILL'), GIT_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: performance.now() - started, stdout, stderr });
    });
  });
}

/** How one side reaches GitHub: git's leading options, its environment, the repository URL. */
interface Side {
  name: 'direct' | 'proxy';
  pre: string[];
  env: Record<string, string>;
  url: string;
  /** Where its pushes are prepared. */
  work: string;
}

async function git(side: Side, args: string[], cwd: string, what: string): Promise<number> {
  const r = await run('git', [...side.pre, ...args], side.env, cwd);
  if (r.code !== 0) throw new Error(`${side.name}: ${what}: git ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-2000)}`);
  return r.ms;
}

/** Local git, untimed: no network, so the side's settings do not matter. */
async function local(side: Side, args: string[]): Promise<void> {
  await git(side, args, side.work, 'local step');
}

async function clone(side: Side, tag: string): Promise<number> {
  const into = join(dir, `clone-${side.name}-${tag}`);
  const ms = await git(side, ['clone', '-q', side.url, into], dir, 'clone');
  rmSync(into, { recursive: true, force: true });
  return ms;
}

/** One new commit on main holding a fresh 1 MiB random file (untimed), then the timed push of it as `branch`. */
async function push(side: Side, branch: string): Promise<number> {
  await local(side, ['checkout', '-q', '-B', 'work', 'origin/main']);
  writeFileSync(join(side.work, `blob-${branch.replace(/\//g, '-')}.bin`), randomBytes(PUSH_BYTES));
  await local(side, ['add', '-A']);
  await local(side, ['commit', '-q', '-m', `bench ${branch}`]);
  return git(side, ['push', '-q', 'origin', `HEAD:refs/heads/${branch}`], side.work, `push ${branch}`);
}

const lsRemote = (side: Side) => git(side, ['ls-remote', side.url], dir, 'ls-remote');

/** A push to main through the proxy: git must exit non-zero with the proxy's reason. */
async function refusedPush(side: Side, i: number): Promise<number> {
  await local(side, ['checkout', '-q', '-B', 'work', 'origin/main']);
  writeFileSync(join(side.work, 'refused.txt'), `refused ${i}\n`);
  await local(side, ['add', '-A']);
  await local(side, ['commit', '-q', '-m', `refused ${i}`]);
  const r = await run('git', [...side.pre, 'push', 'origin', 'HEAD:main'], side.env, side.work);
  if (r.code === 0 || !/remote rejected\] HEAD -> main \(Tagbox/.test(r.stderr)) {
    throw new Error(`the push to main was not refused by Tagbox (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
  }
  return r.ms;
}

/** Nearest rank, as bench/stats.ts counts. */
const rank = (samples: number[], p: number) => [...samples].sort((a, b) => a - b)[Math.max(0, Math.ceil(p * samples.length) - 1)] ?? NaN;
const f1 = (v: number) => v.toFixed(1);
const summary = (samples: number[]) => `p50 ${f1(stats(samples).p50).padStart(7)}  p90 ${f1(rank(samples, 0.9)).padStart(7)}  max ${f1(rank(samples, 1)).padStart(7)}`;

async function main(): Promise<number> {
  const ca = await createTestCa();
  // As root, the proxy's vault side may run as another user: it must read the upstream CA.
  chmodSync(dirname(ca.certFile), 0o755);
  chmodSync(dir, 0o755);
  const f = (fake = await createFakeGitHub({ ca }));
  const files: Record<string, string> = {};
  for (let i = 0; i < FILES; i++) files[`src/part-${String(Math.floor(i / 20)).padStart(2, '0')}/file-${String(i).padStart(3, '0')}.txt`] = randomBytes((FILE_BYTES * 3) / 4).toString('base64');
  const mainOid = await f.createRepo('acme', 'widgets', files);

  // The client's own token, for the baseline.
  const cred = parseCredentialDocument('github-app', f.credentialDocument);
  const http = createTokenHttpClient({ caFile: ca.certFile, connectTo: f.connectTo.split(',') });
  const { token } = await fetchInstallationToken(cred, http, Date.now(), { repositories: REPOSITORIES.map((r) => r.split('/')[1]!), permissions: PERMISSIONS });

  // The whole `tagbox proxy`, as an admin starts it.
  const home = join(dir, 'home');
  mkdirSync(home);
  const tagboxEnv = cleanEnv({ TAGBOX_HOME: home, TAGBOX_LOG_LEVEL: 'warn' });
  const set = await run(process.execPath, [TAGBOX_BIN, 'secret', 'set', 'gh-app', '--kind', 'github-app'], tagboxEnv, REPO_ROOT, f.credentialDocument);
  if (set.code !== 0) throw new Error(`tagbox secret set: exit ${set.code}: ${set.stderr}`);
  const caCert = await run(process.execPath, [TAGBOX_BIN, 'ca', 'cert'], tagboxEnv, REPO_ROOT);
  if (caCert.code !== 0 || !caCert.stdout.includes('BEGIN CERTIFICATE')) throw new Error(`tagbox ca cert: exit ${caCert.code}: ${caCert.stderr}`);
  const deployCaFile = join(dir, 'deploy-ca.pem');
  writeFileSync(deployCaFile, caCert.stdout);
  const bundlesFile = join(dir, 'bundles.yaml');
  writeFileSync(bundlesFile, BUNDLES);
  const connectTo = f.connectTo.split(',').flatMap((c) => ['--connect-to', c]);
  proxyChild = spawn(process.execPath, [TAGBOX_BIN, 'proxy', '--bundles', bundlesFile, '--listen', '127.0.0.1:0', ...connectTo, '--upstream-ca', ca.certFile], {
    cwd: REPO_ROOT,
    env: tagboxEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proxyChild.stderr!.on('data', (d: Buffer) => (proxyStderr = (proxyStderr + d.toString('utf8')).slice(-16 * 1024)));
  const proxyPort = await listeningPort(proxyChild, () => proxyStderr);

  // git with nothing of the host's: no user or system config (so no credential helper), no proxy settings.
  const gitHome = join(dir, 'git-home');
  mkdirSync(gitHome);
  const gitBase = Object.fromEntries(
    Object.entries(cleanEnv({})).filter(([k]) => !/^(GIT_|SSH_ASKPASS$)/.test(k) && !/^(https?|all|no)_proxy$/i.test(k)),
  ) as Record<string, string>;
  Object.assign(gitBase, {
    HOME: gitHome,
    XDG_CONFIG_HOME: join(gitHome, '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@example.invalid',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@example.invalid',
  });
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  const direct: Side = {
    name: 'direct',
    pre: ['-c', `http.extraHeader=Authorization: Basic ${basic}`, '-c', `http.curloptResolve=github.com:${f.port}:127.0.0.1`],
    env: { ...gitBase, GIT_SSL_CAINFO: ca.certFile },
    url: `https://github.com:${f.port}/acme/widgets.git`,
    work: join(dir, 'work-direct'),
  };
  const proxy: Side = {
    name: 'proxy',
    pre: [],
    env: { ...gitBase, GIT_SSL_CAINFO: deployCaFile, HTTPS_PROXY: `http://127.0.0.1:${proxyPort}` },
    url: 'https://github.com/acme/widgets.git',
    work: join(dir, 'work-proxy'),
  };
  const sides = [direct, proxy];

  console.log(`bench:github — real git ${(await run('git', ['--version'], gitBase, dir)).stdout.trim().replace(/^git version /, '')} against the fake GitHub (git http-backend over HTTPS) on loopback;`);
  console.log(`  proxy: the whole \`tagbox proxy\` process (CLI, fresh TAGBOX_HOME, SQLite), token minted by it from the vault; ${N} rounds per operation, direct then proxy`);

  // Warm-up, unmeasured but the first ls-remote shown: through the proxy it mints the installation token.
  const firstLs = { direct: await lsRemote(direct), proxy: await lsRemote(proxy) };
  for (const side of sides) {
    await git(side, ['clone', '-q', side.url, side.work], dir, 'warm-up clone');
    await push(side, `tagbox/bench-warm-${side.name}`);
  }
  const packs = join(direct.work, '.git', 'objects', 'pack');
  const packBytes = readdirSync(packs).filter((n) => n.endsWith('.pack')).reduce((sum, n) => sum + statSync(join(packs, n)).size, 0);

  const ops: Array<{ name: string; direct: number[]; proxy: number[] }> = [
    { name: `clone (${FILES} files, ${(packBytes / 2 ** 20).toFixed(1)} MiB pack)`, direct: [], proxy: [] },
    { name: 'push new branch (+1 MiB commit)', direct: [], proxy: [] },
    { name: 'ls-remote', direct: [], proxy: [] },
  ];
  const [cloneOp, pushOp, lsOp] = ops as [(typeof ops)[0], (typeof ops)[0], (typeof ops)[0]];
  for (let i = 0; i < N; i++) for (const side of sides) cloneOp[side.name].push(await clone(side, String(i)));
  // Direct and proxy push branches of their own, so each push creates its branch (tagbox/bench-<i>-<side>).
  for (let i = 0; i < N; i++) for (const side of sides) pushOp[side.name].push(await push(side, `tagbox/bench-${i}-${side.name}`));
  for (let i = 0; i < N; i++) for (const side of sides) lsOp[side.name].push(await lsRemote(side));
  const refused: number[] = [];
  for (let i = 0; i < N; i++) refused.push(await refusedPush(proxy, i));

  // What the runs left upstream: every branch pushed, main untouched, the proxy's own token used.
  const refs = await f.refs('acme', 'widgets');
  const pushed = Object.keys(refs).filter((r) => r.startsWith('refs/heads/tagbox/bench-')).length;
  if (pushed !== 2 * N + 2) throw new Error(`expected ${2 * N + 2} bench branches upstream, found ${pushed}`);
  if (refs['refs/heads/main'] !== mainOid) throw new Error('main moved: a refused push got through');
  const proxyTokens = f.tokensIssued.filter((t) => t !== token);
  if (proxyTokens.length === 0) throw new Error('the proxy never minted a token');

  console.log(`\n${'operation'.padEnd(36)}${'direct ms'.padEnd(40)}${'proxy ms'.padEnd(40)}${'proxy/direct'.padStart(13)}${'+ms (p50)'.padStart(11)}`);
  for (const op of ops) {
    const d = stats(op.direct).p50;
    const p = stats(op.proxy).p50;
    console.log(`${op.name.padEnd(36)}${summary(op.direct).padEnd(40)}${summary(op.proxy).padEnd(40)}${`${(p / d).toFixed(2)}x`.padStart(13)}${f1(p - d).padStart(11)}`);
  }
  console.log(`${'push to main, refused (proxy only)'.padEnd(36)}${'-'.padEnd(40)}${summary(refused)}`);
  console.log(`\nfirst ls-remote of the run (cold; through the proxy it mints the installation token): direct ${f1(firstLs.direct)} ms, proxy ${f1(firstLs.proxy)} ms`);
  console.log(`fake GitHub: ${f.requests.length} requests, ${proxyTokens.length} token(s) minted by the proxy; ${pushed} branches pushed, main unchanged after ${N} refused pushes`);
  return 0;
}

main()
  .then(async (code) => {
    await cleanup();
    process.exitCode = code;
  })
  .catch(async (error: unknown) => {
    console.error(`bench:github: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    if (proxyStderr) console.error(`tagbox proxy stderr:\n${proxyStderr}`);
    await cleanup();
    process.exitCode = 1;
  });
