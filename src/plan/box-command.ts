// Command lines for the Storage Box's restricted shell. It splits words like a shell but expands
// nothing and refuses any line holding | < > ; & $ ` or a newline, so every word is quoted and
// every path checked before it is sent.

const FORBIDDEN = /[|<>;&$`\n\r\0]/;

export function isShellSafe(word: string): boolean {
  return !FORBIDDEN.test(word);
}

export function quoteWord(word: string): string {
  if (!isShellSafe(word)) throw new Error(`internal: refusing to send ${JSON.stringify(word)} to the box shell`);
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function boxCommand(words: string[]): string {
  return words.map(quoteWord).join(' ');
}

/** Splits paths into batches whose command line stays well under any server's limit. */
export function batchPaths(paths: string[], maxChars = 24_000, maxCount = 200): string[][] {
  const batches: string[][] = [];
  let cur: string[] = [];
  let len = 0;
  for (const p of paths) {
    const l = quoteWord(p).length + 1;
    if (cur.length > 0 && (len + l > maxChars || cur.length >= maxCount)) {
      batches.push(cur);
      cur = [];
      len = 0;
    }
    cur.push(p);
    len += l;
  }
  if (cur.length) batches.push(cur);
  return batches;
}

/** The refusal the box prints on stdout (exit 8) for a command it does not allow. */
export const REFUSAL_TEXT = "Command not found. Use 'help' to get a list of available commands.";
export const REFUSAL_EXIT = 8;

/**
 * How the box proves what it holds. `sha256sum`: the box hashes its own files. `rsync-checksum`:
 * a box that refuses sha256sum; its rsync reads every byte instead (`--checksum --dry-run` against
 * our copy), and files without a local copy are downloaded and hashed here.
 */
export type VerifyMethod = 'sha256sum' | 'rsync-checksum';

export function verifyMethodText(m: VerifyMethod): string {
  return m === 'sha256sum' ? "the box's sha256sum" : "rsync --checksum (the box has no sha256sum; its rsync read every byte)";
}
