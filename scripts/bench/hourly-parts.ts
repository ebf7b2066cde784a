// What an hourly run stores in manifest parts (issue 16), without the box: the bench's default
// fixture (seed 42, 1 GiB), its manifest parts as a run writes them, then the bench's hour of
// change (scripts/bench/hourly.ts: 1/24 of its day, seed 24) and the parts again. A part whose
// name and bytes the previous run wrote is hard-linked by the upload (rsync --checksum
// --link-dest, tested in test/manifest.test.ts); every other part is stored anew, and
// checksums.sha256, which lists every part, is stored anew each run.
//
//   npm run build && nice -n 19 node dist/scripts/bench/hourly-parts.js [--mail-mib 1024] [--work DIR]
//
// The fixture is made once in --work and copied for each measurement (the change is made on the
// copy), so builds of two versions measure the same mail.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { hashIndex, walkTree } from '../../src/backup/manifest-step.js';
import { writeManifestPart } from '../../src/backup/transfer.js';
import { BackupManifest } from '../../src/plan/backup-manifest.js';
import { formatChecksumLine, MANIFEST_DIR } from '../../src/plan/manifest.js';
import { generateMaildir, mutateMaildir } from '../../src/sandbox/maildir-fixture.js';
import { DAY } from './hourly.js';

const { values: opt } = parseArgs({ options: { 'mail-mib': { type: 'string', default: '1024' }, work: { type: 'string', default: '/tmp/mcb-hourly-parts' } } });
const work = resolve(opt.work!);
const fixture = join(work, 'fixture');
const copy = join(work, 'vmail');
const BLOCK = 4096;

/** The parts a run writes for the tree at `copy`: name → sha256 and size. */
async function parts(out: string): Promise<Map<string, { hash: string; bytes: number }>> {
  const { index } = await walkTree(copy, 'vmail');
  await hashIndex(index, copy);
  await rm(out, { recursive: true, force: true });
  await mkdir(join(out, MANIFEST_DIR), { recursive: true });
  const got = new Map<string, { hash: string; bytes: number }>();
  for (const [part, lines] of new BackupManifest(new Map(), index).parts()) {
    await writeManifestPart(join(out, part), lines);
    const data = await readFile(join(out, part));
    got.set(part, { hash: createHash('sha256').update(data).digest('hex'), bytes: data.length });
  }
  return got;
}

if (!existsSync(fixture)) {
  await mkdir(work, { recursive: true });
  const g = await generateMaildir(join(fixture, '.tmp'), { seed: 42, totalBytes: Number(opt['mail-mib']) * 1024 * 1024 });
  execFileSync('mv', [join(fixture, '.tmp'), join(fixture, 'vmail')]);
  console.error(`fixture: ${JSON.stringify(g).slice(0, 200)}`);
}
await rm(copy, { recursive: true, force: true });
execFileSync('cp', ['-a', join(fixture, 'vmail'), copy]);
const before = await parts(join(work, 'before'));
const change = await mutateMaildir(copy, { seed: 24, newFraction: DAY.newFraction / 24, deleteFraction: DAY.deleteFraction / 24, renameFraction: DAY.renameFraction / 24 });
const after = await parts(join(work, 'after'));
await rm(copy, { recursive: true, force: true });

const stored = [...after].filter(([name, p]) => before.get(name)?.hash !== p.hash);
const folderOf = (name: string) => name.replace(/(\.\d+-of-\d+)?\.sha256\.gz$/, '');
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
console.log(
  JSON.stringify({
    change,
    folders: new Set([...after.keys()].map(folderOf)).size,
    parts: after.size,
    partsBytes: sum([...after.values()].map((p) => p.bytes)),
    changedFolders: new Set(stored.map(([n]) => folderOf(n))).size,
    stored: { parts: stored.length, bytes: sum(stored.map(([, p]) => p.bytes)), blocks: sum(stored.map(([, p]) => Math.ceil(p.bytes / BLOCK) * BLOCK)) },
    // checksums.sha256's lines for the parts (it is stored anew every run; the dump's lines are the same either way).
    checksumsPartLines: sum([...after].map(([n, p]) => formatChecksumLine(p.hash, n).length + 1)),
  }),
);
