import { parseRichText, type Inline } from './rich-text-parse';

/** A message's text as elements built here (see rich-text-parse.ts): never as HTML. */
export function RichText({ text }: { text: string }) {
  return (
    <div class="rich">
      {parseRichText(text).map((block, i) =>
        block.kind === 'code' ? (
          <pre key={i} class="code-block" data-lang={block.lang || undefined}>
            <code>{block.text}</code>
          </pre>
        ) : (
          <p key={i}>{block.inlines.map(inline)}</p>
        ),
      )}
    </div>
  );
}

function inline(part: Inline, i: number) {
  switch (part.kind) {
    case 'text':
      return part.text;
    case 'code':
      return <code key={i}>{part.text}</code>;
    case 'bold':
      return <strong key={i}>{part.text}</strong>;
    case 'link':
      return (
        <a key={i} href={part.href} target="_blank" rel="noopener noreferrer nofollow">
          {part.text}
        </a>
      );
  }
}
