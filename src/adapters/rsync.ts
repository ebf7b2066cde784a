// rsync to the box. Reads its itemized output as it streams (which files really crossed the
// wire, which vanished while it read a live maildir) and tells vanished files, which are
// normal, from real errors, which are not.
import { UserError } from '../errors.js';
import { parseItemize, parseStats, unescapeRsync, uploadArgs, type UploadArgs } from '../plan/transport-args.js';
import type { Exec } from './exec.js';
import type { Logger } from './logger.js';

export interface UploadResult {
  /**
   * Paths (relative to the source) whose data was sent: these must be verified on the box.
   * Empty when `onFile` is given: then the caller keeps that account (a first backup of a large
   * mail tree sends every file, too many for a set of strings; see VmailIndex).
   */
  transferred: Set<string>;
  /** Paths that disappeared between the listing and the transfer. */
  vanished: Set<string>;
  bytesSent: number;
  totalSize: number;
  exitCode: number;
}

const VANISHED = [/^file has vanished: "(.+)"$/, /^rsync: \[sender\] link_stat "(.+)" failed: No such file or directory \(2\)$/, /^rsync: link_stat "(.+)" failed: No such file or directory \(2\)$/];
/** The path of rsync's message about a source file that vanished, as rsync printed it. */
export function vanishedPath(line: string): string | undefined {
  for (const re of VANISHED) {
    const m = re.exec(line);
    if (m) return unescapeRsync(m[1]!);
  }
  return undefined;
}

const SUMMARY = /^rsync (warning|error): some files (vanished|\/attrs were not transferred)/;

/**
 * `prefix`: put in front of every reported path (where the source lands in the backup).
 * `onFile`: every file rsync itemized (with `tree`, every file the backup now holds from this source).
 */
export async function rsyncUpload(exec: Exec, log: Logger, a: UploadArgs, what: string, prefix = '', onFile?: (path: string, code: string) => void): Promise<UploadResult> {
  const transferred = new Set<string>();
  const vanished = new Set<string>();
  const errors: string[] = [];
  const statLines: string[] = [];
  const src = a.source.endsWith('/') ? a.source : `${a.source}/`;
  const under = (p: string) => (prefix ? `${prefix}/${p}` : p);
  const rel = (p: string) => under(p.startsWith(src) ? p.slice(src.length) : p.startsWith(a.source) ? p.slice(a.source.length).replace(/^\//, '') : p);
  const res = await exec('rsync', uploadArgs(a), {
    what,
    okCodes: [0, 23, 24],
    tailLines: 30,
    timeoutMs: undefined,
    onLine: (line, stream) => {
      if (stream === 'stdout') {
        const item = parseItemize(line);
        if (item) {
          // '<f' is a file sent to the box (upload); '>f' one received (when the box is the source).
          if (item.code[1] !== 'f') return;
          const path = under(item.path);
          if (onFile) onFile(path, item.code);
          else if (item.code[0] === '<' || item.code[0] === '>') transferred.add(path);
          return;
        }
        if (/^(Number of|Total|Literal data|Matched data|File list|sent |total size)/.test(line)) statLines.push(line);
        return;
      }
      const gone = vanishedPath(line);
      if (gone !== undefined) {
        vanished.add(rel(gone));
        return;
      }
      if (SUMMARY.test(line) || !line.trim()) return;
      errors.push(line);
      log.warn(`rsync: ${line}`);
    },
  });
  if (res.exitCode === 23 && errors.length > 0) {
    throw new UserError('failed', `${what} failed: ${errors[0]}`, errors.slice(0, 20));
  }
  const stats = parseStats(statLines);
  log.debug(`${what}: ${stats.bytesSent} B sent for ${stats.transferredSize} B of changed files`);
  return { transferred, vanished, bytesSent: stats.bytesSent, totalSize: stats.totalSize, exitCode: res.exitCode };
}
