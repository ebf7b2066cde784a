// The manifest: one SHA-256 per file of a backup, in the format `sha256sum -c` reads (so an
// admin can check a downloaded backup with coreutils alone).
//
// Layout. Old backups: `checksums.sha256` lists every file. Since the split: `checksums.sha256`
// lists the files outside the mail tree plus the parts `manifest/<folder>.sha256.gz`, one per
// maildir folder, which list the mail (paths relative to the backup folder, like every line),
// gzip'ed (hex hashes and long maildir names: 40 % of the bytes). A folder whose mail did not
// change keeps a byte-identical part, which the upload hard-links to the previous backup's: the
// manifest costs on the box only what changed. A big folder's part is split into buckets by hash
// prefix (manifest-buckets.ts), so one new message rewrites one bucket, not the folder's part.
// Readers take every part checksums.sha256 lists, whatever its name. Check a download with
// coreutils and gzip:
//   zcat -f checksums.sha256 manifest/*.gz | sha256sum -c
// readManifest below is the one reader of both layouts (remote verify, scrub, restore).
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ManifestEntry {
  /** Relative to the backup folder, '/'-separated: `vmail/example.com/alice/Maildir/cur/…`. */
  path: string;
  hash: string;
  size: number;
  mtimeMs: number;
}

export const CHECKSUM_FILE = 'checksums.sha256';
export const RECORD_FILE = 'backup.json';
export const MANIFEST_DIR = 'manifest';
const PART = /^manifest\/[A-Za-z0-9._@+=,~-]+\.sha256\.gz$/;

/** Whether a path listed in checksums.sha256 is a manifest part. */
export const isManifestPart = (path: string) => PART.test(path);

/**
 * The part a mail file is listed in: its maildir folder (the parent of cur/new/tmp), or for
 * other files (dovecot's indexes, sieve) their folder. The name is the folder made safe for
 * the box shell plus a short hash of the real folder, so two folders never share a part.
 */
export function manifestPartOf(path: string, mailDir = 'vmail'): string | undefined {
  if (!path.startsWith(`${mailDir}/`)) return undefined;
  const parts = path.split('/').slice(1, -1);
  if (parts.length && /^(cur|new|tmp)$/.test(parts[parts.length - 1]!)) parts.pop();
  const folder = parts.join('/');
  const safe = (folder || '_').replace(/\//g, '~').replace(/[^A-Za-z0-9._@+=,~-]/g, '_').slice(0, 150);
  return `${MANIFEST_DIR}/${safe}-${createHash('sha256').update(folder).digest('hex').slice(0, 10)}.sha256.gz`;
}

export type ManifestProblem =
  | { kind: 'bad-line'; file: string; line: string }
  | { kind: 'part-missing'; file: string }
  | { kind: 'part-mismatch'; file: string; expected: string; actual: string };

/**
 * Reads a backup's manifest from a local folder holding its checksums.sha256 and, for the split
 * layout, the parts it lists (each checked against its listed hash before its lines count).
 * Calls `onEntry` for every data file (the parts themselves included: they are files of the
 * backup too) and `onProblem` for what cannot be trusted. Streams: no whole file in memory.
 */
export async function readManifest(
  folder: string,
  onEntry: (e: { hash: string; path: string }) => void,
  onProblem: (p: ManifestProblem) => void = (p) => {
    throw new Error(describeManifestProblem(p));
  },
): Promise<{ parts: number }> {
  const parts: { hash: string; path: string }[] = [];
  const rl = createInterface({ input: createReadStream(join(folder, CHECKSUM_FILE)), crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line) continue;
    const p = parseChecksumLine(line);
    if (!p) onProblem({ kind: 'bad-line', file: CHECKSUM_FILE, line });
    else {
      if (isManifestPart(p.path)) parts.push(p);
      onEntry(p);
    }
  }
  for (const part of parts) {
    let data: Buffer;
    try {
      data = await readFile(join(folder, part.path));
    } catch {
      onProblem({ kind: 'part-missing', file: part.path });
      continue;
    }
    const actual = createHash('sha256').update(data).digest('hex');
    if (actual !== part.hash) {
      onProblem({ kind: 'part-mismatch', file: part.path, expected: part.hash, actual });
      continue;
    }
    data = gunzipSync(data);
    let start = 0;
    while (start < data.length) {
      let end = data.indexOf(10, start);
      if (end < 0) end = data.length;
      const line = data.toString('utf8', start, end);
      start = end + 1;
      if (!line) continue;
      const p = parseChecksumLine(line);
      if (p) onEntry(p);
      else onProblem({ kind: 'bad-line', file: part.path, line });
    }
  }
  return { parts: parts.length };
}

/**
 * A part's text, in sha256sum's format, in chunks of ~64 KiB from `lines` already sorted like
 * formatChecksums sorts them (BackupManifest.parts): gzip it as it comes, and no part ever exists
 * as one string. A folder of 57k messages was ~55 MB of transient memory as entries, lines, text
 * and buffer.
 */
export function* manifestPartText(lines: Iterable<string>): Generator<string> {
  let chunk = '';
  for (const l of lines) {
    chunk += l + '\n';
    if (chunk.length >= 64 << 10) (yield chunk, (chunk = ''));
  }
  if (chunk) yield chunk;
}

export function describeManifestProblem(p: ManifestProblem): string {
  if (p.kind === 'bad-line') return `${p.file} holds a line that is not a checksum: ${JSON.stringify(p.line.slice(0, 120))}`;
  if (p.kind === 'part-missing') return `${p.file}, a part of the manifest, is missing`;
  return `${p.file}, a part of the manifest, does not match its checksum in ${CHECKSUM_FILE}`;
}

/** coreutils escapes a name holding a backslash, newline or CR and marks the line with '\'. */
export function formatChecksumLine(hash: string, path: string): string {
  if (/[\\\n\r]/.test(path)) {
    const escaped = path.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
    return `\\${hash}  ${escaped}`;
  }
  return `${hash}  ${path}`;
}

export function parseChecksumLine(line: string): { hash: string; path: string } | undefined {
  const m = /^(\\)?([0-9a-f]{64}) [ *](.*)$/.exec(line);
  if (!m) return undefined;
  let path = m[3]!;
  if (m[1]) path = path.replace(/\\(\\|n|r)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : '\\'));
  return { hash: m[2]!, path };
}

