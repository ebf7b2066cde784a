// Encryption of the small components before they leave the host: mailcow.conf (DB passwords)
// and every archive (database, crypt keys, redis, rspamd, postfix) are replaced in the run's
// 0700 temp folder by age files for the configured recipients; the plaintext is removed before
// anything is sent, so the box only ever receives ciphertext. vmail stays a file tree.
// The archives' trees (archive-tree.ts) are encrypted file by file, and a file unchanged since
// the last published backup takes that backup's ciphertext again (cipher-store.ts).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { encryptFile } from '../adapters/age.js';
import { encryptedName, isEncryptable, recipientFingerprint } from '../plan/age-keys.js';
import { ARCHIVES_DIR } from '../plan/archive-tree.js';
import type { CachedFile } from '../plan/vmail-index.js';
import { UserError } from '../errors.js';
import type { RunContext } from './context.js';
import { CipherStore } from './cipher-store.js';

/** What backup.json says about encryption, so restore knows what to ask for. */
export interface EncryptionRecord {
  tool: 'age';
  files: string[];
  recipients: { fingerprint: string; recipient: string }[];
}

/** What the cipher store keeps after a published run: plaintext path → its hash (ciphertext's: from the manifest). */
export type PlainHashes = Map<string, string>;

/**
 * Encrypts the dump's files in place. `known`: plaintext hashes already made (the trees');
 * `previous`: the last published manifest, whose ciphertext an unchanged file may take again.
 */
export async function encryptDump(
  ctx: RunContext,
  folder: string,
  recipients: string[],
  known: ReadonlyMap<string, { hash: string }> = new Map(),
  previous: ReadonlyMap<string, CachedFile> = new Map(),
): Promise<EncryptionRecord & { plain: PlainHashes; reused: number }> {
  const files: string[] = [];
  const plain: PlainHashes = new Map();
  const store = await CipherStore.open(ctx.config.STATE_DIR, recipients.map(recipientFingerprint));
  let reused = 0;
  for (const n of await encryptable(folder)) {
    if (ctx.signal.aborted) throw new UserError('interrupted', 'encryption was stopped because the run was interrupted');
    const target = encryptedName(n);
    const hash = known.get(n)?.hash ?? (await sha256(join(folder, n)));
    if (await store.reuse(n, hash, previous, join(folder, target))) reused++;
    else await encryptFile(join(folder, n), join(folder, target), recipients);
    await rm(join(folder, n));
    plain.set(n, hash);
    files.push(target);
  }
  const record: EncryptionRecord = { tool: 'age', files, recipients: recipients.map((r) => ({ fingerprint: recipientFingerprint(r), recipient: r })) };
  const shown = files.filter((f) => !f.startsWith(`${ARCHIVES_DIR}/`));
  const trees = files.length - shown.length;
  ctx.log.info(
    `encrypted ${[...shown, ...(trees ? [`${trees} file(s) of the archives' trees`] : [])].join(', ')} with age for ${record.recipients.map((r) => r.fingerprint).join(', ')}` +
      `${reused ? ` (${reused} unchanged: last backup's ciphertext taken again)` : ''}; the plaintext copies are removed`,
  );
  return { ...record, plain, reused };
}

/** mailcow.conf, whole archives, and every file below archives/ (paths relative to `folder`, sorted). */
async function encryptable(folder: string): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(folder, { recursive: true })).sort()) {
    if (!(isEncryptable(n) || n.startsWith(`${ARCHIVES_DIR}/`))) continue;
    if ((await lstat(join(folder, n))).isFile()) out.push(n);
  }
  return out;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/**
 * After publishing: the cipher store takes this run's ciphertext (hashes from the manifest, as
 * the box holds them). A failure costs the next run re-encrypting, never this backup.
 */
export async function saveCipherStore(ctx: RunContext, folder: string, plain: PlainHashes, manifest: { get(path: string): { hash: string } | undefined }): Promise<void> {
  const files = new Map<string, { plain: string; cipher: string }>();
  for (const [path, hash] of plain) {
    const cipher = manifest.get(encryptedName(path))?.hash;
    if (cipher) files.set(path, { plain: hash, cipher });
  }
  const recipients = (ctx.config.ENCRYPT_RECIPIENTS ?? []).map(recipientFingerprint);
  await CipherStore.save(ctx.config.STATE_DIR, folder, recipients, files).catch((e) => ctx.log.warn(`cannot keep this backup's ciphertext for the next run (${(e as Error).message}): it encrypts every archive file anew`));
}
