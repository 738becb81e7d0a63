import type { EngineMessage } from '../engine.js';
import { withoutMention } from '../mention.js';

/**
 * The user turn the model reads (pure): earlier messages of the thread the
 * surface supplied as context, then the messages addressed to the agent,
 * each under its author's name (a channel has many people in it).
 */
export function promptOf(messages: EngineMessage[]): string {
  const context = messages.filter((m) => m.context);
  const asked = messages.filter((m) => !m.context);
  const parts: string[] = [];
  if (context.length) {
    parts.push(['Earlier in this thread (for context):', ...context.map((m) => `${nameOf(m)}: ${m.text.trim()}`)].join('\n'));
  }
  for (const m of asked) parts.push(`${nameOf(m)}: ${withoutMention(m.text) || m.text.trim()}`);
  return parts.join('\n\n');
}

function nameOf(m: EngineMessage): string {
  const name = (m.author.name ?? m.author.id ?? m.author.kind).replace(/\s+/g, ' ').trim();
  return name || 'someone';
}
