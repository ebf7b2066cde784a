// Pure: per-mailbox totals of a backup's mail tree (`vmail/<domain>/<user>/...`), for the
// restore wizard's list and a mailbox restore's disk check. The backup records them exactly
// (backup.json, from the sizes it walked); for a backup made before that, they come from the
// manifest's paths: the count is exact, the size is the sum of dovecot's `,S=<size>` in the
// message names (the message's size as dovecot sees it, close to the bytes on disk).

export interface MailboxTotals {
  messages: number;
  /** undefined: not known (a name without `,S=`, in a backup that did not record sizes). */
  bytes?: number;
}

const SIZE_IN_NAME = /,S=(\d+)/;

/**
 * `entries`: manifest paths, with the file's size when known. Keys: `domain/user`. A message is a
 * file directly in a `cur` or `new` folder. With sizes, every file (indexes, sieve) counts towards
 * the bytes; from names alone, the messages.
 */
export function mailboxTotals(entries: Iterable<{ path: string; size?: number }>, mailDir = 'vmail'): Map<string, MailboxTotals> {
  const out = new Map<string, MailboxTotals>();
  const prefix = `${mailDir}/`;
  for (const e of entries) {
    if (!e.path.startsWith(prefix)) continue;
    const parts = e.path.slice(prefix.length).split('/');
    if (parts.length < 3) continue; // a file directly in a domain folder belongs to no mailbox
    const key = `${parts[0]}/${parts[1]}`;
    let t = out.get(key);
    if (!t) out.set(key, (t = { messages: 0, bytes: 0 }));
    const name = parts[parts.length - 1]!;
    const isMessage = parts.length >= 4 && /^(cur|new)$/.test(parts[parts.length - 2]!);
    if (isMessage) t.messages++;
    const size = e.size ?? (isMessage ? Number(SIZE_IN_NAME.exec(name)?.[1] ?? NaN) : 0);
    if (t.bytes !== undefined) t.bytes = Number.isFinite(size) ? t.bytes + size : undefined;
  }
  return out;
}

/** For backup.json: plain object, keys sorted. */
export function recordedMailboxes(totals: Map<string, MailboxTotals>): Record<string, { messages: number; bytes: number }> {
  const out: Record<string, { messages: number; bytes: number }> = {};
  for (const k of [...totals.keys()].sort()) {
    const t = totals.get(k)!;
    out[k] = { messages: t.messages, bytes: t.bytes ?? 0 };
  }
  return out;
}
