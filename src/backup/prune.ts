// Applies the retention plan on the box and to local dumps. Only names this tool creates are
// ever deleted, each checked against its strict pattern first.
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isBackupName, isStagingName, parseBackupName, publishedBackups } from '../plan/names.js';
import { guardMassDeletion, rememberBackups } from './snapshots.js';
import { planRetention, type RetentionPlan } from '../plan/retention.js';
import type { BoxEntry } from '../adapters/storage-box.js';
import type { RunContext } from './context.js';
import { loadScrubState } from './scrub.js';

/** Backups the last scrub of each found damaged (STATE_DIR/scrub.json; a later OK clears it). */
export async function knownDamaged(ctx: RunContext): Promise<Set<string>> {
  const st = await loadScrubState(ctx.config.STATE_DIR);
  return new Set(Object.entries(st).filter(([, v]) => v.state === 'damaged').map(([k]) => k));
}

/** Backups this host knows verified: by the run that published them or by a scrub. */
export async function knownVerified(ctx: RunContext): Promise<Set<string>> {
  const st = await loadScrubState(ctx.config.STATE_DIR);
  return new Set(Object.entries(st).filter(([, v]) => v.state !== 'damaged' && (v.verifiedAt !== undefined || v.state === 'ok')).map(([k]) => k));
}

export async function retentionPlanFor(ctx: RunContext, entries: BoxEntry[]): Promise<RetentionPlan> {
  const c = ctx.config;
  const names = entries.filter((e) => e.type === 'dir' && !e.name.startsWith('.')).map((e) => e.name);
  const policy = { retentionDays: c.REMOTE_RETENTION_DAYS, keepHourly: c.KEEP_HOURLY, keepDaily: c.KEEP_DAILY, keepWeekly: c.KEEP_WEEKLY, keepMonthly: c.KEEP_MONTHLY };
  return planRetention(names, policy, ctx.now(), await knownDamaged(ctx), await knownVerified(ctx));
}

export function describePlan(plan: RetentionPlan): string[] {
  return [
    ...plan.keep.map((k) => `keep   ${k.name}  (${k.reasons.join(', ')})`),
    ...plan.remove.map((r) => `remove ${r.name}  (${r.reason})`),
    ...plan.ignored.map((n) => `ignore ${JSON.stringify(n)}  (not a name this tool creates)`),
  ];
}

export interface PruneResult {
  removed: string[];
  kept: number;
  staleStagingRemoved: string[];
  /** "retention keeps X as the last known good: newer Y is damaged…", for the run's report. */
  lastKnownGood?: string;
}

export async function pruneRemote(ctx: RunContext, root: string, entries: BoxEntry[], keepStaging: string[]): Promise<PruneResult> {
  // Backups deleted behind this host's back: retention must not run on what is left.
  await guardMassDeletion(ctx, publishedBackups(entries));
  const plan = await retentionPlanFor(ctx, entries);
  for (const line of describePlan(plan)) ctx.log.debug(`retention: ${line}`);
  // Said at warn level and in the report: the admin must learn that the newer ones are damaged.
  let lastKnownGood: string | undefined;
  for (const k of plan.keep) {
    const why = k.reasons.find((r) => r.startsWith('last known good'));
    if (why) ctx.log.warn((lastKnownGood = `retention keeps ${k.name} as the ${why}; see 'backup-to-hetzner verify'`));
  }
  const removed: string[] = [];
  for (const r of plan.remove) {
    if (!isBackupName(r.name)) continue; // belt and braces: the plan only holds parsed names
    if (ctx.dryRun) ctx.log.info(`would remove ${root}/${r.name} (${r.reason})`);
    else {
      await ctx.box.removeTree(`${root}/${r.name}`);
      ctx.log.info(`removed ${root}/${r.name} (${r.reason})`);
    }
    removed.push(r.name);
  }
  const staleStagingRemoved: string[] = [];
  for (const e of entries) {
    if (e.type === 'dir' && isStagingName(e.name) && !keepStaging.includes(e.name)) {
      if (!ctx.dryRun) await ctx.box.removeTree(`${root}/${e.name}`);
      staleStagingRemoved.push(e.name);
    }
  }
  if (!ctx.dryRun) await rememberBackups(ctx, publishedBackups(entries).filter((n) => !removed.includes(n)));
  return { removed, kept: plan.keep.length, staleStagingRemoved, lastKnownGood };
}

/** Local dumps kept for LOCAL_RETENTION_DAYS (0: none are kept once the remote copy verified). */
export async function pruneLocal(ctx: RunContext): Promise<string[]> {
  const c = ctx.config;
  const removed: string[] = [];
  for (const n of await readdir(c.TEMP_BACKUP_DIR).catch(() => [] as string[])) {
    const date = parseBackupName(n);
    if (!date) continue;
    if (ctx.now().getTime() - date.getTime() >= c.LOCAL_RETENTION_DAYS * 86_400_000) {
      await rm(join(c.TEMP_BACKUP_DIR, n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  return removed;
}
