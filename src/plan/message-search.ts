// Pure: single-message restore by search. Which backups to search and in what order, where the
// fetched files go, the doveadm query and its output, and how one message is recognised across
// backups and in the live mailbox. Nothing here reads a file or runs a command.
import { isBackupName, parseBackupName } from './names.js';

/**
 * The fetched mailbox lives under the vmail volume (dovecot in its container sees only that) in
 * a folder no mailbox can have (mailboxes are `<domain>/<user>`), named for the process that made
 * it, so a later run can tell a dead run's leftover from a live one's.
 */
export const SCRATCH_PREFIX = '.mailcow-backup-search-';
export const scratchName = (pid: number) => `${SCRATCH_PREFIX}${pid}`;
export function scratchPid(name: string): number | undefined {
  const m = /^\.mailcow-backup-search-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * The published backups to search, newest first: one (`NAME` or `latest`, already resolved by
 * the caller), or every one made on or after `since` (and not after `upTo`), or all.
 */
export function backupsToSearch(published: string[], o: { only?: string; since?: Date; upTo?: string }): string[] {
  let names = published.filter(isBackupName).sort().reverse();
  if (o.only) return names.filter((n) => n === o.only);
  // The wizard: the backup picked first, then the older ones.
  if (o.upTo) names = names.filter((n) => n <= o.upTo!);
  if (o.since) return names.filter((n) => parseBackupName(n)!.getTime() >= o.since!.getTime());
  return names;
}

/** `--since 2026-11-20` (local midnight) or a full ISO time; undefined when it is neither. */
export function parseSince(text: string): Date | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text.trim());
  const d = m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : /^\d{4}-\d{2}-\d{2}T/.test(text) ? new Date(text) : undefined;
  return d && !Number.isNaN(d.getTime()) ? d : undefined;
}

/**
 * The admin's QUERY as doveadm's argument words: `subject "the invoice" from bob` ->
 * [subject, the invoice, from, bob]. Quotes group words as a shell would; nothing else is special.
 */
