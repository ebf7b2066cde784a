// When a run dumps with mailcow's script (DUMP_INTERVAL_HOURS): pure, a table of cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dumpTolerance, planDump, type NewestRecord } from '../src/plan/dump-due.js';
import { backupNameFor } from '../src/plan/names.js';

const ARCHIVES = ['crypt', 'redis', 'rspamd', 'postfix', 'mysql'];
const dumpAt = new Date('2026-12-01T03:00:04Z');
const newest = (o: Partial<NewestRecord> = {}): NewestRecord => ({
  name: backupNameFor(new Date('2026-12-01T04:00:00Z')),
  host: 'mx1',
  components: ['vmail', ...ARCHIVES],
  recipients: [],
  dumpedAt: dumpAt.toISOString(),
  dumpedBy: backupNameFor(dumpAt),
  ...o,
});
const plan = (now: string, o: Partial<Parameters<typeof planDump>[0]> = {}) =>
  planDump({ now: new Date(now), intervalHours: 24, host: 'mx1', archiveComponents: ARCHIVES, recipients: [], newest: newest(), ...o });

test('a daily timer that starts 30 s (or 30 min, its random delay) earlier than yesterday still dumps', () => {
  assert.equal(plan('2026-12-02T03:00:00Z').dump, true);
  assert.equal(plan('2026-12-02T02:59:30Z').dump, true);
  assert.equal(plan('2026-12-02T02:30:00Z').dump, true);
});

test('hourly runs between dumps take the dump, and the dump does not creep an hour earlier each day', () => {
  for (let h = 4; h <= 24 + 2; h++) {
    const p = plan(new Date(Date.UTC(2026, 11, 1, h, 0, 0)).toISOString());
    assert.equal(p.dump, false, `${h}:00`);
    if (!p.dump) assert.deepEqual(p.origin, { by: backupNameFor(dumpAt), at: dumpAt.toISOString() });
  }
  assert.equal(plan('2026-12-02T03:00:00Z').dump, true);
  assert.equal(dumpTolerance(24), 45 * 60_000);
  assert.equal(dumpTolerance(1), 30 * 60_000);
});

test('a new dump when the newest backup cannot lend its own', () => {
  const reasons: [string, Partial<Parameters<typeof planDump>[0]>, RegExp][] = [
    ['every run', { intervalHours: 0 }, /DUMP_INTERVAL_HOURS=0/],
    ['first backup', { newest: undefined }, /no backup/],
    ['unreadable record', { unusable: 'x has no backup.json' }, /no backup.json/],
    ['damaged', { newestDamaged: true }, /damaged/],
    ['another host', { host: 'mx2' }, /made on mx1, not on mx2/],
    ['other components', { archiveComponents: ['crypt', 'mysql'] }, /BACKUP_COMPONENTS/],
    ['other recipients', { recipients: ['SHA256:x'] }, /recipients/],
    ['clock went back', { now: new Date('2026-12-01T02:00:00Z') }, /future/],
  ];
  for (const [what, o, re] of reasons) {
    const p = plan('2026-12-01T05:00:00Z', o);
    assert.equal(p.dump, true, what);
    if (p.dump) assert.match(p.reason, re, what);
  }
});

test('a backup made before DUMP_INTERVAL_HOURS made its own dump, at the time in its name', () => {
  const old = backupNameFor(new Date('2026-12-01T03:00:00Z'));
  const p = plan('2026-12-01T05:00:00Z', { newest: newest({ name: old, dumpedAt: undefined, dumpedBy: undefined }) });
  assert.equal(p.dump, false);
  if (!p.dump) assert.equal(p.origin.by, old);
});
