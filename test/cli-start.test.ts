// What the built backup-to-hetzner (one bundled file since issue 4) must still do from its first
// milliseconds, without a Storage Box: find its own version, refuse a bad config with exit 2 and one
// line per key, refuse a held lock with exit 75, and log the same lines to journald and the log file.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { backup, ROOT } from './support/cli.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-start-'));
});
after(() => rm(dir, { recursive: true, force: true }));

// Console mode follows the environment: plain lines unless systemd's variables say journald.
const PLAIN = { JOURNAL_STREAM: '', INVOCATION_ID: '' };
const noStack = (s: string) => assert.doesNotMatch(s, /^\s+at .+:\d+:\d+\)?$/m, 'a stack trace reached the admin');

describe('backup-to-hetzner as built', () => {
  test('--version names the version in package.json, --help the commands', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const v = await backup(['--version'], PLAIN);
    assert.equal(v.code, 0);
    assert.equal(v.stdout, `backup-to-hetzner ${pkg.version}\n`);
    const h = await backup(['--help'], PLAIN);
    assert.equal(h.code, 0);
    for (const c of ['run', 'list', 'check', 'prune', 'status', 'test-email']) assert.match(h.stdout, new RegExp(`^  ${c} `, 'm'));
  });

  test('a bad config exits 2 with one line per bad key and no stack trace', async () => {
    const cfg = join(dir, 'bad.env');
    await writeFile(cfg, 'HETZNER_HOST=not a host\nHETZNER_USER=u123456\nHETZNER_PORT=70000\nLOCK_TIMEOUT_HOURS=soon\n', { mode: 0o600 });
    const r = await backup(['run', '--config', cfg], PLAIN);
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines[0], `error: ${cfg}: 3 configuration problems`);
    for (const key of ['HETZNER_HOST', 'HETZNER_PORT', 'LOCK_TIMEOUT_HOURS']) assert.equal(lines.filter((l) => l.includes(`: ${key} `)).length, 1, `${key}: ${r.stderr}`);
    assert.equal(lines.length, 4);
    noStack(r.stderr);
  });

  describe('a run while another holds the lock', () => {
    let cfg: string;
    let state: string;
    let logFile: string;
    before(async () => {
      state = join(dir, 'state');
      logFile = join(dir, 'log', 'backup.log');
      cfg = join(dir, 'locked.env');
      await writeFile(cfg, `HETZNER_HOST=127.0.0.1\nHETZNER_USER=u123456\nSTATE_DIR=${state}\nSTATUS_FILE=${state}/status.json\nLOG_FILE=${logFile}\nMAILCOW_PATH=${dir}/mailcow\n`, { mode: 0o600 });
      // A live holder: this test process, with a fresh lock folder.
      await mkdir(join(state, 'backup.lock'), { recursive: true });
      await writeFile(join(state, 'backup.lock.owner.json'), JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), host: '' }));
    });

    test('exits 75 naming the holder, says so once in the log file with a timestamp (a warning: busy is no failure), and leaves its lock alone', async () => {
      const r = await backup(['run', '--config', cfg], PLAIN);
      assert.equal(r.code, 75, r.stderr);
      assert.match(r.stderr, new RegExp(`^warn: another backup run holds the lock ${state}/backup\\.lock \\(process ${process.pid}, `, 'm'));
      noStack(r.stderr);
      const log = await readFile(logFile, 'utf8');
      assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO backup-to-hetzner \S+: starting a backup of /m);
      assert.equal(log.match(/^\S+ WARN another backup run holds the lock /gm)?.length, 1, log);
      const owner = JSON.parse(await readFile(join(state, 'backup.lock.owner.json'), 'utf8')) as { pid: number };
      assert.equal(owner.pid, process.pid);
    });

    test('under systemd the same refusal carries journald priority warning (not err: journalctl -p err lists failures)', async () => {
      const r = await backup(['run', '--config', cfg], { JOURNAL_STREAM: '8:12345', INVOCATION_ID: '' });
      assert.equal(r.code, 75);
      assert.match(r.stderr, /^<6>backup-to-hetzner \S+: starting a backup of /m);
      assert.match(r.stderr, /^<4>another backup run holds the lock /m);
    });
  });
});
