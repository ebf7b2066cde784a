// Retention is pure: a table of date layouts in, a plan out. It must never delete the newest
// backup, never touch names it did not create, and survive clocks that jump.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backupNameFor, isBackupName, isStagingName, parseBackupName, publishedBackups } from '../src/plan/names.js';
import { planRetention, type RetentionPolicy } from '../src/plan/retention.js';

const policy = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ retentionDays: 30, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, ...p });
const NOW = new Date(2026, 10, 23, 12, 0, 0);
const daysAgo = (d: number, h = 3) => backupNameFor(new Date(2026, 10, 23 - d, h, 0, 0));

test('names round-trip and impossible dates are refused', () => {
  assert.equal(backupNameFor(parseBackupName('mailcow-2026-11-23-03-00-00')!), 'mailcow-2026-11-23-03-00-00');
  for (const bad of ['mailcow-2026-02-31-03-00-00', 'mailcow-2026-11-23-25-00-00', 'mailcow-2026-11-23', '.incomplete-mailcow-2026-11-23-03-00-00', 'mailcow-2026-11-23-03-00-00x']) {
    assert.equal(parseBackupName(bad), undefined, bad);
    assert.equal(isBackupName(bad), false, bad);
  }
  assert.ok(isStagingName('.incomplete-mailcow-2026-11-23-03-00-00'));
  assert.ok(!isStagingName('.incomplete-mailcow-2026-02-31-03-00-00'));
  const listing = ['mailcow-2026-11-23-03-00-00', 'mailcow-2026-02-31-03-00-00', 'mailcow-2026-11-22-03-00-00'].map((name) => ({ name, type: 'dir' }));
  assert.deepEqual(publishedBackups([...listing, { name: 'mailcow-2026-11-21-03-00-00', type: 'file' }]), ['mailcow-2026-11-22-03-00-00', 'mailcow-2026-11-23-03-00-00']);
});

test('daily backups: older than REMOTE_RETENTION_DAYS are removed, the rest kept', () => {
  const names = Array.from({ length: 40 }, (_, i) => daysAgo(i));
  const plan = planRetention(names, policy({ retentionDays: 30 }), NOW);
  assert.equal(plan.keep.length, 30);
  assert.deepEqual(plan.remove.map((r) => r.name).sort(), names.slice(30).sort());
});

test('the newest backup is kept even when every backup is too old (clock jumped forward)', () => {
  const names = [daysAgo(100), daysAgo(90)];
  const plan = planRetention(names, policy({ retentionDays: 7 }), NOW);
  assert.deepEqual(plan.keep.map((k) => k.name), [daysAgo(90)]);
  assert.deepEqual(plan.keep[0]!.reasons, ['newest']);
  assert.deepEqual(plan.remove.map((r) => r.name), [daysAgo(100)]);
});

test('backups dated in the future (clock jumped back) are kept, never counted as old', () => {
  const future = backupNameFor(new Date(2026, 10, 24, 3));
  const plan = planRetention([future, daysAgo(1), daysAgo(40)], policy({ retentionDays: 30 }), NOW);
  assert.deepEqual(plan.keep.map((k) => k.name).sort(), [future, daysAgo(1)].sort());
  assert.deepEqual(plan.remove.map((r) => r.name), [daysAgo(40)]);
});

test('REMOTE_RETENTION_DAYS=0 keeps everything', () => {
  const names = Array.from({ length: 10 }, (_, i) => daysAgo(i * 100));
  assert.equal(planRetention(names, policy({ retentionDays: 0 }), NOW).remove.length, 0);
});

test('keep-daily/weekly/monthly hold old backups that the age rule would remove', () => {
  // Four backups a day for 400 days.
  const names: string[] = [];
  for (let d = 0; d < 400; d++) for (const h of [0, 6, 12, 18]) names.push(daysAgo(d, h));
  const plan = planRetention(names, policy({ retentionDays: 1, keepDaily: 7, keepWeekly: 4, keepMonthly: 12 }), NOW);
  // Daily: the newest backup of each of the last 7 days (18:00; today's is after NOW, and still
  // the newest of its day), held by the daily rule itself, not by the age rule.
  const daily = plan.keep.filter((k) => k.reasons.some((r) => r.startsWith('daily')));
  assert.deepEqual(daily.map((k) => k.name), Array.from({ length: 7 }, (_, d) => daysAgo(d, 18)));
  for (const k of daily) assert.ok(k.reasons.includes(`daily ${k.name.slice('mailcow-'.length, 'mailcow-'.length + 10)}`), k.reasons.join());
  // Monthly: one per month for 12 months, each the newest of its month.
  const monthly = plan.keep.filter((k) => k.reasons.some((r) => r.startsWith('monthly')));
  assert.equal(monthly.length, 12);
  const weekly = plan.keep.filter((k) => k.reasons.some((r) => r.startsWith('weekly')));
  assert.equal(weekly.length, 4);
  // Nothing outside the rules survives, and every removal has a reason.
  assert.ok(plan.keep.length <= 1 + 4 + 7 + 4 + 12);
  assert.equal(plan.keep.length + plan.remove.length, names.length);
  assert.ok(plan.remove.every((r) => r.reason.length > 0));
});

