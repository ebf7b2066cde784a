// Peak memory of a run's manifest step at ~1M messages (issue 19), without a million files on
// disk: the index is fed from a generated listing (folder by folder in walk order, as walkTree
// adds them, spilled past its budget as a run spills it), every file gets a hash (sha256 of its
// name; the hashing pass's own memory is its workers', not the index's), then the passes a run
// makes over the index: the upload's marks, verify's look-ups, the manifest parts (written and
// gzip'ed, each read back for its hash as uploadManifest does) and the hash cache.
//
//   npm run build && MALLOC_MMAP_THRESHOLD_=131072 nice -n 19 node --max-semi-space-size=1 \
//     --optimize-for-size dist/scripts/bench/index-memory.js [--messages 1000000] [--folders 100]
//
// The node flags and the malloc setting are the unit's (systemd/mailcow-backup.service). Prints
// one JSON line: each pass's own peak RSS (the kernel's high-water mark VmHWM, reset at the pass's
// start through /proc/self/clear_refs), the run's peak (the largest of them), and the largest RSS
// sampled in each pass with the array buffers and heap then.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexSpillFile } from '../../src/adapters/index-spill.js';
import { saveHashCache } from '../../src/backup/manifest-step.js';
import { writeManifestPart } from '../../src/backup/transfer.js';
import { BackupManifest } from '../../src/plan/backup-manifest.js';
import { MANIFEST_DIR } from '../../src/plan/manifest.js';
import { Folder, VmailIndex } from '../../src/plan/vmail-index.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MESSAGES = arg('messages', 1_000_000);
const MAILDIRS = arg('folders', 100);

/** Maildir sizes falling off geometrically like the bench's (a few big archives, many small folders), summing to MESSAGES. */
function sizes(): number[] {
  const raw = Array.from({ length: MAILDIRS }, (_, k) => 0.87 ** k);
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((r) => Math.max(1, Math.round((r / sum) * MESSAGES)));
}

const MB = (b: number) => Math.round(b / 1e5) / 10;
const peaks: Record<string, { passPeak: number; seconds: number; rss: number; arrayBuffers: number; heapUsed: number }> = {};
let phase = '';
let started = 0;
/** Starts a pass: the kernel's peak RSS of this process starts again from its RSS now. */
function startPhase(name: string): void {
  phase = name;
  started = performance.now();
  writeFileSync('/proc/self/clear_refs', '5');
}
function sample(): void {
  const m = process.memoryUsage();
  const p = (peaks[phase] ??= { passPeak: 0, seconds: 0, rss: 0, arrayBuffers: 0, heapUsed: 0 });
  if (m.rss > p.rss) Object.assign(p, { rss: m.rss, arrayBuffers: MB(m.arrayBuffers), heapUsed: MB(m.heapUsed) });
}
function endPhase(): void {
  sample();
  const p = peaks[phase]!;
  p.rss = MB(p.rss);
  p.seconds = Math.round(performance.now() - started) / 1000;
  p.passPeak = MB(Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024);
}

const dir = await mkdtemp(join(tmpdir(), 'mcb-index-memory-'));
try {
  const spill = new IndexSpillFile(join(dir, 'vmail-index'));
  const index = new VmailIndex('vmail', spill);
  startPhase('walk');
  // Folder paths in walk order (compareFolders: a folder's subfolders right after it; all here
  // sort plainly), each maildir's cur and new: `new` holds a few, `cur` the rest.
  const dirs = sizes().map((n, k) => ({ n, path: `example.com/u${String(k).padStart(3, '0')}/Maildir` }));
  let files = 0;
  for (const d of dirs) {
    for (const [sub, n] of [['cur', d.n - Math.floor(d.n / 50)], ['new', Math.floor(d.n / 50)]] as const) {
      if (!n) continue;
      const list = Array.from({ length: n }, (_, i) => ({ name: `${1_700_000_000 + i}.M${100_000 + i}P${2000 + (i % 977)}.mail.example.com,S=${3000 + i},W=${3100 + i}:2,${i % 3 ? 'S' : 'RS'}`, size: 3000 + i, mtimeMs: 1.7e12 + i, uid: 5000, gid: 5000 }));
      index.add(new Folder(`${d.path}/${sub}`, 0o700, 5000, 5000, list));
      files += n;
      sample();
    }
  }
  endPhase();
  startPhase('hash');
  for (const f of index.folders) {
    for (let i = 0; i < f.length; i++) {
      f.setHash(i, createHash('sha256').update(f.name(i)).digest('hex'));
      if (i % 20_000 === 0) sample();
    }
  }
  endPhase();
  startPhase('upload marks');
  let k = 0;
  for (const f of index.folders) {
    for (let i = 0; i < f.length; i++) {
      index.markSeen(index.pathOf(f, i), true);
      if (++k % 20_000 === 0) sample();
    }
  }
  endPhase();
  startPhase('verify');
  const manifest = new BackupManifest(new Map(), index);
  k = 0;
  for (const f of index.folders) {
    for (let i = 0; i < f.length; i++) {
      if (!manifest.get(index.pathOf(f, i))?.hash) throw new Error('lost a hash');
      if (++k % 20_000 === 0) sample();
    }
  }
  endPhase();
  startPhase('parts');
  const meta = join(dir, 'meta');
  await mkdir(join(meta, MANIFEST_DIR), { recursive: true });
  let parts = 0;
  let partBytes = 0;
  for (const [part, lines] of manifest.parts()) {
    await writeManifestPart(join(meta, part), lines);
    const data = await readFile(join(meta, part));
    createHash('sha256').update(data).digest('hex');
    partBytes += data.length;
    parts++;
    sample();
  }
  endPhase();
  startPhase('hash cache');
  await saveHashCache(join(dir, 'hash-cache'), manifest);
  endPhase();
  spill.close();
  console.log(JSON.stringify({ files, folders: index.folders.length, largest: Math.max(...index.folders.map((f) => f.length)), parts, partMB: MB(partBytes), spillWrittenMB: MB(spill.written), peakMB: Math.max(...Object.values(peaks).map((p) => p.passPeak)), peaks }));
} finally {
  await rm(dir, { recursive: true, force: true });
}
