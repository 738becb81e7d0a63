import type { TagboxConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { findClaudeBinary } from './claude/claude-binary.js';
import { claudeEngine } from './claude/claude-engine.js';
import type { Engine } from './engine.js';

/**
 * The engines this server offers besides `shell`: `claude` when its optional
 * dependency is installed. It is the default engine (CONTRACT.md: `claude`
 * when installed) only once a model key is configured (`agent.modelSecret`):
 * without one every turn would fail, while `shell` works.
 */
export function installedEngines(agent: TagboxConfig['agent'], logger: Logger): { engines: Engine[]; defaultEngine: string } {
  const found = findClaudeBinary();
  if (!found) {
    if (agent.engine === 'claude') logger.warn('agent.engine is claude, but @anthropic-ai/claude-agent-sdk is not installed (npm install --include=optional)');
    return { engines: [], defaultEngine: 'shell' };
  }
  const engine = claudeEngine({ binaryDir: found.dir, model: agent.model, maxTurns: agent.maxTurns, timeoutMs: agent.turnTimeoutSeconds * 1000 });
  const defaultEngine = agent.engine ?? (agent.modelSecret ? 'claude' : 'shell');
  if (defaultEngine === 'claude' && !agent.modelSecret) logger.warn('agent.engine is claude but agent.modelSecret names no model key: claude turns will be refused by the model');
  return { engines: [engine], defaultEngine };
}
