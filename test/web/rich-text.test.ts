import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseInline, parseRichText, safeHref, type Block, type Inline } from '../../web/src/text/rich-text-parse.js';
import { firstLoadFiles } from '../../web/build/first-load-size.js';

const textOf = (inlines: Inline[]) => inlines.map((i) => i.text).join('');

/** What the chat shows of a message: pure parsing into a safe structure, rendered as text by the page. */
describe('rich text', () => {
  it('parses fenced code blocks with their language, keeping the text verbatim', () => {
    const blocks = parseRichText('Here:\n```ts\nconst a = `x` <b>\n  indented\n```\nafter');
    expect(blocks).toEqual<Block[]>([
      { kind: 'paragraph', inlines: [{ kind: 'text', text: 'Here:' }] },
      { kind: 'code', lang: 'ts', text: 'const a = `x` <b>\n  indented' },
      { kind: 'paragraph', inlines: [{ kind: 'text', text: 'after' }] },
    ]);
  });

  it('runs an unclosed fence to the end, and a longer fence needs as long a close', () => {
    expect(parseRichText('```\nno end')).toEqual([{ kind: 'code', lang: '', text: 'no end' }]);
    expect(parseRichText('````\na\n```\nb\n````')).toEqual([{ kind: 'code', lang: '', text: 'a\n```\nb' }]);
  });

  it('splits paragraphs on blank lines and keeps single newlines', () => {
    expect(parseRichText('a\nb\n\n\nc').map((b) => (b.kind === 'paragraph' ? textOf(b.inlines) : b.text))).toEqual(['a\nb', 'c']);
  });

  it('parses inline code, bold and links', () => {
    expect(parseInline('run `npm test` **now** see [docs](https://example.com/a?b=1) or https://x.org/p.')).toEqual<Inline[]>([
      { kind: 'text', text: 'run ' },
      { kind: 'code', text: 'npm test' },
      { kind: 'text', text: ' ' },
      { kind: 'bold', text: 'now' },
      { kind: 'text', text: ' see ' },
      { kind: 'link', text: 'docs', href: 'https://example.com/a?b=1' },
      { kind: 'text', text: ' or ' },
      { kind: 'link', text: 'https://x.org/p', href: 'https://x.org/p' },
      { kind: 'text', text: '.' },
    ]);
  });

  it.each([
    ['[x](javascript:alert(1))'],
    ['[x](JaVaScRiPt:alert(1))'],
    ['[x](data:text/html,<script>alert(1)</script>)'],
    ['[x](vbscript:msgbox)'],
    ['[x](/admin/secrets)'],
    ['[x](//evil.example/)'],
    ['[x](https://user:pw@evil.example/)'],
  ])('makes no link of %s', (source) => {
    const inlines = parseInline(source);
    expect(inlines.some((i) => i.kind === 'link')).toBe(false);
    expect(textOf(inlines)).toBe(source);
  });

  it('only ever links http(s), and loses no character of any input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (source) => {
        for (const block of parseRichText(source)) {
          if (block.kind !== 'paragraph') continue;
          for (const inline of block.inlines) if (inline.kind === 'link') expect(/^https?:\/\//.test(inline.href)).toBe(true);
        }
      }),
    );
    // Without markup markers, inline parsing keeps every character (bare URLs become links of their own text).
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...'ab <>&"\'/:.,;!? https://x.org/p=1'.split('')), { maxLength: 120 }), (chars) => {
        const source = chars.join('');
        expect(textOf(parseInline(source))).toBe(source);
      }),
    );
    expect(safeHref('https://example.com')).toBe('https://example.com/');
    expect(safeHref('ftp://example.com')).toBeUndefined();
    expect(safeHref('not a url')).toBeUndefined();
  });

  it('treats markup as text: nothing in the structure is HTML', () => {
    const blocks = parseRichText('<img src=x onerror=alert(1)> <script>alert(1)</script>');
    expect(blocks).toEqual([{ kind: 'paragraph', inlines: [{ kind: 'text', text: '<img src=x onerror=alert(1)> <script>alert(1)</script>' }] }]);
  });
});

describe('first-load size', () => {
  it('counts the entry chunks and what they import statically, not lazy chunks', () => {
    const bundle = {
      'index.js': { type: 'chunk' as const, fileName: 'index.js', isEntry: true, imports: ['vendor.js'], code: 'a' },
      'vendor.js': { type: 'chunk' as const, fileName: 'vendor.js', imports: ['index.js'], code: 'b' },
      'lazy.js': { type: 'chunk' as const, fileName: 'lazy.js', imports: ['vendor.js'], code: 'c' },
      'style.css': { type: 'asset' as const, fileName: 'style.css' },
    };
    expect(firstLoadFiles(bundle).sort()).toEqual(['index.js', 'vendor.js']);
  });
});
