// Upload into a staging folder on the box, then make the box prove it holds what the manifest
// says. Only files whose data crossed the wire are hashed on the box: the others are hard links
// to a backup that was verified when it was published.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHashPool } from '../adapters/hash.js';
import { rsyncUpload } from '../adapters/rsync.js';
import { UserError } from '../errors.js';
import { isShellSafe } from '../plan/box-command.js';
import { judgeMismatch, type ManifestEntry } from '../plan/manifest.js';
import { parseItemize, rsyncRemoteShell, remoteSpec, type UploadArgs } from '../plan/transport-args.js';
import type { RunContext } from './context.js';

export const VMAIL_DIR = 'vmail';

export interface Source {
  /** Local folder. */
  root: string;
  /** Where it lands inside the backup folder: '' for the dump, 'vmail' for the mail tree. */
  prefix: string;
  /** For vmail: the exact list (files and folders) to send, relative to root. */
  list?: string[];
}

export interface TransferOutcome {
  transferred: Set<string>;
  vanished: Set<string>;
  bytesSent: number;
  totalSize: number;
}

const under = (prefix: string, p: string) => (prefix ? `${prefix}/${p}` : p);

export async function uploadSource(ctx: RunContext, src: Source, staging: string, linkBases: string[], runDir: string, extra: Partial<UploadArgs> = {}): Promise<TransferOutcome> {
  let filesFrom: string | undefined;
  if (src.list) {
    filesFrom = join(runDir, `files-${src.prefix || 'dump'}.list`);
    await writeFile(filesFrom, src.list.map((p) => `${p}\0`).join(''));
  }
  const dest = src.prefix ? `${staging}/${src.prefix}` : staging;
  const r = await rsyncUpload(
    ctx.exec,
    ctx.log,
    {
      target: ctx.box.target,
      source: src.root,
      dest,
      linkDest: linkBases.map((b) => (src.prefix ? `${b}/${src.prefix}` : b)),
      filesFrom,
      timeoutSec: ctx.config.RSYNC_TIMEOUT,
      bwlimitKBps: ctx.config.BWLIMIT_KBPS,
      keepExtraneous: true,
      ignoreTimes: extra.ignoreTimes,
    },
    `uploading ${src.prefix || 'the dump'} to the Storage Box`,
  );
  return {
    transferred: new Set([...r.transferred].map((p) => under(src.prefix, p))),
    vanished: new Set([...r.vanished].map((p) => under(src.prefix, p))),
    bytesSent: r.bytesSent,
    totalSize: r.totalSize,
  };
}

export interface VerifyOutcome {
  checked: number;
  changedDuringRun: string[];
  vanishedDuringRun: string[];
  viaRsyncChecksum: number;
}

/**
 * Compares the box's own hashes of `paths` with the manifest; settles every difference as live
 * change (sent again and checked again) or as bad data on the box (the run fails).
 */
