// Upload into a staging folder on the box, then make the box prove it holds what the manifest
// says. Only files whose data crossed the wire are hashed on the box: the others are hard links
// to a backup that was verified when it was published. A box that refuses sha256sum proves it
// with rsync instead: a `--checksum --dry-run` upload of our unchanged copy makes the box's rsync
// read every byte of its own and name each file whose content differs.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readFile, utimes, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { createHashPool } from '../adapters/hash.js';
import { rsyncUpload, vanishedPath } from '../adapters/rsync.js';
import { isUserError, UserError } from '../errors.js';
import { isShellSafe, type VerifyMethod } from '../plan/box-command.js';
import type { BackupManifest } from '../plan/backup-manifest.js';
import { CHECKSUM_FILE, formatChecksums, manifestPartText, judgeMismatch, MANIFEST_DIR, RECORD_FILE, type RenameLink } from '../plan/manifest.js';
import { checksumCheckArgs, parseItemize, type UploadArgs } from '../plan/transport-args.js';
import type { RunContext } from './context.js';
import { checkMemory } from '../adapters/memory.js';

export const VMAIL_DIR = 'vmail';

export interface Source {
  /** Local folder. */
  root: string;
  /** Where it lands inside the backup folder: '' for the dump, 'vmail' for the mail tree. */
  prefix: string;
  /** An exact list (files and folders) to send, relative to root (a re-send of a few files). */
  list?: string[];
  /** The whole folder, every file reported to `onFile` (the mail tree: see UploadTally). */
  tree?: boolean;
  /** What it is, in messages (default: the prefix, or "the dump"). */
  label?: string;
}

export interface TransferOutcome {
  transferred: Set<string>;
  vanished: Set<string>;
  bytesSent: number;
  totalSize: number;
}

/** Writes `lines` each followed by `sep`, in chunks: no second copy of a long list at once. */
async function writeLines(file: string, lines: readonly string[], sep: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    for (let i = 0; i < lines.length; i += 4096) await fh.write(lines.slice(i, i + 4096).join(sep) + sep);
  } finally {
    await fh.close();
  }
}

export async function uploadSource(
  ctx: RunContext,
  src: Source,
  staging: string,
  linkBases: string[],
  runDir: string,
  extra: Partial<UploadArgs> = {},
  onFile?: (path: string, code: string) => void,
): Promise<TransferOutcome> {
  let filesFrom: string | undefined;
  if (src.list) {
    filesFrom = join(runDir, `files-${src.prefix || 'dump'}.list`);
    await writeLines(filesFrom, src.list, '\0');
  }
  const dest = src.prefix ? `${staging}/${src.prefix}` : staging;
  const r = await rsyncUpload(
    ctx.exec,
    ctx.log,
    {
      target: ctx.box.target,
      source: src.root,
      dest,
      linkDest: linkBases.map((b) => (src.prefix ? `${b}/${src.prefix}` : b)),
      filesFrom,
      tree: !src.list && src.tree,
      compress: !src.list && src.tree && linkBases.length > 0,
      timeoutSec: ctx.config.RSYNC_TIMEOUT,
      bwlimitKBps: ctx.config.BWLIMIT_KBPS,
      keepExtraneous: extra.keepExtraneous ?? true,
      ignoreTimes: extra.ignoreTimes,
      checksum: extra.checksum,
      deleteMissing: extra.deleteMissing,
    },
    `uploading ${src.label ?? (src.prefix || 'the dump')} to the Storage Box`,
    src.prefix,
    onFile,
  );
  return {
    transferred: r.transferred,
    vanished: r.vanished,
    bytesSent: r.bytesSent,
    totalSize: r.totalSize,
  };
}

/**
 * Renamed files (same content, new path) become hard links, in the staging folder, to the
 * previous backup's copy before rsync runs: rsync then finds them up to date (size and mtime;
 * never --inplace, so nothing is ever written through such a link) and they cost no storage.
 * Returns the paths linked: not sent, so the caller verifies them on the box like sent ones.
 * A box that refuses SFTP hard links costs what it cost before: rsync sends those files.
 */
