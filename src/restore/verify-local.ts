// Checks a downloaded backup before anything on the host is touched: every file against
// checksums.sha256 (on the hash pool) and every archive with zstd -t / gzip -t.
import { join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import { createHashPool, forEachLimit } from '../adapters/hash.js';
import { UserError } from '../errors.js';
import { CHECKSUM_FILE, describeManifestProblem, readManifest } from '../plan/manifest.js';

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

/** Verifies the files of `checksums` that `wanted` selects; throws naming every bad file. */
export async function verifyDownload(exec: Exec, folder: string, checksums: Map<string, string>, wanted: (path: string) => boolean, signal?: AbortSignal): Promise<{ files: number; archives: number }> {
  const paths = [...checksums.keys()].filter(wanted);
  const bad: string[] = [];
  const pool = createHashPool();
  try {
    await forEachLimit(paths, 16, async (p) => {
      if (signal?.aborted) return;
      const r = await pool.hash(join(folder, p));
      if (!r) bad.push(`${p}: missing from the download`);
      else if (r.hash !== checksums.get(p)) bad.push(`${p}: SHA-256 ${r.hash.slice(0, 12)}… but the manifest says ${checksums.get(p)!.slice(0, 12)}…`);
    });
  } finally {
    await pool.close();
  }
  if (signal?.aborted) throw new UserError('interrupted', 'interrupted while verifying the download; nothing on this host was changed');
  if (bad.length) {
    throw new UserError('verify', `the backup does not match its checksums.sha256: ${bad[0]}${bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''}; nothing on this host was changed`, bad.slice(0, 20));
  }
  let archives = 0;
  for (const p of paths.filter((p) => /^backup_[a-z]+\.tar\.(zst|gz)$/.test(p))) {
    await exec(p.endsWith('.zst') ? 'zstd' : 'gzip', ['-t', '-q', join(folder, p)], { what: `testing ${p}`, errorKind: 'verify', timeoutMs: 3_600_000 });
    archives++;
  }
  return { files: paths.length, archives };
}
