// The daily run, in order: lock, preflight, dump, manifest, upload, verify, publish, scrub, prune.
// Each step is its own module; this file only orders them and collects the summary. The lock is
// taken by the caller before it loads this module (lock-phase.ts: start-up time).
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { IndexSpillFile } from '../adapters/index-spill.js';
import { memoryCollections, watchMemory } from '../adapters/memory.js';
import type { HeldLock } from '../adapters/lock.js';
import { errorText, isUserError, UserError } from '../errors.js';
import { BackupManifest } from '../plan/backup-manifest.js';
import { bytes } from '../plan/human.js';
import { planRenameLinks, type RenameLink } from '../plan/manifest.js';
import { backupNameFor, isStagingName, publishedBackups, stagingNameFor } from '../plan/names.js';
import { planDump } from '../plan/dump-due.js';
import { recipientFingerprint } from '../plan/age-keys.js';
import type { DumpResult } from '../adapters/mailcow.js';
import type { VmailIndex } from '../plan/vmail-index.js';
import type { RunSummary } from '../plan/report.js';
import { TOOL_VERSION } from '../version.js';
import { phase, type PhaseTiming, type RunContext } from './context.js';
import { encryptDump, saveCipherStore } from './encrypt.js';
import { unpackDump } from './archive-tree.js';
import { ARCHIVES_DIR, TREE_LAYOUT } from '../plan/archive-tree.js';
import type { LockPhase } from './lock-phase.js';
import { dump, makeRunDir, removeStaleRunDirs } from './dump.js';
import { carryDump, listDumpFiles, readNewest, type CarriedDump } from './carry-dump.js';
import { clearLeftoverContainer, withDumpRecord } from './leftover-container.js';
import { hashFiles, hashIndex, PreviousManifest, saveHashCache, walkTree, type TreeWalk } from './manifest-step.js';
import { cachePath, dumpPreflight, preflight } from './preflight.js';
import { unitPathWarnings } from './unit-paths.js';
import { knownDamaged, pruneLocal, pruneRemote } from './prune.js';
import { recordVerifiedAtPublish, runScrub } from './scrub.js';
import { guardShrink } from './shrink-guard.js';
import { guardMassDeletion, snapshotsForReport } from './snapshots.js';
import { checkHardLinks, linkRenamesOnBox, uploadManifest, uploadSource, verifyOnBox, VMAIL_DIR, type Source } from './transfer.js';
import { forgetTreeState, readTreeState, saveTreeState } from './tree-state.js';
import { receiverRefusedOptions, treeCopyRefusal, uploadTreeDelta, walkRefusal } from './tree-copy.js';
import { mailboxTotals, recordedMailboxes } from '../plan/mailboxes.js';

export interface RunOptions {
  /** Publish even a backup far smaller than the newest one (SHRINK_GUARD_PERCENT). */
  acceptShrink?: boolean;
}

