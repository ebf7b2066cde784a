// Pure parts of the restore drill: the throwaway database container's name and script, reading
// its answers, setting the database against the mail tree, reading mail_crypt's key id from a
// message, and the verdict, summary line and e-mail subject an admin reads.
import type { CheckStatus } from '../backup/check.js';
import { bytes, count, duration } from './human.js';
import { MAIL_CRYPT_MAGIC } from './mail-crypt.js';

export interface DrillCheck {
  title: string;
  status: CheckStatus;
  detail: string;
}

/** Every container a drill starts is named so; the pid says whether the drill that made it still runs. */
export const DRILL_CONTAINER_PREFIX = 'mailcow-backup-drill-';
export const drillContainerName = (pid: number) => `${DRILL_CONTAINER_PREFIX}${pid}`;
export const pidOfDrillContainer = (name: string): number | undefined => {
  const m = /^mailcow-backup-drill-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
};

/** The scratch folder under TEMP_BACKUP_DIR (short: the database socket's path lives in it). */
export const DRILL_DIR_PREFIX = 'drill-';
export const drillDirName = (pid: number) => `${DRILL_DIR_PREFIX}${pid}`;

/** mailcow's SQL image, found in docker-compose.yml as mailcow's own script finds it. */
export function sqlImageOf(composeText: string): string | undefined {
  return /(?:mysql|mariadb):[^\s"']+/i.exec(composeText)?.[0];
}

export const DATADIR = '/var/lib/mysql';
export const RUNDIR = '/run/mysqld';

/**
 * What runs inside the throwaway container: mariadbd on the prepared datadir, read-only (the
 * scratch copy is never written), without network or grant tables, a private socket; the counts
 * as tab-separated lines; then a clean shutdown. Paths come as arguments ($1 datadir, $2 socket
 * folder, $3 database) so nothing is spliced into the script.
 */
export const QUERY_SCRIPT = [
  'set -u',
  'mariadbd --no-defaults --datadir="$1" --socket="$2/drill.sock" --pid-file="$2/drill.pid" --skip-networking --skip-grant-tables --innodb-read-only=1 --user=root --log-error="$2/mariadbd.err" &',
  'srv=$!',
  'i=0',
  'until mariadb-admin --no-defaults -S "$2/drill.sock" ping >/dev/null 2>&1; do',
  '  kill -0 "$srv" 2>/dev/null || { echo "mariadbd did not start:" >&2; tail -n 15 "$2/mariadbd.err" >&2; exit 3; }',
  '  i=$((i+1)); [ "$i" -lt 1200 ] || { echo "mariadbd did not answer within 120 s" >&2; kill "$srv"; exit 3; }',
  '  sleep 0.1',
  'done',
  'trap \'mariadb-admin --no-defaults -S "$2/drill.sock" shutdown >/dev/null 2>&1; wait "$srv"\' EXIT',
  'mariadb --no-defaults -S "$2/drill.sock" -N -B "$3" -e "SELECT \'domains\', COUNT(*), SUM(active = 1) FROM domain; SELECT \'aliases\', COUNT(*), SUM(active = 1) FROM alias; SELECT \'mailbox\', username, domain, local_part, active FROM mailbox"',
].join('\n');

export interface DbMailbox {
  address: string;
  domain: string;
  localPart: string;
  /** mailcow: 0 inactive, 1 active, 2 active but login disabled. */
  active: number;
}

export interface DbFacts {
  domains: number;
  activeDomains: number;
  aliases: number;
  mailboxes: DbMailbox[];
}

/** The query's output; undefined when it is not what the script prints (a table missing, another schema). */
export function parseDbOutput(text: string): DbFacts | undefined {
  const facts: DbFacts = { domains: -1, activeDomains: 0, aliases: -1, mailboxes: [] };
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'domains') (facts.domains = Number(f[1])), (facts.activeDomains = Number(f[2]) || 0);
    else if (f[0] === 'aliases') facts.aliases = Number(f[1]);
    else if (f[0] === 'mailbox' && f.length >= 5) facts.mailboxes.push({ address: f[1]!, domain: f[2]!, localPart: f[3]!, active: Number(f[4]) });
  }
  return facts.domains >= 0 && facts.aliases >= 0 ? facts : undefined;
}

/** `domain/local_part` folders of vmail (keys) against the database's mailboxes. */
export function setAgainstVmail(db: DbMailbox[], vmail: ReadonlyMap<string, unknown>): { missing: DbMailbox[]; orphans: string[] } {
  const dirs = new Set(db.map((m) => `${m.domain}/${m.localPart}`));
  return {
    missing: db.filter((m) => !vmail.has(`${m.domain}/${m.localPart}`)),
    orphans: [...vmail.keys()].filter((d) => !dirs.has(d)).sort(),
  };
}

