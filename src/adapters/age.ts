// age encryption of whole files, streamed: typage (`age-encryption`, by age's author) reads and
// writes in 64 KiB chunks, so a multi-GB database dump costs ~100 MB of memory, not its size
// (measured: 500 MB in ~12 s, peak RSS 97 MB, the same as for 50 MB). The library is imported on
// first use: it takes ~250 ms to load and most commands never need it.
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { UserError } from '../errors.js';
import { isIdentity, keyLines } from '../plan/age-keys.js';

const age = () => import('age-encryption');

/** Encrypts `src` to `dst` (written as dst.part, renamed when complete). */
export async function encryptFile(src: string, dst: string, recipients: string[]): Promise<void> {
  const { Encrypter } = await age();
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  await pipeFile(src, dst, (input) => e.encrypt(input));
}

/** An identity file, loaded: the keys stay in memory only and are never logged. */
export interface Identities {
  path: string;
  keys: string[];
  /** The public keys (age1…) the identities decrypt for, to name in messages. */
  recipients: string[];
}

/** Reads an age identity file (age-keygen's output: comments and AGE-SECRET-KEY-1… lines). */
export async function loadIdentities(path: string): Promise<Identities> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError('config', `--identity ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot be read (${code})`}; give the age identity file (the private key made by age-keygen)`);
  }
  const lines = keyLines(text);
  const keys = lines.filter(isIdentity);
  if (keys.length === 0) {
    const pub = lines.some((l) => /^age1/.test(l));
    throw new UserError('config', `--identity ${path}: holds no age private key (AGE-SECRET-KEY-1…)${pub ? '; it holds a public key (age1…): give the file with the private key' : ''}`);
  }
  const { identityToRecipient } = await age();
  return { path, keys, recipients: await Promise.all(keys.map((k) => identityToRecipient(k))) };
}

/**
 * Decrypts `src` to `dst`. A file for other recipients fails on its header, before any output:
 * that is `wrong-key`; a file that fails later (damaged data) is `damaged`.
 */
export async function decryptFile(src: string, dst: string, ids: Identities): Promise<void> {
  const { Decrypter } = await age();
  const d = new Decrypter();
  for (const k of ids.keys) d.addIdentity(k);
  let headerRead = false;
  try {
    await pipeFile(src, dst, async (input) => {
      const out = await d.decrypt(input);
      headerRead = true;
      return out;
    });
  } catch (e) {
    const why = (e as Error).message;
    if (!headerRead && /no identity matched/i.test(why)) throw Object.assign(new Error(why), { ageWrongKey: true });
    throw new UserError('verify', `${src}: age could not decrypt it (${why}): the file is damaged`);
  }
}

/**
 * `src` decrypted as a stream, never written anywhere (a standby proves the backup decrypts and
 * pipes it into `zstd -t`). A file for other recipients is refused before the stream starts.
 */
export async function decryptedStream(src: string, ids: Identities): Promise<Readable> {
  const { Decrypter } = await age();
  const d = new Decrypter();
  for (const k of ids.keys) d.addIdentity(k);
  const file = createReadStream(src);
  try {
    return Readable.fromWeb((await d.decrypt(Readable.toWeb(file) as ReadableStream<Uint8Array>)) as import('node:stream/web').ReadableStream<Uint8Array>);
  } catch (e) {
    file.destroy();
    const why = (e as Error).message;
    if (/no identity matched/i.test(why)) throw Object.assign(new Error(why), { ageWrongKey: true });
    throw new UserError('verify', `${src}: age could not decrypt it (${why}): the file is damaged`);
  }
}

export const isWrongKey = (e: unknown) => Boolean(e && typeof e === 'object' && (e as { ageWrongKey?: boolean }).ageWrongKey);

async function pipeFile(src: string, dst: string, transform: (input: ReadableStream<Uint8Array>) => Promise<ReadableStream<Uint8Array>>): Promise<void> {
  const part = `${dst}.part`;
  const file = createReadStream(src);
  try {
    const input = Readable.toWeb(file) as ReadableStream<Uint8Array>;
    const output = await transform(input);
    await output.pipeTo(Writable.toWeb(createWriteStream(part, { mode: 0o600 })));
    await rename(part, dst);
  } catch (e) {
    file.destroy();
    await rm(part, { force: true });
    throw e;
  }
}
