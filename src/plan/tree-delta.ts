// What rsync must be told when the new backup's mail tree starts as a hard-link copy of the
// previous backup's (`cp -al` on the box): the files that are new or changed, and what is gone.
// Everything else is already there, as the previous backup (verified when it was published)
// holds it. Paths are relative to the mail volume.

export interface TreeDeltaInput {
  /** Folders of the tree now (the walk's). */
  dirs: Iterable<string>;
  /** Folders of the previous backup's tree. */
  prevDirs: Iterable<string>;
  /** Files new or changed since the previous backup. */
  changed: Iterable<string>;
  /** Files of the previous backup that are no longer here. */
  gone: Iterable<string>;
  /** Files already in place on the box (renamed mail linked to its old copy). */
  linked: ReadonlySet<string>;
}

export interface TreeDelta {
  /** For rsync's --files-from with --delete-missing-args: a listed path missing here is deleted there. */
  list: string[];
  /** Files to send. */
  send: Set<string>;
  /** Files and folders to delete on the box. */
  deletes: number;
}

const parentOf = (p: string) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

/**
 * Existing folders are never listed: rsync deletes a listed path that is missing here, so a
 * folder removed between the walk and the upload would take its unchanged files (which the
 * manifest still describes) with it. New folders are listed (an empty one would not appear
 * otherwise); a new folder that vanishes holds only new files, which then leave the manifest.
 */
export function planTreeDelta(i: TreeDeltaInput): TreeDelta {
  const now = new Set(i.dirs);
  const before = new Set(i.prevDirs);
  const list: string[] = [];
  for (const d of now) if (!before.has(d)) list.push(d);
  const send = new Set<string>();
  for (const f of i.changed) if (!i.linked.has(f)) (send.add(f), list.push(f));
  // A gone folder is deleted whole (rsync --force), once, at its topmost missing level.
  const topGone = new Set<string>();
  const topMissing = (dir: string): string | undefined => {
    let top: string | undefined;
    for (let d = dir; d !== '' && !now.has(d); d = parentOf(d)) top = d;
    return top;
  };
  for (const d of before) {
    const t = topMissing(d);
    if (t !== undefined) topGone.add(t);
  }
  let deletes = 0;
  for (const f of i.gone) {
    if (send.has(f) || i.linked.has(f)) continue;
    const t = topMissing(parentOf(f));
    if (t !== undefined) topGone.add(t);
    else (list.push(f), deletes++);
  }
  for (const d of topGone) list.push(d);
  return { list, send, deletes: deletes + topGone.size };
}