/** The key id (hex) a mail_crypt v2 message was encrypted for; undefined when it is not one. */
export function mailCryptKeyIdOf(head: Buffer): string | undefined {
  let p = MAIL_CRYPT_MAGIC.length;
  if (head.length < p + 9 || !head.subarray(0, p).equals(MAIL_CRYPT_MAGIC) || head[p] !== 2) return undefined;
  p += 1 + 4 + 4; // version, flags, header length
  for (let i = 0; i < 2; i++) {
    // cipher and MAC: DER-encoded OIDs
    if (p + 2 > head.length) return undefined;
    const len = (head[p + 1]! & 0x80) !== 0 ? ((head[p + 1]! & 0x7f) << 8) + head[p + 2]! + 3 : head[p + 1]! + 2;
    p += len;
  }
  p += 4 + 4; // PBKDF2 rounds, key data length
  if (p + 2 + 32 > head.length || head[p]! < 1) return undefined;
  return head.subarray(p + 2, p + 2 + 32).toString('hex'); // key count, key type, digest
}

/** How much the drill can afford: everything, or the database and a sample of mailboxes. */
/**
 * What a full drill takes in TEMP_BACKUP_DIR: the backup, the database archive packed again from
 * its tree, and the database extracted and prepared (a quarter more for mariabackup's log apply).
 * InnoDB files compress to a fraction: backups recorded before the unpacked size was (old layout)
 * are assumed to unpack to 20x their archive.
 */
export function drillNeed(backupBytes: number, db?: { bytes: number; unpackedBytes?: number }): number {
  if (!db) return backupBytes;
  const unpacked = db.unpackedBytes ?? db.bytes * 20;
  return backupBytes + db.bytes + Math.ceil(unpacked * 1.25);
}

export function drillScope(needBytes: number, freeBytes: number, mailboxes: { dir: string; bytes: number }[], sample = 3): { full: true } | { full: false; mailboxes: string[]; skipped: number } {
  if (needBytes <= freeBytes) return { full: true };
  const picked = [...mailboxes].sort((a, b) => a.bytes - b.bytes || (a.dir < b.dir ? -1 : 1)).slice(0, sample).map((m) => m.dir);
  return { full: false, mailboxes: picked.sort(), skipped: mailboxes.length - picked.length };
}

export type DrillVerdict = 'OK' | 'FAILED';
export const verdictOf = (checks: DrillCheck[]): DrillVerdict => (checks.some((c) => c.status === 'FAIL') ? 'FAILED' : 'OK');

export interface DrillOutcome {
  backup: string;
  verdict: DrillVerdict;
  domains?: number;
  mailboxes?: number;
  messages: number;
  bytes: number;
  fetchMs: number;
  openMs?: number;
  checks: DrillCheck[];
}

const n = (v: number) => v.toLocaleString('en-US');

/** "drill OK: mailcow-… restores: 3 domains, 41 mailboxes, 211,733 messages, 18.4 GiB; fetched in 3 min 12 s, opened in 48 s" */
export function drillSummaryLine(o: DrillOutcome): string {
  const what = [
    o.domains !== undefined ? count(o.domains, 'domain') : undefined,
    o.mailboxes !== undefined ? count(o.mailboxes, 'mailbox', 'mailboxes') : undefined,
    `${n(o.messages)} ${o.messages === 1 ? 'message' : 'messages'}`,
    bytes(o.bytes),
  ].filter(Boolean);
  const times = `fetched in ${duration(o.fetchMs)}${o.openMs !== undefined ? `, opened in ${duration(o.openMs)}` : ''}`;
  if (o.verdict === 'OK') {
    const warns = o.checks.filter((c) => c.status === 'WARN').length;
    return `drill OK: ${o.backup} restores: ${what.join(', ')}; ${times}${warns ? ` (${count(warns, 'warning')}: see WARN above)` : ''}`;
  }
  const fails = o.checks.filter((c) => c.status === 'FAIL');
  return `drill FAILED: ${o.backup} is NOT restorable: ${fails.map((c) => `${c.title}: ${c.detail}`).join('; ')}`;
}

/** The e-mail's subject: `[mailcow-backup] DRILL OK|FAILED host — backup` (FAILED also when the drill could not run). */
export const drillSubject = (ok: boolean, host: string, backup: string | undefined) => `[mailcow-backup] DRILL ${ok ? 'OK' : 'FAILED'} ${host} — ${backup ?? 'no backup'}`;
