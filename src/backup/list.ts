// `backup-to-hetzner list`: the published backups on the box, newest first, each with what this
// host knows of its integrity (STATE_DIR/scrub.json; see plan/verification.ts) and whether it is
// encrypted, and to whom (its backup.json, fetched in one rsync call).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { age, bytes } from '../plan/human.js';
import { RECORD_FILE } from '../plan/manifest.js';
import { parseBackupName, publishedBackups } from '../plan/names.js';
import { verificationOf, verificationText, type Verification } from '../plan/verification.js';
import type { RunContext } from './context.js';
import { loadScrubState } from './scrub.js';

export interface ListedBackup extends Verification {
  name: string;
  date: string;
  ageHours: number;
  /** What this backup adds on the box beyond the older ones (hard links counted once). */
  addedBytes?: number;
  /** age recipients' fingerprints; null: not encrypted; undefined: its backup.json was not read. */
  encryption?: { tool: 'age'; recipients: string[] } | null;
  /** When the database dump it holds was taken, by which backup's run (DUMP_INTERVAL_HOURS); undefined for older records. */
  dump?: { at: string; by: string };
}

/** The dump `name`'s backup.json records (its own, or one linked from an earlier backup). */
export function recordedDump(text: string, name: string): ListedBackup['dump'] {
  try {
    const r = JSON.parse(text) as { name?: unknown; dumpedAt?: unknown; dumpedBy?: unknown };
    return r?.name === name && typeof r.dumpedAt === 'string' && typeof r.dumpedBy === 'string' ? { at: r.dumpedAt, by: r.dumpedBy } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What `name`'s backup.json says about encryption; undefined when the text is not its record (a
 * record naming another backup belongs to a folder copied or renamed by hand: not trusted).
 */
export function recordedEncryption(text: string, name: string): ListedBackup['encryption'] {
  try {
    const r = JSON.parse(text) as { name?: unknown; encryption?: { recipients?: { fingerprint?: unknown }[] } | null };
    if (r?.name !== name) return undefined;
    if (!r.encryption) return null;
    return { tool: 'age', recipients: (r.encryption.recipients ?? []).map((x) => String(x.fingerprint)) };
  } catch {
    return undefined;
  }
}

export const encryptionText = (e: ListedBackup['encryption']) => (e === undefined ? '?' : e === null ? 'no' : `age: ${e.recipients.join(', ')}`);

/** The backups' records, fetched together: name -> what each says about encryption and its dump. */
async function readRecords(ctx: RunContext, root: string, names: string[]): Promise<Map<string, Pick<ListedBackup, 'encryption' | 'dump'>>> {
  const out = new Map<string, Pick<ListedBackup, 'encryption' | 'dump'>>();
  if (names.length === 0) return out;
  const tmp = await mkdtemp(join(tmpdir(), 'mailcow-backup-records-'));
  try {
    const into = join(tmp, 'records');
    for (const p of await ctx.box.download(root, names.map((n) => `${n}/${RECORD_FILE}`), into, ctx.config.RSYNC_TIMEOUT, "to read the backups' records")) {
      const name = p.split('/')[0]!;
      const text = await readFile(join(into, p), 'utf8');
      out.set(name, { encryption: recordedEncryption(text, name), dump: recordedDump(text, name) });
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return out;
}

/** records: whose backup.json to read for the encryption column ('newest': only the newest one's). */
export async function listBackups(ctx: RunContext, opts: { sizes: boolean; records?: 'all' | 'newest' }): Promise<ListedBackup[]> {
  const root = ctx.config.HETZNER_REMOTE_PATH;
  const entries = await ctx.box.list(root);
  const published = publishedBackups(entries);
  const known = await loadScrubState(ctx.config.STATE_DIR);
  let added = new Map<string, number>();
  if (opts.sizes && published.length) {
    // Oldest first: du charges each hard-linked file to the first folder that holds it.
    added = await ctx.box.duKiB(published.map((n) => `${root}/${n}`));
  }
  const records = opts.records ? await readRecords(ctx, root, opts.records === 'all' ? published : published.slice(-1)) : new Map<string, Pick<ListedBackup, 'encryption' | 'dump'>>();
  const now = ctx.now().getTime();
  return published
    .map((name) => {
      const d = parseBackupName(name)!; // publishedBackups holds only names that parse
      const kib = added.get(`${root}/${name}`);
      return { name, date: d.toISOString(), ageHours: (now - d.getTime()) / 3_600_000, addedBytes: kib === undefined ? undefined : kib * 1024, encryption: records.get(name)?.encryption, dump: records.get(name)?.dump, ...verificationOf(known[name]) };
    })
    .reverse();
}

/** A backup made between dumps holds an earlier backup's dump: when that was taken (its own dump goes without saying). */
const dumpText = (b: ListedBackup) => (b.dump && b.dump.by !== b.name ? `  dump ${new Date(b.dump.at).toLocaleString('sv-SE').slice(0, 16)} (of ${b.dump.by})` : '');

export function listText(list: ListedBackup[]): string[] {
  if (list.length === 0) return ['no published backups on the Storage Box yet'];
  const states = list.map((b) => verificationText(b));
  const width = Math.max(6, ...states.map((t) => t.length + 2));
  const lines = [`NAME                          LOCAL TIME           AGE       ADDS ON BOX   ${'STATE'.padEnd(width)}ENCRYPTED`];
  for (const [i, b] of list.entries()) {
    const local = new Date(b.date).toLocaleString('sv-SE').slice(0, 19);
    lines.push(`${b.name.padEnd(30)}${local.padEnd(21)}${age(b.ageHours * 3_600_000).padEnd(10)}${(b.addedBytes === undefined ? '-' : bytes(b.addedBytes)).padEnd(14)}${states[i]!.padEnd(width)}${encryptionText(b.encryption)}${dumpText(b)}`);
  }
  if (list.some((b) => b.encryption === undefined)) lines.push("encrypted '?': the backup's backup.json could not be read (a folder not made by this tool, renamed, or damaged)");
  if (list.some((b) => b.state === 'unverified')) lines.push("not verified on this host: no run or scrub of this host checked it; 'backup-to-hetzner verify NAME' makes the box re-hash it");
  return lines;
}
