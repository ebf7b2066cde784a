// The tool's wall clock. Tests of what happens hours or days apart (hourly runs, a dump that is
// due, retention, a lagging standby) cannot wait for the hours: MAILCOW_BACKUP_TEST_CLOCK (an ISO
// time) starts this process's clock there and lets it run at real speed from then on, so every
// time-dependent decision of the real code is taken exactly as in production. Never set in
// production; the installer's units do not pass it.
const base = process.env.MAILCOW_BACKUP_TEST_CLOCK ? Date.parse(process.env.MAILCOW_BACKUP_TEST_CLOCK) : Number.NaN;
const startedAt = Date.now();

export function now(): Date {
  return Number.isNaN(base) ? new Date() : new Date(base + (Date.now() - startedAt));
}
