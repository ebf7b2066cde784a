// Checks a downloaded backup before anything on the host is touched: every file against
// checksums.sha256 and its parts (on the hash pool), encrypted files then decrypted with the age
// identity, archives stored as trees packed again (archive-repack.ts), and every archive with
// zstd -t / gzip -t.
import { rm } from 'node:fs/promises';
import { lstatSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import { hashEach } from '../adapters/hash.js';
import { UserError } from '../errors.js';
import { CHECKSUM_FILE, describeManifestProblem, readManifest } from '../plan/manifest.js';
import { decryptFile, isWrongKey, type Identities } from '../adapters/age.js';
import { isEncryptedName, plainName } from '../plan/age-keys.js';
import { materializeArchives } from './archive-repack.js';

/** checksums.sha256 and, for the split layout, its parts (each checked against its hash). */
export async function readChecksums(folder: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await readManifest(
    folder,
    (p) => out.set(p.path, p.hash),
    (problem) => {
      // A damaged line was skipped before the split too; a bad or missing part is a bad download.
      if (problem.kind !== 'bad-line') throw new UserError('verify', `the backup does not match its ${CHECKSUM_FILE}: ${describeManifestProblem(problem)}; nothing on this host was changed`);
    },
  );
  return out;
}

/**
 * Verifies the files of `checksums` that `wanted` selects; throws naming every bad file. The
 * manifest holds the hashes of what is on the box, so encrypted files are checked as they came,
 * then decrypted with `identities` (age authenticates every chunk), then the archives tested.
 */
export async function verifyDownload(
  exec: Exec,
  folder: string,
  checksums: Map<string, string>,
  wanted: (path: string) => boolean,
  signal?: AbortSignal,
  identities?: Identities,
  /**
   * Fetches the named files again from the box, without any local basis. Given, a file that does
   * not match is removed, fetched again and checked again: a basis file from this host (a live
   * file that changed meanwhile, a tampered mirror copy) is never used.
   */
  refetch?: (paths: string[]) => Promise<void>,
  /** Hashes taken while the download ran (hashAhead). */
  ahead?: Map<string, HashedAhead>,
): Promise<{ files: number; archives: number; refetched: string[] }> {
  const paths = [...checksums.keys()].filter(wanted);
  const checked = async (ps: string[]) => {
    const bad = await badFiles(folder, checksums, ps, signal, ahead);
    if (signal?.aborted) throw new UserError('interrupted', 'interrupted while verifying the download; nothing on this host was changed');
    return bad;
  };
  let bad = await checked(paths);
  const refetched = bad.map((b) => b.path);
  if (bad.length && refetch) {
    await Promise.all(refetched.map((p) => rm(join(folder, p), { force: true })));
    await refetch(refetched);
    for (const p of refetched) ahead?.delete(p); // new files: hashed now, whatever their inode numbers
    bad = await checked(refetched);
  }
  if (bad.length) {
    throw new UserError('verify', `the backup does not match its checksums.sha256: ${bad[0]!.why}${bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''}; nothing on this host was changed`, bad.slice(0, 20).map((b) => b.why));
  }
  const encrypted = paths.filter(isEncryptedName);
  if (encrypted.length && !identities) throw new UserError('config', `the backup is encrypted (${encrypted[0]}): give the age identity file with --identity PATH`);
  for (const p of encrypted) {
    if (signal?.aborted) throw new UserError('interrupted', 'interrupted while decrypting the download; nothing on this host was changed');
    await decryptOrRefuse(join(folder, p), join(folder, plainName(p)), identities!);
    await rm(join(folder, p));
  }
  let archives = 0;
  // Archives stored as trees are packed again here, then tested like those stored whole.
  const packed = await materializeArchives(exec, folder, paths.map(plainName));
  for (const p of [...paths.map(plainName), ...packed].filter((p) => /^backup_[a-z]+\.tar\.(zst|gz)$/.test(p))) {
    await exec(p.endsWith('.zst') ? 'zstd' : 'gzip', ['-t', '-q', join(folder, p)], { what: `testing ${p}`, errorKind: 'verify', timeoutMs: 3_600_000 });
    archives++;
  }
  return { files: paths.length, archives, refetched };
}

/** Hashes `paths` of `folder` against the manifest (nothing fetched again); throws naming every bad file. */
export async function checkHashes(folder: string, checksums: Map<string, string>, paths: string[], signal?: AbortSignal): Promise<void> {
  const lines = (await badFiles(folder, checksums, paths, signal)).map((b) => b.why);
  if (signal?.aborted) throw new UserError('interrupted', 'interrupted while verifying the download; nothing on this host was changed');
  if (lines.length) throw new UserError('verify', `the backup does not match its checksums.sha256: ${lines[0]}${lines.length > 1 ? ` (and ${lines.length - 1} more)` : ''}`, lines.slice(0, 20));
}

/** A file hashed before the download ended, with the inode facts it had when its hash was taken. */
export interface HashedAhead {
  hash: string;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

const sameInode = (a: Stats, b: HashedAhead) => a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/**
 * Hashes files already in the restore folder (linked from a standby copy) while rsync fetches the
 * rest: the link is the bottleneck then and the cores are idle. Each file is stat'ed before it is
 * read; verify takes the hash only for a file whose inode, size and times are still those (rsync
 * replaces a file it updates by a new one, never writes into it), else hashes it again.
 */
export async function hashAhead(folder: string, paths: string[], signal?: AbortSignal): Promise<Map<string, HashedAhead>> {
  await new Promise(setImmediate); // the download starts first
  const seen = new Map<string, Stats>();
  // Stat'ed as the hash pool asks for the next batch: a loop over all of them first held the
  // event loop (and rsync's start) for ~0.4 s at 38k files.
  function* stated(): Generator<string> {
    for (const p of paths) {
      if (signal?.aborted) return;
      const st = lstatSync(join(folder, p), { throwIfNoEntry: false });
      if (!st) continue; // gone (rsync's --delete): verify finds what is missing
      seen.set(p, st);
      yield p;
    }
  }
  const out = new Map<string, HashedAhead>();
  await hashEach(stated(), (p) => ({ abs: join(folder, p), size: seen.get(p)!.size }), (p, r) => {
    const st = seen.get(p)!;
    if (r) out.set(p, { hash: r.hash, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs });
  });
  return out;
}

function* unlessAborted<T>(items: Iterable<T>, signal?: AbortSignal): Generator<T> {
  for (const t of items) {
    if (signal?.aborted) return;
    yield t;
  }
}

/**
 * The files of `paths` (manifest paths under `folder`) that are missing or whose SHA-256 is not
 * the manifest's. `ahead`: hashes taken earlier (hashAhead), used for files whose inode is unchanged.
 */
export async function badFiles(folder: string, checksums: Map<string, string>, paths: string[], signal?: AbortSignal, ahead?: Map<string, HashedAhead>): Promise<{ path: string; why: string }[]> {
  const bad: { path: string; why: string }[] = [];
  const judge = (p: string, hash: string | undefined) => {
    if (hash === undefined) bad.push({ path: p, why: `${p}: missing from the download` });
    else if (hash !== checksums.get(p)) bad.push({ path: p, why: `${p}: SHA-256 ${hash.slice(0, 12)}… but the manifest says ${checksums.get(p)!.slice(0, 12)}…` });
  };
  let todo = paths;
  if (ahead?.size) {
    todo = [];
    // lstat in a loop: promises through the thread pool cost ~20× more per file here.
    for (const p of paths) {
      const known = ahead.get(p);
      const st = known ? lstatSync(join(folder, p), { throwIfNoEntry: false }) : undefined;
      if (known && st && sameInode(st, known)) judge(p, known.hash);
      else todo.push(p);
    }
  }
  // An abort skips the rest: the caller sees signal.aborted and says so.
  await hashEach(unlessAborted(todo, signal), (p) => ({ abs: join(folder, p) }), (p, r) => judge(p, r?.hash));
  return bad;
}

/** Decrypts one verified file; an identity that is not among its recipients is refused in one line. */
export async function decryptOrRefuse(src: string, dst: string, ids: Identities): Promise<void> {
  try {
    await decryptFile(src, dst, ids);
  } catch (e) {
    if (!isWrongKey(e)) throw e;
    throw new UserError(
      'preflight',
      `the age identity ${ids.path} (public key ${ids.recipients.map(short).join(', ')}) cannot decrypt ${src.split('/').pop()}: it is not one of the keys this backup was encrypted to; give the right identity file with --identity (nothing on this host was changed)`,
    );
  }
}

const short = (r: string) => (r.length > 24 ? `${r.slice(0, 16)}…${r.slice(-6)}` : r);
