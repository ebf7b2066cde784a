// Names the tool creates on the box, and the strict patterns every name read back from the box
// must match before it goes anywhere near a command: a name from a listing is untrusted input.

export const BACKUP_NAME = /^mailcow-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$/;
export const STAGING_PREFIX = '.incomplete-';
export const STAGING_NAME = /^\.incomplete-mailcow-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$/;
export const PROBE_PREFIX = '.probe-';

const pad = (n: number) => String(n).padStart(2, '0');

/** mailcow's own naming: local time, as its script names its folders. */
export function backupNameFor(date: Date): string {
  return `mailcow-${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}-${pad(date.getHours())}-${pad(date.getMinutes())}-${pad(date.getSeconds())}`;
}

export function parseBackupName(name: string): Date | undefined {
  const m = BACKUP_NAME.exec(name);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(y, mo - 1, d, h, mi, s);
  // Reject 2026-02-31 and the like: the name must round-trip.
  return backupNameFor(date) === name ? date : undefined;
}

/**
 * The one test for "this is a backup of ours": the pattern AND a real date. BACKUP_NAME alone
 * lets mailcow-2020-02-31-… through, and code that then parses the date crashes on it.
 */
export const isBackupName = (name: string): boolean => parseBackupName(name) !== undefined;

/**
 * The published backups in a box listing, oldest first: folders with a backup name. Everything
 * else (staging folders, foreign or hostile names) is left out and so never reaches a command,
 * retention, `list` or the restore menu.
 */
export function publishedBackups(entries: readonly { name: string; type: string }[]): string[] {
  return entries.filter((e) => e.type === 'dir' && isBackupName(e.name)).map((e) => e.name).sort();
}

export const stagingNameFor = (backupName: string) => `${STAGING_PREFIX}${backupName}`;

export function backupNameOfStaging(staging: string): string | undefined {
  return STAGING_NAME.test(staging) && isBackupName(staging.slice(STAGING_PREFIX.length)) ? staging.slice(STAGING_PREFIX.length) : undefined;
}

/** A staging folder of ours (a real date too): the only kind resumed from or cleaned up. */
export const isStagingName = (name: string): boolean => backupNameOfStaging(name) !== undefined;
