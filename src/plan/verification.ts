// Pure: what this host knows about each published backup's integrity, from its own record
// (STATE_DIR/scrub.json: the run's verification at publish, the scrubs' results), and the words
// `list`, `status` and the restore show for it. A backup this host has no record of (a folder
// made by hand, one published by another host, a fresh restore host) is "not verified on this
// host", never "verified": the name of a folder on the box proves nothing.

/** One backup's record. verifiedAt: the run that published it verified it on the box. */
export interface VerificationEntry {
  verifiedAt?: string;
  /** The last scrub (`verify`, periodic): when, and what it found. */
  lastScrub?: string;
  state?: 'ok' | 'damaged' | 'error';
  problems?: number;
}
export type VerificationRecord = Record<string, VerificationEntry>;

export interface Verification {
  state: 'verified' | 'damaged' | 'unverified';
  /** When it was last found intact on the box, and by whom (damaged: when the damage was found). */
  at?: string;
  by?: 'run' | 'scrub';
  /** The last scrub's outcome; undefined: never scrubbed here. */
  scrub?: 'ok' | 'damaged' | 'error';
  /** Files that differ or are missing (damaged). */
  problems?: number;
}

export function verificationOf(e: VerificationEntry | undefined): Verification {
  if (e?.state === 'damaged') return { state: 'damaged', at: e.lastScrub, by: 'scrub', scrub: 'damaged', problems: e.problems };
  const scrub = e?.lastScrub ? e.state : undefined;
  if (e?.state === 'ok' && e.lastScrub && (!e.verifiedAt || e.lastScrub >= e.verifiedAt)) return { state: 'verified', at: e.lastScrub, by: 'scrub', scrub };
  if (e?.verifiedAt) return { state: 'verified', at: e.verifiedAt, by: 'run', scrub };
  return { state: 'unverified', scrub };
}

const local = (iso: string) => new Date(iso).toLocaleString('sv-SE').slice(0, 16);

/** One phrase: "verified at publish 2026-12-05 03:10, not yet scrubbed", "DAMAGED (scrub …)", … */
export function verificationText(v: Verification): string {
  if (v.state === 'damaged') return `DAMAGED (found by the scrub ${v.at ? local(v.at) : '?'}${v.problems ? `, ${v.problems} file${v.problems === 1 ? '' : 's'}` : ''})`;
  const scrubErr = v.scrub === 'error' ? ', the last scrub could not finish' : '';
  if (v.state === 'unverified') return `not verified on this host${scrubErr}`;
  if (v.by === 'scrub') return `verified by the scrub ${local(v.at!)}`;
  return `verified at publish ${local(v.at!)}${v.scrub === 'ok' ? '' : scrubErr || ', not yet scrubbed'}`;
}

/**
 * `latest` for a restore: the newest backup not known to be damaged. names: oldest first.
 * skipped: the newer ones passed over because the scrub found them damaged.
 */
export function newestNotDamaged(names: readonly string[], isDamaged: (name: string) => boolean): { name?: string; skipped: string[] } {
  const skipped: string[] = [];
  for (let i = names.length - 1; i >= 0; i--) {
    if (!isDamaged(names[i]!)) return { name: names[i], skipped };
    skipped.push(names[i]!);
  }
  return { skipped };
}