export async function linkRenamesOnBox(ctx: RunContext, staging: string, prevBase: string, links: RenameLink[]): Promise<Set<string>> {
  const usable = links.filter((l) => !/[\n\r]/.test(l.path) && !/[\n\r]/.test(l.from));
  if (usable.length === 0) return new Set();
  const dirs = new Set<string>();
  for (const l of usable) {
    const parts = l.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(`${staging}/${parts.slice(0, i).join('/')}`);
  }
  try {
    const r = await ctx.box.hardLinks(
      [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1)),
      usable.map((l) => ({ existing: `${prevBase}/${l.from}`, link: `${staging}/${l.path}` })),
    );
    if (r.refused) {
      ctx.log.warn(`the Storage Box refused a hard link through sftp: ${usable.length} renamed file(s) are stored again in this backup (as before this feature)`);
      return new Set();
    }
  } catch (e) {
    if (isUserError(e) && e.kind === 'interrupted') throw e;
    ctx.log.warn(`linking renamed files on the Storage Box failed (${(e as Error).message}); they are sent and stored again`);
    return new Set();
  }
  ctx.log.info(`${usable.length} renamed file(s) linked on the box to the previous backup's copy`);
  return new Set(usable.map((l) => l.path));
}

/**
 * Paths verified per round: BOX_HASH_CALLS calls of up to 200 paths, five times over; or one
 * rsync --checksum call (names the box shell cannot take: dovecot writes every non-ASCII folder
 * name with '&'). Rounds of 50,000 for rsync held 30k such paths and their local facts at once at
 * a million messages: verify's heap peaked at 61 MiB, against 14 MiB in the other phases.
 */
const VERIFY_CHUNK = 4000;

/**
 * Files of one verify that the box's sha256sum hashes; the rest go to rsync --checksum. Each
 * sha256sum call is a login for ≤ 200 paths (the box's line limit), so a first backup of a million
 * messages was 5,400 logins and 6× its upload on the stand-in; rsync makes the box read every byte
 * the same way at one login per round of 4,000. A day's new mail stays under it.
 */
export const SHA256SUM_FILES = 20_000;

/** The box's own hash of each file (relative to `staging`): sha256sum where the box and the name allow, else its copy downloaded. */
async function boxHashes(ctx: RunContext, method: VerifyMethod, staging: string, list: string[], runDir: string): Promise<Map<string, string>> {
  const shell = method === 'sha256sum' ? list.filter((p) => isShellSafe(`${staging}/${p}`)) : [];
  const fetch = shell.length === list.length ? [] : list.filter((p) => method !== 'sha256sum' || !isShellSafe(`${staging}/${p}`));
  const got = await ctx.box.sha256(shell.map((p) => `${staging}/${p}`), (n) => ctx.log.debug(`verified ${n} on the box`));
  const out = new Map(shell.flatMap((p) => (got.has(`${staging}/${p}`) ? [[p, got.get(`${staging}/${p}`)!] as const] : [])));
  for (const [p, h] of await ctx.box.downloadHashes(staging, fetch, join(runDir, 'verify-download'), ctx.config.RSYNC_TIMEOUT)) out.set(p, h);
  return out;
}

export interface VerifyOutcome {
  checked: number;
  method: VerifyMethod;
  changedDuringRun: string[];
  vanishedDuringRun: string[];
  viaRsyncChecksum: number;
}

/**
 * Compares the box's own hashes of `paths` with the manifest; settles every difference as live
 * change (sent again and checked again) or as bad data on the box (the run fails).
 */
