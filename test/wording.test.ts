// The small words of the reports (issue 14, point 7): counts agree with their noun, a failed
// run's summary does not repeat the error line printed just before it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { count } from '../src/plan/human.js';
import { summaryText, type RunSummary } from '../src/plan/report.js';
import { backupNameFor } from '../src/plan/names.js';
import { planRetention } from '../src/plan/retention.js';
import { freeRestoredName } from '../src/restore/plan.js';

const summary = (s: Partial<RunSummary>): RunSummary => ({ ok: true, host: 'mx', backupName: 'mailcow-2026-11-23-03-00-00', startedAt: '2026-11-23T03:00:00Z', phases: [], exitCode: 0, components: ['vmail'], warnings: [], logFile: '/var/log/x.log', ...s });

test('one backup, one day: singular; two: plural', () => {
  assert.equal(count(1, 'backup'), '1 backup');
  assert.equal(count(2, 'backup'), '2 backups');
  assert.ok(summaryText(summary({ backupsKept: 1 })).includes('  retention    1 backup kept'));
  assert.ok(summaryText(summary({ backupsKept: 2, removed: ['mailcow-2026-11-01-03-00-00'] })).includes('  retention    2 backups kept, removed mailcow-2026-11-01-03-00-00'));
  const now = new Date(2026, 10, 23, 12, 0, 0);
  const plan = planRetention([backupNameFor(new Date(2026, 10, 20, 3)), backupNameFor(new Date(2026, 10, 23, 3))], { retentionDays: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, now);
  assert.match(plan.remove[0]!.reason, /^older than 1 day and held by no keep rule$/);
  const seven = planRetention([backupNameFor(new Date(2026, 10, 22, 3)), backupNameFor(new Date(2026, 10, 23, 3))], { retentionDays: 7, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, now);
  assert.ok(seven.keep.some((k) => k.reasons.includes('younger than 7 days')), JSON.stringify(seven.keep));
});

test("a failed run's summary names phase and exit code, not the error again", () => {
  const lines = summaryText(summary({ ok: false, backupName: undefined, failedPhase: 'preflight', error: 'the Storage Box presented a host key that is not pinned', exitCode: 4 }));
  assert.match(lines[0]!, /^backup FAILED in phase preflight \(exit 4\)/);
  assert.ok(!lines.join('\n').includes('host key'), lines.join('\n'));
});

test('a second merge restore of the same day gets its own folder, the first is left as it is', () => {
  const existing = new Set(['Restored-2026-11-23']);
  assert.equal(freeRestoredName('Restored-2026-11-23', (n) => existing.has(n)), 'Restored-2026-11-23-2');
  existing.add('Restored-2026-11-23-2');
  assert.equal(freeRestoredName('Restored-2026-11-23', (n) => existing.has(n)), 'Restored-2026-11-23-3');
  assert.equal(freeRestoredName('Restored-2026-11-24', (n) => existing.has(n)), 'Restored-2026-11-24');
});
