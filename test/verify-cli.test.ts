// `backup-to-hetzner verify` and the periodic scrub of the daily run, through the real commands:
// what an admin reads and the exit code they get, and what `status` says afterwards; against a
// box that hashes (sha256sum) and one that refuses it.
import assert from 'node:assert/strict';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest } from '../src/plan/manifest.js';
import { after, before, describe, test } from 'node:test';
import type { Sandbox } from '../src/sandbox/sandbox.js';
import { backup, BOX_HASH_MODES, publishedOnBox, flipByte, removeSandbox, sandboxWithBackups } from './support/cli.js';

let sb: Sandbox;
let dir: string;
let boxBackups: string;
let names: string[] = [];


async function firstMailFile(name: string): Promise<string> {
  const paths: string[] = [];
  await readManifest(join(boxBackups, name), (e) => paths.push(e.path));
  return paths.find((p) => p.startsWith('vmail/') && p.includes('/cur/') && /^[\w/.,:=-]+$/.test(p))!;
}

before(async () => {
  ({ sb, dir, boxBackups, names } = await sandboxWithBackups('mcb-verify-', { mailBytes: 512 * 1024, seed: 33 }, 2));
});

after(() => removeSandbox(sb, dir));

for (const mode of BOX_HASH_MODES) {
describe(`backup-to-hetzner verify, ${mode.name}`, () => {
  before(() => sb.box.setMode({ noSha256sum: mode.noSha256sum }));

  test('all backups OK: one line each, exit 0; --latest checks only the newest', async () => {
    const r = await backup(['verify', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const n of names) assert.match(r.stdout, new RegExp(`^OK +${n} \\(`, 'm'));
    if (mode.noSha256sum) {
      assert.match(r.stdout, /\d+ downloaded and hashed here \(the box has no sha256sum\)/);
      assert.match(r.stdout, /2 backup\(s\) verified by downloading them \(the box has no sha256sum\): all OK/);
    } else assert.match(r.stdout, /2 backup\(s\) verified on the box: all OK/);

    const l = await backup(['verify', '--latest', '--json', '--config', sb.configPath], sb.env);
    assert.equal(l.code, 0, l.stderr);
    const report = JSON.parse(l.stdout) as { ok: boolean; results: { name: string; state: string }[] };
    assert.deepEqual(report.results.map((x) => [x.name, x.state]), [[names[1], 'ok']]);
  });

  test('a flipped byte: the file is named, exit 6, and status turns unhealthy until it is repaired', async () => {
    const [older] = names as [string, string];
    const victim = await firstMailFile(older);
    const undo = () => flipByte(join(boxBackups, older, victim));
    await undo();
    try {
      const r = await backup(['verify', older, '--config', sb.configPath], sb.env);
      assert.equal(r.code, 6, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`^DAMAGED +${older}: 1 file differs`, 'm'));
      assert.ok(r.stdout.includes(`differs  ${victim}`), r.stdout);

      const s = await backup(['status', '--config', sb.configPath], sb.env);
      assert.equal(s.code, 6, s.stdout);
      assert.match(s.stdout, new RegExp(`DAMAGED: ${older}`));
    } finally {
      await undo();
    }
    const again = await backup(['verify', older, '--config', sb.configPath], sb.env);
    assert.equal(again.code, 0, again.stdout);
    const s = await backup(['status', '--config', sb.configPath], sb.env);
    assert.equal(s.code, 0, s.stdout);
    assert.match(s.stdout, /scrub +2 backup\(s\) re-verified on the box/);
  });

  test('bad selections get one line and exit 2, and touch nothing', async () => {
    const bad = await backup(['verify', 'mailcow-2020-02-31-00-00-00', '--config', sb.configPath], sb.env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /is not a backup name/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    const both = await backup(['verify', '--latest', '--all', '--config', sb.configPath], sb.env);
    assert.equal(both.code, 2);
    assert.equal(both.stderr.trim().split('\n').length, 1, both.stderr);
    const absent = await backup(['verify', 'mailcow-2001-01-01-00-00-00', '--config', sb.configPath], sb.env);
    assert.equal(absent.code, 1, absent.stderr);
    assert.match(absent.stderr, /no published backup named mailcow-2001-01-01-00-00-00/);
  });
});

}

// After every verify test: these runs add backups.
for (const mode of BOX_HASH_MODES) {
describe(`periodic scrub in the daily run (SCRUB_BUDGET_MINUTES), ${mode.name}`, () => {
  before(async () => {
    await sb.box.setMode({ noSha256sum: mode.noSha256sum });
    if (!(await readFile(sb.configPath, 'utf8')).includes('SCRUB_BUDGET_MINUTES=')) await appendFile(sb.configPath, 'SCRUB_BUDGET_MINUTES=5\n');
  });

  test(
    mode.noSha256sum
      ? 'the run verifies its backup with rsync --checksum and says so; older backups are reported not scrubbed, never verified'
      : 'a damaged older backup makes the run partial (exit 3) and names it; a clean box gives exit 0',
    async () => {
      const [older] = names as [string, string];
      const victim = join(boxBackups, older, await firstMailFile(older));
      const undo = () => flipByte(victim);
      const published = (await publishedOnBox(sb.box.root, sb.remotePath)).length;
      await undo();
      try {
        const r = await backup(['run', '--config', sb.configPath], sb.env);
        // The new backup was published and verified either way.
        assert.equal((await publishedOnBox(sb.box.root, sb.remotePath)).length, published + 1);
        const st = JSON.parse(await readFile(join(sb.dir, 'state', 'status.json'), 'utf8'));
        if (mode.noSha256sum) {
          assert.equal(r.code, 0, r.stdout + r.stderr);
          assert.match(r.stdout + r.stderr, /published and verified on the Storage Box with rsync --checksum/);
          assert.match(r.stdout + r.stderr, /verified +\d+ transferred files, rsync --checksum \(the box has no sha256sum; its rsync read every byte\)/);
          assert.match(r.stdout + r.stderr, /scrub +\d+ older backup\(s\) not scrubbed: the box has no sha256sum/);
          assert.doesNotMatch(r.stdout + r.stderr, /re-verified/);
          assert.deepEqual(st.scrub.verified, []);
          return;
        }
        assert.equal(r.code, 3, r.stdout + r.stderr);
        assert.match(r.stdout + r.stderr, new RegExp(`${older} on the Storage Box is DAMAGED`));
        assert.match(r.stdout + r.stderr, /published and verified on the Storage Box with sha256sum|verified +\d+ transferred files, the box's sha256sum/);
        assert.equal(st.result, 'partial');
        assert.deepEqual(st.scrub.damaged, [older]);
      } finally {
        await undo();
      }
      const ok = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout + ok.stderr, /scrub +\d+ older backup\(s\) re-verified on the box/);
    },
  );
});
}
