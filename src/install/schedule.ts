// What a schedule more often than daily changes in a new .env (an existing .env is never changed):
// the dump stays daily (DUMP_INTERVAL_HOURS, --dump-interval), `status` calls backups stale
// sooner, successes come as one digest a day, and retention keeps the hourly backups of two days.
// Pure: the calendar spec and the values already given in, the defaults to add out.

/** Hours between runs for the common forms of OnCalendar=; undefined: not recognised (defaults stay). */
export function periodHoursOf(spec: string): number | undefined {
  const s = spec.trim();
  if (s === 'hourly') return 1;
  if (s === 'daily') return 24;
  if (/^(\*-\*-\* )?\d{1,2}:\d{2}(:\d{2})?$/.test(s)) return 24;
  if (/^(\*-\*-\* )?\*:\d{1,2}(:\d{2})?$/.test(s)) return 1;
  const every = /^(\*-\*-\* )?(\d{1,2})?\/(\d{1,2}):\d{2}(:\d{2})?$/.exec(s);
  if (every) return Number(every[3]);
  return undefined;
}

/**
 * The values a frequent schedule brings, for keys not given otherwise. STALE_AFTER_HOURS is two
 * periods (one run may be skipped: exit 75 while a long dump run holds the lock) plus 2 h for
 * that dump run itself; a daily schedule keeps the default 26 (one period + 2 h).
 */
export function scheduleDefaults(spec: string, dumpInterval: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (dumpInterval !== undefined) out.DUMP_INTERVAL_HOURS = dumpInterval;
  const period = periodHoursOf(spec);
  if (period === undefined || period >= 24) return out;
  // The age rule keeps every backup younger than REMOTE_RETENTION_DAYS: 30 days of hourly runs are
  // 720 backups, each paying its folders on the box (docs/performance.md, "Hourly runs"). Two days
  // of age and KEEP_DAILY=30 keep the same 30 days of daily history in 48 + 30 backups.
  return { DUMP_INTERVAL_HOURS: '24', STALE_AFTER_HOURS: String(2 * period + 2), NOTIFY_ON: 'daily', KEEP_HOURLY: '48', REMOTE_RETENTION_DAYS: '2', KEEP_DAILY: '30', ...out };
}

/** A random delay of half an hour would let hourly runs overtake each other: 5 min for them. */
export const FREQUENT_RANDOMIZED_DELAY = '5min';
