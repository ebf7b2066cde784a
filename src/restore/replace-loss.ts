// Pure: which messages a mailbox restore with --mode replace removes, so the plan can name them
// before anything is touched. A maildir message keeps its unique base name (the part before
// ':2,') when its flags change or it moves to another folder, so only a live message whose base
// name the backup's copy of the mailbox does not hold is really lost; a flag change or a move
// since the backup is undone, not lost.

export interface LiveMessage {
  /** Path below the live maildir: `cur/NAME`, `.Sent/new/NAME`. */
  path: string;
  bytes: number;
  mtimeMs: number;
}

export interface ReplaceLoss {
  messages: number;
  bytes: number;
  /** Messages per folder ('INBOX', 'Sent', …), in folder order. */
  folders: [string, number][];
  /** A few of the paths, for the plan. */
  sample: string[];
  newestMs?: number;
}

const MESSAGE = /^(?:(\.[^/]+)\/)?(?:cur|new)\/([^/]+)$/;

/** The part of a maildir file name that survives flag changes. */
export const messageKey = (name: string) => name.replace(/:2,.*$/, '');

/** Keys of the messages in the backup's copy of the mailbox (paths below its maildir). */
export function backupMessageKeys(pathsBelowMaildir: Iterable<string>): Set<string> {
  const keys = new Set<string>();
  for (const p of pathsBelowMaildir) {
    const m = MESSAGE.exec(p);
    if (m) keys.add(messageKey(m[2]!));
  }
  return keys;
}

export function replaceLoss(live: LiveMessage[], backupKeys: Set<string>, sampleSize = 5): ReplaceLoss {
  const lost = live.filter((f) => {
    const m = MESSAGE.exec(f.path);
    return m !== null && !backupKeys.has(messageKey(m[2]!));
  });
  const folders = new Map<string, number>();
  for (const f of lost) {
    const folder = MESSAGE.exec(f.path)![1]?.slice(1) ?? 'INBOX';
    folders.set(folder, (folders.get(folder) ?? 0) + 1);
  }
  const newest = lost.length ? Math.max(...lost.map((f) => f.mtimeMs)) : undefined;
  return {
    messages: lost.length,
    bytes: lost.reduce((n, f) => n + f.bytes, 0),
    folders: [...folders].sort(([a], [b]) => (a === 'INBOX' ? -1 : b === 'INBOX' ? 1 : a.localeCompare(b))),
    sample: lost.sort((a, b) => b.mtimeMs - a.mtimeMs).slice(0, sampleSize).map((f) => f.path),
    newestMs: newest,
  };
}
