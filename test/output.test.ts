// What a person at a terminal and a script reading the output get (issue 14, point 7): results on
// stdout, diagnostics on stderr, a reader that goes away never stops a run half-way, every check
// listed, one piece of advice for a changed host key.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Sandbox } from '../src/sandbox/sandbox.js';
import { CHECK_TITLES } from '../src/backup/check.js';
import { BACKUP_CLI, backup, configWithOtherHostKey, publishedOnBox, removeSandbox, sandboxWithBackups, withRunClock } from './support/cli.js';

let sb: Sandbox;
let dir: string;

before(async () => {
  ({ sb, dir } = await sandboxWithBackups('mcb-output-', { mailBytes: 256 * 1024, seed: 41 }, 1));
});

after(() => removeSandbox(sb, dir));

describe('run: results on stdout, diagnostics on stderr', () => {
  test('`run > file` keeps the summary; stderr has the progress, not the summary', async () => {
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    const newest = (await publishedOnBox(sb.box.root, sb.remotePath)).at(-1)!;
    assert.match(r.stdout, new RegExp(`^backup ${newest} published and verified on the Storage Box with sha256sum$`, 'm'));
    assert.match(r.stdout, /^ {2}retention {4}\d+ backups? kept/m);
    assert.doesNotMatch(r.stderr, /published and verified on the Storage Box/);
    assert.match(r.stderr, /starting a backup of/);
  });

  test('a reader that closes after the first line (`run 2>&1 | head -1`): the run still publishes, prunes and writes its status', async () => {
    const before = await publishedOnBox(sb.box.root, sb.remotePath);
    const p = spawn(process.execPath, [BACKUP_CLI, 'run', '--config', sb.configPath], { env: { ...process.env, ...withRunClock(['run'], sb.env) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let first = '';
    const closeBoth = (d: Buffer) => {
      first ||= d.toString().split('\n')[0]!;
      p.stdout.destroy();
      p.stderr.destroy();
    };
    p.stdout.once('data', closeBoth);
    p.stderr.once('data', closeBoth);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => p.on('exit', (c, s) => r([c, s])));
    assert.match(first, /starting a backup/);
    assert.deepEqual([code, signal], [0, null], 'the run ends by itself with exit 0');
    const now = await publishedOnBox(sb.box.root, sb.remotePath);
    const added = now.filter((n) => !before.includes(n));
    assert.equal(added.length, 1, 'one new backup published');
    const status = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as { result: string; backupName: string; durationMs: number; phases: { ms: number }[] };
    assert.deepEqual([status.result, status.backupName], ['ok', added[0]]);
    // The run's duration covers all its phases, the lock included (the e-mail's "Duration").
    assert.ok(status.durationMs >= status.phases.reduce((a, p) => a + p.ms, 0) - 5, JSON.stringify(status));
    // Retention ran after publishing: its line is in the log file, after the new backup's.
    const log = await readFile(join(dir, 'log', 'mailcow-backup.log'), 'utf8');
    const at = log.lastIndexOf(`backup ${added[0]} published and verified`);
    assert.ok(at >= 0 && /retention +\d+ backups? kept/.test(log.slice(at)), log.slice(-3000));
  });
});

describe('verify on a terminal', () => {
  test('each result line is printed once, counting files as the run does', async () => {
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    const env = { ...process.env, ...sb.env };
    const cmd = `${process.execPath} ${BACKUP_CLI} verify --config ${sb.configPath}`;
    // `script` gives the command a pseudo-terminal for stdout and stderr, as an admin's shell has.
    const out = await new Promise<string>((resolve, reject) =>
      execFile('script', ['-qec', cmd, '/dev/null'], { env, maxBuffer: 8 << 20 }, (e, stdout) => (e ? reject(new Error(`${e.message}\n${stdout}`)) : resolve(stdout))),
    );
    for (const n of names) assert.equal(out.split('\n').filter((l) => new RegExp(`OK +${n} \\(`).test(l)).length, 1, out);
    assert.match(out, new RegExp(`${names.length} backup\\(s\\) verified on the box: all OK`));
    // The same file count as the run's summary and e-mail, the manifest's parts named apart.
    const status = JSON.parse(await readFile(join(dir, 'state', 'status.json'), 'utf8')) as { backupName: string; files: number };
    assert.match(out, new RegExp(`OK +${status.backupName} \\(${status.files} backup files \\+ \\d+ manifest part\\(s\\), `), out);
  });
});

describe('check lists every check, SKIP where it could not run and why', () => {
  test('a bad config: the problems on stderr, every check on stdout, exit 2', async () => {
    const bad = join(dir, 'bad.env');
    await writeFile(bad, 'HETZNER_PORT=abc\n', { mode: 0o600 });
    const r = await backup(['check', '--config', bad], {});
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /HETZNER_PORT must be a whole number/);
    assert.match(r.stdout, new RegExp(`^FAIL +config +${bad}: \\d+ configuration problems`, 'm'));
    for (const t of CHECK_TITLES.filter((x) => x !== 'config')) assert.match(r.stdout, new RegExp(`^SKIP +${t} +not checked: the config is invalid$`, 'm'));
  });

  test('a box with another host key: connection FAIL, the box checks SKIP with why; run gives one line and one advice', async () => {
    const { config: cfg } = await configWithOtherHostKey(sb, dir);

    const c = await backup(['check', '--config', cfg], sb.env);
    assert.equal(c.code, 4, c.stdout + c.stderr);
    assert.match(c.stdout, /^FAIL +connection +the Storage Box .* presented a host key that is not pinned/m);
    for (const t of ['box commands', 'hard links', 'sftp rename', 'box space']) {
      assert.match(c.stdout, new RegExp(`^SKIP +${t} +not checked: no connection to the box`, 'm'));
    }

    const r = await backup(['run', '--config', cfg], sb.env);
    assert.equal(r.code, 4, r.stderr);
    const both = r.stdout + r.stderr;
    assert.equal(both.split('presented a host key that is not pinned').length - 1, 1, both);
    assert.match(both, /re-pin it with the installer/);
    assert.doesNotMatch(both, /ssh-keygen .*-R|remove with/, both);
  });
});
