// Retention is a pure function: the list of published backups, the policy and the time in,
// a plan with a reason for every backup out. Nothing is deleted here; the prune step applies
// the plan (or prints it under --dry-run).
import { count } from './human.js';
import { parseBackupName } from './names.js';

export interface RetentionPolicy {
  /** Backups older than this many days are removed unless a keep rule holds them; 0 keeps all. */
  retentionDays: number;
  /** Newest backup of each of the last N hours (hourly runs); 0 when absent. */
  keepHourly?: number;
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
}

export interface RetentionPlan {
  keep: { name: string; reasons: string[] }[];
  remove: { name: string; reason: string }[];
  /** Names on the box that are not ours: never touched, listed so the admin knows. */
  ignored: string[];
}

const DAY = 86_400_000;
const pad = (n: number) => String(n).padStart(2, '0');

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
  const dayNum = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dayNum); // the Thursday of this week decides the year
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / DAY + 1) / 7);
  return `${t.getUTCFullYear()}-W${pad(week)}`;
}

const BUCKETS: { rule: 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly'; label: string; key: (d: Date) => string }[] = [
  { rule: 'keepHourly', label: 'hourly', key: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}h` },
  { rule: 'keepDaily', label: 'daily', key: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` },
  { rule: 'keepWeekly', label: 'weekly', key: isoWeek },
  { rule: 'keepMonthly', label: 'monthly', key: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}` },
];

/**
 * `names`: what the box lists (published backups only: staging folders are handled apart).
 * The newest backup is always kept, whatever its age: a clock that jumped forward must not
 * empty the box. Keep rules count, like borg's, the newest backup of each of the last N
 * periods that have a backup.
 * `damaged`: backups known to differ from their checksums (the scrub). The newest backup not
 * among them is kept too, as the last known good one: otherwise a damaged newest backup would
 * let the age rule delete every good one (the newest is kept, but it cannot be restored).
 */
export function planRetention(names: string[], policy: RetentionPolicy, now: Date, damaged: ReadonlySet<string> = new Set(), verified: ReadonlySet<string> = new Set()): RetentionPlan {
  const ignored: string[] = [];
  const dated: { name: string; date: Date }[] = [];
  for (const name of names) {
    const date = parseBackupName(name);
    if (date) dated.push({ name, date });
    else ignored.push(name);
  }
  dated.sort((a, b) => b.date.getTime() - a.date.getTime() || (a.name < b.name ? 1 : -1));

  const reasons = new Map<string, string[]>(dated.map((b) => [b.name, []]));
  const add = (name: string, why: string) => reasons.get(name)!.push(why);

  if (dated.length > 0) add(dated[0]!.name, 'newest');
  const lastGood = dated.findIndex((b) => !damaged.has(b.name));
  if (lastGood > 0) {
    const newer = dated.slice(0, lastGood).map((b) => b.name);
    add(dated[lastGood]!.name, `last known good: newer ${newer.join(', ')} ${newer.length === 1 ? 'is' : 'are'} damaged`);
  }
  for (const b of dated) {
    const ageDays = (now.getTime() - b.date.getTime()) / DAY;
    if (policy.retentionDays === 0) add(b.name, 'REMOTE_RETENTION_DAYS=0 keeps all');
    else if (ageDays < policy.retentionDays) add(b.name, `younger than ${count(policy.retentionDays, 'day')}`);
  }
  for (const bucket of BUCKETS) {
    const limit = policy[bucket.rule] ?? 0;
    const seen = new Set<string>();
    for (const b of dated) {
      if (seen.size >= limit) break;
      const key = bucket.key(b.date);
      if (seen.has(key)) continue;
      seen.add(key);
      add(b.name, `${bucket.label} ${key}`);
    }
  }

  // The newest backup this host saw verified (by its run or a scrub) and not damaged since: the
  // newest may be one another host or a hand made; a verified one must stay (a safety net: said
  // only when no other rule keeps it).
  const lastVerified = dated.find((b) => verified.has(b.name) && !damaged.has(b.name));
  if (lastVerified && reasons.get(lastVerified.name)!.length === 0) add(lastVerified.name, 'last verified');

  const plan: RetentionPlan = { keep: [], remove: [], ignored };
  for (const b of dated) {
    const why = reasons.get(b.name)!;
    if (why.length > 0) plan.keep.push({ name: b.name, reasons: why });
    else plan.remove.push({ name: b.name, reason: `older than ${count(policy.retentionDays, 'day')} and held by no keep rule` });
  }
  return plan;
}
