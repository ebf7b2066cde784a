// The manifest: one SHA-256 per file of a backup, written as `checksums.sha256` in the format
// `sha256sum -c` reads (so an admin can check a downloaded backup with coreutils alone).

export interface ManifestEntry {
  /** Relative to the backup folder, '/'-separated: `vmail/example.com/alice/Maildir/cur/…`. */
  path: string;
  hash: string;
  size: number;
  mtimeMs: number;
}

export const CHECKSUM_FILE = 'checksums.sha256';
export const RECORD_FILE = 'backup.json';

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
