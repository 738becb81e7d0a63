import preact from '@preact/preset-vite';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { firstLoadSize } from './build/first-load-size.ts';

// Built by `npm run build` into dist/web, which `tagbox up` serves at /.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [preact({ prerender: { enabled: false } }), firstLoadSize()],
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    // The page's CSP allows no inline script: no injected polyfill.
    modulePreload: { polyfill: false },
    sourcemap: true,
    target: 'es2022',
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8787', '/auth': 'http://127.0.0.1:8787' } },
});