test('ISO weeks: a Sunday and the following Monday are different weeks, across a year end', () => {
  const sun = backupNameFor(new Date(2026, 0, 4, 3)); // Sunday, 2026-W01
  const mon = backupNameFor(new Date(2026, 0, 5, 3)); // Monday, 2026-W02
  const dec = backupNameFor(new Date(2025, 11, 29, 3)); // Monday, 2026-W01
  const plan = planRetention([sun, mon, dec], policy({ retentionDays: 1, keepWeekly: 10 }), new Date(2026, 0, 10));
  const reasons = new Map(plan.keep.map((k) => [k.name, k.reasons.join(',')]));
  assert.match(reasons.get(mon)!, /weekly 2026-W02/);
  assert.match(reasons.get(sun)!, /weekly 2026-W01/);
  assert.ok(!reasons.has(dec), 'dec 29 shares 2026-W01 with the newer Sunday');
});

test('names the tool did not create are ignored, never removed', () => {
  const hostile = ['mailcow-latest', 'notes.txt', '.incomplete-mailcow-2020-01-01-00-00-00', 'mailcow-2020-01-01-00-00-00; rm -rf /', '-rf', 'mailcow-2020-13-01-00-00-00', '..'];
  const plan = planRetention([...hostile, daysAgo(500), daysAgo(0)], policy({ retentionDays: 7 }), NOW);
  assert.deepEqual(plan.ignored.sort(), hostile.sort());
  assert.deepEqual(plan.remove.map((r) => r.name), [daysAgo(500)]);
});

test('an empty box plans nothing', () => {
  assert.deepEqual(planRetention([], policy({}), NOW), { keep: [], remove: [], ignored: [] });
});

test('a damaged newest backup never costs the last known good one', () => {
  // Daily backups, the three newest damaged (scrub), the older ones past REMOTE_RETENTION_DAYS.
  const names = [daysAgo(0), daysAgo(1), daysAgo(2), daysAgo(40), daysAgo(41)];
  const damaged = new Set(names.slice(0, 3));
  const plan = planRetention(names, policy({ retentionDays: 30 }), new Date(NOW.getTime() + 35 * 86_400_000), damaged);
  const kept = new Map(plan.keep.map((k) => [k.name, k.reasons]));
  assert.deepEqual(kept.get(daysAgo(40)), [`last known good: newer ${names.slice(0, 3).join(', ')} are damaged`]);
  assert.ok(kept.has(daysAgo(0)), 'the newest is kept as before');
  assert.deepEqual(plan.remove.map((r) => r.name).sort(), [daysAgo(1), daysAgo(2), daysAgo(41)].sort());
  // Nothing damaged, or everything damaged: the plan is the one without scrub knowledge.
  for (const d of [new Set<string>(), new Set(names)]) assert.deepEqual(planRetention(names, policy({ retentionDays: 30 }), NOW, d), planRetention(names, policy({ retentionDays: 30 }), NOW));
  // A damaged backup in the middle changes nothing: the newest is good.
  assert.deepEqual(planRetention(names, policy({ retentionDays: 3 }), NOW, new Set([daysAgo(1)])), planRetention(names, policy({ retentionDays: 3 }), NOW));
});

test('KEEP_HOURLY keeps the newest backup of each of the last N hours that have one', () => {
  // Hourly runs for two days, two runs in one hour (a manual one at :30).
  const names = Array.from({ length: 48 }, (_, i) => backupNameFor(new Date(2026, 10, 23, 11 - i, 0, 0)));
  const extra = backupNameFor(new Date(2026, 10, 23, 10, 30, 0));
  const plan = planRetention([...names, extra], policy({ retentionDays: 1, keepHourly: 30 }), NOW);
  const kept = plan.keep.map((k) => k.name);
  // 24 h by age (1 day), then hours 25..30 by the hourly rule; of 10:00 and 10:30 the newer holds the hour.
  for (const n of names.slice(0, 30)) if (n !== names[1]) assert.ok(kept.includes(n), n);
  assert.ok(kept.includes(extra));
  assert.ok(plan.keep.find((k) => k.name === names[29])!.reasons.some((r) => r.startsWith('hourly ')));
  assert.deepEqual(plan.remove.map((r) => r.name).sort(), names.slice(30).sort());
});

test('the newest backup this host verified is never pruned, also when newer ones were not verified here', () => {
  const names = [daysAgo(40), daysAgo(35), daysAgo(1)];
  const plan = planRetention(names, policy({ retentionDays: 30 }), NOW, new Set(), new Set([daysAgo(35)]));
  assert.deepEqual(plan.keep.map((k) => [k.name, k.reasons]), [[daysAgo(1), ['newest', 'younger than 30 days']], [daysAgo(35), ['last verified']]]);
  assert.deepEqual(plan.remove.map((r) => r.name), [daysAgo(40)]);
  // A verified backup found damaged since is not the last verified one.
  const damaged = planRetention(names, policy({ retentionDays: 30 }), NOW, new Set([daysAgo(35)]), new Set([daysAgo(35)]));
  assert.ok(!damaged.keep.some((k) => k.name === daysAgo(35)));
});
