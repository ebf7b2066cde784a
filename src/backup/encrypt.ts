// Encryption of the small components before they leave the host: mailcow.conf (DB passwords)
// and every archive (database, crypt keys, redis, rspamd, postfix) are replaced in the run's
// 0700 temp folder by age files for the configured recipients; the plaintext is removed before
// anything is sent, so the box only ever receives ciphertext. vmail stays a file tree.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { encryptFile } from '../adapters/age.js';
import { encryptedName, isEncryptable, recipientFingerprint } from '../plan/age-keys.js';
import { UserError } from '../errors.js';
import type { RunContext } from './context.js';

/** What backup.json says about encryption, so restore knows what to ask for. */
export interface EncryptionRecord {
  tool: 'age';
  files: string[];
  recipients: { fingerprint: string; recipient: string }[];
}

export async function encryptDump(ctx: RunContext, folder: string, recipients: string[]): Promise<EncryptionRecord> {
  const files: string[] = [];
  for (const n of (await readdir(folder)).sort()) {
    if (ctx.signal.aborted) throw new UserError('interrupted', 'encryption was stopped because the run was interrupted');
    if (!isEncryptable(n)) continue;
    const target = encryptedName(n);
    await encryptFile(join(folder, n), join(folder, target), recipients);
    await rm(join(folder, n));
    files.push(target);
  }
  const record: EncryptionRecord = { tool: 'age', files, recipients: recipients.map((r) => ({ fingerprint: recipientFingerprint(r), recipient: r })) };
  ctx.log.info(`encrypted ${files.join(', ')} with age for ${record.recipients.map((r) => r.fingerprint).join(', ')}; the plaintext copies are removed`);
  return record;
}
