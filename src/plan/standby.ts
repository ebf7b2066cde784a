// The standby's mirror, planned: which backup to mirror, which local copy to hard-link it
// against, which copies and leftovers to remove, and the lag. Pure: names in, decisions out.
//
// STANDBY_DIR holds only three kinds of names: `<backup>/` (a complete copy, verified against
// its manifest before it got that name), `.incoming-<backup>/` (a download in progress or cut
// off: resumed by the next run, never used) and `.deleting-<backup>/` (a copy being removed:
// renamed first, so a removal cut off half-way never leaves a partial `<backup>/`).
import { isBackupName, parseBackupName } from './names.js';
import { resolveBackup } from '../restore/plan.js';

export const INCOMING_PREFIX = '.incoming-';
export const DELETING_PREFIX = '.deleting-';

export interface MirrorPlan {
  /** The backup to mirror: the newest on the box not known to be damaged. */
  target: string;
  /** Newer backups skipped because this host knows them damaged. */
  skipped: string[];
  /** Already a complete copy here: nothing to download. */
  upToDate: boolean;
  /** The newest complete copy other than the target: hard-link basis of the download. */
  basis?: string;
  /** The newest backup on the box (damaged or not), for the lag. */
  newestOnBox: string;
}

/** Complete copies in a STANDBY_DIR listing, oldest first. */
export const completeCopies = (entries: string[]) => entries.filter(isBackupName).sort();

export function planMirror(published: string[], local: string[], isDamaged: (name: string) => boolean): { ok: true; plan: MirrorPlan } | { ok: false; reason: string } {
  const r = resolveBackup(published, 'latest', isDamaged);
  if (!r.ok) return r;
  const copies = completeCopies(local);
  const others = copies.filter((n) => n !== r.name);
  return {
    ok: true,
    plan: {
      target: r.name,
      skipped: r.skipped,
      upToDate: copies.includes(r.name),
      basis: others[others.length - 1],
      newestOnBox: published.filter(isBackupName).sort().pop()!,
    },
  };
}

/**
 * What a successful run removes: complete copies beyond the newest `keep` (the mirrored one is
 * always kept), and leftovers of cut-off runs other than the one just completed.
 */
export function copiesToRemove(local: string[], mirrored: string, keep: number): string[] {
  const copies = completeCopies(local).filter((n) => n !== mirrored);
  const kept = copies.slice(Math.max(0, copies.length - Math.max(0, keep - 1)));
  const leftovers = local.filter((n) => (n.startsWith(INCOMING_PREFIX) || n.startsWith(DELETING_PREFIX)) && isBackupName(n.replace(/^\.[a-z]+-/, '')));
  return [...copies.filter((n) => !kept.includes(n)), ...leftovers];
}

/** Seconds the mirrored backup is older than the newest on the box (0: the mirror holds the newest). */
export function lagSeconds(mirrored: string | undefined, newestOnBox: string): number | undefined {
  if (!mirrored) return undefined;
  const m = parseBackupName(mirrored);
  const n = parseBackupName(newestOnBox);
  if (!m || !n) return undefined;
  return Math.max(0, Math.round((n.getTime() - m.getTime()) / 1000));
}
