// The Storage Box's ZFS snapshots, as this tool reads them: read-only copies of the whole box at
// `.zfs/snapshot/<name>/` in the main user's home, taken by Hetzner on a schedule set in its
// console. The server's SSH key cannot change or delete them, so they are what survives an
// attacker who has that key. Pure: names, dates, verdicts and the words an admin reads.
import { age } from './human.js';

/** Where the box shows its snapshots, relative to its home (= `/home/.zfs/snapshot` on port 23). */
export const SNAPSHOT_DIR = '.zfs/snapshot';

/** A snapshot name read back from the box is untrusted: only plain names go into a path. */
export const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,99}$/;

/** Hetzner names snapshots by their UTC time: `2025-02-12T11-35-19`. */
const HETZNER_NAME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})$/;

export interface Snapshot {
  name: string;
  /** When it was taken (ISO), from its name; undefined for a name that is not Hetzner's format. */
  takenAt?: string;
}

/** The time a snapshot was taken, from Hetzner's name (a snapshot folder's mtime says nothing). */
export function snapshotTime(name: string): Date | undefined {
  const m = HETZNER_NAME.exec(name);
  if (!m) return undefined;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** The snapshots in a listing of SNAPSHOT_DIR, newest first (names without a time last, by name). */
export function snapshotsIn(entries: readonly { name: string; type: string }[]): Snapshot[] {
  return entries
    .filter((e) => e.type === 'dir' && e.name !== '.' && e.name !== '..' && SNAPSHOT_NAME.test(e.name))
    .map((e) => ({ name: e.name, takenAt: snapshotTime(e.name)?.toISOString() }))
    .sort((a, b) => (b.takenAt ?? '').localeCompare(a.takenAt ?? '') || b.name.localeCompare(a.name));
}

/** The backup folder `name` as the snapshot `snapshot` holds it, relative to the box's home. */
export const snapshotBackupFolder = (snapshot: string, remotePath: string, name?: string) =>
  `${SNAPSHOT_DIR}/${snapshot}/${remotePath}${name ? `/${name}` : ''}`;

/** `--backup NAME@SNAPSHOT`: a backup as a snapshot holds it. No `@`: the live folder. */
export function parseBackupRef(text: string): { name: string; snapshot?: string } | { error: string } {
  const at = text.indexOf('@');
  if (at < 0) return { name: text };
  const name = text.slice(0, at);
  const snapshot = text.slice(at + 1);
  if (!SNAPSHOT_NAME.test(snapshot)) return { error: `'${snapshot}' is not a snapshot name (as 'restore-from-hetzner --list --snapshots' shows them, e.g. 2026-12-05T04-00-00)` };
  return { name, snapshot };
}

/** How to turn on the protection, in Hetzner's console: said wherever snapshots are missing. */
export const SNAPSHOT_STEPS =
  "in Hetzner's console open Storage Boxes -> this box -> Snapshots, turn on automatic snapshots (a snapshot plan: daily, at a UTC time after the backup has finished, keeping as many as the plan allows, 10-40 slots), " +
  'and in the box\'s settings make the snapshot folder visible ("show snapshot directory" / ZFS) so this tool can check and restore from them';

export const SNAPSHOT_WHY =
  "whoever gets root on this server has the box's SSH key and can delete every backup; ZFS snapshots are read-only and that key cannot remove them";

export interface SnapshotFacts {
  user: string;
  snapshots: Snapshot[];
  /** The newest published backup in the live folder. */
  newestBackup?: string;
  /** The published backups the newest snapshot holds. */
  inNewestSnapshot: string[];
}

/** `check`'s verdict (and the weekly report line) on the box's snapshots. */
export function snapshotVerdict(f: SnapshotFacts, now: Date): ['OK' | 'WARN', string] {
  if (f.snapshots.length === 0) {
    const sub = /-sub\d+$/.test(f.user) ? ` (${f.user} is a sub-account, which never sees the snapshots: they may exist all the same; restoring from them needs the main account)` : '';
    return ['WARN', `no snapshots visible under /home/${SNAPSHOT_DIR}${sub}: ${SNAPSHOT_WHY}. To protect the backups, ${SNAPSHOT_STEPS}`];
  }
  const newest = f.snapshots[0]!;
  const when = newest.takenAt ? `taken ${age(now.getTime() - Date.parse(newest.takenAt))} ago` : 'age unknown (not a Hetzner snapshot name)';
  const head = `${f.snapshots.length} snapshot(s); the newest, ${newest.name}, ${when}`;
  const protectedNewest = [...f.inNewestSnapshot].sort().at(-1);
  if (!f.newestBackup) return ['OK', `${head}; no published backup yet`];
  if (f.inNewestSnapshot.includes(f.newestBackup)) return ['OK', `${head}, holds the newest backup ${f.newestBackup}: it cannot be deleted with this server's key`];
  const older = protectedNewest ? `; the newest backup inside a snapshot is ${protectedNewest}` : '; it holds no backup of this tool yet';
  return ['OK', `${head}; the newest backup ${f.newestBackup} is younger and not protected until the next snapshot${older}`];
}

/**
 * The backups this host last saw on the box that are gone now. More than half of them gone (all,
 * with one or two) is a mass deletion: no retention does that, and this host did not.
 */
export function massDeletion(remembered: readonly string[], present: readonly string[]): string[] | undefined {
  const here = new Set(present);
  const missing = remembered.filter((n) => !here.has(n));
  return missing.length > remembered.length / 2 ? missing : undefined;
}

/** The snapshot to restore from: the newest one that holds most of what is missing. */
export function bestSnapshot(candidates: { snapshot: string; backups: string[] }[], missing: readonly string[]): { snapshot: string; holds: number } | undefined {
  let best: { snapshot: string; holds: number } | undefined;
  for (const c of candidates) {
    const holds = c.backups.filter((b) => missing.includes(b)).length;
    if (holds > 0 && (!best || holds > best.holds)) best = { snapshot: c.snapshot, holds };
  }
  return best;
}
