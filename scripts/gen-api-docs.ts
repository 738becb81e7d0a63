// Writes docs/API.md from the server's OpenAPI document: `npm run docs:api`.
import { writeFileSync } from 'node:fs';
import { openApiDocument, renderMarkdown } from '../src/server/openapi-markdown.js';

const target = new URL('../docs/API.md', import.meta.url);
writeFileSync(target, renderMarkdown(await openApiDocument()));
process.stdout.write(`wrote ${target.pathname}\n`);
