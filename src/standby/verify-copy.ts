// Proves a mirrored copy usable without a restore: its archives pass `zstd -t` (gzip -t for old
// ones), and encrypted archives, when this host has an age identity, are decrypted into the
// test through a pipe (the plaintext never touches the disk). Without an identity it says so.
// An archive stored as a tree (archives/<component>/ + .tar.json) is tested as what a restore
// packs it from: every file its list names is there and decompresses to the listed size, decrypted
// through a pipe when encrypted.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { decompressedBytes } from '../adapters/archive-tree.js';
import { treeDir, treeFile, treeListComponent, treeRelPath, type TreeList } from '../plan/archive-tree.js';
import { decryptedStream, isWrongKey, type Identities } from '../adapters/age.js';
import type { Exec } from '../adapters/exec.js';
import { UserError } from '../errors.js';
import { isEncryptedName, plainName } from '../plan/age-keys.js';

const ARCHIVE = /^backup_[a-z]+\.tar\.(zst|gz)(\.age)?$/;

export const NOT_PROVED = 'decryption not proved: no AGE_IDENTITY_FILE on this host';

export async function testArchives(exec: Exec, folder: string, paths: string[], ids: Identities | undefined): Promise<{ archives: number; decryption: 'proved' | 'not proved' | 'not encrypted' }> {
  const archives = paths.filter((p) => ARCHIVE.test(p));
  const lists = paths.filter((p) => treeListComponent(p) !== undefined);
  const encrypted = [...archives, ...lists].filter(isEncryptedName);
  let tested = 0;
  for (const p of lists) if (!isEncryptedName(p) || ids) (await testTree(folder, p, ids), tested++);
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

/**
 * The sizes a tree's list promises, against its files decompressed (and decrypted first, through
 * a pipe, when encrypted): proves every file is there, whole, and readable with this host's key.
 */
async function testTree(folder: string, listPath: string, ids: Identities | undefined): Promise<void> {
  const enc = isEncryptedName(listPath);
  const decrypt = (p: string) =>
    decryptedStream(join(folder, `${p}.age`), ids!).catch((e) => Promise.reject(isWrongKey(e) ? new UserError('preflight', `AGE_IDENTITY_FILE ${ids!.path} cannot decrypt ${p}.age: it is not one of the keys this backup was encrypted to`) : e));
  const sizeOf = async (p: string): Promise<number | undefined> => {
    if (!(await stat(join(folder, enc ? `${p}.age` : p)).catch(() => undefined))) return undefined;
    return decompressedBytes(enc ? await decrypt(p) : join(folder, p)).catch((e: Error) => Promise.reject(new UserError('verify', `${p}: ${e.message}`)));
  };
  const plainList = plainName(listPath);
  const text = enc ? await collect(await decrypt(plainList)) : await readFile(join(folder, plainList), 'utf8');
  const list = JSON.parse(text) as TreeList;
  const dir = treeDir(treeListComponent(listPath)!);
  for (const e of list.entries) {
    const rel = e.type === 'file' ? treeRelPath(e.name) : undefined;
    if (rel === undefined) continue;
    const stored = `${dir}/${treeFile(rel)}`;
    const size = await sizeOf(stored);
    if (size !== e.size) throw new UserError('verify', `${stored}: ${size === undefined ? 'missing' : `${size} bytes decompressed, but ${plainList} says ${e.size}`}`);
  }
}

async function collect(s: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
