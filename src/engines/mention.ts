/**
 * The text of a message with the agent's mention taken off its start: `@tagbox`,
 * a Slack user mention (`<@U123ABC>`), once or several times.
 */
export function withoutMention(text: string): string {
  return text.replace(/^(\s*(<@[A-Z0-9]+(\|[^>]*)?>|@tagbox\b)[:,]?)+\s*/i, '').trim();
}
