// Second build step (after tsc): backup-to-hetzner and restore-from-hetzner as a bundle, each entry
// written over tsc's dist/src/cli/<name>.js, so the systemd units, the bin links, the tests and the
// bench keep their path (the restore's start is part of a failover's time: 0.43 → 0.31 s for
// `--version` here). Why: Node 20 has no compile cache, and loading ~150 small ES modules (zod alone is 95)
// was half of the time from process start to the lock; a bundle makes start → lock ~90 ms of CPU
// cheaper (issue 4, measured in docs/performance.md). It is split at the CLI's dynamic imports
// (esbuild splitting): the entry holds what `run` needs up to its lock (flags, config, logger, lock),
// each command's modules and what they share are chunks in dist/src/cli-chunks/, loaded after it,
// so their code is not parsed and the built-in modules they import (tls, crypto, child_process,
// worker_threads) are not loaded before the lock. execa, nodemailer, winston and age-encryption
// stay outside: they are loaded on first use, after the lock. Plain .mjs, not compiled by tsc: it
// must run without esbuild's types when esbuild is missing, and then leaves tsc's unbundled (slower
// to start, same behaviour) file.
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'src/cli/backup-to-hetzner.ts');
const outdir = join(root, 'dist/src');
const out = join(outdir, 'cli/backup-to-hetzner.js');
// Beside cli/, at the same depth: the import.meta.url mapping below is relative to the entry's
// folder, and holds for a chunk only if the chunk's folder is as deep.
const chunkDir = 'cli-chunks';

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  process.stderr.write('bundle-cli: esbuild is not installed (npm ci): backup-to-hetzner stays unbundled and starts slower\n');
  process.exit(0);
}

// Each module keeps its own import.meta.url: relative lookups (the hash worker beside hash.js,
// package.json two folders up from version.js) resolve against tsc's compiled file, as unbundled,
// from the entry (dist/src/cli/) and from a chunk (dist/src/cli-chunks/) alike.
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

// Chunk names carry a content hash: chunks of an earlier build would linger, so the folder goes first.
await rm(join(outdir, chunkDir), { recursive: true, force: true });
await esbuild.build({
  entryPoints: [
    { in: entry, out: 'cli/backup-to-hetzner' },
    { in: join(root, 'src/cli/restore-from-hetzner.ts'), out: 'cli/restore-from-hetzner' },
  ],
  outdir,
  splitting: true,
  chunkNames: `${chunkDir}/[name]-[hash]`,
  allowOverwrite: true,
  bundle: true,
  // Whitespace and syntax only: function names stay readable in a --debug stack trace.
  minifyWhitespace: true,
  minifySyntax: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['execa', 'nodemailer', 'winston', 'age-encryption', 'tar-stream'],
  // CommonJS dependencies (dotenv, proper-lockfile) call require(): give each output file one.
  banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
  plugins: [ownModuleUrls],
  logLevel: 'warning',
});
