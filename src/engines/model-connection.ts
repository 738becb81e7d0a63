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
 * What the pinned engine calls (measured, not guessed: `claude -p` 2.1.333 with
 * non-essential traffic off sends only `POST /v1/messages?beta=true`, and
 * `/v1/messages/count_tokens` when it counts): the Messages API, nothing else
 * of the host — no files, batches, models or admin endpoints.
 */
export const MODEL_PATH_PREFIX = '/v1/messages';

export function modelBundle(secret: string): Bundle {
  return {
    name: MODEL_BUNDLE,
    domains: [],
    connections: [
      {
        name: 'model',
        secret,
        allowedWebsites: [{ host: MODEL_HOST, ports: [443] }],
        inject: { header: 'x-api-key', value: SECRET_PLACEHOLDER },
        narrow: { host: MODEL_HOST, pathPrefix: MODEL_PATH_PREFIX },
      },
    ],
  };
}
