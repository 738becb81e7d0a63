import { describe, expect, it } from 'vitest';
import { forSlack } from '../../../src/surfaces/slack/slack-text.js';
import { neutralise } from '../../../src/util/output-limits.js';

const ZWJ = '\u200d';

describe('forSlack: agent text cannot ping, mention or disguise links in Slack', () => {
  it('escapes the special mentions, which then show as typed', () => {
    expect(forSlack('<!channel>')).toBe('&lt;!channel&gt;');
    expect(forSlack('<!here>')).toBe('&lt;!here&gt;');
    expect(forSlack('<!everyone>')).toBe('&lt;!everyone&gt;');
    expect(forSlack('<!here|here>')).toBe('&lt;!here|here&gt;');
    expect(forSlack('<!CHANNEL>')).toBe('&lt;!CHANNEL&gt;');
  });

  it('escapes user-group, user and channel mentions', () => {
    expect(forSlack('<!subteam^S123>')).toBe('&lt;!subteam^S123&gt;');
    expect(forSlack('<!subteam^S123|@oncall>')).toBe('&lt;!subteam^S123|@oncall&gt;');
    expect(forSlack('<@U123>')).toBe('&lt;@U123&gt;');
    expect(forSlack('<@U123|alice>')).toBe('&lt;@U123|alice&gt;');
    expect(forSlack('<#C123>')).toBe('&lt;#C123&gt;');
    expect(forSlack('<!date^1392734382^{date}|x>')).toBe('&lt;!date^1392734382^{date}|x&gt;');
  });

  it('escapes disguised links', () => {
    expect(forSlack('<https://x|click>')).toBe('&lt;https://x|click&gt;');
    expect(forSlack('<https://evil.example/|https://good.example/>')).toBe('&lt;https://evil.example/|https://good.example/&gt;');
  });

  it('defuses bare @channel, @here and @everyone in any case', () => {
    for (const word of ['channel', 'here', 'everyone', 'Channel', 'HERE', 'EveryOne']) {
      expect(forSlack(`hey @${word}!`)).toBe(`hey @${ZWJ}${word}!`);
    }
    expect(forSlack('@here@channel')).toBe(`@${ZWJ}here@${ZWJ}channel`);
    expect(forSlack('line\n@everyone\n')).toBe(`line\n@${ZWJ}everyone\n`);
  });

  it('leaves words that only start like a mass mention alone', () => {
    expect(forSlack('@channels @hereby @everyones @heretic')).toBe('@channels @hereby @everyones @heretic');
    expect(forSlack('@alice')).toBe('@alice');
  });

  it('escapes every &, an already escaped one too, so the text reads as written', () => {
    expect(forSlack('a & b')).toBe('a &amp; b');
    expect(forSlack('&amp;')).toBe('&amp;amp;');
    expect(forSlack('&lt;!channel&gt;')).toBe('&amp;lt;!channel&amp;gt;');
    expect(forSlack('&#60;!here&#62;')).toBe('&amp;#60;!here&amp;#62;');
  });

  it('handles mixed text', () => {
    expect(forSlack('ping <!channel> & @here, see <https://x|click> for <@U1> in <#C2> (x > y)')).toBe(
      `ping &lt;!channel&gt; &amp; @${ZWJ}here, see &lt;https://x|click&gt; for &lt;@U1&gt; in &lt;#C2&gt; (x &gt; y)`,
    );
  });

  it('shows what the session layer already defused as written, still escaped', () => {
    expect(forSlack(neutralise('<!channel> and <!subteam^S1>'))).toBe('&lt;!channel&gt; and &lt;!subteam^S1&gt;');
    // Its zero-width space after @ already defuses the word: nothing is added.
    expect(forSlack(neutralise('@channel'))).toBe('@\u200bchannel');
  });

  it('alters nothing else', () => {
    expect(forSlack('*bold* _italic_ ~strike~ `code` ```block```')).toBe('*bold* _italic_ ~strike~ `code` ```block```');
    expect(forSlack('naïve café — 日本語 🎉 user@example.com https://x.example/a?b=c#d')).toBe('naïve café — 日本語 🎉 user@example.com https://x.example/a?b=c#d');
    expect(forSlack('')).toBe('');
    expect(forSlack('  spaces\tand\ttabs\n\n')).toBe('  spaces\tand\ttabs\n\n');
    // A quote's `>` is escaped too: Slack still renders `&gt; ` at a line's start as a quote.
    expect(forSlack('> quoted')).toBe('&gt; quoted');
  });
});
