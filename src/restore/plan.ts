// Pure: what a restore will do, from the backup's record, the admin's choices and facts about
// this host. The checks say OK/WARN/FAIL with what each means; any FAIL stops the restore before
// anything is touched. Nothing here reads a file or runs a command.
import { COMPONENTS, type Component } from '../config/schema.js';
import { bytes } from '../plan/human.js';
import { BACKUP_NAME, isBackupName } from '../plan/names.js';
import { newestNotDamaged, verificationText, type Verification } from '../plan/verification.js';
import type { ReplaceLoss } from './replace-loss.js';

export interface BackupRecord {
  name: string;
  host?: string;
  createdAt?: string;
  components: Component[];
  files?: number;
  bytes?: number;
  /** unpackedBytes: the archive's files extracted (recorded since archives are stored as trees). */
  archives: { component: Component; file: string; bytes: number; unpackedBytes?: number }[];
  vmail?: {
    dir: string;
    files: number;
    dirs: number;
    bytes: number;
    owner: { uid: number; gid: number; exceptions: { path: string; uid: number; gid: number }[] };
    modes: Record<string, number>;
    /** Per mailbox (`domain/user`), since the wizard lists them; older backups: from the manifest. */
    mailboxes?: Record<string, { messages: number; bytes: number }>;
  };
  basedOn?: string | null;
  /** Set when mailcow.conf and the archives were encrypted with age (names end in .age). */
  encryption?: { tool: 'age'; files: string[]; recipients: { fingerprint: string; recipient: string }[] };
}

export type Mode = 'replace' | 'merge';

export interface Choices {
  components: Component[];
  mailboxes: string[];
  mode: Mode;
}

export interface HostFacts {
  liveConf: Record<string, string>;
  backupConf: Record<string, string>;
  /** `.x86_64` / `.aarch64` marker of the backup, without the dot; undefined when absent. */
  backupArch?: string;
  hostArch: string;
  /** true/false when both key sets could be read; undefined when unknown. */
  cryptKeysMatch?: boolean;
  freeBytes: number;
  /** Bytes to download and (for vmail) copy. */
  needBytes: number;
  downloadDir: string;
  /** Mailboxes asked for that the backup does not hold. */
  missingMailboxes: string[];
  /** --mode replace: per mailbox, the live messages the backup does not hold (they are removed). */
  replaceLoss?: Record<string, ReplaceLoss>;
}

export type Status = 'OK' | 'WARN' | 'FAIL';
export interface Check {
  status: Status;
  title: string;
  detail: string;
}

export const MAILBOX = /^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

/** `alice@example.com` -> `example.com/alice` (mailcow's vmail layout); undefined if unsafe. */
export function mailboxDir(address: string): string | undefined {
  if (!MAILBOX.test(address)) return undefined;
  const [local, domain] = address.toLowerCase().split('@') as [string, string];
  if (local === '.' || local === '..' || local.startsWith('.')) return undefined;
  return `${domain}/${local}`;
}

/** `vmail,crypt` / `all` -> components; throws a sentence for an unknown word. */
export function parseComponents(text: string): Component[] {
  const words = text.split(/[\s,]+/).map((w) => w.trim().toLowerCase()).filter(Boolean);
  if (words.includes('all')) return [...COMPONENTS];
  const out: Component[] = [];
  for (const w of words) {
    const c = w === 'mariadb' || w === 'sql' ? 'mysql' : w;
    if (!(COMPONENTS as readonly string[]).includes(c)) throw new Error(`unknown component '${w}'; use any of ${COMPONENTS.join(', ')} or all`);
    if (!out.includes(c as Component)) out.push(c as Component);
  }
  return out;
}

/**
 * `latest` or an exact published name, from the published names (any order). `latest` is the
 * newest backup not known to be damaged; skipped names the newer ones passed over.
 */
