// `restore-from-hetzner --list --snapshots`: the backups the box's ZFS snapshots hold, the way
// back when the live folder was wiped or encrypted. Each is named NAME@SNAPSHOT for --backup; a
// restore from one verifies every file against that backup's own checksums.sha256, as for any.
import { age } from '../plan/human.js';
import { parseBackupName } from '../plan/names.js';
import { SNAPSHOT_DIR, SNAPSHOT_STEPS } from '../plan/snapshots.js';
import type { RunContext } from '../backup/context.js';
import { backupsInSnapshot, findSnapshots } from '../backup/snapshots.js';
import { publishedNames } from './engine.js';

export interface SnapshotBackup {
  /** What --backup takes: NAME@SNAPSHOT. */
  ref: string;
  name: string;
  snapshot: string;
  snapshotTakenAt?: string;
  /** The backup is still in the live folder too. */
  live: boolean;
}

export async function listSnapshotBackups(ctx: RunContext): Promise<{ snapshots: number; backups: SnapshotBackup[] }> {
  const snapshots = await findSnapshots(ctx);
  const live = new Set(await publishedNames(ctx));
  const backups: SnapshotBackup[] = [];
  for (const s of snapshots) {
    for (const name of (await backupsInSnapshot(ctx, s.name)).reverse()) backups.push({ ref: `${name}@${s.name}`, name, snapshot: s.name, snapshotTakenAt: s.takenAt, live: live.has(name) });
  }
  return { snapshots: snapshots.length, backups };
}

export function snapshotListText(l: { snapshots: number; backups: SnapshotBackup[] }, now: Date): string[] {
  if (l.snapshots === 0) return [`no snapshots visible under /home/${SNAPSHOT_DIR} to this account (a sub-account never sees them: use the main account's user). To have them: ${SNAPSHOT_STEPS}`];
  if (l.backups.length === 0) return [`${l.snapshots} snapshot(s), none holding a backup of this tool yet`];
  const width = Math.max(...l.backups.map((b) => b.ref.length)) + 2;
  const lines = [`${'BACKUP@SNAPSHOT (for --backup)'.padEnd(width)}BACKUP AGE  SNAPSHOT AGE  IN THE LIVE FOLDER`];
  for (const b of l.backups) {
    const bAge = age(now.getTime() - (parseBackupName(b.name)?.getTime() ?? now.getTime()));
    const sAge = b.snapshotTakenAt ? age(now.getTime() - Date.parse(b.snapshotTakenAt)) : '?';
    lines.push(`${b.ref.padEnd(width)}${bAge.padEnd(12)}${sAge.padEnd(14)}${b.live ? 'yes' : 'NO: gone from the live folder'}`);
  }
  lines.push('read-only copies: a restore from one checks every file against its own checksums.sha256 before anything is changed');
  return lines;
}
