import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { AccessAdmin } from '../../../src/access/admin-service.js';
import { createWorkspace } from '../../../src/access/workspaces-repo.js';
import { AuditLog } from '../../../src/audit/log.js';
import { ProxyControl } from '../../../src/server/proxy-control.js';
import { openControlStore, type ControlStore } from '../../../src/store/database.js';
import type { SlackWorkspace } from '../../../src/surfaces/slack/model.js';
import { getSlackWorkspace, saveSlackSettings } from '../../../src/surfaces/slack/slack-workspaces-repo.js';
import { createTestBackend, type BackendName, type TestBackend } from '../../helpers/backends.js';
import { REPO_ROOT, TAGBOX_BIN } from '../../helpers/cli.js';

/**
 * A real Agent Proxy daemon (dist/: `npm run build` first) with this test
 * process as its peer — the server's place — over a real store, and what a
 * Slack test needs around it: an org, Slack workspaces, a run directory.
 */
export interface SlackProxyHarness {
  backend: TestBackend;
  store: ControlStore;
  proxy: ProxyControl;
  orgId: string;
  /** Where the server keeps its sockets (TAGBOX_HOME/run). */
  runDir: string;
  logger: pino.Logger;
  /** A `kind: slack` workspace with its settings; the tokens are sealed in the vault under the names it returns. */
  slackWorkspace(input: { teamId: string; botToken: string; appToken?: string; mode?: 'socket' | 'events' }): Promise<SlackWorkspace>;
  /** Stops the proxy daemon and starts a new one (a new pid; every listener gone). */
  restartProxy(): Promise<void>;
  close(): Promise<void>;
}

export const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function startSlackProxy(name: BackendName, daemonEnv: Record<string, string> = {}): Promise<SlackProxyHarness> {
  const backend = await createTestBackend(name);
  const runDir = join(backend.home, 'run');
  mkdirSync(runDir, { recursive: true, mode: 0o700 });
  const control = join(runDir, `control-${process.pid}.sock`);
  // The store (and its migrations) before the daemon: the proxy reads Slack's rows from it.
  const store = await openControlStore(backend.location);
  const audit = new AuditLog(store);
  const org = await new AccessAdmin(store, audit).ensureDefaultOrg();
  let daemon = await spawnDaemon(backend, control, daemonEnv);
  const proxy = new ProxyControl(control);
  let n = 0;
  return {
    backend,
    store,
    proxy,
    orgId: org.id,
    runDir,
    logger,
    slackWorkspace: async (input) => {
      n += 1;
      const ws = await createWorkspace(store.db, { orgId: org.id, kind: 'slack', externalId: input.teamId, name: `slack ${input.teamId}` });
      const botTokenSecret = `slack-bot-${n}`;
      await proxy.secrets.put(botTokenSecret, Buffer.from(input.botToken));
      const appTokenSecret = input.appToken ? `slack-app-${n}` : undefined;
      if (appTokenSecret) await proxy.secrets.put(appTokenSecret, Buffer.from(input.appToken!));
      await saveSlackSettings(store.db, ws.id, { mode: input.mode ?? 'socket', botTokenSecret, ...(appTokenSecret ? { appTokenSecret } : {}) });
      return (await getSlackWorkspace(store.db, ws.id))!;
    },
    restartProxy: async () => {
      await stopDaemon(daemon);
      daemon = await spawnDaemon(backend, control, daemonEnv);
    },
    close: async () => {
      await stopDaemon(daemon);
      await store.close();
      await backend.cleanup();
    },
  };
}

async function spawnDaemon(backend: TestBackend, control: string, daemonEnv: Record<string, string>): Promise<ChildProcess> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const daemon = spawn(process.execPath, [TAGBOX_BIN, 'proxy-daemon', '--control', control, '--peer-pid', String(process.pid)], {
    cwd: REPO_ROOT,
    env: { ...base, ...backend.env, TAGBOX_LOG_LEVEL: 'warn', ...daemonEnv },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  daemon.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
    if (process.env.TEST_PROXY_STDERR) process.stderr.write(c);
  });
  await new Promise<void>((resolve, reject) => {
    daemon.stdout!.on('data', (c: Buffer) => c.toString('utf8').includes('ready') && resolve());
    daemon.once('exit', () => reject(new Error(`proxy-daemon exited: ${stderr}`)));
  });
  return daemon;
}

async function stopDaemon(daemon: ChildProcess): Promise<void> {
  if (daemon.exitCode !== null || daemon.signalCode !== null) return;
  const exited = new Promise((resolve) => daemon.once('exit', resolve));
  daemon.stdin!.end();
  await exited;
}
