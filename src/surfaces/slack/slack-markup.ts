/**
 * What a person typed, from Slack's wire form back to text (pure). Slack sends
 * `&`, `<` and `>` escaped and wraps mentions and links in angle brackets; a
 * shell engine must see `echo a > b`, not `echo a &gt; b`. The bot's own
 * mention is the tag, not part of the request, and is removed.
 */
export function plainText(text: string, botUserId: string | undefined): string {
  let out = text;
  if (botUserId) out = out.split(`<@${botUserId}>`).join(' ');
  out = out.replace(/<((?:https?|mailto):[^|>]*)(?:\|[^>]*)?>/g, '$1');
  out = out.replace(/<@([UW][A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, name?: string) => `@${name || id}`);
  out = out.replace(/<#([CG][A-Z0-9]+)(?:\|([^>]*))?>/g, (_m, id: string, name?: string) => `#${name || id}`);
  out = out.replace(/<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>/g, (_m, name?: string) => name || '@group');
  out = out.replace(/<!(here|channel|everyone)(?:\|[^>]*)?>/g, '@$1');
  out = out.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  return out.replace(/[ \t]{2,}/g, ' ').trim();
}