export function formatChecksums(entries: Iterable<{ hash: string; path: string }>): string {
  const lines: string[] = [];
  for (const e of entries) lines.push(formatChecksumLine(e.hash, e.path));
  lines.sort();
  return lines.length ? lines.join('\n') + '\n' : '';
}

export type Discrepancy =
  | { path: string; kind: 'missing-on-box' }
  | { path: string; kind: 'mismatch'; expected: string; actual: string };

/** Compares what the box computed with what the manifest says, for the paths asked. */
export function compareHashes(expected: Map<string, string>, actual: Map<string, string>, paths: Iterable<string>): Discrepancy[] {
  const out: Discrepancy[] = [];
  for (const path of paths) {
    const want = expected.get(path);
    const got = actual.get(path);
    if (got === undefined) out.push({ path, kind: 'missing-on-box' });
    else if (want !== got) out.push({ path, kind: 'mismatch', expected: want ?? '(not in manifest)', actual: got });
  }
  return out;
}

/**
 * A file whose copy on the box differs from the manifest is read again locally. If the local
 * file changed since it was hashed, the change is live mail (new mail, dovecot rewriting its
 * lists) and the file is sent again; if it still has the manifest's hash, the box holds bad
 * data and nothing may be published.
 */
export function judgeMismatch(manifestHash: string, localHashNow: string | undefined): 'changed-during-run' | 'vanished-during-run' | 'corrupt-on-box' {
  if (localHashNow === undefined) return 'vanished-during-run';
  return localHashNow === manifestHash ? 'corrupt-on-box' : 'changed-during-run';
}

/** A file of the new backup whose content the previous backup holds under another name. */
export interface RenameLink {
  /** Path in the new backup (manifest path). */
  path: string;
  /** Path of the same content in the previous backup. */
  from: string;
}

/**
 * Renamed messages (a maildir flag change, a move between folders): paths new in this backup
 * (`added`) whose hash, size and mtime (to the second, what rsync compares) a path of the
 * previous backup that is gone now (`gone`) had. Linking them on the box before the upload makes
 * rsync find them up to date: they cost neither transfer nor storage. Both lists are a day's
 * change, small whatever the size of the tree.
 */
export function planRenameLinks(added: Iterable<ManifestEntry>, gone: Iterable<ManifestEntry>): RenameLink[] {
  const byHash = new Map<string, { path: string; size: number; sec: number }>();
  for (const p of gone) if (!byHash.has(p.hash)) byHash.set(p.hash, { path: p.path, size: p.size, sec: Math.floor(p.mtimeMs / 1000) });
  const out: RenameLink[] = [];
  if (byHash.size === 0) return out;
  for (const e of added) {
    const old = byHash.get(e.hash);
    if (old && old.size === e.size && old.sec === Math.floor(e.mtimeMs / 1000)) out.push({ path: e.path, from: old.path });
  }
  return out;
}