export function resolveBackup(published: string[], want: string, isDamaged: (name: string) => boolean = () => false): { ok: true; name: string; skipped: string[] } | { ok: false; reason: string } {
  const names = published.filter(isBackupName).sort();
  if (names.length === 0) return { ok: false, reason: 'there is no published backup on the Storage Box' };
  if (want === 'latest') {
    const pick = newestNotDamaged(names, isDamaged);
    if (!pick.name) return { ok: false, reason: `every published backup is known to be DAMAGED (${pick.skipped.join(', ')}); see 'backup-to-hetzner verify', or name one with --backup NAME to restore what is intact` };
    return { ok: true, name: pick.name, skipped: pick.skipped };
  }
  if (!isBackupName(want)) return { ok: false, reason: `'${want}' is not a backup name (mailcow-YYYY-MM-DD-HH-MM-SS) or 'latest'` };
  if (!names.includes(want)) return { ok: false, reason: `${want} is not among the published backups (newest: ${names[names.length - 1]})` };
  return { ok: true, name: want, skipped: [] };
}

/** What this host knows of the chosen backup's integrity, as a pre-restore check. */
export function backupIntegrityCheck(name: string, v: Verification, skipped: { name: string; v: Verification }[]): Check {
  const why = skipped.length ? `'latest' skipped ${skipped.map((s) => `${s.name} (${verificationText(s.v)})`).join(', ')}; ` : '';
  if (v.state === 'damaged') return { status: 'WARN', title: 'backup', detail: `${why}${name} is ${verificationText(v)}: a damaged file fails the download's verification (exit 5) and then nothing is changed` };
  const how = v.state === 'unverified' ? `${name} is not verified on this host (no record of a run or scrub here)` : `${name} was ${verificationText(v)}`;
  return { status: skipped.length ? 'WARN' : 'OK', title: 'backup', detail: `${why}${how}; the download is verified against its checksums.sha256 before anything is changed` };
}

export const hostArchMarker = (nodeArch: string) => (nodeArch === 'x64' ? 'x86_64' : nodeArch === 'arm64' ? 'aarch64' : nodeArch);

const DB_KEYS = ['DBNAME', 'DBUSER', 'DBPASS', 'DBROOT'];

