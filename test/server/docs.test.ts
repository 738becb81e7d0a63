import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openApiDocument, renderMarkdown } from '../../src/server/openapi-markdown.js';

describe('docs/API.md', () => {
  it('is what `npm run docs:api` generates from the current OpenAPI document', async () => {
    const committed = readFileSync(new URL('../../docs/API.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderMarkdown(await openApiDocument()));
  });
});
