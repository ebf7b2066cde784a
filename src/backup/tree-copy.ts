// Between two backups nearly all of the mail tree is unchanged, and rsync --link-dest finds that
// out the slow way: both sides walk every file and every name crosses the wire (at 10x the
// bench's messages, 361k names: 23 MiB and 74 s of a 116 s hourly run). When the local hash cache
// describes the newest backup exactly (tree-state.ts), the box copies that backup's tree as hard
// links in one command (`cp -al`) and rsync is given only what the index calls new, changed or
// gone (--files-from, --delete-missing-args). What the copy brings is byte for byte the previous
// backup's, verified when it was published: the guarantee a --link-dest link gives.
// Every listed file is sent with --ignore-times, so it gets a new inode: nothing is ever changed
// through a link (not even a mode), and the older backup keeps exactly what it had.
import { isUserError } from '../errors.js';
import type { VmailIndex } from '../plan/vmail-index.js';
import { planTreeDelta } from '../plan/tree-delta.js';
import type { RunContext } from './context.js';
import type { TreeState } from './tree-state.js';
import { uploadSource, type Source, type TransferOutcome } from './transfer.js';

/**
 * Why this run cannot start from a copy of `prev`'s tree (undefined: it can), from what is known
 * before the walk: the copy then starts beside it, and walkRefusal can still turn it down.
 */
export function treeCopyRefusal(o: {
  prev?: string;
  /** HETZNER_REMOTE_PATH: a backup of the same name elsewhere is not the one the cache describes. */
  root: string;
  state?: TreeState;
  volume?: string;
  staleStagings: number;
  prevDamaged: boolean;
}): string | undefined {
  if (!o.prev) return 'no previous backup';
  if (!o.state || o.state.backup !== o.prev || o.state.root !== o.root || o.state.volume !== o.volume) return `the local hash cache does not describe ${o.prev}`;
  if (o.staleStagings) return 'a failed run left a staging folder to resume from';
  if (o.prevDamaged) return `${o.prev} is known to be damaged`;
  return undefined;
}

/** What the walk found that a copy of the previous tree cannot serve (undefined: nothing). */
export function walkRefusal(o: { symlinks: number; goneUncounted: boolean }): string | undefined {
  if (o.symlinks) return 'the mail tree holds symlinks (the index does not follow them)';
  if (o.goneUncounted) return 'more files are gone than the index keeps a list of';
  return undefined;
}

/**
 * Whether an upload failed because the box's rsync does not take what the delta needs
 * (`--delete-missing-args` is rsync ≥ 3.1): then the whole tree is sent into the copy instead.
 * Anything else (a link that died, a timeout) fails the run like any upload failure, and the
 * next run resumes from the staging folder.
 */
export function receiverRefusedOptions(e: unknown): boolean {
  if (!isUserError(e) || e.kind === 'interrupted') return false;
  return [e.message, ...e.details].some((l) => /unknown option|syntax or usage error|protocol incompatibility|requested action not supported/i.test(l));
}

export interface TreeDeltaOutcome extends TransferOutcome {
  /** The box's tree is the manifest's (false: a file vanished twice and may linger there). */
  exact: boolean;
}

/**
 * Uploads the changes of the mail tree into `staging/<prefix>`, which holds a hard-link copy of
 * the previous backup's tree. `gone`: the previous manifest's files no longer here; `linked`:
 * manifest paths already in place (renames linked on the box).
 */
export async function uploadTreeDelta(
  ctx: RunContext,
  src: Source,
  staging: string,
  index: VmailIndex,
  prevDirs: readonly string[],
  gone: readonly { path: string }[],
  linked: ReadonlySet<string>,
  runDir: string,
  onFile: (path: string, code: string) => void,
): Promise<TreeDeltaOutcome> {
  const under = `${src.prefix}/`;
  const rel = (p: string) => (p.startsWith(under) ? p.slice(under.length) : p);
  index.markSameSeen();
  const delta = planTreeDelta({
    dirs: index.folderNames(),
    prevDirs,
    changed: index.changedFiles(),
    gone: gone.map((g) => rel(g.path)),
    linked: new Set([...linked].map(rel)),
  });
  ctx.log.info(`mail: the box copied the previous backup's tree as hard links; ${delta.send.size} new or changed file(s) to send, ${delta.deletes} deletion(s)`);
  const out: TreeDeltaOutcome = { transferred: new Set(), vanished: new Set(), bytesSent: 0, totalSize: 0, exact: true };
  if (delta.list.length === 0) return out;
  const pass = async (list: string[]) => {
    const r = await uploadSource(ctx, { ...src, list }, staging, [], runDir, { ignoreTimes: true, deleteMissing: true }, onFile);
    out.bytesSent += r.bytesSent;
    out.totalSize += r.totalSize;
    return r;
  };
  const first = await pass(delta.list);
  // A changed file that vanished while rsync read it: the box still holds the previous
  // backup's version of it. Listed again, it is missing now and rsync deletes that version.
  const again = [...first.vanished].map(rel).filter((p) => delta.send.has(p));
  for (const p of first.vanished) out.vanished.add(p);
  if (again.length) {
    const second = await pass(again);
    for (const p of second.vanished) out.vanished.add(p);
    if (second.vanished.size) {
      out.exact = false;
      ctx.log.warn(`${second.vanished.size} file(s) vanished twice while they were sent; the box may keep an older copy of them in this backup, outside its manifest`);
    }
  }
  return out;
}
