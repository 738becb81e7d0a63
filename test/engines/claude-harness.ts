import { createTestCa, type TestCa } from '../fixtures/ca.js';
import { startEchoUpstream, type EchoUpstream } from '../fixtures/echo-upstream.js';
import { startFakeAnthropic, type FakeAnthropic } from '../fixtures/fake-anthropic.js';
import { startSessions, type HarnessOptions, type SessionHarness } from '../sessions/harness.js';
import { findClaudeBinary } from '../../src/engines/claude/claude-binary.js';
import { claudeEngine } from '../../src/engines/claude/claude-engine.js';
import type { BackendName } from '../helpers/backends.js';
import type { TagboxConfig } from '../../src/config/schema.js';

/** The model key in the vault: the canary that must never be seen inside a sandbox. */
export const MODEL_KEY = 'sk-ant-api03-CANARY-model-key-7f3a9c21e5';
export const MODEL_SECRET = 'anthropic-key';

export interface ClaudeHarness extends SessionHarness {
  ca: TestCa;
  model: FakeAnthropic;
  echo: EchoUpstream;
}

export interface ClaudeHarnessOptions extends HarnessOptions {
  /** The CA every fake upstream is issued by (default: a new one); pass it to add fakes of your own made before the harness. */
  ca?: TestCa;
  /** More `host:443:127.0.0.1:port` entries for the daemon's upstream.connectTo (comma-separated), for those fakes. */
  extraConnectTo?: string;
}

/**
 * The session layer with the real `claude` engine: the real bundled binary in
 * real sandboxes, through the real proxy daemon, whose upstream for
 * api.anthropic.com is the fake Messages API (and for echo.test an echo
 * server). The optional dependency must be installed: without it this fails.
 */
export async function startClaude(backend: BackendName, agent: Partial<TagboxConfig['agent']> = {}, options: ClaudeHarnessOptions = {}): Promise<ClaudeHarness> {
  const binary = findClaudeBinary();
  if (!binary) throw new Error('@anthropic-ai/claude-agent-sdk (the claude engine) is not installed: `npm ci` installs it (optional dependency)');
  const ca = options.ca ?? (await createTestCa());
  const model = await startFakeAnthropic({ ca, apiKey: MODEL_KEY });
  const echo = await startEchoUpstream({ ca });
  const config = { engine: 'claude' as const, modelSecret: MODEL_SECRET, maxTurns: 8, ...agent };
  const engine = claudeEngine({ binaryDir: binary.dir, model: config.model ?? 'claude-sonnet-4-5', maxTurns: config.maxTurns, timeoutMs: 120_000 });
  const { ca: _ca, extraConnectTo, ...sessionOptions } = options;
  const connectTo = [model.connectTo, `echo.test:443:127.0.0.1:${echo.httpsPort}`, ...(extraConnectTo ? [extraConnectTo] : [])];
  const h = await startSessions(backend, config, [engine], {
    ...sessionOptions,
    daemonEnv: {
      TAGBOX_UPSTREAM_CONNECT_TO: connectTo.join(','),
      TAGBOX_UPSTREAM_CA_FILE: ca.certFile,
      ...options.daemonEnv,
    },
  });
  await h.proxy.secrets.put(MODEL_SECRET, Buffer.from(MODEL_KEY));
  return {
    ...h,
    ca,
    model,
    echo,
    close: async () => {
      await h.close();
      await model.close();
      await echo.close();
    },
  };
}
