// Peak memory of the manifest step's walk at ~1M messages (issue 19), on real (empty) files: a
// first walk without a hash cache (run 1), then a walk that reads the previous run's cache
// alongside it (runs 2, 3 and every hourly run). The files are empty because the walk only lists
// and lstat's them; the cache gives each a made-up hash, as only size and mtime decide reuse.
//
//   npm run build && MALLOC_MMAP_THRESHOLD_=131072 nice -n 19 node --max-semi-space-size=1 \
//     --optimize-for-size --expose-gc dist/scripts/bench/walk-memory.js [--messages 1000000] [--folders 100] [--keep DIR] [--hash]
//
// --hash: the files hold 2 KiB (a message of the bench's size) and the first walk's index is
// hashed as run 1 hashes it (hashIndex on the worker pool), as a pass of its own; the cache then
// leaves out every 100th file, and the second walk's index is hashed as run 2 hashes a day's new
// mail (1 % of the files, in every folder).
//
// The node flags and the malloc setting are the unit's (systemd/mailcow-backup.service). Prints
// one JSON line: each walk's own peak RSS (VmHWM, reset at its start through
// /proc/self/clear_refs) and the largest heap use sampled while it read the cache.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IndexSpillFile } from '../../src/adapters/index-spill.js';
import { hashIndex, PreviousManifest, walkTree } from '../../src/backup/manifest-step.js';
import { memoryCollections, watchMemory } from '../../src/adapters/memory.js';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const MESSAGES = Number(arg('messages', '1000000'));
const MAILDIRS = Number(arg('folders', '100'));
const KEEP = arg('keep', '');
const HASH = process.argv.includes('--hash');

/** Maildir sizes falling off geometrically like the bench's (as index-memory.ts). */
function sizes(): number[] {
  const raw = Array.from({ length: MAILDIRS }, (_, k) => 0.87 ** k);
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((r) => Math.max(1, Math.round((r / sum) * MESSAGES)));
}

const MB = (b: number) => Math.round(b / 1e5) / 10;
const hwm = () => MB(Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024);

async function pass<T>(name: string, out: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  writeFileSync('/proc/self/clear_refs', '5');
  let heapUsed = 0;
  let atRss = { rss: 0, heapTotal: 0, heapUsed: 0, arrayBuffers: 0 };
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    heapUsed = Math.max(heapUsed, m.heapUsed);
    if (m.rss > atRss.rss) atRss = m;
  }, 5);
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    clearInterval(timer);
    out[name] = { peakRssMB: hwm(), sampledHeapUsedMB: MB(heapUsed), atSampledRss: { rss: MB(atRss.rss), heapTotal: MB(atRss.heapTotal), heapUsed: MB(atRss.heapUsed), arrayBuffers: MB(atRss.arrayBuffers) }, seconds: Math.round(performance.now() - t0) / 1000 };
  }
}

const dir = KEEP || (await mkdtemp(join(tmpdir(), 'mcb-walk-memory-')));
const root = join(dir, 'vmail');
const result: Record<string, unknown> = { messages: MESSAGES, folders: MAILDIRS, exposeGc: typeof (globalThis as { gc?: unknown }).gc === 'function' };
const stopWatching = watchMemory();
try {
  const marker = join(dir, HASH ? 'done-2k' : 'done');
  if (!existsSync(marker)) {
    const body = randomBytes(2048);
    sizes().forEach((n, k) => {
      for (const [sub, count] of [['cur', n - Math.floor(n / 50)], ['new', Math.floor(n / 50)]] as const) {
        const d = join(root, `example.com/u${String(k).padStart(3, '0')}/Maildir/${sub}`);
        mkdirSync(d, { recursive: true });
        for (let i = 0; i < count; i++) {
          const fd = openSync(join(d, `${1_700_000_000 + i}.M${100_000 + i}P${2000 + (i % 977)}.mail.example.com,S=${3000 + i},W=${3100 + i}:2,${i % 3 ? 'S' : 'RS'}`), 'w');
          if (HASH) (body.writeUInt32LE(i, 0), body.writeUInt32LE(k, 4), writeSync(fd, body));
          closeSync(fd);
        }
      }
    });
    writeFileSync(marker, '');
  }
  const spill1 = new IndexSpillFile(join(dir, 'index-1'));
  const first = await pass('walk without cache', result, () => walkTree(root, 'vmail', undefined, spill1));
  if (HASH) {
    const s = await pass('hash (run 1)', result, () => hashIndex(first.index, root));
    if (s.hashed !== first.index.folders.reduce((a, f) => a + f.length, 0)) throw new Error(`hashed ${s.hashed} files`);
  }
  // The cache as saveHashCache writes it: header, then the tree in walk order.
  const cache = join(dir, 'hash-cache.jsonl');
  const fd = openSync(cache, 'w');
  writeSync(fd, JSON.stringify({ hashCache: 2, order: 'walk' }) + '\n');
  const hash = 'ab'.repeat(32);
  let chunk = '';
  let left = 0;
  for (const f of first.index.folders) {
    for (let i = 0; i < f.length; i++) {
      if (HASH && i % 100 === 99) {
        left++;
        continue;
      }
      chunk += JSON.stringify([first.index.pathOf(f, i), f.size[i], f.mtime[i], hash]) + '\n';
      if (chunk.length > 1 << 20) (writeSync(fd, chunk), (chunk = ''));
    }
  }
  writeSync(fd, chunk);
  closeSync(fd);
  spill1.close();
  const files = first.index.folders.reduce((a, f) => a + f.length, 0);
  Object.assign(result, { files, largest: Math.max(...first.index.folders.map((f) => f.length)) });
  const spill = new IndexSpillFile(join(dir, 'index-2'));
  try {
    const second = await pass('walk with cache', result, async () => walkTree(root, 'vmail', await PreviousManifest.open(cache, 'vmail'), spill));
    if (second.reused !== files - left) throw new Error(`reused ${second.reused} of ${files - left} hashes`);
    if (HASH) {
      const s = await pass('hash (run 2)', result, () => hashIndex(second.index, root));
      if (s.hashed !== left) throw new Error(`hashed ${s.hashed} of ${left} new files`);
    }
  } finally {
    spill.close();
  }
  stopWatching();
  result.collections = memoryCollections();
  console.log(JSON.stringify(result));
} finally {
  if (!KEEP) await rm(dir, { recursive: true, force: true });
}
