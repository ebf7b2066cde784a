// The benchmark's mailcow data (src/sandbox/archive-data.ts): a real database whose daily tables
// move and whose static ones do not, and a real redis dump whose Bayes tokens are learned on a
// mail day only. What the archive candidates are measured on must change the way a real one does.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveDataDay, fillArchiveData, type RedisStandin } from '../src/sandbox/archive-data.js';
import { createStandinMailcow, type StandinMailcow } from '../src/sandbox/mailcow-standin.js';
import { sqlOnDatadir } from '../src/sandbox/mariadb-standin.js';

const SCALE = 0.02;

describe('bench data: mailcow database and redis that change day by day', () => {
  let dir: string;
  let mc: StandinMailcow;
  let redis: RedisStandin;
  const counts = async () =>
    (await sqlOnDatadir(mc.volume('mysql'), 'mailcow', 'SELECT COUNT(*), MAX(id) FROM logs; SELECT COUNT(*) FROM sogo_store; CHECKSUM TABLE sogo_store; SELECT SUM(bytes) FROM quota2;'))
      .trim()
      .split('\n');
  const rdb = () => readFileSync(join(mc.volume('redis'), 'dump.rdb'));
  const tokens = () => Number(spawnSync('redis-check-rdb', [join(mc.volume('redis'), 'dump.rdb')], { encoding: 'utf8' }).stdout.match(/keys read: (\d+)|(\d+) keys read/)?.slice(1).find(Boolean) ?? NaN);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'archive-data-'));
    mc = await createStandinMailcow(dir, { realDatabase: true, maildir: { seed: 3, totalBytes: 256 * 1024 } });
    redis = await fillArchiveData(mc, SCALE);
  });
  after(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a mail day moves the daily tables and the Bayes tokens; a quiet day moves logs but learns nothing', async () => {
    const [logs0, store0, sum0, quota0] = await counts();
    const dump0 = rdb();
    assert.equal(dump0.subarray(0, 5).toString(), 'REDIS', 'dump.rdb is a real redis dump');
    const keys0 = tokens();
    assert.ok(keys0 >= 300_000 * SCALE, `the Bayes tokens are in the dump (${keys0} keys)`);

    const mail = await archiveDataDay(mc, redis, 'mail', SCALE, 7);
    const [logs1, store1, sum1, quota1] = await counts();
    assert.ok(mail.tokensLearned > 0);
    assert.equal(logs1!.split('\t')[0], logs0!.split('\t')[0], 'as many log rows expire as are written');
    assert.ok(Number(logs1!.split('\t')[1]) > Number(logs0!.split('\t')[1]), 'new log rows were written');
    assert.deepEqual([store1, sum1], [store0, sum0], 'SOGo contacts do not change on a mail day');
    assert.notEqual(quota1, quota0, 'quota2 follows the mail');
    const keys1 = tokens();
    assert.ok(keys1 > keys0, `new Bayes tokens were learned (${keys0} -> ${keys1})`);
    const dump1 = rdb();

    await archiveDataDay(mc, redis, 'quiet', SCALE, 8);
    const [logs2, store2, sum2, quota2] = await counts();
    assert.ok(Number(logs2!.split('\t')[1]) > Number(logs1!.split('\t')[1]), 'logs still move on a quiet day');
    assert.deepEqual([store2, sum2, quota2], [store1, sum1, quota1], 'no mail: contacts and quotas stay');
    assert.equal(tokens(), keys1, 'no mail: no Bayes learning');
    const h = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.notEqual(h(rdb()), h(dump1), 'the dump is saved again (history, save time)');
  });
});
