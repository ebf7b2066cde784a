// Downloads (part of) a published backup from the box with rsync into a local folder. Resumable:
// --partial keeps a broken file's data and files already complete are skipped (size and time
// match), so running the same download again continues it. A progress line on a terminal.
import { mkdir } from 'node:fs/promises';
import type { Exec } from '../adapters/exec.js';
import type { Logger } from '../adapters/logger.js';
import type { Component } from '../config/schema.js';
import { ARCHIVE_BASE } from '../adapters/mailcow.js';
import { parseStats, remoteSpec, rsyncRemoteShell, type BoxTarget } from '../plan/transport-args.js';
import { CHECKSUM_FILE, MANIFEST_DIR, RECORD_FILE } from '../plan/manifest.js';
import { ARCHIVES_DIR, treeDir, treeListPath } from '../plan/archive-tree.js';

/** The small files every restore reads first (mailcow.conf.age when the backup is encrypted). */
export const META_FILES = ['mailcow.conf', 'mailcow.conf.age', '.x86_64', '.aarch64', CHECKSUM_FILE, RECORD_FILE];

/** rsync filter rules for what a restore needs (pure). Mailbox dirs are `domain/user`. */
export function downloadFilters(o: { components: Component[]; mailboxDirs: string[]; vmailDir: string; archives?: Component[]; meta?: boolean }): string[] {
  // The manifest's parts (split layout) come with the meta files: readChecksums needs them all.
  // Without them (meta: false) rsync's --delete cannot reach files made from them (mailcow.conf
  // decrypted from mailcow.conf.age).
  const rules: string[] = o.meta === false ? [] : [...META_FILES.map((f) => `--include=/${f}`), `--include=/${MANIFEST_DIR}/***`];
  const archives = o.archives ?? o.components.filter((c) => c !== 'vmail');
  for (const c of archives) for (const ext of ['.tar.zst', '.tar.gz']) rules.push(`--include=/${ARCHIVE_BASE[c]}${ext}`, `--include=/${ARCHIVE_BASE[c]}${ext}.age`);
  // The tree layout: archives/<component>/ and its entry list.
  if (archives.length) rules.push(`--include=/${ARCHIVES_DIR}/`);
  for (const c of archives) rules.push(`--include=/${treeListPath(c)}`, `--include=/${treeListPath(c)}.age`, `--include=/${treeDir(c)}/***`);
  if (o.components.includes('vmail')) rules.push(`--include=/${o.vmailDir}/***`);
  else if (o.mailboxDirs.length) {
    rules.push(`--include=/${o.vmailDir}/`);
    for (const d of o.mailboxDirs) {
      const [domain] = d.split('/');
      rules.push(`--include=/${o.vmailDir}/${domain}/`, `--include=/${o.vmailDir}/${d}/***`);
    }
  }
  rules.push('--exclude=*');
  return rules;
}

/**
 * rsync filter rules that select exactly `paths` (files of the backup folder) and the folders
 * above them (pure). A name holding a wildcard character has them escaped: rsync reads a
 * backslash as an escape only in a pattern with a wildcard.
 */
export function exactFilters(paths: string[]): string[] {
  const lit = (p: string) => (/[*?[]/.test(p) ? p.replace(/[*?[\\]/g, '\\$&') : p);
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(`--include=/${lit(parts.slice(0, i).join('/'))}/`);
  }
  return [...dirs, ...paths.map((p) => `--include=/${lit(p)}`), '--exclude=*'];
}

export async function downloadBackup(
  exec: Exec,
  log: Logger,
  o: {
    target: BoxTarget;
    remoteFolder: string;
    localFolder: string;
    filters: string[];
    progress?: (line: string) => void;
    timeoutSec?: number;
    /**
     * Local folders laid out like the backup folder whose files rsync takes instead of fetching
     * them when size and time match: `link` hard-links them (a mirror's earlier copy, which is
     * never written to), `copy` copies them (the live volumes, which change). Absolute paths;
     * rsync tries them in order and accepts at most 20, all of one kind: a list mixing both is
     * used as `copy` (rsync refuses --link-dest with --copy-dest; a copy is always safe).
     */
    basis?: { dir: string; how: 'link' | 'copy' }[];
  },
): Promise<{ files: number; bytesFromBox: number; totalBytes: number; literalBytes: number }> {
  await mkdir(o.localFolder, { recursive: true, mode: 0o700 });
  let files = 0;
  const stats: string[] = [];
  const basis = (o.basis ?? []).slice(0, 20);
  const how = basis.some((b) => b.how === 'copy') ? 'copy' : 'link';
  const tty = Boolean(o.progress);
  await exec(
    'rsync',
    [
      '-rlpt',
      '--partial',
      '--delete', // a folder from an earlier attempt may hold files this selection does not
      ...(tty ? ['--info=progress2', '--no-inc-recursive'] : []),
      '--out-format=%n',
      '--stats',
      ...basis.map((b) => `--${how}-dest=${b.dir}`),
      `--timeout=${o.timeoutSec ?? 600}`,
      ...o.filters,
      '-e',
      rsyncRemoteShell(o.target),
      remoteSpec(o.target, `${o.remoteFolder}/`),
      `${o.localFolder}/`,
    ],
    {
      what: `downloading ${o.remoteFolder} from the Storage Box`,
      tailLines: 30,
      onLine: (line, stream) => {
        if (stream === 'stderr') {
          if (line.trim()) log.warn(`rsync: ${line}`);
          return;
        }
        if (/^(Total |Literal data)/.test(line)) stats.push(line);
        else if (/^\s+[\d,.]+\s+\d+%/.test(line)) o.progress?.(line.trim());
        else if (/^(Number of|Total |Literal data|Matched data|File list|sent |total size)/.test(line) || !line.trim()) return;
        else if (line && !line.endsWith('/')) files++;
      },
    },
  );
  log.info(`downloaded ${files} new or changed file(s) of ${o.remoteFolder}`);
  // totalBytes: the selection's size; literalBytes: file data that crossed the wire (the rest came
  // from this host: basis files, matched blocks, files already in localFolder).
  const st = parseStats(stats);
  return { files, bytesFromBox: st.bytesReceived, totalBytes: st.totalSize, literalBytes: st.literalBytes };
}
