// Reads a mailcow archive (`zstd -dc` into tar-stream) into a file tree plus the list of its
// entries, and writes the tar again from the two (tar-stream into `zstd --rsyncable`). Only
// regular files' data is in the tree; folders, links, devices and every entry's owner, mode and
// time are in the list, so the archive packed again holds what mailcow's script wrote.
// tar-stream is imported on first use, like the age library: most commands never need it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import type { Exec } from './exec.js';
import { TREE_LIST_VERSION, TREE_ZSTD_ARGS, treeFile, treeProblem, treeRelPath, type EntryType, type TreeEntry, type TreeList } from '../plan/archive-tree.js';

const tarStream = () => import('tar-stream');

/** A regular file written into the tree: its stored file (relative to the tree, compressed), its size and hash. */
export interface TreeFile {
  rel: string;
  size: number;
  hash: string;
}

const TYPES = new Set<EntryType>(['file', 'link', 'symlink', 'directory', 'character-device', 'block-device', 'fifo']);

/**
 * Unpacks `archive` (a .tar.zst) into `dir` and writes its entry list to `listFile`. Returns
 * the files written, hashed as they were written; or `problem` (and nothing left behind) for an
 * archive the tree cannot hold, which then stays whole.
 */
export async function unpackArchive(archive: string, dir: string, listFile: string, component: string): Promise<{ files: TreeFile[]; rawBytes: number; problem?: string }> {
  const { extract } = await tarStream();
  const entries: TreeEntry[] = [];
  const files: TreeFile[] = [];
  const seen = new Set<string>();
  const zstd = spawn('zstd', ['-dc', '-q', archive], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  zstd.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => zstd.on('close', (code) => res(code)));
  const ex = extract();
  let problem: string | undefined;
  ex.on('entry', (h, stream, next) => {
    const type = (h.type === 'contiguous-file' ? 'file' : h.type) as EntryType;
    const e: TreeEntry = { name: h.name, type, mode: h.mode ?? 0o644, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: (h.mtime?.getTime() ?? 0) / 1000 };
    if (h.uname) e.uname = h.uname;
    if (h.gname) e.gname = h.gname;
    if (h.linkname) e.linkname = h.linkname;
    if (type === 'character-device' || type === 'block-device') (e.devmajor = h.devmajor ?? 0), (e.devminor = h.devminor ?? 0);
    if (!TYPES.has(type)) problem ??= `the entry ${JSON.stringify(h.name)} is of type ${h.type}`;
    const rel = treeRelPath(h.name);
    if (type === 'file' && rel !== undefined && !problem && !seen.has(rel)) {
      seen.add(rel);
      e.size = h.size ?? 0;
      const abs = join(dir, treeFile(rel));
      const hash = createHash('sha256');
      let size = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          size += chunk.length;
          cb(null, chunk);
        },
      });
      mkdir(dirname(abs), { recursive: true, mode: 0o700 })
        .then(() => compressInto(stream as unknown as Readable, tap, abs))
        .then(async () => {
          // The entry's time, so that an untouched file keeps it from dump to dump.
          await utimes(abs, e.mtime, e.mtime);
          files.push({ rel: treeFile(rel), size, hash: hash.digest('hex') });
          next();
        })
        .catch((err: Error) => {
          problem ??= `${rel} could not be written (${err.message})`;
          stream.resume();
          next();
        });
    } else {
      if (type === 'file') e.size = h.size ?? 0;
      stream.on('end', next);
      stream.resume();
    }
    entries.push(e);
  });
  try {
    await pipeline(zstd.stdout as Readable, ex);
  } catch (err) {
    problem ??= `it cannot be read as tar (${(err as Error).message})`;
    zstd.kill();
  }
  const code = await exited;
  if (code !== 0 && !problem) problem = `zstd -dc failed: ${stderr.trim().split('\n').pop() ?? `exit ${code}`}`;
  problem ??= treeProblem(entries);
  if (problem) {
    await rm(dir, { recursive: true, force: true });
    return { files: [], rawBytes: 0, problem };
  }
  const list: TreeList = { archiveTree: TREE_LIST_VERSION, component, archive: archive.split('/').pop()!, entries };
  await writeFile(listFile, JSON.stringify(list), { mode: 0o600 });
  return { files, rawBytes: entries.reduce((n, e) => n + (e.type === 'file' ? (e.size ?? 0) : 0), 0) };
}

/** Reads and checks a tree list (a verified download's, so damage means a bug, not an attack). */
export async function readTreeList(listFile: string): Promise<TreeList> {
  const l = JSON.parse(await readFile(listFile, 'utf8')) as TreeList;
  if (l.archiveTree !== TREE_LIST_VERSION || !Array.isArray(l.entries) || !/^backup_[a-z]+\.tar\.zst$/.test(l.archive)) throw new Error(`${listFile} is not an archive list this version can read`);
  return l;
}

