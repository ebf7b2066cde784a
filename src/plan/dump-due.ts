// Whether this run dumps with mailcow's script or takes the newest backup's dump by hard link
// (DUMP_INTERVAL_HOURS). Pure: the newest backup's record and this run's settings in, a decision
// with its reason out. The database is worth dumping once a day; the mail, every hour.
import { parseBackupName } from './names.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

/** The dump a backup holds: the backup whose run made it, and when that dump began. */
export interface DumpOrigin {
  by: string;
  at: string;
}

/** What the newest published backup's backup.json says, as far as this decision needs it. */
export interface NewestRecord {
  name: string;
  host?: string;
  components?: string[];
  /** age recipients' fingerprints of its encrypted files ([] when it is not encrypted). */
  recipients?: string[];
  dumpedAt?: string;
  dumpedBy?: string;
}

export type DumpPlan = { dump: true; reason: string } | { dump: false; from: string; origin: DumpOrigin; ageMs: number };

/**
 * How much earlier than the interval a dump is already due. A daily timer with a random delay
 * starts up to 30 min earlier than the day before, so a strict "24 h passed" would skip a day;
 * but with hourly runs any tolerance of an hour or more moves the dump one run earlier every
 * day (a tenth of 24 h drifts it by two hours a day). 45 min lies between the two; for a 1-hour
 * interval, half of it.
 */
export function dumpTolerance(intervalHours: number): number {
  return Math.min(45 * MINUTE, (intervalHours * HOUR) / 2);
}

/** The dump a backup holds: recorded since DUMP_INTERVAL_HOURS; older backups made their own, at their name's time. */
export function dumpOriginOf(r: NewestRecord): DumpOrigin | undefined {
  if (r.dumpedAt && r.dumpedBy && !Number.isNaN(Date.parse(r.dumpedAt))) return { by: r.dumpedBy, at: r.dumpedAt };
  const d = parseBackupName(r.name);
  return d ? { by: r.name, at: d.toISOString() } : undefined;
}

const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

export function planDump(o: {
  now: Date;
  intervalHours: number;
  host: string;
  /** This run's components with an archive (vmail goes as a tree, never in the dump). */
  archiveComponents: readonly string[];
  recipients: readonly string[];
  newest?: NewestRecord;
  /** Why the newest backup's record or manifest cannot be used, when it cannot. */
  unusable?: string;
  newestDamaged?: boolean;
}): DumpPlan {
  const n = o.newest;
  if (o.archiveComponents.length === 0) return { dump: true, reason: 'no archive components: mailcow.conf is copied, nothing is dumped' };
  if (o.intervalHours === 0) return { dump: true, reason: 'DUMP_INTERVAL_HOURS=0: every run dumps' };
  if (!n) return { dump: true, reason: 'no backup on the box yet' };
  if (o.unusable) return { dump: true, reason: o.unusable };
  if (o.newestDamaged) return { dump: true, reason: `${n.name} is known damaged` };
  if (n.host !== o.host) return { dump: true, reason: `${n.name} was made on ${n.host ?? 'an unknown host'}, not on ${o.host}` };
  const theirs = (n.components ?? []).filter((c) => c !== 'vmail');
  if (!sameSet(theirs, o.archiveComponents)) return { dump: true, reason: `${n.name} holds ${theirs.join(' ') || 'no archives'}, BACKUP_COMPONENTS asks for ${o.archiveComponents.join(' ')}` };
  if (!sameSet(n.recipients ?? [], o.recipients)) return { dump: true, reason: `${n.name} is encrypted for other age recipients than ENCRYPT_RECIPIENTS` };
  const origin = dumpOriginOf(n);
  if (!origin) return { dump: true, reason: `${n.name} does not say when its dump was taken` };
  const ageMs = o.now.getTime() - Date.parse(origin.at);
  // A clock that went back: the dump's age is unknown, so take a new one.
  if (ageMs < 0) return { dump: true, reason: `the dump of ${origin.by} is dated in the future (${origin.at})` };
  if (ageMs >= o.intervalHours * HOUR - dumpTolerance(o.intervalHours)) return { dump: true, reason: `the newest dump (${origin.by}) is ${hours(ageMs)} old; DUMP_INTERVAL_HOURS=${o.intervalHours}` };
  return { dump: false, from: n.name, origin, ageMs };
}

const hours = (ms: number) => (ms >= HOUR ? `${(ms / HOUR).toFixed(1)} h` : `${Math.round(ms / MINUTE)} min`);
