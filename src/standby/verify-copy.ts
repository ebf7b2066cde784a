// Proves a mirrored copy usable without a restore: its archives pass `zstd -t` (gzip -t for old
// ones), and encrypted archives, when this host has an age identity, are decrypted into the
// test through a pipe (the plaintext never touches the disk). Without an identity it says so.
import { join } from 'node:path';
import { decryptedStream, isWrongKey, type Identities } from '../adapters/age.js';
import type { Exec } from '../adapters/exec.js';
import { UserError } from '../errors.js';
import { isEncryptedName, plainName } from '../plan/age-keys.js';

const ARCHIVE = /^backup_[a-z]+\.tar\.(zst|gz)(\.age)?$/;

export const NOT_PROVED = 'decryption not proved: no AGE_IDENTITY_FILE on this host';

export async function testArchives(exec: Exec, folder: string, paths: string[], ids: Identities | undefined): Promise<{ archives: number; decryption: 'proved' | 'not proved' | 'not encrypted' }> {
  const archives = paths.filter((p) => ARCHIVE.test(p));
  const encrypted = archives.filter(isEncryptedName);
  let tested = 0;
  for (const p of archives) {
    const tool = plainName(p).endsWith('.zst') ? 'zstd' : 'gzip';
    const what = `testing ${p}`;
    if (!isEncryptedName(p)) {
      await exec(tool, ['-t', '-q', join(folder, p)], { what, errorKind: 'verify', timeoutMs: 3_600_000 });
      tested++;
    } else if (ids) {
      let stream;
      try {
        stream = await decryptedStream(join(folder, p), ids);
      } catch (e) {
        if (!isWrongKey(e)) throw e;
        throw new UserError('preflight', `AGE_IDENTITY_FILE ${ids.path} cannot decrypt ${p}: it is not one of the keys this backup was encrypted to; put the right identity there (or leave AGE_IDENTITY_FILE empty)`);
      }
      await exec(tool, ['-t', '-q', '-'], { what: `${what} (decrypted through a pipe)`, errorKind: 'verify', timeoutMs: 3_600_000, inputStream: stream });
      tested++;
    }
  }
  return { archives: tested, decryption: encrypted.length === 0 ? 'not encrypted' : ids ? 'proved' : 'not proved' };
}