/** The pre-restore checks. Pure: every fact comes in `f`. */
export function preRestoreChecks(record: BackupRecord, choices: Choices, f: HostFacts): Check[] {
  const out: Check[] = [];
  const has = (c: Component) => choices.components.includes(c);
  const mailWanted = has('vmail') || choices.mailboxes.length > 0;

  const unavailable = choices.components.filter((c) => !record.components.includes(c));
  if (unavailable.length) out.push({ status: 'FAIL', title: 'components', detail: `the backup does not hold ${unavailable.join(', ')} (it holds ${record.components.join(', ')})` });
  if (f.missingMailboxes.length) out.push({ status: 'FAIL', title: 'mailboxes', detail: `the backup holds no mail for ${f.missingMailboxes.join(', ')}` });

  const dbDiff = DB_KEYS.filter((k) => (f.backupConf[k] ?? '') !== (f.liveConf[k] ?? ''));
  if (dbDiff.length === 0) out.push({ status: 'OK', title: 'DB credentials', detail: "the backup's mailcow.conf has the same DB credentials as this host" });
  else if (has('mysql'))
    out.push({ status: 'WARN', title: 'DB credentials', detail: `${dbDiff.join(', ')} differ from this host: mailcow's restore rewrites them in the live mailcow.conf to the backup's values (otherwise: "Access denied" after restore)` });
  else out.push({ status: 'WARN', title: 'DB credentials', detail: `${dbDiff.join(', ')} differ from this host; the SQL DB is not restored, so this host keeps its own database and credentials` });

  const bSub = f.backupConf.MAILDIR_SUB ?? 'Maildir';
  const lSub = f.liveConf.MAILDIR_SUB ?? 'Maildir';
  if (bSub === lSub) out.push({ status: 'OK', title: 'MAILDIR_SUB', detail: `same on both ('${lSub}')` });
  else if (has('vmail'))
    out.push({ status: 'FAIL', title: 'MAILDIR_SUB', detail: `the backup's mail lives under '${bSub}', this host reads '${lSub}': restored mail would be invisible (mailcow #3602). Set MAILDIR_SUB=${bSub} in ${'mailcow.conf'}, run docker compose up -d, then restore again` });
  else if (choices.mailboxes.length) out.push({ status: 'WARN', title: 'MAILDIR_SUB', detail: `the backup uses '${bSub}', this host '${lSub}': the mailbox restore moves the mail into '${lSub}'` });
  else out.push({ status: 'WARN', title: 'MAILDIR_SUB', detail: `the backup uses '${bSub}', this host '${lSub}' (mail is not restored)` });

  const bHost = f.backupConf.MAILCOW_HOSTNAME;
  const lHost = f.liveConf.MAILCOW_HOSTNAME;
  if (bHost === lHost) out.push({ status: 'OK', title: 'MAILCOW_HOSTNAME', detail: `same on both (${lHost})` });
  else out.push({ status: 'WARN', title: 'MAILCOW_HOSTNAME', detail: `the backup was made on ${bHost ?? '(unset)'}, this host is ${lHost ?? '(unset)'}: point DNS (MX, A) here and check the TLS certificate` });

  const missingKeys = Object.keys(f.liveConf).filter((k) => !(k in f.backupConf));
  const extraKeys = Object.keys(f.backupConf).filter((k) => !(k in f.liveConf));
  if (missingKeys.length === 0 && extraKeys.length === 0) out.push({ status: 'OK', title: 'mailcow version', detail: 'both mailcow.conf files have the same keys (same mailcow generation)' });
  else
    out.push({
      status: 'WARN',
      title: 'mailcow version',
      detail: `mailcow.conf keys differ (${[...missingKeys.map((k) => `only here: ${k}`), ...extraKeys.map((k) => `only in backup: ${k}`)].slice(0, 6).join(', ')}): the backup comes from another mailcow version; update this host to the same version before restoring the SQL DB`,
    });

  if (has('rspamd')) {
    if (!f.backupArch) out.push({ status: 'WARN', title: 'architecture', detail: 'the backup has no architecture marker: rspamd is restored with caution' });
    else if (f.backupArch !== f.hostArch) out.push({ status: 'WARN', title: 'architecture', detail: `backup is ${f.backupArch}, this host ${f.hostArch}: mailcow's script skips rspamd (its data is not portable)` });
    else out.push({ status: 'OK', title: 'architecture', detail: `${f.hostArch} on both` });
  }

  if (mailWanted) {
    if (has('crypt')) out.push({ status: 'OK', title: 'crypt keys', detail: "the backup's crypt keys are restored with the mail" });
    else if (f.cryptKeysMatch === false)
      out.push({ status: 'FAIL', title: 'crypt keys', detail: "this host's mail_crypt keys differ from the backup's: the restored mail could not be read (\"No private key available\", mailcow #5111). Add crypt to the components" });
    else if (f.cryptKeysMatch === undefined) out.push({ status: 'WARN', title: 'crypt keys', detail: "could not compare this host's mail_crypt keys with the backup's; restore crypt too if unsure" });
    else out.push({ status: 'OK', title: 'crypt keys', detail: "this host has the backup's mail_crypt keys" });
  }

  const enough = f.freeBytes >= f.needBytes;
  out.push({
    status: enough ? 'OK' : 'FAIL',
    title: 'local disk',
    detail: `${bytes(f.needBytes)} needed for download and extraction in ${f.downloadDir}, ${bytes(f.freeBytes)} free${enough ? '' : ': free space or choose another folder'}`,
  });
  return out;
}

/** Bytes to download for the choices (the record's sizes), with room for extraction; `mailboxBytes`: the chosen mailboxes' mail. */
export function bytesNeeded(record: BackupRecord, choices: Choices, mailboxBytes: number): number {
  let n = 0;
  for (const a of record.archives) if (choices.components.includes(a.component)) n += a.bytes * 4; // archive + extracted (zstd ~3x)
  if (choices.components.includes('vmail')) n += (record.vmail?.bytes ?? 0) * 1.05;
  n += mailboxBytes * 1.05;
  return Math.ceil(n + 16 * 1024 * 1024);
}

