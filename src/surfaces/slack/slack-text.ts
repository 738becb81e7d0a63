/**
 * Text the agent (or a sandbox) produced, made safe to post in Slack
 * (invariant 9). Slack reads `<...>` as markup — `<!channel>`, `<!here>`,
 * `<!everyone>`, `<!subteam^S…>` ping people, `<@U…>` and `<#C…>` mention,
 * `<url|label>` disguises a link — and `&` starts an entity. Escaping the three
 * characters Slack asks to be escaped (& < >) makes all of it show as typed.
 * A bare `@channel`, `@here` or `@everyone` (which Slack may still expand) gets
 * a zero-width joiner after its `@`. Nothing else changes: mrkdwn stays.
 *
 * Every `&` is escaped, an `&amp;` in the text included: the reader sees
 * exactly what the agent wrote.
 */
export function forSlack(text: string): string {
  return (
    text
      // The session layer's own defusal (`<` + zero-width space + `!`) is redundant once `<` is escaped: show the text as written.
      .replace(/<\u200b!/g, '<!')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(BARE_MASS_MENTION, (_m, word: string) => `@\u200d${word}`)
  );
}

const BARE_MASS_MENTION = /@(channel|here|everyone)\b/gi;
