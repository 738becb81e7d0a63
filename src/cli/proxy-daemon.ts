import type { Command } from 'commander';
import { chmodSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { effectivePolicy, orgOfPlace } from '../access/effective-policy.js';
import { watchPolicy, type PolicyWatch } from '../access/policy-watch.js';
import type { SessionPolicyOptions } from '../access/effective-policy.js';
import { describeError, invalidInput, isTagboxError } from '../errors.js';
import type { Logger } from '../log.js';
import { compilePolicy } from '../policy/compile.js';
import type { Bundle } from '../policy/bundle-schema.js';
import type { ProxyListener } from '../proxy/agent-proxy.js';
import { BlockedSubscribers } from '../proxy/blocked-subscribers.js';
import { ExecGrants } from '../proxy/exec-grants.js';
import { serveExecGrants } from '../proxy/grant-socket.js';
import { startProxyRuntime, type ProxyRuntime } from '../proxy/runtime.js';
import { MAX_CONTROL_LINE, type ControlRequest, type ControlResponse } from '../server/control-protocol.js';
import { peerCredentials } from '../system/peercred.js';
import { CREDENTIAL_KINDS, type CredentialKind } from '../vault/kinds.js';
import { Sealer } from '../vault/sealer.js';
import { openVaultStore, vaultStoreLocation, type VaultStore } from '../vault/store.js';
import { getSlackWorkspace } from '../surfaces/slack/slack-workspaces-repo.js';
import { slackApiBundle, slackListenerSession } from '../surfaces/slack/slack-api-policy.js';
import { contextFrom } from './context.js';

interface OpenListener {
  listener: ProxyListener;
  watch?: PolicyWatch;
  /** Opened without a place (not Slack's either): apply-grant may give it an exec client's bundles. */
  grantable?: true;
}

interface Daemon {
  runtime: ProxyRuntime;
  listeners: Map<string, OpenListener>;
  /** Bundles exec clients granted on the grant socket, for apply-grant. */
  grants: ExecGrants;
  vault: Promise<{ store: VaultStore; sealer: Sealer }>;
  /** The server's `subscribe-blocked` connections. */
  blocked: BlockedSubscribers;
  logger: Logger;
  /** What every session listener's policy also holds: the model connection (agent.modelSecret). */
  sessionPolicy: SessionPolicyOptions;
}

/** The one process allowed on the control socket: the server (issue 9, items 2 and 13). */
interface Peer {
  pid: number;
  uid: number;
}

/**
 * `tagbox proxy-daemon --control SOCKET --peer-pid PID` (hidden): the Agent
 * Proxy as the child process `tagbox up` supervises. It is the only process
 * that unlocks the vault, and the only one that writes it. It serves a control
 * socket (see server/control-protocol.ts) to exactly one peer — the server,
 * checked on every connection by SO_PEERCRED (pid and uid), which nothing the
 * peer sends can change. It prints `ready` once serving, and exits when told
 * to or when its parent goes (its stdin closes), so it never outlives `tagbox up`.
 */
export function registerProxyDaemon(program: Command): void {
  program
    .command('proxy-daemon', { hidden: true })
    .description('internal: the Agent Proxy child of `tagbox up`')
    .requiredOption('--control <socket>', 'control socket path')
    .requiredOption('--peer-pid <pid>', 'the only process allowed on the control socket (the server)')
    .option('--peer-uid <uid>', "the server's uid (default: the uid of --peer-pid)")
    .option('--socket-mode <octal>', 'mode of the control socket', '600')
    .option('--grant-socket <socket>', "where `tagbox exec` clients grant their bundles (proxy/grant-socket.ts)")
    .action(async (opts: { control: string; peerPid: string; peerUid?: string; socketMode: string; grantSocket?: string }, command: Command) => {
      // What this process creates (the vault, the CA, its key) is its own alone; sockets get their modes explicitly.
      process.umask(0o077);
      const ctx = contextFrom(command);
      const peer = parsePeer(opts.peerPid, opts.peerUid);
      const blocked = new BlockedSubscribers();
      const runtime = await startProxyRuntime(ctx, { onBlocked: (event) => blocked.publish(event), onGithub: (event) => blocked.publishGithub(event) });
      const vault = (async () => {
        const store = await openVaultStore(vaultStoreLocation(ctx.home, ctx.config));
        return { store, sealer: await Sealer.connect(store) };
      })();
      vault.catch(() => undefined);
      const sessionPolicy = ctx.config.agent.modelSecret ? { modelSecret: ctx.config.agent.modelSecret } : {};
      const daemon: Daemon = { runtime, listeners: new Map(), grants: new ExecGrants(), vault, blocked, logger: ctx.logger, sessionPolicy };
      mkdirSync(dirname(opts.control), { recursive: true, mode: 0o700 });
      rmSync(opts.control, { force: true });
      const server = createServer((socket) => serve(socket, daemon, peer));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.control, () => resolve());
      });
      chmodSync(opts.control, Number.parseInt(opts.socketMode, 8));
      // Without it, exec clients cannot grant bundles: a handed-off exec then runs alone.
      const grantServer = opts.grantSocket
        ? await serveExecGrants(opts.grantSocket, daemon.grants, ctx.logger).catch((error: unknown) => {
            ctx.logger.warn({ err: describeError(error) }, 'exec grant socket unavailable: `tagbox exec` with bundles runs on its own');
            return undefined;
          })
        : undefined;
      process.stdout.write('ready\n');

      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
        process.stdin.on('end', resolve).on('close', resolve).resume();
      });
      server.close();
      grantServer?.close();
      if (grantServer) rmSync(opts.grantSocket!, { force: true });
      blocked.close();
      rmSync(opts.control, { force: true });
      await Promise.allSettled([...daemon.listeners.values()].map(async (l) => {
        await l.watch?.close();
        await l.listener.close();
      }));
      await runtime.close();
      await vault.then((v) => v.store.close(), () => undefined);
      process.exit(0);
    });
}

