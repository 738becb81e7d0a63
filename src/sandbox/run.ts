import type { Readable, Writable } from 'node:stream';
import { once } from 'node:events';
import type { ExecRequest, ExecResult, Sandbox, SandboxProvider, SandboxSpec } from './types.js';

export interface RunOutput {
  /** Where stdout / stderr go (e.g. process.stdout); collected into the result when omitted. */
  stdout?: Writable;
  stderr?: Writable;
}

export interface CollectedResult extends ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs one command in a live sandbox and waits for it, copying or collecting its output. */
export async function runInSandbox(provider: SandboxProvider, sandbox: Sandbox, request: ExecRequest, output: RunOutput = {}): Promise<CollectedResult> {
  const handle = provider.exec(sandbox, request);
  const [stdout, stderr] = await Promise.all([
    drain(handle.stdout, output.stdout),
    drain(handle.stderr, output.stderr),
  ]);
  return { ...(await handle.result), stdout, stderr };
}

/**
 * One-shot: a fresh sandbox for one command, released however it ends. This
 * is all `tagbox exec` needs once its proxy listens on `spec.proxySocket`.
 */
export async function runOnce(provider: SandboxProvider, spec: SandboxSpec, request: ExecRequest, output: RunOutput = {}): Promise<CollectedResult> {
  const sandbox = await provider.create(spec);
  try {
    return await runInSandbox(provider, sandbox, request, output);
  } finally {
    await provider.release(sandbox);
  }
}

async function drain(source: Readable, sink: Writable | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) {
    if (!sink) chunks.push(chunk as Buffer);
    // Back-pressure from the caller's stream; it is never ended (process.stdout must stay open).
    else if (!sink.write(chunk)) await once(sink, 'drain');
  }
  return Buffer.concat(chunks).toString('utf8');
}
