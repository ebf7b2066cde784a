// age is randomized: the same plaintext encrypted twice gives two different files, so an
// encrypted file would be sent and stored anew every dump. The last published backup's ciphertext
// is kept here (STATE_DIR/archive-cipher, 0700: files/<path>.age plus index.json), as hard links
// to the run's files where the file system allows, and an unchanged file takes it again: same
// bytes, same time, so --link-dest links it on the box. The index maps each path to the SHA-256
// of its plaintext, which never leaves this host (on the box it would let anyone test guesses).
import { copyFile, link, mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { CachedFile } from '../plan/vmail-index.js';
import { encryptedName } from '../plan/age-keys.js';

const DIR = 'archive-cipher';
const INDEX = 'index.json';

interface Index {
  cipherStore: 1;
  /** Fingerprints of the recipients, sorted: another set of recipients reuses nothing. */
  recipients: string[];
  files: Record<string, { plain: string; cipher: string }>;
}

export const cipherStorePath = (stateDir: string) => join(stateDir, DIR);

export class CipherStore {
  private constructor(
    private readonly dir: string,
    private readonly index: Index | undefined,
  ) {}

  static async open(stateDir: string, recipients: string[]): Promise<CipherStore> {
    const dir = cipherStorePath(stateDir);
    const index = await readFile(join(dir, INDEX), 'utf8')
      .then((t) => JSON.parse(t) as Index)
      .catch(() => undefined);
    const same = index?.cipherStore === 1 && index.recipients.join(',') === [...recipients].sort().join(',');
    return new CipherStore(dir, same ? index : undefined);
  }

  /**
   * Puts last time's ciphertext of `path` at `target` when its plaintext is unchanged and the
   * previous published backup lists that very ciphertext (what it holds on the box). False: encrypt anew.
   */
  async reuse(path: string, plainHash: string, previous: ReadonlyMap<string, CachedFile>, target: string): Promise<boolean> {
    const e = this.index?.files[path];
    const onBox = previous.get(encryptedName(path));
    if (!e || e.plain !== plainHash || !onBox || onBox.hash !== e.cipher) return false;
    const src = join(this.dir, 'files', encryptedName(path));
    const st = await stat(src).catch(() => undefined);
    if (!st || st.size !== onBox.size) return false;
    await linkOrCopy(src, target);
    return true;
  }

  /**
   * After a published run: the store becomes that backup's ciphertext (`files`: plaintext path →
   * plaintext and ciphertext hash), swapped in whole so a crash leaves the old or the new store.
   */
  static async save(stateDir: string, folder: string, recipients: string[], files: Map<string, { plain: string; cipher: string }>): Promise<void> {
    const dir = cipherStorePath(stateDir);
    const next = `${dir}.new`;
    const old = `${dir}.old`;
    await rm(next, { recursive: true, force: true });
    await mkdir(join(next, 'files'), { recursive: true, mode: 0o700 });
    for (const path of files.keys()) {
      const dst = join(next, 'files', encryptedName(path));
      await mkdir(dirname(dst), { recursive: true, mode: 0o700 });
      await linkOrCopy(join(folder, encryptedName(path)), dst);
    }
    const index: Index = { cipherStore: 1, recipients: [...recipients].sort(), files: Object.fromEntries(files) };
    await writeFile(join(next, INDEX), JSON.stringify(index), { mode: 0o600 });
    await rm(old, { recursive: true, force: true });
    await rename(dir, old).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    await rename(next, dir);
    await rm(old, { recursive: true, force: true });
  }
}

/** A hard link (no second copy on disk); a copy with the same time across file systems. */
async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await link(src, dst);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await copyFile(src, dst);
    const st = await stat(src);
    await utimes(dst, st.atime, st.mtime);
  }
}
