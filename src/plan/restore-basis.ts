// Which local copies a restore offers rsync as basis, in which order (pure). rsync takes the
// first exact match (size and time) it finds; what it takes is then checked against the manifest.
import { isBackupName } from './names.js';

/**
 * The standby mirror's copy of the backup being restored comes first (a verified copy that
 * nothing writes to), then the live vmail volume (the rollback case), then older mirrored
 * copies, newest first (the failover case: the change since the mirror travels). At most
 * `maxMirrors` older copies: each one is one more stat per file rsync does not find.
 */
export function basisOrder(o: { name: string; mirrors: string[]; live?: string; maxMirrors?: number }): { kind: 'mirror' | 'live'; name: string }[] {
  const mirrors = o.mirrors.filter(isBackupName);
  const older = mirrors.filter((m) => m !== o.name).sort().reverse().slice(0, o.maxMirrors ?? 3);
  return [
    ...(mirrors.includes(o.name) ? [{ kind: 'mirror' as const, name: o.name }] : []),
    ...(o.live ? [{ kind: 'live' as const, name: o.live }] : []),
    ...older.map((name) => ({ kind: 'mirror' as const, name })),
  ];
}


/**
 * Whether a restore may hard-link this backup file from a standby copy instead of copying it: a
 * maildir message (`…/cur/…` or `…/new/…` under the mail tree). dovecot never writes into a
 * message file after delivery (a flag change renames it, a move links or copies it, an expunge
 * unlinks it), so the volume and the standby copy can share its inode without either changing the
 * other's bytes. Its indexes, uidlists and sieve files are written in place: those are copied.
 */
export function linkableFromMirror(path: string, mailDir = 'vmail'): boolean {
  return path.startsWith(`${mailDir}/`) && /\/(cur|new)\/[^/]+$/.test(path);
}
