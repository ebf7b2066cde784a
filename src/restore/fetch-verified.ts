// A restore's download and its verification, overlapped where the link is the bottleneck: the
// archives and the small files travel first; while the mail travels, the archives are hashed,
// decrypted, packed again from their trees and tested on the idle cores, and the message files
// linked from a standby copy are hashed from the start. Nothing is trusted before its hash
// matched the manifest, and nothing on the host is touched here: the caller stops and changes
// things only after this returned.
import type { RunContext } from '../backup/context.js';
import type { Component } from '../config/schema.js';
import type { Identities } from '../adapters/age.js';
import { UserError } from '../errors.js';
import { linkFromMirrors, type RestoreBasis } from './basis.js';
import { downloadBackup, downloadFilters, exactFilters } from './download.js';
import { hashAhead, verifyDownload, type HashedAhead } from './verify-local.js';

export interface FetchedBackup {
  files: number;
  archives: number;
  /** What came from the Storage Box (refetches included) and what this host lent. */
  fromBox: number;
  fromHost: number;
}

export async function fetchVerified(
  ctx: RunContext,
  ui: { progress: (line: string) => void; tty?: boolean },
  o: {
    name: string;
    remoteFolder: string;
    folder: string;
    checksums: Map<string, string>;
    components: Component[];
    mailboxDirs: string[];
    vmailDir: string;
    /** The backup's paths this restore needs. */
    wanted: (path: string) => boolean;
    local: RestoreBasis;
    /** The download outlives the restore (--keep-download, --download-only): nothing is linked into it. */
    keep: boolean;
    identities?: Identities;
  },
): Promise<FetchedBackup> {
  const { folder } = o;
  const isMail = (p: string) => p.startsWith(`${o.vmailDir}/`);
  const mailWanted = o.components.includes('vmail') || o.mailboxDirs.length > 0;
  const archives = o.components.filter((c) => c !== 'vmail');
  let fromBox = 0;
  let lent = 0;
  let refetched = 0;
  const fetch = async (filters: string[], basis: boolean, bar: boolean) => {
    const d = await downloadBackup(ctx.exec, ctx.log, {
      target: ctx.box.target,
      remoteFolder: o.remoteFolder,
      localFolder: folder,
      filters,
      progress: bar && ui.tty ? (l) => ctx.log.progress(`  ${l}`) : undefined,
      basis: basis ? o.local.basis : undefined,
    }).finally(() => bar && ctx.log.progress(undefined));
    fromBox += d.bytesFromBox;
    return d;
  };
  // A file that does not match is fetched again from the box alone (no basis): what this host
  // lent is never used unverified, and what was fetched again is not counted as lent.
  const refetch = async (paths: string[]) => {
    ctx.log.warn(`${paths.length} file(s) do not match the manifest (${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ', …' : ''}): fetching them again from the Storage Box, without any copy from this host`);
    refetched += (await fetch(exactFilters(paths), false, false)).totalBytes;
  };
  const fetchLending = async (filters: string[], bar: boolean) => {
    const d = await fetch(filters, true, bar);
    lent += Math.max(0, d.totalBytes - d.literalBytes);
  };
  const verify = (wanted: (p: string) => boolean, ahead?: Map<string, HashedAhead>) => verifyDownload(ctx.exec, folder, o.checksums, wanted, ctx.signal, o.identities, refetch, ahead);

  let ahead: Promise<Map<string, HashedAhead>> | undefined;
  let mail: Promise<unknown> | undefined;
  try {
    // The tree is consumed by this restore (moved into the volume or copied from, then deleted):
    // the standby copies' messages can be linked. A kept or handed-over download gets copies.
    const link = async () => {
      const linked = !o.keep && mailWanted && o.local.mirrors.length ? await linkFromMirrors(ctx.log, { folder, checksums: o.checksums, wanted: o.wanted, mirrors: o.local.mirrors }) : [];
      // Hashed while rsync waits on the link; verify takes these hashes for files rsync left alone.
      ahead = linked.length ? hashAhead(folder, linked, ctx.signal) : undefined;
      ahead?.catch(() => undefined); // awaited below; a failure then means hashing them again
    };
    ui.progress(`downloading ${o.name} into ${folder}${o.local.sources.length ? `, taking what this host holds from ${o.local.sources.join(', ')}` : ''}`);
    const checking = `verifying every downloaded file against checksums.sha256${o.identities ? ', decrypting them' : ''} and the archives with zstd -t`;
    let v: { files: number; archives: number };
    if (archives.length && mailWanted) {
      // The links go into vmail/, which this rsync does not touch; both done before the mail's.
      await settled(fetchLending(downloadFilters({ components: archives, mailboxDirs: [], vmailDir: o.vmailDir }), true), link());
      mail = fetchLending(downloadFilters({ components: o.components.includes('vmail') ? ['vmail'] : [], mailboxDirs: o.mailboxDirs, vmailDir: o.vmailDir, archives: [], meta: false }), true);
      mail.catch(() => undefined); // awaited below
      ctx.log.info('verifying the archives while the mail downloads');
      const mailChecked = mail.then(async () => {
        ui.progress(checking);
        return verify((p) => o.wanted(p) && isMail(p), await ahead?.catch(() => undefined));
      });
      const [a, b] = await settled(verify((p) => o.wanted(p) && !isMail(p)), mailChecked);
      v = { files: a.files + b.files, archives: a.archives + b.archives };
    } else {
      await link();
      await fetchLending(downloadFilters({ components: o.components, mailboxDirs: o.mailboxDirs, vmailDir: o.vmailDir }), true);
      ui.progress(checking);
      v = await verify(o.wanted, await ahead?.catch(() => undefined));
    }
    if (ctx.signal.aborted) throw new UserError('interrupted', 'interrupted while verifying the download; nothing on this host was changed');
    return { ...v, fromBox, fromHost: Math.max(0, lent - refetched) };
  } finally {
    await mail?.catch(() => undefined);
    await ahead?.catch(() => undefined);
    await o.local.close();
  }
}

/**
 * Both results once both settled; the first failure is thrown then. A failure of one must not
 * leave the other writing into a folder that is about to be removed.
 */
async function settled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}
