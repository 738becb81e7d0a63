import type { Bundle } from '../policy/bundle-schema.js';
import { SECRET_PLACEHOLDER } from '../policy/bundle-schema.js';

/**
 * The model connection (DESIGN.md "Model access and usage"): part of every
 * session's effective policy when `agent.modelSecret` names the org's model key
 * in the vault. The key is injected by the proxy as `x-api-key`; the sandbox
 * holds a placeholder.
 */
export const MODEL_HOST = 'api.anthropic.com';

/** The bundle name the model connection appears under in decisions and audit events (reserved). */
export const MODEL_BUNDLE = 'tagbox-model';

/**
 * What the pinned engine calls (measured, not guessed: claude-agent-sdk
 * 0.3.333 / Claude Code 2.1.333 with non-essential traffic off, through the
 * proxy, test/engines/claude-engine.test.ts asserts the whole list): the
 * Messages API (`POST /v1/messages?beta=true`, and `/v1/messages/count_tokens`
 * when it counts), and at start the org's Claude Code policy and managed
 * settings (`GET /api/claude_code/policy_limits`, `GET /api/claude_code/settings`,
 * read-only). Nothing else of the host gets the key: no files, batches,
 * models or admin endpoints (a request there goes out without it).
 */
export const MODEL_PATHS = [
  { connection: 'model', pathPrefix: '/v1/messages', readOnly: false },
  { connection: 'model-policy', pathPrefix: '/api/claude_code/policy_limits', readOnly: true },
  { connection: 'model-settings', pathPrefix: '/api/claude_code/settings', readOnly: true },
] as const;

export function modelBundle(secret: string): Bundle {
  return {
    name: MODEL_BUNDLE,
    domains: [],
    connections: MODEL_PATHS.map((path) => ({
      name: path.connection,
      secret,
      allowedWebsites: [{ host: MODEL_HOST, ports: [443] }],
      inject: { header: 'x-api-key', value: SECRET_PLACEHOLDER },
      narrow: { host: MODEL_HOST, pathPrefix: path.pathPrefix, ...(path.readOnly ? { readOnly: true } : {}) },
    })),
  };
}