/** Plan lines: what will be stopped, replaced, rewritten. */
export function planText(record: BackupRecord, choices: Choices, f: Pick<HostFacts, 'liveConf' | 'backupConf' | 'replaceLoss'>, mailcowPath: string): string[] {
  const lines: string[] = [`restore from ${record.name}${record.host ? ` (made on ${record.host})` : ''}:`];
  const archiveOrder: Component[] = ['crypt', 'mysql', 'redis', 'rspamd', 'postfix'];
  for (const c of archiveOrder.filter((c) => choices.components.includes(c))) {
    switch (c) {
      case 'crypt':
        lines.push('  crypt    stop dovecot, replace the crypt volume (mail_crypt keys), start dovecot');
        break;
      case 'mysql': {
        const diff = DB_KEYS.filter((k) => (f.backupConf[k] ?? '') !== (f.liveConf[k] ?? ''));
        lines.push(`  mysql    docker compose down (ALL of mailcow stops), replace the SQL datadir, ${diff.length ? `rewrite ${diff.join(', ')} in ${mailcowPath}/mailcow.conf, ` : ''}docker compose up -d`);
        break;
      }
      case 'redis':
        lines.push('  redis    stop redis, replace the redis volume, start redis');
        break;
      case 'rspamd':
        lines.push('  rspamd   stop rspamd, replace the rspamd volume, start rspamd');
        break;
      case 'postfix':
        lines.push('  postfix  stop postfix, replace the postfix volume (queue included), start postfix');
        break;
    }
  }
  if (choices.components.includes('vmail'))
    lines.push(`  vmail    stop dovecot, make the vmail volume identical to the backup (${record.vmail?.files ?? '?'} files; mail that arrived later is removed), owner ${record.vmail?.owner.uid}:${record.vmail?.owner.gid}, start dovecot, doveadm force-resync -A`);
  for (const m of choices.mailboxes) {
    if (choices.mode === 'merge') {
      lines.push(`  ${m}: add the backup's mail as folder "${restoredFolderName(record.name)}" next to the current mail (nothing is removed), fix owner, doveadm force-resync -u ${m}`);
      continue;
    }
    lines.push(`  ${m}: replace this mailbox's folder with the backup's, fix owner, doveadm force-resync -u ${m}`);
    lines.push(`    ${lossText(f.replaceLoss?.[m])}`);
  }
  if (archiveOrder.some((c) => choices.components.includes(c))) lines.push("  watchdog-mailcow is stopped and started by mailcow's script around each archive component");
  return lines;
}

/** What --mode replace removes from one mailbox, in one line of the plan. */
function lossText(loss: ReplaceLoss | undefined): string {
  if (!loss) return 'REMOVES every message that arrived after the backup (the current mailbox could not be listed to say which); --mode merge keeps them';
  if (loss.messages === 0) return 'removes no message: every message in the mailbox is in the backup (flag changes and moves since the backup are undone)';
  const folders = loss.folders.map(([name, n]) => `${name} ${n}`).join(', ');
  const newest = loss.newestMs !== undefined ? `; the newest from ${new Date(loss.newestMs).toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
  const more = loss.messages > loss.sample.length ? `, … ${loss.messages - loss.sample.length} more` : '';
  return `REMOVES ${loss.messages} message${loss.messages === 1 ? '' : 's'} (${bytes(loss.bytes)}) the backup does not hold (${folders})${newest}: ${loss.sample.join(', ')}${more}; --mode merge keeps them`;
}

/** The Maildir++ folder a merged mailbox restore creates: `Restored-2026-11-23`. */
export function restoredFolderName(backupName: string): string {
  const m = BACKUP_NAME.exec(backupName);
  return m ? `Restored-${m[1]}-${m[2]}-${m[3]}` : 'Restored';
}

/** A merge never overwrites an earlier one: `Restored-2026-11-23`, else `Restored-2026-11-23-2`, `-3`, … */
export function freeRestoredName(base: string, taken: (name: string) => boolean): string {
  let name = base;
  for (let i = 2; taken(name); i++) name = `${base}-${i}`;
  return name;
}

/** Archive components in the order they are restored: keys first, the DB (which restarts all) next. */
export function archiveOrder(components: Component[]): Component[] {
  return (['crypt', 'mysql', 'redis', 'rspamd', 'postfix'] as Component[]).filter((c) => components.includes(c));
}