export async function verifyOnBox(
  ctx: RunContext,
  staging: string,
  manifest: BackupManifest,
  /** Read lazily, 2,000 at a time: a first backup's every file need not be listed at once. */
  paths: Iterable<string>,
  sources: Source[],
  runDir: string,
  /** Whether a file's data crossed the wire in this run; others came from a link-dest basis. */
  transferred: (path: string) => boolean,
  sha256sumFiles = SHA256SUM_FILES,
): Promise<VerifyOutcome> {
  const method = await ctx.box.verifyMethod();
  const out: VerifyOutcome = { checked: 0, method, changedDuringRun: [], vanishedDuringRun: [], viaRsyncChecksum: 0 };
  const sourceOf = (p: string) => sources.find((s) => s.prefix && p.startsWith(`${s.prefix}/`)) ?? sources.find((s) => !s.prefix)!;
  const localOf = (p: string) => {
    const s = sourceOf(p);
    const rel = s.prefix ? p.slice(s.prefix.length + 1) : p;
    return { source: s, rel, abs: join(s.root, rel), path: p };
  };

  /**
   * In bulk: sha256sum on the box, or rsync --checksum against our copy (names the box shell
   * cannot take, and everything on a box without sha256sum). `exact`: every file's box hash (for
   * the few files sent again: without sha256sum they are downloaded and hashed here).
   */
  const check = async (list: Iterable<string>, exact = false): Promise<{ checked: number; bad: string[]; boxHash: Map<string, string> }> => {
    // The box's answers are compared chunk by chunk and only differences are kept: memory
    // stays flat however many files a first backup verifies.
    const boxHash = new Map<string, string>();
    const bad: string[] = [];
    const byRsync: string[] = [];
    let chunk: string[] = [];
    let checked = 0;
    const flush = async () => {
      const got = await boxHashes(ctx, method, staging, chunk, runDir);
      for (const p of chunk) {
        const h = got.get(p);
        if (h === manifest.get(p)?.hash) continue;
        bad.push(p);
        if (h) boxHash.set(p, h);
      }
      chunk = [];
    };
    const flushRsync = async () => {
      const asked = byRsync.length;
      const r = await rsyncChecksumDiff(ctx, staging, byRsync.splice(0).map(localOf), (p) => manifest.get(p));
      // Vouched for by rsync: those it found equal (a difference is settled by sha256sum or fails).
      out.viaRsyncChecksum += asked - r.unsure.length - r.differing.length;
      bad.push(...r.differing);
      // Changed or gone here since they were hashed: our copy cannot vouch for the manifest's hash.
      for (const p of r.unsure) if (chunk.push(p) >= VERIFY_CHUNK) await flush();
    };
    for (const p of list) {
      checked++;
      if (!exact && (method === 'rsync-checksum' || checked > sha256sumFiles || !isShellSafe(`${staging}/${p}`))) {
        if (byRsync.push(p) >= VERIFY_CHUNK) await flushRsync();
      } else if (chunk.push(p) >= VERIFY_CHUNK) await flush();
    }
    if (byRsync.length) await flushRsync();
    if (chunk.length) await flush();
    return { checked, bad, boxHash };
  };

  const first = await check(paths);
  out.checked = first.checked;
  if (first.bad.length === 0) return out;

  const pool = createHashPool();
  const corrupt: string[] = [];
  const resend: string[] = [];
  const badBasis = new Set<string>();
  try {
    for (const p of first.bad) {
      const now = await pool.hash(localOf(p).abs);
      const verdict = judgeMismatch(manifest.get(p)?.hash ?? '', now?.hash);
      // A file linked from a dead run's unverified staging folder may be bad without any fault
      // of this run: it is sent again. Bad data that this run sent fails the run.
      if (verdict === 'corrupt-on-box' && transferred(p)) corrupt.push(p);
      else if (verdict === 'corrupt-on-box') {
        ctx.log.warn(`${p} was linked from an unverified earlier upload and differs on the box; sending it again`);
        badBasis.add(p);
        resend.push(p);
      }
      else if (verdict === 'vanished-during-run') {
        out.vanishedDuringRun.push(p);
        const h = first.boxHash.get(p);
        // What was sent is a consistent copy of a message deleted meanwhile; keep it described.
        if (h) manifest.set(p, { ...manifest.get(p)!, hash: h });
        else manifest.delete(p);
      } else {
        resend.push(p);
        manifest.set(p, { ...manifest.get(p)!, hash: now!.hash, size: now!.size });
      }
    }
  } finally {
    await pool.close();
  }
  if (corrupt.length) {
    throw new UserError(
      'verify',
      `the Storage Box holds ${corrupt.length} file${corrupt.length === 1 ? '' : 's'} that differ from what was sent (first: ${corrupt[0]}); nothing was published, the staging folder stays for inspection`,
      corrupt.slice(0, 20),
    );
  }
  if (resend.length) {
    ctx.log.info(`${resend.length} file(s) to send again (changed while read, or a bad earlier copy on the box)`);
    for (const s of sources) {
      const mine = resend.filter((p) => sourceOf(p) === s).map((p) => localOf(p).rel);
      if (mine.length) await uploadSource(ctx, { ...s, list: mine }, staging, [], runDir, { ignoreTimes: true });
    }
    const second = await check(resend, true);
    for (const p of second.bad) {
      const h = second.boxHash.get(p);
      if (badBasis.has(p)) throw new UserError('verify', `${p} is still different on the Storage Box after it was sent again; nothing was published`);
      if (!h) throw new UserError('verify', `${p} kept changing while it was sent and could not be verified on the Storage Box; nothing was published`);
      // Still changing: the box holds one whole version of it (dovecot replaces files by rename).
      manifest.set(p, { ...manifest.get(p)!, hash: h });
    }
    out.changedDuringRun.push(...resend.filter((p) => !badBasis.has(p)));
  }
  return out;
}

