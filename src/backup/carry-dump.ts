// A run between dumps (DUMP_INTERVAL_HOURS): the newest backup's archives, mailcow.conf and
// architecture marker (or their .age files; the archives' trees file by file) become hard links in the new backup's staging folder
// through SFTP `ln`, on the box: no mailcow script, no docker, not a byte sent or stored again.
// The new backup is still complete on its own, and its manifest lists them with the hashes the
// newest backup's checksums.sha256 gives (a verified backup's files, like every --link-dest link).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorText } from '../errors.js';
import { CHECKSUM_FILE, isManifestPart, MANIFEST_DIR, parseChecksumLine, RECORD_FILE, type ManifestEntry } from '../plan/manifest.js';
import type { DumpOrigin, NewestRecord } from '../plan/dump-due.js';
import type { RunContext } from './context.js';
import type { EncryptionRecord } from './encrypt.js';
import { VMAIL_DIR } from './transfer.js';

/** The newest backup's record and the files of its dump, as its own manifest lists them. */
export interface NewestBackup {
  record: NewestRecord & { archives?: unknown; archiveLayout?: string; encryption?: EncryptionRecord };
  dumpFiles: { path: string; hash: string }[];
}

/** Reads the newest backup's backup.json and checksums.sha256; a problem is a reason to dump. */
export async function readNewest(ctx: RunContext, root: string, name: string, into: string): Promise<{ newest?: NewestBackup; problem?: string }> {
  try {
    const rec = join(into, `newest.${RECORD_FILE}`);
    const sums = join(into, `newest.${CHECKSUM_FILE}`);
    // Two logins at once: each is a round trip to the box, and an hourly run waits for both.
    const [hasRec, hasSums] = await Promise.all([ctx.box.getFile(`${root}/${name}/${RECORD_FILE}`, rec), ctx.box.getFile(`${root}/${name}/${CHECKSUM_FILE}`, sums)]);
    if (!hasRec) return { problem: `${name} has no ${RECORD_FILE}` };
    if (!hasSums) return { problem: `${name} has no ${CHECKSUM_FILE}` };
    const raw = JSON.parse(await readFile(rec, 'utf8')) as Record<string, unknown>;
    if (raw.name !== name) return { problem: `${name}/${RECORD_FILE} names another backup` };
    const enc = raw.encryption as EncryptionRecord | undefined;
    const record = {
      ...(raw as object),
      name,
      host: typeof raw.host === 'string' ? raw.host : undefined,
      components: Array.isArray(raw.components) ? (raw.components as string[]) : undefined,
      recipients: enc?.recipients?.map((r) => r.fingerprint) ?? [],
      dumpedAt: typeof raw.dumpedAt === 'string' ? raw.dumpedAt : undefined,
      dumpedBy: typeof raw.dumpedBy === 'string' ? raw.dumpedBy : undefined,
    };
    const dumpFiles: NewestBackup['dumpFiles'] = [];
    for (const line of (await readFile(sums, 'utf8')).split('\n')) {
      const p = line ? parseChecksumLine(line) : undefined;
      if (line && !p) return { problem: `${name}/${CHECKSUM_FILE} holds a line that is not a checksum` };
      if (p && !p.path.startsWith(`${VMAIL_DIR}/`) && !isManifestPart(p.path)) dumpFiles.push(p);
    }
    return { newest: { record, dumpFiles } };
  } catch (e) {
    return { problem: `${name}'s record could not be read: ${errorText(e)}` };
  }
}

/** A backup's dump taken over from the newest backup. */
export interface CarriedDump {
  from: string;
  origin: DumpOrigin;
  files: ManifestEntry[];
  archives: unknown;
  archiveLayout?: string;
  encryption?: EncryptionRecord;
}

/**
 * Links the newest backup's dump files into `staging` and checks that each arrived whole (name
 * and size, by a listing). Undefined, with the reason logged, when the box refuses SFTP hard
 * links or a link is missing: the caller then dumps, and the staging folder is its to clear.
 */
export async function carryDump(
  ctx: RunContext,
  root: string,
  staging: string,
  newest: NewestBackup,
  origin: DumpOrigin,
  /** The newest backup's listDumpFiles, when the caller read it already. */
  listedFrom?: Map<string, number>,
): Promise<{ carried?: CarriedDump; problem?: string }> {
  const from = newest.record.name;
  // The archives' trees (archives/<component>/…) nest: every folder of the dump is made in staging.
  const folders = [...new Set(newest.dumpFiles.map((f) => dirOf(f.path)))].sort();
  const listed = listedFrom ?? (await listDumpFiles(ctx, `${root}/${from}`));
  const files: ManifestEntry[] = [];
  for (const f of newest.dumpFiles) {
    const size = listed.get(f.path);
    if (size === undefined || f.path.split('/').some((p) => p === '' || p === '.' || p === '..')) return { problem: `${from}/${f.path}, listed in its manifest, is not on the box` };
    // mtime -1: the hash cache never takes a later dump's file of the same name and size for this one.
    files.push({ path: f.path, hash: f.hash, size, mtimeMs: -1 });
  }
  if (files.length === 0) return { problem: `${from} holds no dump files` };
  const dirs = new Set<string>([staging]);
  for (const d of folders) d.split('/').forEach((_, i, parts) => dirs.add(`${staging}/${parts.slice(0, i + 1).join('/')}`));
  const r = await ctx.box.hardLinks([...dirs].sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : 1)), files.map((f) => ({ existing: `${root}/${from}/${f.path}`, link: `${staging}/${f.path}` })));
  if (r.refused) return { problem: 'the Storage Box refused a hard link through sftp' };
  const got = await listDumpFiles(ctx, staging);
  const missing = files.filter((f) => got.get(f.path) !== f.size);
  if (missing.length) return { problem: `${missing.length} of ${files.length} links to ${from}'s dump did not arrive (first: ${missing[0]!.path})` };
  return { carried: { from, origin, files, archives: newest.record.archives, archiveLayout: newest.record.archiveLayout, encryption: newest.record.encryption } };
}

/**
 * A backup folder's files and sizes outside the mail tree and the manifest's parts: one recursive
 * listing (a listing per folder of the archives' trees was ~40 logins, most of an hourly run's dump phase).
 */
export async function listDumpFiles(ctx: RunContext, base: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const e of await ctx.box.listTree(base, [`/${VMAIL_DIR}/`, `/${MANIFEST_DIR}/`])) if (e.type === 'file') m.set(e.name, e.size);
  return m;
}

const dirOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');