export async function verifyOnBox(
  ctx: RunContext,
  staging: string,
  manifest: Map<string, ManifestEntry>,
  paths: string[],
  sources: Source[],
  runDir: string,
  /** Files whose data crossed the wire in this run; others came from a link-dest basis. */
  transferred: Set<string>,
): Promise<VerifyOutcome> {
  const out: VerifyOutcome = { checked: paths.length, changedDuringRun: [], vanishedDuringRun: [], viaRsyncChecksum: 0 };
  const sourceOf = (p: string) => sources.find((s) => s.prefix && p.startsWith(`${s.prefix}/`)) ?? sources.find((s) => !s.prefix)!;
  const localOf = (p: string) => {
    const s = sourceOf(p);
    return { source: s, rel: s.prefix ? p.slice(s.prefix.length + 1) : p, abs: join(s.root, s.prefix ? p.slice(s.prefix.length + 1) : p) };
  };

  const check = async (list: string[]): Promise<{ bad: string[]; boxHash: Map<string, string> }> => {
    const safe = list.filter((p) => isShellSafe(`${staging}/${p}`));
    const unsafe = list.filter((p) => !isShellSafe(`${staging}/${p}`));
    const boxHash = new Map<string, string>();
    const got = await ctx.box.sha256(safe.map((p) => `${staging}/${p}`), (done) => ctx.log.debug(`verified ${done}/${safe.length} on the box`));
    for (const p of safe) {
      const h = got.get(`${staging}/${p}`);
      if (h) boxHash.set(p, h);
    }
    const bad = safe.filter((p) => boxHash.get(p) !== manifest.get(p)?.hash);
    if (unsafe.length) {
      // Names the box shell cannot take (a folder like `.Entw&APw-rfe`): rsync makes the box
      // read the data instead and reports every file whose content differs from ours.
      out.viaRsyncChecksum += unsafe.length;
      bad.push(...(await rsyncChecksumDiff(ctx, staging, unsafe.map(localOf), runDir)));
    }
    return { bad, boxHash };
  };

  const first = await check(paths);
  if (first.bad.length === 0) return out;

  const pool = createHashPool();
  const corrupt: string[] = [];
  const resend: string[] = [];
  const badBasis = new Set<string>();
  try {
    for (const p of first.bad) {
      const now = await pool.hash(localOf(p).abs);
      const verdict = judgeMismatch(manifest.get(p)?.hash ?? '', now?.hash);
      // A file linked from a dead run's unverified staging folder may be bad without any fault
      // of this run: it is sent again. Bad data that this run sent fails the run.
      if (verdict === 'corrupt-on-box' && transferred.has(p)) corrupt.push(p);
      else if (verdict === 'corrupt-on-box') {
        ctx.log.warn(`${p} was linked from an unverified earlier upload and differs on the box; sending it again`);
        badBasis.add(p);
        resend.push(p);
      }
      else if (verdict === 'vanished-during-run') {
        out.vanishedDuringRun.push(p);
        const h = first.boxHash.get(p);
        // What was sent is a consistent copy of a message deleted meanwhile; keep it described.
        if (h) manifest.set(p, { ...manifest.get(p)!, hash: h });
        else manifest.delete(p);
      } else {
        resend.push(p);
        manifest.set(p, { ...manifest.get(p)!, hash: now!.hash, size: now!.size });
      }
    }
  } finally {
    await pool.close();
  }
  if (corrupt.length) {
    throw new UserError(
      'verify',
      `the Storage Box holds ${corrupt.length} file${corrupt.length === 1 ? '' : 's'} that differ from what was sent (first: ${corrupt[0]}); nothing was published, the staging folder stays for inspection`,
      corrupt.slice(0, 20),
    );
  }
  if (resend.length) {
    ctx.log.info(`${resend.length} file(s) to send again (changed while read, or a bad earlier copy on the box)`);
    for (const s of sources) {
      const mine = resend.filter((p) => sourceOf(p) === s).map((p) => localOf(p).rel);
      if (mine.length) await uploadSource(ctx, { ...s, list: mine }, staging, [], runDir, { ignoreTimes: true });
    }
    const second = await check(resend);
    for (const p of second.bad) {
      const h = second.boxHash.get(p);
      if (badBasis.has(p)) throw new UserError('verify', `${p} is still different on the Storage Box after it was sent again; nothing was published`);
      if (!h) throw new UserError('verify', `${p} kept changing while it was sent and could not be verified on the Storage Box; nothing was published`);
      // Still changing: the box holds one whole version of it (dovecot replaces files by rename).
      manifest.set(p, { ...manifest.get(p)!, hash: h });
    }
    out.changedDuringRun.push(...resend.filter((p) => !badBasis.has(p)));
  }
  return out;
}

async function rsyncChecksumDiff(ctx: RunContext, staging: string, files: { source: Source; rel: string }[], runDir: string): Promise<string[]> {
  const differing: string[] = [];
  const bySource = new Map<Source, string[]>();
  for (const f of files) bySource.set(f.source, [...(bySource.get(f.source) ?? []), f.rel]);
  for (const [src, rels] of bySource) {
    const list = join(runDir, 'checksum-check.list');
    await writeFile(list, rels.map((r) => `${r}\0`).join(''));
    const dest = src.prefix ? `${staging}/${src.prefix}/` : `${staging}/`;
    await ctx.exec(
      'rsync',
      ['-lt', '--checksum', '--dry-run', '--itemize-changes', '--files-from', list, '--from0', '-e', rsyncRemoteShell(ctx.box.target), `${src.root}/`, remoteSpec(ctx.box.target, dest)],
      {
        what: 'checking files on the Storage Box with rsync --checksum',
        okCodes: [0, 23, 24],
        onLine: (line, stream) => {
          // In a --checksum dry run every file rsync would send is one whose content differs.
          const item = stream === 'stdout' ? parseItemize(line) : undefined;
          if (item && /^[<>]f/.test(item.code)) differing.push(src.prefix ? `${src.prefix}/${item.path}` : item.path);
        },
      },
    );
  }
  return differing;
}

/** After a transfer: did --link-dest make hard links, or silently copies? */
export async function checkHardLinks(ctx: RunContext, staging: string, unchanged: string[]): Promise<{ sampled: number; linked: number } | undefined> {
  const sample = unchanged.filter((p) => isShellSafe(`${staging}/${p}`)).slice(0, 16);
  if (sample.length === 0) return undefined;
  const counts = await ctx.box.linkCounts(sample.map((p) => `${staging}/${p}`));
  const linked = counts.filter((n) => n >= 2).length;
  if (linked === 0) {
    ctx.log.warn(
      `hard links do not work on this Storage Box: ${sample.length} unchanged files were stored as copies; the transfer stays small, but every backup costs its full size on the box`,
    );
  }
  return { sampled: sample.length, linked };
}