/**
 * A `--checksum --dry-run` upload of our copy: the box's rsync (the receiver) reads every byte of
 * its files and every file it would take is one whose content differs (or that it lacks). Only
 * files still as they were hashed (size, mtime) are asked; the others, and those that vanish
 * before rsync reads them, come back as `unsure`: our copy says nothing about the manifest's hash.
 */
async function rsyncChecksumDiff(
  ctx: RunContext,
  staging: string,
  files: { source: Source; rel: string; abs: string; path: string }[],
  hashed: (path: string) => { size: number; mtimeMs: number } | undefined,
): Promise<{ differing: string[]; unsure: string[] }> {
  const differing: string[] = [];
  const unsure: string[] = [];
  const bySource = new Map<Source, string[]>();
  const stats = await Promise.all(files.map((f) => lstat(f.abs).catch(() => undefined)));
  for (const [i, f] of files.entries()) {
    const st = stats[i];
    const e = hashed(f.path);
    if (!st?.isFile() || !e || st.size !== e.size || Math.floor(st.mtimeMs) !== e.mtimeMs) {
      unsure.push(f.path);
      continue;
    }
    const rels = bySource.get(f.source);
    if (rels) rels.push(f.rel);
    else bySource.set(f.source, [f.rel]);
  }
  for (const [src, rels] of bySource) for (const args of checksumCheckArgs(ctx.box.target, rels, src.prefix ? `${staging}/${src.prefix}/` : `${staging}/`)) {
    const under = (rel: string) => (src.prefix ? `${src.prefix}/${rel}` : rel);
    const errors: string[] = [];
    const res = await ctx.exec(
      'rsync',
      args,
      {
        what: 'checking files on the Storage Box with rsync --checksum',
        cwd: src.root,
        okCodes: [0, 23, 24],
        timeoutMs: undefined,
        onLine: (line, stream) => {
          // In a --checksum dry run every file rsync would send is one whose content differs.
          const item = stream === 'stdout' ? parseItemize(line) : undefined;
          if (item && /^[<>]f/.test(item.code)) differing.push(under(item.path));
          const gone = stream === 'stderr' ? vanishedPath(line) : undefined;
          if (gone !== undefined) unsure.push(under(gone.startsWith(`${src.root}/`) ? gone.slice(src.root.length + 1) : gone.replace(/^\.\//, '')));
          else if (stream === 'stderr' && line.trim() && !/^rsync (warning|error): some files/.test(line)) errors.push(line);
        },
      },
    );
    // A file rsync could not compare is not a file that matched: never verified by silence.
    if (res.exitCode !== 0 && errors.length) throw new UserError('verify', `checking files on the Storage Box with rsync --checksum failed: ${errors[0]}; nothing was published`, errors.slice(0, 20));
  }
  return { differing, unsure };
}

/** After a transfer: did --link-dest make hard links, or silently copies? */
export async function checkHardLinks(ctx: RunContext, staging: string, unchanged: Iterable<string>): Promise<{ sampled: number; linked: number } | undefined> {
  const sample: string[] = [];
  for (const p of unchanged) if (isShellSafe(`${staging}/${p}`) && sample.push(p) >= 16) break;
  if (sample.length === 0) return undefined;
  const counts = await ctx.box.linkCounts(sample.map((p) => `${staging}/${p}`));
  const linked = counts.filter((n) => n >= 2).length;
  if (linked === 0) {
    ctx.log.warn(
      `hard links do not work on this Storage Box: ${sample.length} unchanged files were stored as copies; the transfer stays small, but every backup costs its full size on the box`,
    );
  }
  return { sampled: sample.length, linked };
}

let partText = Buffer.allocUnsafeSlow(64 << 10);

/**
 * Writes a manifest part from its sorted lines, gzip'ed (level 9: the same lines, the same bytes).
 * A bucket (a few hundred lines, nearly every part) in one call: a stream costs ~2 ms a part, a
 * minute at a million messages; a part too big for that (a folder whose name coreutils escapes
 * stays one part) is gzip'ed as its text is made.
 */
export async function writeManifestPart(file: string, lines: readonly string[]): Promise<void> {
  // gzip's output and the part's lines are garbage a moment later, thousands of times at 1M messages.
  checkMemory();
  if (lines.length <= 4096) {
    // The text goes through one buffer for every part: a new one each time is garbage the
    // collector of a small heap lets pile up (tens of MB of array buffers at 1M messages).
    const text = lines.length ? lines.join('\n') + '\n' : '';
    if (Buffer.byteLength(text) > partText.length) partText = Buffer.allocUnsafeSlow(Math.max(2 * partText.length, Buffer.byteLength(text)));
    await writeFile(file, gzipSync(partText.subarray(0, partText.write(text)), { level: 9 }), { mode: 0o600 });
  } else await pipeline(Readable.from(manifestPartText(lines)), createGzip({ level: 9 }), createWriteStream(file, { mode: 0o600 }));
}

/** Parts get one fixed mtime: a part's bytes alone decide whether it equals yesterday's. */
const PART_MTIME = new Date('2000-01-01T00:00:00Z');

/**
 * Writes the manifest (checksums.sha256 and its parts) and the run record into `meta`, uploads
 * them into the staging folder, and has the box hash what crossed the wire. Parts are compared
 * by content (--checksum) with the previous backup's, so an unchanged maildir folder's part
 * becomes a hard link to it and costs nothing.
 */
export async function uploadManifest(ctx: RunContext, staging: string, meta: string, manifest: BackupManifest, record: unknown, linkBases: string[], runDir: string): Promise<void> {
  const top: { hash: string; path: string }[] = manifest.top();
  const want = new Map<string, string>();
  const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  if (manifest.vmail) {
    await mkdir(join(meta, MANIFEST_DIR), { recursive: true });
    for (const [part, lines] of manifest.parts()) {
      await writeManifestPart(join(meta, part), lines);
      const hash = sha(await readFile(join(meta, part)));
      await utimes(join(meta, part), PART_MTIME, PART_MTIME);
      top.push({ hash, path: part });
      want.set(part, hash);
    }
  }
  await writeFile(join(meta, CHECKSUM_FILE), formatChecksums(top));
  await writeFile(join(meta, RECORD_FILE), JSON.stringify(record, null, 2) + '\n');
  for (const f of [CHECKSUM_FILE, RECORD_FILE]) want.set(f, sha(await readFile(join(meta, f))));
  // Parts and the two files in one rsync (one login); the parts' basis is the previous backup's.
  const sent = await uploadSource(ctx, { root: meta, prefix: '', label: 'the manifest and the run record' }, staging, linkBases, runDir, { checksum: true });
  // Linked parts are byte-identical (rsync compared content) to a verified backup's.
  for (const p of want.keys()) if (!sent.transferred.has(p)) want.delete(p);
  const got = await boxHashes(ctx, await ctx.box.verifyMethod(), staging, [...want.keys()], runDir);
  for (const [p, h] of want) if (got.get(p) !== h) throw new UserError('verify', `${staging}/${p} on the Storage Box does not match what was sent; nothing was published`);
}