export function splitQuery(text: string): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur ??= '';
    } else if (/\s/.test(ch)) {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else cur = (cur ?? '') + ch;
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

/**
 * doveadm's own complaint about a query ("Fatal: Unknown argument SUBJECTT", "Fatal: Missing
 * parameter for search key …"): printed without the `doveadm(user):` prefix its other errors carry.
 */
export function queryErrorLine(lines: string[]): string | undefined {
  return lines.map((l) => l.trim()).find((l) => /^Fatal: /.test(l));
}

/** A dovecot folder name (`INBOX`, `Sent`, `Archive/2024`, `Entwürfe`) -> its Maildir++ folder ('' is INBOX). */
export function maildirFolder(name: string): string {
  const n = name.replace(/^\/+|\/+$/g, '');
  if (n.toUpperCase() === 'INBOX') return '';
  return `.${n.split('/').map(mutf7).join('.')}`;
}

/** IMAP's modified UTF-7 (RFC 3501 5.1.3), as dovecot names folders on disk. */
function mutf7(s: string): string {
  let out = '';
  let run = '';
  const flush = () => {
    if (!run) return;
    const u16 = Buffer.alloc(run.length * 2);
    for (let i = 0; i < run.length; i++) u16.writeUInt16BE(run.charCodeAt(i), i * 2);
    out += `&${u16.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
    run = '';
  };
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else run += ch;
  }
  flush();
  return out;
}

/** The fields asked of `doveadm fetch` (its JSON keys). */
export const FETCH_FIELDS = ['mailbox', 'guid', 'date.sent', 'size.physical', 'hdr.from', 'hdr.subject'] as const;

export interface FoundMessage {
  /** The maildir base name (dovecot's message GUID for maildir): the name without `:2,flags`. */
  guid: string;
  folder: string;
  /** ISO time from the Date header ('' when it has none). */
  date: string;
  from: string;
  subject: string;
  size: number;
}

/** `doveadm -f json fetch` output -> messages. */
export function parseFetch(json: string): FoundMessage[] {
  const rows = json.trim() ? (JSON.parse(json) as Record<string, string>[]) : [];
  return rows.map((r) => ({
    guid: r.guid ?? '',
    folder: r.mailbox ?? '',
    date: isoOfDovecotDate(r['date.sent'] ?? ''),
    from: r['hdr.from'] ?? '',
    subject: r['hdr.subject'] ?? '',
    size: Number(r['size.physical'] ?? 0),
  }));
}

/** `2024-01-01 13:05:00 (+0100)` -> `2024-01-01T12:05:00.000Z`; '' when unreadable. */
export function isoOfDovecotDate(s: string): string {
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) \(([+-]\d{2})(\d{2})\)$/.exec(s.trim());
  if (!m) return '';
  const d = new Date(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** A maildir file name without its `:2,flags` info: the same message whatever its flags. */
export const baseOfFile = (name: string) => name.replace(/:2,[^/]*$/, '');

export interface Candidate extends FoundMessage {
  backup: string;
  /** Relative to the mailbox's maildir: `.Sent/cur/<file>`. */
  path: string;
  /** SHA-256 of the file, from the backup's manifest. */
  hash: string;
  /** The live mailbox holds the same file (base name and hash): it is not restored again. */
  inMailbox: boolean;
}

/** The same message is the same base name and content, whatever backup, folder or flags. */
export const messageKey = (m: { guid: string; hash: string }) => `${m.guid}\u0000${m.hash}`;

/**
 * Results of several backups (searched newest first) -> one row per message, from the newest
 * backup that has it, the newest mail first.
 */
export function mergeFound(perBackup: Candidate[][]): Candidate[] {
  const seen = new Set<string>();
  const out: Candidate[] = [];
  for (const list of perBackup) {
    for (const m of list) {
      const k = messageKey(m);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(m);
    }
  }
  return out.sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : a.guid < b.guid ? -1 : 1));
}

/**
 * The doveadm query that selects exactly these messages again (by GUID, in their folder), for
 * `doveadm import`: `( mailbox X guid A ) OR ( mailbox Y guid B ) …` as argument words.
 */
export function selectionQuery(ms: { folder: string; guid: string }[]): string[] {
  const out: string[] = [];
  ms.forEach((m, i) => {
    if (i) out.push('OR');
    out.push('(', 'mailbox', m.folder, 'guid', m.guid, ')');
  });
  return out;
}

/** `Restored-2026-12-05` for the day of the restore (local time). */
export function restoredFolderFor(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `Restored-${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`;
}

/**
 * rsync filter rules for one mailbox's message files (cur/ and new/) in a backup: of one folder
 * (`maildirFolder` of it; '' is INBOX) or of all. Indexes and dovecot's control files stay on the
 * box: dovecot rebuilds what it needs from the messages.
 */
export function messageFilters(o: { vmailDir: string; mailboxDir: string; maildirSub: string; folder?: string }): string[] {
  const [domain] = o.mailboxDir.split('/');
  const root = `/${o.vmailDir}/${o.mailboxDir}${o.maildirSub ? `/${o.maildirSub}` : ''}`;
  const rules = [`--include=/${o.vmailDir}/`, `--include=/${o.vmailDir}/${domain}/`, `--include=/${o.vmailDir}/${o.mailboxDir}/`];
  if (o.maildirSub) rules.push(`--include=${root}/`);
  const folders = o.folder === undefined ? ['', '.*'] : [o.folder];
  for (const f of folders) {
    const at = f ? `${root}/${f}` : root;
    if (f) rules.push(`--include=${at}/`);
    rules.push(`--include=${at}/cur/***`, `--include=${at}/new/***`);
  }
  rules.push('--exclude=*');
  return rules;
}

/** Whether a backup path (relative to the mailbox's maildir) is a message of the asked folder (or of any). */
export function isMessagePath(rel: string, folder?: string): boolean {
  const m = /^(?:(\.[^/]+)\/)?(?:cur|new)\/[^/]+$/.exec(rel);
  if (!m) return false;
  return folder === undefined || (m[1] ?? '') === folder;
}

/** One line per found message for the screen: backup, folder, date, from, subject, size. */
export function foundLines(found: Candidate[], bytes: (n: number) => string): string[] {
  const w = (xs: string[], min: number) => Math.max(min, ...xs.map((x) => x.length));
  const fw = w(found.map((m) => m.folder), 6);
  const from = (m: Candidate) => (m.from.length > 40 ? `${m.from.slice(0, 39)}…` : m.from);
  const frw = w(found.map(from), 4);
  return found.map(
    (m) => `${m.backup}  ${m.folder.padEnd(fw)}  ${(m.date ? m.date.slice(0, 16).replace('T', ' ') : '(no date)').padEnd(16)}  ${from(m).padEnd(frw)}  ${m.subject}  (${bytes(m.size)})${m.inMailbox ? '  [still in the mailbox]' : ''}`,
  );
}
