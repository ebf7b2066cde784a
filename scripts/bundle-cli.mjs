// Second build step (after tsc): backup-to-hetzner as one file, written over tsc's
// dist/src/cli/backup-to-hetzner.js, so the systemd unit, the bin link, the tests and the bench keep
// their path. Why: Node 20 has no compile cache, and loading ~150 small ES modules (zod alone is 95)
// was half of the time from process start to the lock; one file makes start → lock ~90 ms of CPU
// cheaper (issue 4, measured in docs/performance.md). execa, nodemailer, winston and age-encryption stay
// outside: they are loaded on first use, after the lock. Plain .mjs, not compiled by tsc: it must run without esbuild's
// types when esbuild is missing, and then leaves tsc's unbundled (slower to start, same behaviour) file.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'src/cli/backup-to-hetzner.ts');
const out = join(root, 'dist/src/cli/backup-to-hetzner.js');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-cli: esbuild is not installed (npm ci): backup-to-hetzner stays unbundled and starts slower\n');
  process.exit(0);
}

// Each module keeps its own import.meta.url: relative lookups (the hash worker beside hash.js,
// package.json two folders up from version.js) resolve against tsc's compiled file, as unbundled.
const ownModuleUrls = {
  name: 'own-module-urls',
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      if (/import\.meta\.(?!url\b)/.test(text)) throw new Error(`${args.path}: only import.meta.url is mapped to the compiled file`);
      const compiled = join(root, 'dist', relative(root, args.path)).replace(/\.ts$/, '.js');
      const rel = relative(dirname(out), compiled);
      text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
      return { contents: text, loader: 'ts' };
    });
  },
};

// zod re-exports all of its ~40 message locales as z.locales (half of the bundle); we use none of
// them (zod installs English itself, from locales/en.js), so the bundle carries English only.
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (args) => ({ contents: 'export { default as en } from "./en.js";', loader: 'js', resolveDir: dirname(args.path) }));
  },
};

await esbuild.build({
  entryPoints: [entry],
  outfile: out,
  allowOverwrite: true,
  bundle: true,
  // Whitespace and syntax only: function names stay readable in a --debug stack trace.
  minifyWhitespace: true,
  minifySyntax: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['execa', 'nodemailer', 'winston', 'age-encryption'],
  // CommonJS dependencies (dotenv, proper-lockfile) call require(): give the ES module one.
  banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
  plugins: [ownModuleUrls, zodEnglishOnly],
  logLevel: 'warning',
});