/** Writes `out` (a .tar.zst) from the tree `dir` and its list, with `zstd --rsyncable` as mailcow's script does. */
export async function packArchive(exec: Exec, list: TreeList, dir: string, out: string, threads = 1): Promise<void> {
  const { pack } = await tarStream();
  const p = pack();
  const files = list.entries.flatMap((e) => {
    const rel = treeRelPath(e.name);
    return e.type === 'file' && rel !== undefined ? [join(dir, treeFile(rel))] : [];
  });
  const data = new Concatenated(files);
  const feed = (async () => {
    for (const e of list.entries) {
      const header = {
        name: e.name,
        type: e.type,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        uname: e.uname,
        gname: e.gname,
        mtime: new Date(e.mtime * 1000),
        linkname: e.linkname,
        devmajor: e.devmajor,
        devminor: e.devminor,
        size: e.type === 'file' ? e.size : 0,
      };
      const rel = treeRelPath(e.name);
      if (e.type === 'file' && rel !== undefined) {
        await new Promise<void>((res, rej) => {
          const entry = p.entry(header, (err) => (err ? rej(err) : res()));
          entry.on('error', rej); // destroyed with the pack when the feed fails
          data.take(e.size ?? 0, entry).catch(rej);
        });
      } else await new Promise<void>((res, rej) => p.entry(header, (err) => (err ? rej(err) : res())));
    }
    await data.end();
    p.finalize();
  })();
  feed.catch((err: Error) => (data.destroy(), p.destroy(err)));
  await exec('zstd', ['--rsyncable', '-q', '-f', `-T${threads}`, '-o', out], { what: `packing ${out.split('/').pop()}`, inputStream: Readable.from(p as AsyncIterable<Buffer>), timeoutMs: 24 * 3_600_000 });
  await feed;
}

/** `input` through `zstd` (TREE_ZSTD_ARGS) and `tap` (which sees the compressed bytes) into `file`. */
async function compressInto(input: Readable, tap: Transform, file: string): Promise<void> {
  const z = spawn('zstd', TREE_ZSTD_ARGS, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  z.stderr.on('data', (d: Buffer) => void (err += d.toString()));
  const exited = new Promise<number | null>((res, rej) => (z.on('error', rej), z.on('close', (code) => res(code))));
  await Promise.all([pipeline(input, z.stdin), pipeline(z.stdout, tap, createWriteStream(file, { mode: 0o600 }))]);
  const code = await exited;
  if (code !== 0) throw new Error(`zstd failed: ${err.trim() || `exit ${code}`}`);
}

/**
 * The contents of tree files, one after the other, from one `zstd -dc` per 256 files: a process
 * per file was most of a repack (300 small files: 4.7 s of spawns against 55 ms for one process).
 * Each entry takes exactly the size its list gives; a file whose content is shorter or longer
 * makes the stream end early or hold bytes left over, both errors (the files were checked
 * against the manifest before, and the list and the tree were written from the same archive).
 */
class Concatenated {
  private next = 0;
  private z?: { proc: ReturnType<typeof spawn>; out: AsyncIterator<Buffer>; exited: Promise<void>; first: string };
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly files: string[]) {}

  /** Writes the next `n` bytes into `sink` and ends it. */
  async take(n: number, sink: NodeJS.WritableStream): Promise<void> {
    while (n > 0) {
      if (this.buf.length === 0) this.buf = await this.read();
      const part = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(part.length);
      n -= part.length;
      if (!sink.write(part)) await new Promise<void>((res) => sink.once('drain', res));
    }
    sink.end();
  }

  /** Every byte was taken: no file longer than its list says. */
  async end(): Promise<void> {
    if (this.buf.length || (this.z && !(await this.z.out.next()).done)) throw new Error(`a tree file holds more than its list says (near ${this.z?.first ?? 'the end'})`);
    await this.z?.exited;
  }

  destroy(): void {
    this.z?.proc.kill();
  }

  private async read(): Promise<Buffer> {
    for (;;) {
      if (this.z) {
        const r = await this.z.out.next();
        if (!r.done) return r.value;
        await this.z.exited;
        this.z = undefined;
      }
      if (this.next >= this.files.length) throw new Error('the tree files hold less than their list says');
      const batch = this.files.slice(this.next, (this.next += 256));
      const proc = spawn('zstd', ['-dc', '-q', '--', ...batch], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      proc.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
      const exited = new Promise<void>((res, rej) => {
        proc.on('error', rej);
        proc.on('close', (code) => (code === 0 ? res() : rej(new Error(`zstd -dc ${batch[0]}…: ${err.trim() || `exit ${code}`}`))));
      });
      exited.catch(() => undefined); // awaited when the batch's output ends
      this.z = { proc, out: proc.stdout![Symbol.asyncIterator](), exited, first: batch[0]! };
    }
  }
}

/** The size of a tree file's content: `input` (a path, or a stream such as its decrypted bytes) through `zstd -dc`; a damaged file rejects with zstd's message. */
export async function decompressedBytes(input: string | Readable): Promise<number> {
  const file = typeof input === 'string';
  const z = spawn('zstd', ['-dc', '-q', ...(file ? ['--', input] : [])], { stdio: [file ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  let err = '';
  let n = 0;
  z.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
  z.stdout!.on('data', (d: Buffer) => void (n += d.length));
  const exited = new Promise<number | null>((res, rej) => (z.on('error', rej), z.on('close', (code) => res(code))));
  // zstd stopping early (EPIPE) shows in its exit status; a failing input (e.g. decryption) is the error.
  const fed = file ? undefined : await pipeline(input, z.stdin!).then(() => undefined, (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? undefined : e));
  const code = await exited;
  if (fed) throw fed;
  if (code !== 0) throw new Error(`zstd -dc: ${err.trim() || `exit ${code}`}`);
  return n;
}
