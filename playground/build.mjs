// Builds the playground into ../supervisor/playground/static/ (served by the daemon at
// /playground): src/main.ts bundled with livekit-client into one ES module, plus the page and
// its stylesheet copied as they are. No CDN at run time; the output is deterministic.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, '..', 'supervisor', 'playground', 'static');
mkdirSync(out, { recursive: true });
const lock = JSON.parse(readFileSync(join(here, 'package-lock.json'), 'utf8'));
const bundled = Object.entries(lock.packages)
  .filter(([path, meta]) => path.startsWith('node_modules/') && !meta.dev)
  .map(([path, meta]) => `${path.slice(13)}@${meta.version} ${meta.license}`)
  .sort();

await build({
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile: join(out, 'playground.js'),
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  legalComments: 'eof',
  banner: { js: `/*! voice-supervisor playground. Bundles: ${bundled.join(', ')}. */` },
  charset: 'utf8',
  logLevel: 'warning',
});
for (const name of ['index.html', 'playground.css']) {
  copyFileSync(join(here, 'src', name), join(out, name));
}
