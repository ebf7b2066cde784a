// The shrink guard (issue 13, point 3): a backup far smaller than the newest published one is
// not published as an ordinary backup. A fresh standby host whose timer fires before the restore,
// a lost disk or an `rm` in the vmail volume would otherwise make a nearly empty backup `latest`,
// the one the disaster-recovery runbook restores. The same comparison tells the installer that
// this host's mailcow looks freshly installed while the box holds backups.
import { bytes } from './human.js';

/** What is compared; a measure one side does not know (an older record) is left out. */
export interface BackupMeasures {
  /** `<domain>/<user>` folders holding files (mailcow's mail_home is /var/vmail/%d/%n; see mailboxTotals). */
  mailboxes?: number;
  /** Files of the mail tree. */
  mailFiles?: number;
  bytes?: number;
}

export interface Shrunk {
  measure: keyof BackupMeasures;
  before: number;
  after: number;
}

export const SHRINK_KEY = 'SHRINK_GUARD_PERCENT';

/** The measures a published backup's backup.json records (records before per-mailbox totals know no mailboxes). */
export function measuresOfRecord(record: { bytes?: number; vmail?: { files?: number; mailboxes?: Record<string, unknown> } }): BackupMeasures {
  const boxes = record.vmail?.mailboxes;
  return { mailboxes: boxes ? Object.keys(boxes).length : undefined, mailFiles: record.vmail?.files, bytes: record.bytes };
}

/**
 * The measures that dropped by more than `percent` % from `before` to `after`; none when
 * `percent` is 0 (the guard is off).
 */
export function shrinkOf(before: BackupMeasures, after: BackupMeasures, percent: number): Shrunk[] {
  if (percent <= 0) return [];
  const out: Shrunk[] = [];
  for (const measure of ['mailboxes', 'mailFiles', 'bytes'] as const) {
    const b = before[measure];
    const a = after[measure];
    if (b === undefined || a === undefined || b <= 0) continue;
    if (a < b * (1 - percent / 100)) out.push({ measure, before: b, after: a });
  }
  return out;
}

const LABEL: Record<keyof BackupMeasures, string> = { mailboxes: 'mailboxes', mailFiles: 'mail files', bytes: 'size' };

/** `mailboxes 12 → 1 (-92 %), mail files 3400 → 12 (-100 %)` */
export function describeShrink(shrunk: readonly Shrunk[]): string {
  return shrunk
    .map((s) => {
      const show = (n: number) => (s.measure === 'bytes' ? bytes(n) : String(n));
      return `${LABEL[s.measure]} ${show(s.before)} → ${show(s.after)} (-${Math.round((100 * (s.before - s.after)) / s.before)} %)`;
    })
    .join(', ');
}

/** The one line a refused run ends with, in the log, on the terminal and in the e-mail. */
export function shrinkRefusal(newest: string, shrunk: readonly Shrunk[], percent: number): string {
  return (
    `this backup is far smaller than the newest published one, ${newest}: ${describeShrink(shrunk)}; not published (${SHRINK_KEY}=${percent}). ` +
    `On a freshly installed host restore first (sudo restore-from-hetzner); if the mail was removed on purpose, publish it once with 'backup-to-hetzner run --accept-shrink' (or set ${SHRINK_KEY}=0)`
  );
}
