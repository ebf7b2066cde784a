// Pure: the tree layout of the archives (issue 19). mailcow's script writes a new
// backup_<component>.tar.zst every dump; stored whole, every backup kept costs them whole again.
// Unpacked into archives/<component>/ beside a list of the tar's entries
// (archives/<component>.tar.json), each file compressed on its own (<name>.zst), unchanged files
// become hard links on the box like vmail's, and a restore packs the archive again from the two (src/restore/archive-repack.ts).
import type { Component } from '../config/schema.js';
import { AGE_SUFFIX } from './age-keys.js';

export const ARCHIVES_DIR = 'archives';
/** backup.json's `archiveLayout` for a backup whose archives are stored as trees. */
export const TREE_LAYOUT = 'tree';
export const TREE_LIST_VERSION = 1;
/**
 * Every file of a tree is stored compressed on its own (measured, docs/performance.md "Archives:
 * candidates": uncompressed, the database's daily-changing InnoDB files cost 3.2x the archives a
 * day). zstd is deterministic for one version and level, so an unchanged file compresses to the
 * same bytes and is still linked.
 */
export const TREE_FILE_SUFFIX = '.zst';
/** The stored file of an entry whose place in the tree is `rel` (see treeRelPath). */
export const treeFile = (rel: string) => `${rel}${TREE_FILE_SUFFIX}`;
/** zstd's arguments for a tree file: fixed level, one thread, no content size: the same bytes every time. */
export const TREE_ZSTD_ARGS = ['-q', '-3', '--single-thread', '-c'];

export type EntryType = 'file' | 'link' | 'symlink' | 'directory' | 'character-device' | 'block-device' | 'fifo';

/** One tar entry, as the archive held it: enough to write the same entry again. */
export interface TreeEntry {
  /** The name exactly as in the archive (`/redis/dump.rdb`, `./x`, `backup_mariadb/ibdata1`). */
  name: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  gname?: string;
  /** Seconds since the epoch (fractions kept when the archive had them). */
  mtime: number;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

/** archives/<component>.tar.json */
export interface TreeList {
  archiveTree: number;
  component: string;
  /** The archive this was unpacked from and is packed into again (backup_mariadb.tar.zst). */
  archive: string;
  entries: TreeEntry[];
}

export const treeDir = (component: string) => `${ARCHIVES_DIR}/${component}`;
export const treeListPath = (component: string) => `${ARCHIVES_DIR}/${component}.tar.json`;

/** The component whose tree list `path` is (plaintext or .age), or undefined. */
export function treeListComponent(path: string): string | undefined {
  const m = new RegExp(`^${ARCHIVES_DIR}/([a-z]+)\\.tar\\.json(${AGE_SUFFIX.replace('.', '\\.')})?$`).exec(path);
  return m?.[1];
}

/** Whether `path` (a manifest path) is part of `component`'s archive, in either layout. */
export function isArchivePart(path: string, component: Component, base: string): boolean {
  return path.startsWith(`${base}.tar.`) || path.startsWith(`${treeDir(component)}/`) || treeListComponent(path) === component;
}

/**
 * Where an entry's data lives in the tree, relative to the component's folder: the name without
 * its leading `/` or `./`. Undefined for a name the tree cannot hold as it is (`..`, empty
 * parts, the archive's root itself): such an archive is kept whole.
 */
export function treeRelPath(name: string): string | undefined {
  const parts = name.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  while (parts[0] === '.') parts.shift();
  if (parts.length === 0 || parts.some((p) => p === '' || p === '.' || p === '..')) return undefined;
  return parts.join('/');
}

/**
 * Why these entries cannot be stored as a tree and packed again to the same archive, or
 * undefined when they can: every file and folder needs its own place, and a file's place must
 * not be a folder above another entry.
 */
export function treeProblem(entries: readonly TreeEntry[]): string | undefined {
  const files = new Set<string>();
  const dirs = new Set<string>();
  for (const e of entries) {
    const rel = treeRelPath(e.name);
    if (rel === undefined) {
      if (e.type === 'directory') continue; // `/`, `./`: the root, made anyway
      return `the entry ${JSON.stringify(e.name)} has no place in a tree`;
    }
    if (e.type === 'file') {
      if (files.has(rel) || dirs.has(rel)) return `${rel} appears twice`;
      files.add(rel);
    }
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    if (e.type === 'directory') dirs.add(rel);
  }
  for (const f of files) if (dirs.has(f) || dirs.has(treeFile(f))) return `${f} is a file and a folder`;
  return undefined;
}