function parsePeer(pid: string, uid: string | undefined): Peer {
  if (!/^\d+$/.test(pid)) throw invalidInput(`--peer-pid: expected a process id, got "${pid}"`);
  if (uid !== undefined && !/^\d+$/.test(uid)) throw invalidInput(`--peer-uid: expected a uid, got "${uid}"`);
  return { pid: Number(pid), uid: uid !== undefined ? Number(uid) : uidOf(Number(pid)) };
}

function uidOf(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
    return Number(line!.split(/\s+/)[1]);
  } catch {
    throw invalidInput(`--peer-pid: no process ${pid}`);
  }
}

function serve(socket: Socket, daemon: Daemon, peer: Peer): void {
  socket.on('error', () => undefined);
  let who;
  try {
    who = peerCredentials(socket);
  } catch (error) {
    daemon.logger.error({ err: describeError(error) }, 'control socket: cannot read the peer credentials; refused');
    return void socket.destroy();
  }
  if (who.pid !== peer.pid || who.uid !== peer.uid) {
    // Anyone but the server: another local process, a sandbox, a second server.
    daemon.logger.warn({ pid: who.pid, uid: who.uid }, 'control socket: refused a process that is not the server');
    socket.end(`${JSON.stringify({ ok: false, error: 'refused: only the Tagbox server may use this socket', code: 'forbidden' } satisfies ControlResponse)}\n`);
    // Read on to its end: a refused socket that nobody reads would stay open for good.
    socket.resume();
    return;
  }
  let buffer = '';
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    if (buffer.length > MAX_CONTROL_LINE) return void socket.destroy();
    for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (isSubscribe(line)) return subscribe(socket, daemon);
      handle(line, daemon).then(
        (answer) => socket.write(`${JSON.stringify(answer)}\n`),
        (error: unknown) => socket.write(`${JSON.stringify(errorAnswer(error))}\n`),
      );
    }
  });
}

/** The connection becomes a feed: acknowledged, then written to only by BlockedSubscribers. */
function subscribe(socket: Socket, daemon: Daemon): void {
  socket.removeAllListeners('data');
  // Keep reading (and dropping): the server's end or close must still be seen.
  socket.on('data', () => undefined);
  socket.write(`${JSON.stringify({ ok: true } satisfies ControlResponse)}\n`);
  daemon.blocked.add(socket);
}

function isSubscribe(line: string): boolean {
  try {
    return (JSON.parse(line) as { op?: unknown } | null)?.op === 'subscribe-blocked';
  } catch {
    return false;
  }
}

function errorAnswer(error: unknown): ControlResponse {
  return isTagboxError(error)
    ? { ok: false, error: error.message, code: error.code, exitCode: error.exitCode }
    : { ok: false, error: describeError(error) };
}

