import { spawn, type ChildProcess } from 'node:child_process';
import type { EchoUpstream } from '../fixtures/echo-upstream.js';
import { listeningPort, REPO_ROOT, TAGBOX_BIN } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

/** A `tagbox proxy` child process, as a user runs it. */
export interface RunningProxy {
  child: ChildProcess;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}


/**
 * `tagbox proxy --bundles FILE --listen 127.0.0.1:PORT` in front of the echo
 * upstream (echo.test and api.echo.test mapped to it, its CA trusted), with
 * the backend's environment and none of the caller's TAGBOX_ variables.
 * Resolves once it prints `listening on`. `--listen` wants a real port (0 is refused).
 */
export async function spawnEchoProxy(bundles: string, echo: EchoUpstream, upstreamCaFile: string, env: Record<string, string>, extraArgs: string[] = []): Promise<RunningProxy> {
  const listenPort = await freePort();
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TAGBOX_')));
  const args = ['proxy', '--bundles', bundles, '--listen', `127.0.0.1:${listenPort}`, '--upstream-ca', upstreamCaFile, ...extraArgs];
  for (const name of ['echo.test', 'api.echo.test']) args.push('--connect-to', `${name}:443:127.0.0.1:${echo.httpsPort}`);
  const child = spawn(process.execPath, [TAGBOX_BIN, ...args], { cwd: REPO_ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    // Bounded: a proxy dying under load may log a lot.
    if (stderr.length < 64 * 1024) stderr += d.toString();
  });
  const running: RunningProxy = { child, port: 0, exited, stderr: () => stderr };
  running.port = await listeningPort(child, running.stderr, 20_000);
  return running;
}
