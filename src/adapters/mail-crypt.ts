// Gathers the facts for the mail_crypt check: dovecot's config in the mailcow folder, the keys in
// the crypt volume, and the first bytes of a bounded sample of messages in vmail (never more than
// a few thousand folders are read, so a large mail store costs no time).
import { existsSync } from 'node:fs';
import { open, opendir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MAIL_CRYPT_MAGIC, saveVersionOf, type MailCryptFacts } from '../plan/mail-crypt.js';

const SAMPLE = 50;
const MAX_DIRS = 3000;

export async function mailCryptFacts(mailcowPath: string, cryptVolume: string | undefined, vmail: string | undefined): Promise<MailCryptFacts> {
  const dovecot = join(mailcowPath, 'data/conf/dovecot');
  const texts = await Promise.all(['dovecot.conf', 'extra.conf'].map((f) => readFile(join(dovecot, f), 'utf8').catch(() => '')));
  const keys = cryptVolume ? ['ecprivkey.pem', 'ecpubkey.pem'].every((k) => existsSync(join(cryptVolume, k))) : undefined;
  const { sampled, encrypted } = vmail ? await sampleMessages(vmail) : { sampled: 0, encrypted: 0 };
  return { saveVersion: saveVersionOf(texts), keys, sampled, encrypted };
}

/** Messages are the files in Maildir `cur`/`new` folders; each is checked for mail_crypt's header. */
export async function sampleMessages(root: string): Promise<{ sampled: number; encrypted: number }> {
  const heads = await messageHeads(root, MAIL_CRYPT_MAGIC.length);
  return { sampled: heads.length, encrypted: heads.filter((h) => h.equals(MAIL_CRYPT_MAGIC)).length };
}

/** The first `size` bytes of a bounded sample of messages (files in `cur`/`new`) under `root`. */
export async function messageHeads(root: string, size: number, sample = SAMPLE): Promise<Buffer[]> {
  const heads: Buffer[] = [];
  let dirs = 0;
  const walk = async (dir: string, isMessages: boolean): Promise<void> => {
    if (heads.length >= sample || ++dirs > MAX_DIRS) return;
    let d;
    try {
      d = await opendir(dir);
    } catch {
      return;
    }
    for await (const e of d) {
      if (heads.length >= sample || dirs > MAX_DIRS) break;
      if (e.isDirectory()) await walk(join(dir, e.name), e.name === 'cur' || e.name === 'new');
      else if (isMessages && e.isFile()) {
        const fh = await open(join(dir, e.name), 'r').catch(() => undefined);
        if (!fh) continue;
        const head = Buffer.alloc(size);
        const { bytesRead } = await fh.read(head, 0, size, 0).finally(() => fh.close());
        heads.push(head.subarray(0, bytesRead));
      }
    }
  };
  await walk(root, false);
  return heads;
}
