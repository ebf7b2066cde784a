// Pure: does mailcow encrypt the mail in vmail at rest (dovecot's mail_crypt)? mailcow always
// loads the plugin and sets `mail_crypt_save_version = 2` with global keys from the crypt volume
// (/mail_crypt/ecprivkey.pem, ecpubkey.pem) in data/conf/dovecot/dovecot.conf; an admin can turn
// it off (save version 0, e.g. in extra.conf). Mail saved before it was on stays plaintext. So the
// verdict rests on what the files are: a sample of messages, checked for mail_crypt's magic.
import type { CheckStatus } from '../backup/check.js';

/** dovecot's encrypted-stream header (IOSTREAM_CRYPT_MAGIC). */
export const MAIL_CRYPT_MAGIC = Buffer.from('CRYPTED\x03\x07', 'latin1');

export interface MailCryptFacts {
  /** The last `mail_crypt_save_version` in dovecot.conf / extra.conf; undefined: not found. */
  saveVersion?: number;
  /** Both EC keys are in the crypt volume; undefined: the volume was not found. */
  keys?: boolean;
  sampled: number;
  encrypted: number;
}

/** The last assignment wins, as in dovecot (extra.conf is read after dovecot.conf). */
export function saveVersionOf(configTexts: string[]): number | undefined {
  let v: number | undefined;
  for (const t of configTexts) for (const m of t.matchAll(/^\s*mail_crypt_save_version\s*=\s*(\d+)\s*$/gm)) v = Number(m[1]);
  return v;
}

export function mailCryptVerdict(f: MailCryptFacts): [CheckStatus, string] {
  const conf = `dovecot: ${f.saveVersion === undefined ? 'mail_crypt_save_version not found' : `mail_crypt_save_version = ${f.saveVersion}`}; keys in the crypt volume: ${f.keys === undefined ? 'volume not found' : f.keys ? 'yes' : 'NO'}`;
  const readable = 'the box (and anyone who gets into it) can read that mail';
  if (f.sampled > 0) {
    if (f.encrypted === f.sampled) return ['OK', `on: ${f.encrypted} of ${f.sampled} sampled messages in vmail are encrypted at rest (${conf})`];
    if (f.encrypted > 0) return ['WARN', `partly: ${f.encrypted} of ${f.sampled} sampled messages are encrypted; the others (saved before mail_crypt was on, or by users with it off) are plaintext and ${readable} (${conf})`];
    return ['WARN', `off: none of ${f.sampled} sampled messages is encrypted, ${readable}; mailcow turns mail_crypt on by default, check data/conf/dovecot/extra.conf (${conf})`];
  }
  if (f.saveVersion === 0) return ['WARN', `off: ${conf}; ${readable}`];
  if (f.saveVersion !== undefined && f.saveVersion > 0 && f.keys) return ['OK', `on by configuration; no message to sample yet (${conf})`];
  return ['WARN', `cannot tell: no message to sample (${conf})`];
}
