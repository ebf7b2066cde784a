// Makes the stand-in's mail look as mailcow stores it with mail_crypt on: every message file starts
// with dovecot's v2 crypt header naming the key it was encrypted for (the SHA-256 of the public
// key's DER with the point compressed, as dcrypt's key id; checked against `doveadm dump -t
// dcrypt-file` of a message saved by Debian's dovecot 2.3 with mail_crypt), followed by bytes that
// look like ciphertext. Sizes are kept, so dovecot's S= in the names stays true.
import { createHash, createPublicKey } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { MAIL_CRYPT_MAGIC } from '../plan/mail-crypt.js';
import { seededBytes } from './maildir-fixture.js';

const P256_SPKI_PREFIX = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex');
const AES_256_GCM_OID = Buffer.from('060960864801650304012e', 'hex');
const SHA256_OID = Buffer.from('06096086480165030402 01'.replace(/ /g, ''), 'hex');

/** dcrypt's key id of a P-256 public key (PEM). */
export function mailCryptKeyId(publicPem: string): string {
  const jwk = createPublicKey(publicPem).export({ format: 'jwk' }) as { x: string; y: string };
  const x = Buffer.from(jwk.x, 'base64url');
  const y = Buffer.from(jwk.y, 'base64url');
  const point = Buffer.concat([Buffer.from([(y[y.length - 1]! & 1) === 1 ? 3 : 2]), x]);
  return createHash('sha256').update(Buffer.concat([P256_SPKI_PREFIX, point])).digest('hex');
}

/** A v2 header for one EC key (the layout dovecot writes with mail_crypt_save_version = 2). */
export function mailCryptHeader(keyIdHex: string, seed: string): Buffer {
  const body = Buffer.concat([
    AES_256_GCM_OID,
    SHA256_OID,
    u32(2048), // PBKDF2 rounds
    u32(0xcf), // key data length
    Buffer.from([1, 2]), // one key, of type EC
    Buffer.from(keyIdHex, 'hex'),
    u32(65), seededBytes(65, seed, 'ephemeral'), // ephemeral public key
    u32(64), seededBytes(64, seed, 'encrypted-key'),
    u32(32), seededBytes(32, seed, 'key-hash'),
  ]);
  return Buffer.concat([MAIL_CRYPT_MAGIC, Buffer.from([2]), u32(2), u32(body.length), body]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Rewrites every message under `vmail` as encrypted for the key in `cryptVolume`; returns the count. */
export async function encryptStandinMail(vmail: string, cryptVolume: string): Promise<number> {
  const keyId = mailCryptKeyId(await fsp.readFile(path.join(cryptVolume, 'ecpubkey.pem'), 'utf8'));
  let n = 0;
  const walk = async (dir: string, isMessages: boolean): Promise<void> => {
    for (const e of await fsp.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p, e.name === 'cur' || e.name === 'new');
      else if (isMessages && e.isFile()) {
        const st = await fsp.stat(p);
        const head = mailCryptHeader(keyId, p);
        const data = Buffer.concat([head, seededBytes(Math.max(0, st.size - head.length), p, 'ciphertext')]);
        await fsp.writeFile(p, data);
        await fsp.utimes(p, st.atime, st.mtime);
        n++;
      }
    }
  };
  await walk(vmail, false);
  return n;
}
