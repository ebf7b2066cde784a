// The box's ZFS snapshots as the run, `check`, `status` and the restore see them (plan/snapshots.ts
// says what they are), and the guard against a mass deletion on the box: the run remembers the
// published backups it leaves behind (STATE_DIR/published-backups.json), and when far fewer are
// there the next time, without this host having pruned them, it stops and names a snapshot.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { publishedBackups } from '../plan/names.js';
import { bestSnapshot, massDeletion, SNAPSHOT_DIR, SNAPSHOT_STEPS, snapshotBackupFolder, snapshotsIn, snapshotVerdict, type Snapshot, type SnapshotFacts } from '../plan/snapshots.js';
import type { RunSummary } from '../plan/report.js';
import { writeAtomic } from '../notify/status-file.js';
import type { RunContext } from './context.js';

/** The snapshots this account sees, newest first; none when the folder is not shown to it. */
export async function findSnapshots(ctx: RunContext): Promise<Snapshot[]> {
  return snapshotsIn(await ctx.box.list(SNAPSHOT_DIR));
}

/** The published backups a snapshot holds (names checked like any name read from the box). */
export async function backupsInSnapshot(ctx: RunContext, snapshot: string): Promise<string[]> {
  return publishedBackups(await ctx.box.list(snapshotBackupFolder(snapshot, ctx.config.HETZNER_REMOTE_PATH)));
}

export async function snapshotFacts(ctx: RunContext, newestBackup: string | undefined): Promise<SnapshotFacts> {
  const snapshots = await findSnapshots(ctx);
  const inNewestSnapshot = snapshots.length ? await backupsInSnapshot(ctx, snapshots[0]!.name) : [];
  return { user: ctx.config.HETZNER_USER, snapshots, newestBackup, inNewestSnapshot };
}

const MEMORY = 'published-backups.json';
export const memoryPath = (stateDir: string) => join(stateDir, MEMORY);

/** The published backups this host last left on the box; undefined before the first run. */
export async function rememberedBackups(stateDir: string): Promise<string[] | undefined> {
  try {
    const r = JSON.parse(await readFile(memoryPath(stateDir), 'utf8')) as { backups?: unknown };
    return Array.isArray(r.backups) ? r.backups.filter((b): b is string => typeof b === 'string') : undefined;
  } catch {
    return undefined;
  }
}

export async function rememberBackups(ctx: RunContext, names: readonly string[]): Promise<void> {
  await writeAtomic(memoryPath(ctx.config.STATE_DIR), JSON.stringify({ savedAt: ctx.now().toISOString(), backups: [...names].sort() }, null, 2) + '\n', 0o600);
}

/**
 * Throws (exit 1, nothing dumped, sent or pruned) when more than half of the backups this host
 * last saw are gone, naming the snapshot that holds them. The newest few snapshots are looked into.
 */
export async function guardMassDeletion(ctx: RunContext, present: readonly string[]): Promise<void> {
  const remembered = await rememberedBackups(ctx.config.STATE_DIR);
  const missing = remembered && massDeletion(remembered, present);
  if (!missing) return;
  const root = ctx.config.HETZNER_REMOTE_PATH;
  const gone = `${missing.length} of the ${remembered.length} backups this host last saw in ${root} on the Storage Box are gone (${missing.join(' ')}) and this tool did not prune them: someone with the box's credentials (this server's SSH key?) may have deleted them`;
  const snapshots = await findSnapshots(ctx).catch(() => [] as Snapshot[]);
  const candidates = [];
  for (const s of snapshots.slice(0, 5)) candidates.push({ snapshot: s.name, backups: await backupsInSnapshot(ctx, s.name).catch(() => [] as string[]) });
  const best = bestSnapshot(candidates, missing);
  const where = best
    ? `the snapshot ${best.snapshot} holds ${best.holds} of them: see 'restore-from-hetzner --list --snapshots', restore with --backup NAME@${best.snapshot}, or roll the box back to it in Hetzner's console`
    : snapshots.length
      ? `none of the ${snapshots.length} newest snapshot(s) holds them`
      : `no snapshot is visible under /home/${SNAPSHOT_DIR} (if the box has none: ${SNAPSHOT_STEPS})`;
  throw new UserError(
    'failed',
    `${gone}. Nothing was backed up and nothing was pruned; ${where}. Check this server for intruders; if the backups were removed on purpose, delete ${memoryPath(ctx.config.STATE_DIR)} and run again`,
  );
}

const REPORTED = 'snapshots-reported.json';
const WEEK_MS = 7 * 86_400_000;

/**
 * What the run records of the snapshots (status, Prometheus) and, once a week, the line its
 * report carries: the daily e-mail need not repeat it, but a box without snapshots must not go
 * unmentioned for long.
 */
export async function snapshotsForReport(ctx: RunContext, newestBackup: string | undefined): Promise<{ summary: NonNullable<RunSummary['snapshots']>; line?: string }> {
  const f = await snapshotFacts(ctx, newestBackup);
  const newest = f.snapshots[0];
  const summary = { count: f.snapshots.length, newest: newest?.name, newestAt: newest?.takenAt, newestBackupProtected: newestBackup ? f.inNewestSnapshot.includes(newestBackup) : undefined };
  const file = join(ctx.config.STATE_DIR, REPORTED);
  const last = await readFile(file, 'utf8').then((t) => Date.parse((JSON.parse(t) as { at?: string }).at ?? ''), () => NaN);
  const now = ctx.now();
  if (Number.isFinite(last) && now.getTime() - last < WEEK_MS && now.getTime() >= last) return { summary };
  const [status, detail] = snapshotVerdict(f, now);
  await writeAtomic(file, JSON.stringify({ at: now.toISOString() }) + '\n').catch((e) => ctx.log.warn(`cannot record the weekly snapshot report: ${(e as Error).message}`));
  return { summary, line: `${status} ${detail}` };
}