async function handle(line: string, daemon: Daemon): Promise<ControlResponse> {
  const { runtime, listeners } = daemon;
  const request = JSON.parse(line) as ControlRequest;
  switch (request.op) {
    case 'ping':
      return { ok: true, pid: process.pid };
    case 'ca-cert':
      return { ok: true, pem: runtime.caCertPem };
    case 'open-listener': {
      if (listeners.has(request.session)) return { ok: false, error: `session ${request.session} already has a listener` };
      const policy = request.place
        ? // The effective policy of the place, recompiled whenever access changes (within 2 s).
          await effectivePolicy(runtime.store.db, request.place, daemon.sessionPolicy)
        : // Default deny, nothing reachable, until an exec client's grant is applied (apply-grant).
          compilePolicy([]);
      // A channel's or DM's model use is metered against the org and that place (never a request's say).
      const usage = request.place ? { orgId: await orgOfPlace(runtime.store.db, request.place), place: request.place } : undefined;
      const listener = await runtime.proxy.listen({ socketPath: request.socketPath }, { session: request.session, policy, ...(usage ? { usage } : {}) });
      // A sandbox may be a host uid of its own: it must be able to connect. The
      // directory the server chose (its run/ or runtime directory) keeps the rest of the host out.
      chmodSync(request.socketPath, 0o666);
      const watch = request.place ? await watchPolicy(runtime.store, request.place, (next) => listener.setPolicy(next), { session: daemon.sessionPolicy }) : undefined;
      listeners.set(request.session, { listener, ...(watch ? { watch } : { grantable: true }) });
      return { ok: true, address: listener.address };
    }
    case 'open-slack-listener':
      return openSlackListener(request, daemon);
    case 'apply-grant': {
      const open = listeners.get(request.session);
      if (!open) return { ok: false, error: `no listener for session ${request.session}`, code: 'no_listener' };
      // A place's policy is the database's to say, and a Slack listener's its workspace's: never a grant's.
      if (!open.grantable) return { ok: false, error: `the listener of session ${request.session} follows a place or a workspace; a grant cannot change it` };
      const bundles = takeGrant(daemon, request.grant);
      open.listener.setPolicy(compilePolicy(bundles));
      return { ok: true, bundles: bundles.map((b) => b.name) };
    }
    case 'close-listener': {
      const open = listeners.get(request.session);
      if (!open) return { ok: false, error: `no listener for session ${request.session}`, code: 'no_listener' };
      listeners.delete(request.session);
      await open.watch?.close();
      await open.listener.close();
      return { ok: true };
    }
    case 'secret-put': {
      const { sealer } = await daemon.vault;
      const kind = request.kind === undefined ? undefined : credentialKind(request.kind);
      const value = Buffer.from(request.value, 'base64');
      const result = request.mustExist ? await sealer.replace(request.name, value, kind) : await sealer.put(request.name, value, kind ?? 'static');
      value.fill(0);
      return { ok: true, result };
    }
    case 'secret-delete':
      return { ok: true, deleted: await (await daemon.vault).sealer.delete(request.name) };
    case 'secret-list':
      return { ok: true, secrets: await (await daemon.vault).sealer.list() };
    case 'secret-metadata':
      return { ok: true, metadata: (await (await daemon.vault).sealer.metadata(request.name)) ?? null };
    default:
      return { ok: false, error: `unknown op ${(request as { op?: unknown }).op as string}` };
  }
}

/**
 * A Slack workspace's listener: its policy is built here, from the workspace's
 * row, so the server (which names only the workspace) cannot send a Slack
 * token anywhere but Slack's hosts. Only the server connects to it: 0660, the
 * group being the one the server and the proxy share (the proxy's own group,
 * and the run directory's, which is setgid); a sandbox's user is in neither.
 */
async function openSlackListener(request: Extract<ControlRequest, { op: 'open-slack-listener' }>, daemon: Daemon): Promise<ControlResponse> {
  const { runtime, listeners } = daemon;
  if (typeof request.workspaceId !== 'string' || !request.workspaceId) throw invalidInput('open-slack-listener: workspaceId: expected a workspace id');
  if (typeof request.socketPath !== 'string' || !request.socketPath) throw invalidInput('open-slack-listener: socketPath: expected a path');
  const session = slackListenerSession(request.workspaceId);
  if (listeners.has(session)) return { ok: false, error: `workspace ${request.workspaceId} already has a Slack listener (${session})` };
  const workspace = await getSlackWorkspace(runtime.store.db, request.workspaceId);
  if (!workspace) throw invalidInput(`open-slack-listener: workspace ${request.workspaceId} is not a Slack workspace (no kind 'slack' workspace with Slack settings)`);
  const policy = compilePolicy([slackApiBundle(workspace)]);
  const listener = await runtime.proxy.listen({ socketPath: request.socketPath }, { session, policy });
  chmodSync(request.socketPath, 0o660);
  listeners.set(session, { listener });
  return { ok: true, address: listener.address };
}

/** The grant's bundles, used up; a grant that is unknown, used or expired fails (nothing is applied). */
function takeGrant(daemon: Daemon, grant: unknown): Bundle[] {
  const bundles = typeof grant === 'string' ? daemon.grants.take(grant) : undefined;
  if (!bundles) throw invalidInput('no such exec grant (unknown, used or expired)', 'invalid_grant');
  return bundles;
}

function credentialKind(kind: string): CredentialKind {
  if (!(CREDENTIAL_KINDS as readonly string[]).includes(kind)) throw invalidInput(`kind: expected one of ${CREDENTIAL_KINDS.join(', ')}`);
  return kind as CredentialKind;
}