export async function runBackup(ctx: RunContext, locked: LockPhase, opts: RunOptions = {}): Promise<RunSummary> {
  const c = ctx.config;
  const timings: PhaseTiming[] = [];
  const summary: RunSummary = {
    ok: false,
    published: false,
    host: hostname(),
    startedAt: locked.startedAt.toISOString(),
    phases: timings,
    exitCode: 1,
    components: c.BACKUP_COMPONENTS,
    warnings: [],
    logFile: c.LOG_FILE,
  };
  let lock: HeldLock | undefined;
  let runDir: string | undefined;
  // A staging folder this run made before its upload began holds links only: a failure then
  // removes it, so that the next run does not take it for a dead upload to resume from.
  let stagingOf: string | undefined;
  let copying: Promise<{ value: string | undefined } | { error: unknown }> | undefined;
  let uploading = false;
  let boxReads: ReturnType<typeof readsForPrune> | undefined;
  let published = false;
  const root = c.HETZNER_REMOTE_PATH;
  const stopWatchingMemory = watchMemory();
  try {
    // The lock phase ran before this module was loaded; from here on the lock is released below.
    timings.push(locked.timing);
    if (!locked.lock) throw locked.error;
    lock = locked.lock;
    ctx.log.openFile();
    if (lock.tookOver) summary.warnings.push(`took over a stale lock: ${lock.tookOver}`);

    const pre = await phase(timings, 'preflight', ctx.log, async () => {
      for (const w of unitPathWarnings(c, Boolean(process.env.INVOCATION_ID))) {
        ctx.log.warn(w);
        summary.warnings.push(w);
      }
      const p = await preflight(ctx);
      // The folder's listing beside its mkdir: a folder not there yet lists empty.
      const [, listing] = await Promise.all([ctx.box.mkdirp(root), ctx.box.list(root)]);
      return { ...p, listing };
    });
    // The box's answer to the sha256sum probe is needed only at verify: asked now, beside the run.
    ctx.box.verifyMethod().catch(() => undefined);
    runDir = await makeRunDir(ctx);
    if (lock.tookOver) for (const d of await removeStaleRunDirs(ctx, runDir)) ctx.log.info(`removed the leftover ${d} of the dead run`);

    const entries = pre.listing;
    const publishedNames = publishedBackups(entries).reverse();
    // Far fewer backups than this host left there: deleted by someone else. Stop before anything.
    await guardMassDeletion(ctx, publishedNames).catch((e) => {
      throw Object.assign(e as object, { phase: 'preflight' });
    });
    // Newest first: rsync takes the first basis that holds a file as its delta basis, and a file
    // cut twice is furthest along (kept by --partial) in the newest dead run's staging folder.
    const staleStagings = entries.filter((e) => e.type === 'dir' && isStagingName(e.name)).map((e) => e.name).sort().reverse();
    const prev = publishedNames[0];
    const recipients = c.ENCRYPT_RECIPIENTS ?? [];

    // A newest backup the scrub found damaged lends neither its dump nor its mail tree.
    const prevDamaged = prev ? (await knownDamaged(ctx)).has(prev) : false;
    // Between dumps (DUMP_INTERVAL_HOURS) the newest backup's dump is taken by hard link.
    const mayCarry = prev && c.DUMP_INTERVAL_HOURS > 0 && pre.archiveComponents.length > 0;
    // The newest backup's files are listed beside its record: a run that carries its dump needs
    // both, and each is a round trip (a run that dumps after all has spent one listing).
    const [read, prevFiles] = mayCarry ? await Promise.all([readNewest(ctx, root, prev, runDir), listDumpFiles(ctx, `${root}/${prev}`).catch(() => undefined)]) : [{}, undefined];
    const dumpPlan = planDump({
      now: ctx.now(),
      intervalHours: c.DUMP_INTERVAL_HOURS,
      host: summary.host,
      archiveComponents: pre.archiveComponents,
      recipients: recipients.map(recipientFingerprint),
      newest: read.newest?.record ?? (prev ? { name: prev } : undefined),
      unusable: read.problem,
      newestDamaged: prevDamaged,
    });
    const named = (n: string) => {
      if (publishedNames.includes(n)) throw new UserError('failed', `a backup named ${n} is already on the box; wait a second and run again`);
      summary.backupName = n;
      return n;
    };
    let carried: CarriedDump | undefined;
    let dumped: DumpResult | undefined;
    // What a dump needs is checked before the dump phase starts: a container in the way or a full
    // temp folder stops the run before mailcow's script is started (exit 7 / preflight).
    const dumpChecks = async () => {
      try {
        const removed = await dumpPreflight(ctx, pre, lock!.tookOver, runDir);
        if (removed) summary.warnings.push(removed);
      } catch (e) {
        throw Object.assign(e as object, { phase: 'preflight' });
      }
    };
    const carrying = !dumpPlan.dump && Boolean(read.newest);
    if (!carrying) await dumpChecks();
    await phase(timings, 'dump', ctx.log, async () => {
      if (!dumpPlan.dump && read.newest) {
        const n = named(backupNameFor(ctx.now()));
        const st = `${root}/${stagingNameFor(n)}`;
        stagingOf = st;
        // The links' SFTP session makes the staging folder.
        const r = await carryDump(ctx, root, st, read.newest, dumpPlan.origin, prevFiles);
        if (r.carried) {
          carried = r.carried;
          ctx.log.info(`no dump this run: the database dump of ${dumpPlan.origin.by} (${dumpPlan.origin.at}) is linked from ${dumpPlan.from}, not due before DUMP_INTERVAL_HOURS=${c.DUMP_INTERVAL_HOURS}`);
          // A dead run's container is cleared even when this run does not dump.
          if (lock!.tookOver) {
            const removed = await clearLeftoverContainer(ctx, lock!.tookOver, undefined, runDir);
            if (removed) summary.warnings.push(removed);
          }
          return;
        }
        const w = `the dump was not due, but ${dumpPlan.from}'s could not be linked (${r.problem}): this run dumps`;
        ctx.log.warn(w);
        summary.warnings.push(w);
        await ctx.box.removeTree(st);
        await dumpChecks();
      } else ctx.log.info(`dump: ${dumpPlan.dump ? dumpPlan.reason : 'the newest backup cannot lend its dump'}`);
      const at = ctx.now().toISOString();
      dumped = await withDumpRecord(ctx, () => dump(ctx, pre, runDir!));
      named(dumped.name);
      summary.dump = { by: dumped.name, at };
    });
    if (carried) summary.dump = { by: carried.origin.by, at: carried.origin.at, from: carried.from };
    const name = summary.backupName!;
    const staging = `${root}/${stagingNameFor(name)}`;
    stagingOf = staging;
    // The box copies the newest backup's mail tree now, beside the walk and the hashing (at 10x
    // the bench's messages its `cp -al` took 7 of an hourly run's 47 s); whether the copy serves
    // is decided after the walk, which can still refuse it (symlinks, too many gone files).
    const treeState = pre.vmailPath && prev ? await readTreeState(c) : undefined;
    const copyNotStarted = treeCopyRefusal({ prev, root, state: treeState, volume: pre.vmailPath, staleStagings: staleStagings.length, prevDamaged });
    if (!copyNotStarted) copying = settle((carried ? Promise.resolve() : ctx.box.mkdirp(staging)).then(() => ctx.box.copyLinked(`${root}/${prev}/${VMAIL_DIR}`, `${staging}/${VMAIL_DIR}`)));
    if (dumped) ctx.log.info(`dump ${name}: ${dumped.archives.map((a) => `${a.component} ${bytes(a.bytes)}`).join(', ') || 'no archive components'} (${dumped.outputLines} lines of script output)`);
    const dumpFolder = dumped?.folder;
    // The last published manifest: hashes to reuse, and what the trees' unchanged files are.
    const previous = await PreviousManifest.open(cachePath(c), VMAIL_DIR);
    const unpacked = dumped?.archives.length ? await phase(timings, 'unpack', ctx.log, () => unpackDump(ctx, dumpFolder!, dumped!.archives, previous.other)) : undefined;
    const encrypted = !carried && dumpFolder && recipients.length ? await phase(timings, 'encrypt', ctx.log, () => encryptDump(ctx, dumpFolder, recipients, unpacked?.files, previous.other)) : undefined;
    // The plaintext hashes stay on this host (cipher store); backup.json gets the record alone.
    const encryption = carried ? carried.encryption : encrypted && { tool: encrypted.tool, files: encrypted.files, recipients: encrypted.recipients };
    const archiveLayout = unpacked?.trees.length ? TREE_LAYOUT : carried?.archiveLayout;
    if (encryption) summary.encrypted = { files: encryption.files.length, recipients: encryption.recipients.map((r) => r.fingerprint) };

    // Manifest: the dump's files and the vmail tree, hashed; unchanged files reuse last hash.
    let walk: TreeWalk | undefined;
    let renames: RenameLink[] = [];
    const manifest = await phase(timings, 'manifest', ctx.log, async () => {
      const dumpFiles: { path: string; size: number; mtimeMs: number }[] = [];
      // Recursive: the archives' trees are below archives/.
      for (const n of dumpFolder ? (await readdir(dumpFolder, { recursive: true })).sort() : []) {
        const st = await lstat(join(dumpFolder!, n));
        if (st.isFile()) dumpFiles.push({ path: n, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
      }
      // The trees' files were hashed as they were unpacked.
      const cache = unpacked && !encrypted ? new Map([...previous.other, ...unpacked.files]) : previous.other;
      const { entries: other, stats } = await hashFiles(dumpFolder ? [{ root: dumpFolder, prefix: '', files: dumpFiles }] : [], cache);
      // Linked from the newest backup: described by its manifest.
      for (const f of carried?.files ?? []) {
        // A tree file keeps its time through runs between dumps: the next dump's unchanged files take it and link.
        const had = previous.other.get(f.path);
        other.set(f.path, f.path.startsWith(`${ARCHIVES_DIR}/`) && had?.hash === f.hash ? { ...f, mtimeMs: had.mtimeMs } : f);
      }
      let vanished = stats.vanished.length;
      summary.hashed = stats.hashed;
      summary.hashReused = stats.reused;
      if (pre.vmailPath) {
        walk = await walkTree(pre.vmailPath, VMAIL_DIR, previous, new IndexSpillFile(join(runDir!, 'vmail-index')));
        const s = await hashIndex(walk.index, pre.vmailPath);
        summary.hashed += s.hashed;
        summary.hashReused += walk.reused;
        vanished += s.vanished.length;
        // Renamed messages: the previous manifest knows their content under the old name.
        if (prev) renames = planRenameLinks(walk.index.added(), previous.gone);
      }
      if (vanished) ctx.log.info(`${vanished} file(s) vanished before they were hashed (mail deleted meanwhile)`);
      return new BackupManifest(other, walk?.index);
    });

    // Before a byte is sent: a nearly empty mailcow (a fresh host, a lost disk) must not become `latest`.
    if (prev) {
      await phase(timings, 'compare', ctx.log, async () => {
        const accepted = await guardShrink(
          { box: ctx.box, log: ctx.log, root, newest: prev, localDir: runDir!, percent: c.SHRINK_GUARD_PERCENT, accept: !!opts.acceptShrink, record: read.newest?.record },
          { mailboxes: walk && mailboxTotals(walk.index.entries(), VMAIL_DIR).size, mailFiles: walk?.index.totals().files, bytes: manifest.totals().bytes },
        );
        if (accepted) summary.warnings.push(accepted);
      });
    }

    // Upload into the staging folder, against the newest published backup (and the staging
    // folders of dead runs, whose files then need a full check since nobody verified them): what
    // a broken upload had sent is linked, the file it was cut in is the basis of a delta.
    const linkBases = [...(prev ? [`${root}/${prev}`] : []), ...staleStagings.map((s) => `${root}/${s}`)];
    if (staleStagings.length) ctx.log.info(`resuming: ${staleStagings.length} staging folder(s) of failed runs lend what they received; all of it is hashed on the box before publishing`);
    const sources: Source[] = dumpFolder ? [{ root: dumpFolder, prefix: '' }] : [];
    if (pre.vmailPath && walk) sources.push({ root: pre.vmailPath, prefix: VMAIL_DIR, tree: true });
    // The mail tree starts as a hard-link copy of the newest backup's when the cache describes it.
    const notCopied = walk
      ? (copyNotStarted ?? walkRefusal({ symlinks: walk.symlinks, goneUncounted: previous.goneCount > previous.gone.length }))
      : 'no mail tree';
    if (notCopied && prev && walk) ctx.log.debug(`mail: uploaded whole against ${prev}: ${notCopied}`);
    // Whether the box's mail tree is exactly the manifest's (what the next run's copy relies on).
    let treeExact = true;
    uploading = true;
    const sent = await phase(timings, 'upload', ctx.log, async () => {
      let copied = false;
      if (copying) {
        const copy = await copying;
        if ('error' in copy) throw copy.error;
        if (!notCopied && copy.value === undefined) copied = true;
        else {
          if (copy.value !== undefined) ctx.log.info(`the box's 'cp -al' did not copy ${prev}'s mail tree (${copy.value}); the mail tree is uploaded whole against it`);
          await ctx.box.removeTree(`${staging}/${VMAIL_DIR}`);
        }
      }
      if (!copied) await ctx.box.mkdirp(pre.vmailPath ? `${staging}/${VMAIL_DIR}` : staging);
      // Renamed messages: linked to the previous backup's copy, so rsync need not store them again.
      const linked = prev && renames.length ? await linkRenamesOnBox(ctx, staging, `${root}/${prev}`, renames) : new Set<string>();
      // Sent files outside the mail tree; the tree's are flagged in its index.
      const transferred = new Set<string>();
      const arrived = new Set<string>();
      const index = walk?.index;
      let bytesSent = 0;
      let totalSize = 0;
      for (const src of sources) {
        // The tree as rsync walked it, set against the index: late mail is collected here.
        const late: string[] = [];
        const tree = src.tree ? index : undefined;
        const onFile = tree && ((p: string, code: string) => void (tree.markSeen(p, code[0] === '<') || late.push(p)));
        // Into the copy (its changes could not be sent alone), rsync also deletes what is gone.
        const whole = (intoCopy = false) => uploadSource(ctx, src, staging, linkBases, runDir!, intoCopy ? { keepExtraneous: false } : {}, onFile);
        const r =
          copied && tree && onFile
            ? await uploadTreeDelta(ctx, src, staging, tree, treeState!.dirs, previous.gone, linked, runDir!, onFile).catch(async (e) => {
                if (!receiverRefusedOptions(e)) throw e;
                // The copy stays the basis; rsync then walks the whole tree and deletes what is gone.
                ctx.log.warn(`the box's rsync cannot send only the mail's changes (${errorText(e)}); the mail tree is uploaded whole`);
                return whole(true);
              })
            : await whole();
        if ('exact' in r && !r.exact) treeExact = false;
        r.transferred.forEach((p) => transferred.add(p));
        // A linked file that vanished meanwhile is still a whole copy of it: keep it described.
        for (const p of r.vanished) if (!linked.has(p)) manifest.delete(p);
        if (r.vanished.size) ctx.log.info(`${r.vanished.size} file(s) vanished before they were sent (mail deleted meanwhile)`);
        if (tree) (await settleTally(ctx, tree, late, linked, manifest, src)).forEach((p) => arrived.add(p));
        bytesSent += r.bytesSent;
        totalSize += r.totalSize;
      }
      return { transferred, linked, arrived, bytesSent, totalSize };
    });
    summary.bytesSent = sent.bytesSent;

    await phase(timings, 'verify', ctx.log, async () => {
      const full = staleStagings.length > 0 || !prev;
      const index = walk?.index;
      const wasSent = (p: string) => sent.transferred.has(p) || sent.arrived.has(p) || !!index?.wasSent(p);
      const changed = new Set(full ? [] : [...sent.transferred, ...(index?.sent() ?? []), ...sent.linked, ...sent.arrived]);
      // The linked dump is a published backup's, verified when it was published: like --link-dest links.
      const lent = new Set(carried?.files.map((f) => f.path));
      const toCheck = full
        ? (function* all() {
            for (const p of manifest.paths()) if (!lent.has(p)) yield p;
          })()
        : [...changed].filter((p) => manifest.has(p));
      // Whether unchanged files are links: read beside the verification (a sample, one login).
      const [v, hardLinks] = await Promise.all([
        verifyOnBox(ctx, staging, manifest, toCheck, sources, runDir!, wasSent),
        prev && index
          ? checkHardLinks(ctx, staging, (function* unchanged() {
              for (const p of index.paths()) if (!wasSent(p) && !sent.linked.has(p)) yield p;
            })())
          : undefined,
      ]);
      // A late file that vanished here and whose copy the box could not hash by name has no
      // hash: it leaves the manifest rather than put a line sha256sum -c cannot read into it.
      for (const p of [...manifest.unhashed()]) (manifest.delete(p), (treeExact = false), ctx.log.warn(`${p} arrived and vanished during the run; it is on the box but not in the manifest`));
      summary.verifiedOnBox = v.checked;
      summary.verifyMethod = v.method;
      if (v.viaRsyncChecksum) summary.verifiedByRsync = v.viaRsyncChecksum;
      summary.changedDuringRun = v.changedDuringRun.length;
      summary.vanishedDuringRun = v.vanishedDuringRun.length;
      summary.hardLinks = hardLinks;
      if (hardLinks && hardLinks.linked === 0) summary.warnings.push('hard links do not work on this Storage Box: unchanged files were stored as copies');
    });

    await phase(timings, 'publish', ctx.log, async () => {
      const meta = join(runDir!, 'meta');
      await mkdir(meta, { recursive: true });
      const totals = manifest.totals();
      summary.files = totals.files;
      summary.backupBytes = totals.bytes;
      const record = {
        tool: { name: 'mailcow-cold-standby', version: TOOL_VERSION },
        name,
        host: summary.host,
        createdAt: ctx.now().toISOString(),
        components: c.BACKUP_COMPONENTS,
        files: totals.files,
        bytes: summary.backupBytes,
        archives: dumped ? dumped.archives.map((a) => ({ component: a.component, file: a.file.split('/').pop(), bytes: a.bytes, ...(unpacked?.rawBytes.has(a.component) ? { unpackedBytes: unpacked.rawBytes.get(a.component) } : {}) })) : carried?.archives,
        // 'tree': archives/<component>/ and .tar.json instead of the .tar.zst (restore packs them again).
        archiveLayout,
        // When the database (and the other archives) were dumped, and by which backup's run.
        dumpedAt: summary.dump?.at,
        dumpedBy: summary.dump?.by,
        vmail: walk
          ? { dir: VMAIL_DIR, ...walk.index.totals(), dirs: walk.index.dirCount, owner: walk.index.ownership(), modes: walk.index.dirModes(), mailboxes: recordedMailboxes(mailboxTotals(walk.index.entries(), VMAIL_DIR)) }
          : undefined,
        basedOn: prev ?? null,
        encryption,
      };
      await uploadManifest(ctx, staging, meta, manifest, record, prev ? [`${root}/${prev}`] : [], runDir!);
      await ctx.box.rename(staging, `${root}/${name}`);
      published = summary.published = true;
      ctx.log.info(`published ${root}/${name}`);
      // What prune reads on the box, each a round trip: asked now, beside the local state written below.
      boxReads = readsForPrune(ctx, root, prev, name);
      await forgetTreeState(c);
      await saveHashCache(cachePath(c), manifest);
      if (walk && pre.vmailPath && treeExact) await saveTreeState(c, { backup: name, root, volume: pre.vmailPath, dirs: [...walk.index.folderNames()] });
      if (encrypted && dumpFolder) await saveCipherStore(ctx, dumpFolder, encrypted.plain, manifest);
      // What `list`, `status` and the restore show for it: verified by this run, not yet scrubbed.
      await recordVerifiedAtPublish(c.STATE_DIR, name, ctx.now().toISOString()).catch((e) => ctx.log.warn(`cannot record that ${name} was verified: ${(e as Error).message}`));
    });

    // Before prune: what the scrub finds damaged, retention will not count as good (scrub.json).
    if (c.SCRUB_BUDGET_MINUTES > 0) {
      await phase(timings, 'scrub', ctx.log, async () => {
        // Without sha256sum on the box a scrub downloads whole backups: not unasked, every day.
        // The new backup was verified minutes ago: the budget goes to the older ones.
        const report = await runScrub(ctx, { budgetMs: c.SCRUB_BUDGET_MINUTES * 60_000, download: false, exclude: [name] });
        summary.scrub = {
          verified: report.results.filter((r) => r.state === 'ok').map((r) => r.name),
          damaged: report.results.filter((r) => r.state === 'damaged').map((r) => r.name),
          skipped: report.skipped.length,
          notScrubbed: report.notScrubbed,
        };
        if (report.notScrubbed) summary.warnings.push(`older backups ${report.notScrubbed}`);
        for (const r of report.results) if (r.state === 'error') summary.warnings.push(`the scrub of ${r.name} could not finish: ${r.message}`);
      });
    }

    await phase(timings, 'prune', ctx.log, async () => {
      const reads = await boxReads!;
      if ('error' in reads) throw reads.error;
      const [du, after, usageBefore, snaps] = reads.value;
      const added = du?.get(`${root}/${name}`);
      if (added !== undefined) summary.addedOnBoxBytes = added * 1024;
      const pr = await pruneRemote(ctx, root, after, []);
      summary.backupsKept = pr.kept;
      summary.removed = pr.removed;
      if (pr.lastKnownGood) summary.warnings.push(pr.lastKnownGood);
      if (c.LOCAL_RETENTION_DAYS > 0 && dumpFolder) await rename(dumpFolder, join(c.TEMP_BACKUP_DIR, name));
      await pruneLocal(ctx);
      // The space read before prune is still the box's when prune removed nothing.
      summary.box = pr.removed.length || pr.staleStagingRemoved.length ? await ctx.box.usage().catch(() => undefined) : usageBefore;
      if (snaps) (summary.snapshots = snaps.summary), (summary.snapshotNote = snaps.line);
    });

    const bad = summary.scrub?.damaged ?? [];
    if (bad.length) {
      throw Object.assign(new UserError('partial', `${bad.join(', ')} on the Storage Box ${bad.length === 1 ? 'is' : 'are'} DAMAGED (files differ from checksums.sha256); see 'backup-to-hetzner verify ${bad.join(' ')}'`), { phase: 'scrub' });
    }
    summary.ok = true;
    summary.exitCode = 0;
  } catch (e) {
    summary.ok = false;
    summary.error = errorText(e);
    summary.failedPhase = (e as { phase?: string }).phase;
    if (published && isUserError(e) && e.kind !== 'interrupted') {
      summary.exitCode = 3;
      summary.warnings.push(`the backup was published, but ${summary.failedPhase} failed: ${summary.error}`);
    }
    if (stagingOf && !uploading && !published && !(isUserError(e) && e.kind === 'interrupted')) {
      await copying;
      await ctx.box.removeTree(stagingOf).catch(() => undefined);
    }
    throw Object.assign(e as object, { summary });
  } finally {
    stopWatchingMemory();
    if (memoryCollections()) ctx.log.debug(`memory: ${memoryCollections()} full garbage collection(s) asked for`);
    summary.finishedAt = ctx.now().toISOString();
    await ctx.box.close().catch(() => undefined);
    if (runDir) await rm(runDir, { recursive: true, force: true }).catch(() => undefined);
    await lock?.release();
  }
  return summary;
}

/** What the new backup added (`du` after the previous one), the box's folder, its space and snapshots. */
function readsForPrune(ctx: RunContext, root: string, prev: string | undefined, name: string) {
  return settle(
    Promise.all([
      prev ? ctx.box.duKiB([`${root}/${prev}`, `${root}/${name}`]).catch(() => new Map<string, number>()) : undefined,
      ctx.box.list(root),
      ctx.box.usage().catch(() => undefined),
      snapshotsForReport(ctx, name).catch((e) => void ctx.log.warn(`cannot look at the box's snapshots: ${errorText(e)}`)),
    ]),
  );
}

/** A promise that never rejects: started early, awaited late (no unhandled rejection meanwhile). */
function settle<T>(p: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  return p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/**
 * Mail deleted between the hashing and rsync's walk leaves the manifest; mail delivered meanwhile
 * (`late`: on the box now, not in the index) is hashed here and verified on the box like all sent
 * files. Files linked on the box before rsync ran (renames) stay whether or not rsync saw them.
 */
async function settleTally(ctx: RunContext, index: VmailIndex, late: string[], linked: ReadonlySet<string>, manifest: BackupManifest, src: Source): Promise<string[]> {
  // Those rsync reported as vanished are gone from the manifest already.
  const dropped = [...index.unseen()].filter((p) => !linked.has(p) && manifest.delete(p)).length;
  if (dropped) ctx.log.info(`${dropped} file(s) were deleted before they were sent (mail deleted meanwhile)`);
  if (late.length === 0) return late;
  const files: { path: string; size: number; mtimeMs: number }[] = [];
  for (const p of late) {
    const rel = p.slice(src.prefix.length + 1);
    const st = await lstat(join(src.root, rel)).catch(() => undefined);
    // Gone again: the box's copy is what the backup holds, and verify takes the box's hash for it.
    if (!st) manifest.set(p, { hash: '', size: 0, mtimeMs: 0 });
    else files.push({ path: rel, size: st.size, mtimeMs: Math.floor(st.mtimeMs) });
  }
  const { entries, stats } = await hashFiles([{ root: src.root, prefix: src.prefix, files }], new Map());
  for (const [p, e] of entries) manifest.set(p, e);
  for (const p of stats.vanished) manifest.set(p, { hash: '', size: 0, mtimeMs: 0 });
  ctx.log.info(`${late.length} file(s) arrived after the hashing and were sent: hashed now, verified on the box`);
  return late;
}
