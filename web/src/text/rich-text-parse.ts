/**
 * What the agent writes, parsed into a small safe structure: fenced code
 * blocks, inline code, links and bold — nothing else. The page renders it as
 * text nodes and elements it builds itself; no markup from a message is ever
 * given to the browser as HTML (invariant 9: sandbox output is data).
 */

export type Inline =
  | { kind: 'text'; text: string }
  | { kind: 'code'; text: string }
  | { kind: 'bold'; text: string }
  | { kind: 'link'; text: string; href: string };

export type Block = { kind: 'code'; lang: string; text: string } | { kind: 'paragraph'; inlines: Inline[] };

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+.#-]*)\s*$/;

export function parseRichText(source: string): Block[] {
  const lines = source.replace(/\r\n?/g, '\n').split('\n');
  const blocks: Block[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    const text = paragraph.join('\n').replace(/^\n+|\n+$/g, '');
    if (text) blocks.push({ kind: 'paragraph', inlines: parseInline(text) });
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) {
      if (lines[i]!.trim() === '') flush();
      else paragraph.push(lines[i]!);
      continue;
    }
    flush();
    const marker = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    // An unclosed fence runs to the end, as in CommonMark.
    while (j < lines.length && !(lines[j]!.trim().startsWith(marker[0]!.repeat(marker.length)) && lines[j]!.trim().replace(new RegExp(`^\\${marker[0]}+`), '') === '')) body.push(lines[j++]!);
    blocks.push({ kind: 'code', lang: open[2] ?? '', text: body.join('\n') });
    i = j;
  }
  flush();
  return blocks;
}

// `code`, **bold**, [text](url), or a bare http(s) URL.
const INLINE = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|\[([^\]\n]{1,500})\]\(([^)\s]{1,2000})\)|(https?:\/\/[^\s<>()"'`]{1,2000})/g;

export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  let last = 0;
  const pushText = (t: string) => {
    if (!t) return;
    const prev = out[out.length - 1];
    if (prev?.kind === 'text') prev.text += t;
    else out.push({ kind: 'text', text: t });
  };
  for (const m of text.matchAll(INLINE)) {
    pushText(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] !== undefined) out.push({ kind: 'code', text: m[1] });
    else if (m[2] !== undefined) out.push({ kind: 'bold', text: m[2] });
    else if (m[3] !== undefined) {
      const href = safeHref(m[4]!);
      if (href) out.push({ kind: 'link', text: m[3], href });
      else pushText(m[0]);
    } else {
      // A URL's trailing punctuation belongs to the sentence.
      const url = m[5]!.replace(/[.,;:!?]+$/, '');
      const href = safeHref(url);
      if (href) out.push({ kind: 'link', text: url, href });
      else pushText(url);
      pushText(m[5]!.slice(url.length));
    }
  }
  pushText(text.slice(last));
  return out;
}

/** Only absolute http(s) links: no javascript:, data:, or relative paths into the app. */
export function safeHref(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  if (url.username || url.password) return undefined;
  return url.href;
}
