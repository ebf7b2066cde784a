// Pure: the mailboxes a backup holds, as the wizard offers them (searchable, several at once,
// marked when this host has no such mailbox), and what a mailbox restore downloads.
import { bytes } from '../plan/human.js';
import { mailboxTotals } from '../plan/mailboxes.js';
import { MAILBOX, mailboxDir, type BackupRecord } from './plan.js';

export interface BackupMailbox {
  address: string;
  /** `domain/user`, as in the vmail volume. */
  dir: string;
  messages: number;
  bytes?: number;
  /** false: sizes from the message names (a backup made before backup.json recorded them). */
  exact: boolean;
  /** false: the live vmail volume has no folder for it; undefined: not known. */
  onHost?: boolean;
}

/** From backup.json's per-mailbox totals, or else from the manifest's paths. Sorted by address. */
export function backupMailboxes(record: BackupRecord, manifestPaths: Iterable<string>): BackupMailbox[] {
  const recorded = record.vmail?.mailboxes;
  const totals = recorded ? new Map(Object.entries(recorded)) : mailboxTotals((function* () {
    for (const path of manifestPaths) yield { path };
  })(), record.vmail?.dir ?? 'vmail');
  const out: BackupMailbox[] = [];
  for (const [dir, t] of totals) {
    const [domain, user] = dir.split('/') as [string, string];
    const address = `${user}@${domain}`;
    if (mailboxDir(address) !== dir) continue; // not a mailbox folder (or not one this tool can restore)
    out.push({ address, dir, messages: t.messages, bytes: t.bytes, exact: Boolean(recorded) });
  }
  return out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
}

/** Bytes of the chosen mailboxes' mail; undefined when any of them has no known size. */
export function chosenMailboxBytes(list: BackupMailbox[], addresses: string[]): number | undefined {
  let n = 0;
  for (const a of addresses) {
    const m = list.find((x) => x.address === a.toLowerCase());
    if (!m) continue; // an address the backup lacks downloads nothing (and fails its check)
    if (m.bytes === undefined) return undefined;
    n += m.bytes;
  }
  return n;
}

export const DONE = '\u0000done';

export interface Row {
  name: string;
  value: string;
}

/**
 * The search prompt's rows for `term`: "done" once something is chosen, the typed address when
 * it is one the list does not hold (typed addresses are accepted: the checks then say the
 * backup has no mail for it), then the matching mailboxes, chosen ones ticked.
 */
export function mailboxRows(list: BackupMailbox[], term: string | undefined, chosen: string[]): Row[] {
  const t = (term ?? '').trim().toLowerCase();
  const rows: Row[] = [];
  const done: Row = { name: `done: restore ${chosen.join(', ')}`, value: DONE };
  if (chosen.length && !t) rows.push(done);
  if (t && MAILBOX.test(t) && !list.some((m) => m.address === t)) rows.push({ name: `${chosen.includes(t) ? '[x]' : '[ ]'} ${t}  (typed: not in this backup)`, value: t });
  const width = Math.min(40, Math.max(0, ...list.map((m) => m.address.length)));
  for (const m of list) {
    if (t && !m.address.includes(t)) continue;
    const size = m.bytes === undefined ? 'size ?' : `${m.exact ? '' : '~'}${bytes(m.bytes)}`;
    rows.push({
      name: `${chosen.includes(m.address) ? '[x]' : '[ ]'} ${m.address.padEnd(width)}  ${size.padStart(10)}  ${String(m.messages).padStart(6)} messages${m.onHost === false ? '  NOT ON THIS HOST' : ''}`,
      value: m.address,
    });
  }
  if (chosen.length && t) rows.push(done);
  return rows;
}

/** A pick toggles: chosen again, it is removed. */
export const toggle = (chosen: string[], address: string) => (chosen.includes(address) ? chosen.filter((a) => a !== address) : [...chosen, address]);
