// The scrub (`verify`): the box re-hashes published backups against their checksums.sha256;
// names the box shell refuses are downloaded and hashed here, and so is every file when the box
// refuses sha256sum (every scrub test runs against both boxes). And hostile names on the box: never
// sent to a remote command, never deleted, never offered for restore.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildContext } from '../src/cli/context.js';
import { runScrub, scrubExitCode, scrubText, type ScrubOptions } from '../src/backup/scrub.js';
import { isShellSafe } from '../src/plan/box-command.js';
import { formatChecksumLine, isManifestPart, readManifest } from '../src/plan/manifest.js';
import type { Sandbox } from '../src/sandbox/sandbox.js';
import { backup, BOX_HASH_MODES, publishedOnBox, runCli, ROOT, flipByte, removeSandbox, sandboxWithBackups } from './support/cli.js';

let sb: Sandbox;
let dir: string;
let boxBackups: string;
let names: string[] = [];

async function scrub(opts: ScrubOptions) {
  const ac = new AbortController();
  const ctx = buildContext({ config: sb.configPath }, ac.signal, 'silent');
  await ctx.box.connect();
  try {
    return await runScrub(ctx, opts);
  } finally {
    await ctx.box.close();
    await ctx.log.close();
  }
}


async function checksumPaths(name: string): Promise<string[]> {
  const out: string[] = [];
  await readManifest(join(boxBackups, name), (e) => out.push(e.path));
  return out;
}

before(async () => {
  ({ sb, dir, boxBackups, names } = await sandboxWithBackups('mcb-scrub-', { mailBytes: 1024 * 1024, seed: 21 }, 2));
});

after(() => removeSandbox(sb, dir));

for (const mode of BOX_HASH_MODES) describe(`verify (scrub), ${mode.name}`, () => {
  before(() => sb.box.setMode({ noSha256sum: mode.noSha256sum }));

  test('every published backup is OK; the box hashes, names it cannot take are downloaded (no sha256sum: every file)', async () => {
    const before = (await sb.box.commands()).length;
    const r = await scrub({ all: true });
    assert.equal(r.ok, true, scrubText(r).join('\n'));
    assert.deepEqual(r.results.map((x) => x.name), names);
    for (const x of r.results) {
      assert.equal(x.state, 'ok');
      const unsafe = (await checksumPaths(x.name)).filter((p) => !isShellSafe(p)).length;
      assert.ok(unsafe > 0, 'the fixture has a folder with & in its name');
      if (mode.noSha256sum) {
        assert.equal(x.hashedOnBox, 0);
        assert.equal(x.downloaded, x.files);
      } else {
        assert.ok(x.hashedOnBox > 20);
        assert.equal(x.downloaded, unsafe);
      }
      assert.equal(x.files, x.hashedOnBox + x.downloaded);
    }
    const cmds = (await sb.box.commands()).slice(before);
    const hashing = cmds.filter((c) => c.command.startsWith('sha256sum '));
    if (mode.noSha256sum) assert.deepEqual(hashing.filter((c) => c.exit !== 8), [], 'the box refused every sha256sum');
    else assert.ok(hashing.some((c) => c.exit === 0), 'the box computed the hashes');
    assert.ok(cmds.every((c) => c.command.split(' ')[0] !== 'sha256sum' || isShellSafe(c.command)));
    assert.equal(scrubExitCode(r), 0);
    const text = scrubText(r).join('\n');
    assert.match(text, /^OK +mailcow-/m);
    if (mode.noSha256sum) assert.match(text, /downloaded and hashed here \(the box has no sha256sum\)/);
    else assert.match(text, /2 backup\(s\) verified on the box: all OK/);
    const state = JSON.parse(await readFile(join(sb.dir, 'state', 'scrub.json'), 'utf8'));
    assert.deepEqual(Object.keys(state.backups).sort(), names);
    // The temp folder holds nothing afterwards.
    assert.deepEqual((await readdir(join(dir, 'tmp'))).filter((n) => n.startsWith('scrub-')), []);
  });

  test('a flipped byte is named, for a box-hashed file and for a downloaded one; exit 6', async () => {
    const [older, newer] = names as [string, string];
    const safe = (await checksumPaths(older)).find((p) => p.startsWith('vmail/') && p.includes('/cur/') && isShellSafe(p))!;
    const unsafe = (await checksumPaths(newer)).find((p) => !isShellSafe(p))!;
    await flipByte(join(boxBackups, older, safe));
    await flipByte(join(boxBackups, newer, unsafe));
    try {
      const r = await scrub({ all: true });
      assert.equal(r.ok, false);
      assert.equal(scrubExitCode(r), 6);
      const o = r.results.find((x) => x.name === older)!;
      const n = r.results.find((x) => x.name === newer)!;
      assert.equal(o.state, 'damaged');
      assert.deepEqual(o.problems.map((p) => [p.path, p.kind]), [[safe, 'mismatch']]);
      assert.equal(n.state, 'damaged');
      assert.deepEqual(n.problems.map((p) => [p.path, p.kind]), [[unsafe, 'mismatch']]);
      const text = scrubText(r).join('\n');
      assert.ok(text.includes(`differs  ${safe}`) && text.includes(`differs  ${unsafe}`), text);
      assert.match(text, /DAMAGED +mailcow-/);
    } finally {
      // Put the bytes back for the other tests.
      await flipByte(join(boxBackups, older, safe));
      await flipByte(join(boxBackups, newer, unsafe));
    }
  });

  test('a missing file and a missing checksums.sha256 are reported as damage', async () => {
    const [older, newer] = names as [string, string];
    const victim = (await checksumPaths(newer)).find((p) => p.startsWith('archives/redis/'))!;
    await rename(join(boxBackups, newer, victim), join(dir, 'moved-away'));
    await rename(join(boxBackups, older, 'checksums.sha256'), join(dir, 'moved-sums'));
    try {
      const r = await scrub({ all: true });
      const n = r.results.find((x) => x.name === newer)!;
      assert.deepEqual(n.problems, [{ path: victim, kind: 'missing' }]);
      const o = r.results.find((x) => x.name === older)!;
      assert.equal(o.state, 'damaged');
      assert.match(o.message ?? '', /checksums\.sha256 is missing/);
    } finally {
      await rename(join(dir, 'moved-away'), join(boxBackups, newer, victim));
      await rename(join(dir, 'moved-sums'), join(boxBackups, older, 'checksums.sha256'));
    }
  });

  test('a manifest part altered or missing on the box is damage named by its path', async () => {
    const newer = names[1]!;
    const part = (await checksumPaths(newer)).find(isManifestPart)!;
    const file = join(boxBackups, newer, part);
    const orig = await readFile(file);
    // Its own copy first: an unchanged part is a hard link to the older backup's.
    await writeFile(`${file}.tmp`, Buffer.concat([orig, gzipSync(`${'c'.repeat(64)}  vmail/added-later\n`)]));
    await rename(`${file}.tmp`, file);
    try {
      const x = (await scrub({ names: [newer] })).results[0]!;
      assert.equal(x.state, 'damaged');
      assert.deepEqual(x.problems.map((p) => [p.path, p.kind]), [[part, 'mismatch']]);
      await rm(file);
      const y = (await scrub({ names: [newer] })).results[0]!;
      assert.deepEqual(y.problems.map((p) => [p.path, p.kind]), [[part, 'missing']]);
    } finally {
      await writeFile(file, orig);
    }
  });

  test('an old-layout backup (every file in one checksums.sha256) still verifies, and damage in it is found', async () => {
    const older = names[0]!;
    const folder = join(boxBackups, older);
    const sums = join(folder, 'checksums.sha256');
    const orig = await readFile(sums);
    const lines: string[] = [];
    await readManifest(folder, (e) => isManifestPart(e.path) || lines.push(formatChecksumLine(e.hash, e.path)));
    await rename(join(folder, 'manifest'), join(dir, 'manifest-aside'));
    await writeFile(sums, lines.sort().join('\n') + '\n');
    try {
      const x = (await scrub({ names: [older] })).results[0]!;
      assert.equal(x.state, 'ok', JSON.stringify(x.problems));
      assert.equal(x.files, lines.length);
      const victim = lines.map((l) => l.slice(66)).find((p) => p.includes('/cur/') && isShellSafe(p))!;
      await flipByte(join(folder, victim));
      const y = (await scrub({ names: [older] })).results[0]!;
      assert.deepEqual(y.problems.map((p) => [p.path, p.kind]), [[victim, 'mismatch']]);
      await flipByte(join(folder, victim));
    } finally {
      await writeFile(sums, orig);
      await rename(join(dir, 'manifest-aside'), join(folder, 'manifest'));
    }
  });

  test("the daily run's scrub (no download): checks with sha256sum, and without it says not scrubbed, never OK", async () => {
    const r = await scrub({ all: true, download: false });
    const text = scrubText(r).join('\n');
    if (!mode.noSha256sum) {
      assert.deepEqual(r.results.map((x) => x.state), ['ok', 'ok']);
      return;
    }
    assert.deepEqual(r.results, []);
    assert.deepEqual([...r.skipped].sort(), names);
    assert.match(text, /^2 backup\(s\) not scrubbed: the box has no sha256sum; 'backup-to-hetzner verify' downloads/);
    assert.doesNotMatch(text, /verified|OK/);
  });

  test('a time budget scrubs the oldest-unverified first and takes turns', async () => {
    await rm(join(sb.dir, 'state', 'scrub.json'), { force: true });
    const a = await scrub({ budgetMs: 0 });
    assert.deepEqual(a.results.map((x) => x.name), [names[0]]);
    assert.deepEqual(a.skipped, [names[1]]);
    assert.match(scrubText(a).join('\n'), /time budget used up/);
    const b = await scrub({ budgetMs: 0 });
    assert.deepEqual(b.results.map((x) => x.name), [names[1]], 'the never-scrubbed one comes next');
    const c = await scrub({ budgetMs: 0 });
    assert.deepEqual(c.results.map((x) => x.name), [names[0]], 'then the one scrubbed longest ago');
  });

  test('a backup that retention deletes while verify reads it is reported as removed, not as damaged', async () => {
    const ac = new AbortController();
    const ctx = buildContext({ config: sb.configPath }, ac.signal, 'silent');
    const victim = names[1]!;
    const aside = join(dir, 'pruned-aside');
    const list = ctx.box.list.bind(ctx.box);
    let first = true;
    // The listing is taken, then a run's retention deletes the folder: the race `verify` has no lock against.
    ctx.box.list = async (p: string) => {
      const entries = await list(p);
      if (first) await rename(join(boxBackups, victim), aside);
      first = false;
      return entries;
    };
    await ctx.box.connect();
    try {
      const r = await runScrub(ctx, { all: true });
      assert.deepEqual(r.pruned, [victim]);
      assert.deepEqual(r.results.map((x) => x.name), [names[0]]);
      assert.equal(r.ok, true, scrubText(r).join('\n'));
      assert.equal(scrubExitCode(r), 0);
      assert.match(scrubText(r).join('\n'), new RegExp(`removed from the box by retention while being verified: ${victim}`));
      const state = JSON.parse(await readFile(join(sb.dir, 'state', 'scrub.json'), 'utf8'));
      assert.equal(state[victim], undefined, 'not remembered as damaged');
    } finally {
      await ctx.box.close();
      await ctx.log.close();
      await rename(aside, join(boxBackups, victim));
    }
  });

  test('--latest, NAME, and names that are not backups', async () => {
    const l = await scrub({ latest: true });
    assert.deepEqual(l.results.map((x) => x.name), [names[1]]);
    const n = await scrub({ names: [names[0]!] });
    assert.deepEqual(n.results.map((x) => x.name), [names[0]]);
    await assert.rejects(scrub({ names: ['../../etc'] }), (e: Error & { kind?: string }) => e.kind === 'config' && /is not a backup name/.test(e.message));
    await assert.rejects(scrub({ names: ['mailcow-2001-01-01-00-00-00'] }), (e: Error & { kind?: string }) => e.kind === 'failed' && /no published backup named/.test(e.message));
  });

  test('a hostile checksums.sha256 (paths escaping the folder) is damage, and those paths are never sent', async () => {
    const newer = names[1]!;
    const sums = join(boxBackups, newer, 'checksums.sha256');
    const orig = await readFile(sums, 'utf8');
    const h = 'a'.repeat(64);
    await writeFile(sums, orig + `${h}  ../../HOSTILE-escape\n${h}  /etc/HOSTILE-abs\n`);
    const before = (await sb.box.commands()).length;
    try {
      const r = await scrub({ names: [newer] });
      const x = r.results[0]!;
      assert.equal(x.state, 'damaged');
      assert.deepEqual(x.problems.map((p) => p.kind), ['bad-path', 'bad-path']);
      const cmds = (await sb.box.commands()).slice(before);
      assert.ok(!cmds.some((c) => c.command.includes('HOSTILE')));
    } finally {
      await writeFile(sums, orig);
    }
  });
});

describe('hostile names on the box', () => {
  before(() => sb.box.setMode({ noSha256sum: false }));
  const hostile = [
    'mailcow-HOSTILE 2020-01-01-00-00-00',
    'mailcow-2020-01-01-00-00-00;HOSTILE',
    'mailcow-$(touch HOSTILE)',
    'mailcow-2020-01-01-00-00-00\nHOSTILE',
    '-rf HOSTILE',
    '--delete-HOSTILE',
    '..HOSTILE',
    '.incomplete-mailcow-2020-01-01-00-00-00 HOSTILE',
    'mailcow-2020-01-01-00-00-00`HOSTILE`',
  ];

  test('never passed to a remote command, never deleted by retention, never offered for restore or verify', async () => {
    for (const h of hostile) {
      await mkdir(join(boxBackups, h), { recursive: true });
      await writeFile(join(boxBackups, h, 'checksums.sha256'), `${'b'.repeat(64)}  x\n`);
    }
    const before = (await sb.box.commands()).length;
    const prune = await backup(['prune', '--config', sb.configPath], sb.env);
    assert.equal(prune.code, 0, prune.stderr);
    const list = await backup(['list', '--json', '--config', sb.configPath], sb.env);
    assert.equal(list.code, 0, list.stderr);
    const listed = (JSON.parse(list.stdout) as { name: string }[]).map((b) => b.name);
    const restore = await runCli(join(ROOT, 'dist/src/cli/restore-from-hetzner.js'), ['--list', '--json', '--config', sb.configPath], sb.env);
    assert.equal(restore.code, 0, restore.stderr);
    const offered = (JSON.parse(restore.stdout) as { name: string }[]).map((b) => b.name);
    const r = await scrub({ all: true });
    const run = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(run.code, 0, run.stderr);

    const left = await readdir(boxBackups);
    for (const h of hostile) {
      assert.ok(left.includes(h), `${JSON.stringify(h)} was deleted`);
      assert.ok(!listed.includes(h) && !offered.includes(h), `${JSON.stringify(h)} was offered`);
      assert.ok(!r.results.some((x) => x.name === h));
    }
    assert.ok(offered.length >= 2 && listed.length >= 2);
    const cmds = (await sb.box.commands()).slice(before);
    assert.ok(cmds.length > 5);
    const leaked = cmds.filter((c) => c.command.includes('HOSTILE'));
    assert.deepEqual(leaked, [], 'a hostile name reached a box command');
  });

  // Regression (src/backup/list.ts and others filtered with BACKUP_NAME alone): a name that has the
  // shape of a backup name but no real date (mailcow-2020-02-31-…) passed, then
  // `parseBackupName(name)!` was undefined and `list`, `status` and `restore-from-hetzner --list`
  // crashed with exit 70. Every reader of the box now filters with publishedBackups/isBackupName.
  test('a name shaped like a backup but with an impossible date is ignored everywhere', async () => {
    const bogus = 'mailcow-2020-02-31-00-00-00';
    // Sorts after every real name: 'latest' and the run's link-dest base must never pick it.
    const bogusNewest = 'mailcow-2099-02-30-00-00-00';
    const bogusStaging = `.incomplete-${bogus}`;
    for (const b of [bogus, bogusNewest]) {
      await mkdir(join(boxBackups, b), { recursive: true });
      await writeFile(join(boxBackups, b, 'checksums.sha256'), `${'b'.repeat(64)}  x\n`);
    }
    await mkdir(join(boxBackups, bogusStaging), { recursive: true });
    const before = (await sb.box.commands()).length;
    try {
      const list = await backup(['list', '--json', '--config', sb.configPath], sb.env);
      assert.equal(list.code, 0, list.stderr);
      assert.ok(!list.stdout.includes(bogus));
      const restore = await runCli(join(ROOT, 'dist/src/cli/restore-from-hetzner.js'), ['--list', '--json', '--config', sb.configPath], sb.env);
      assert.equal(restore.code, 0, restore.stderr);
      assert.ok(!restore.stdout.includes(bogus) && !restore.stdout.includes(bogusNewest));
      const latest = await runCli(join(ROOT, 'dist/src/cli/restore-from-hetzner.js'), ['--backup', 'latest', '--components', 'crypt', '--check-only', '--json', '--config', sb.configPath], sb.env);
      assert.equal((JSON.parse(latest.stdout) as { backup: string }).backup, (await publishedOnBox(sb.box.root, sb.remotePath)).filter((n) => n !== bogus && n !== bogusNewest).at(-1), latest.stderr);
      const verifyAll = await backup(['verify', '--all', '--json', '--config', sb.configPath], sb.env);
      assert.equal(verifyAll.code, 0, verifyAll.stderr);
      assert.ok(!verifyAll.stdout.includes(bogus) && !verifyAll.stdout.includes(bogusNewest));
      // Asked for by name: refused as not a backup name (exit 2, one line), not looked up.
      const verifyIt = await backup(['verify', bogus, '--config', sb.configPath], sb.env);
      assert.equal(verifyIt.code, 2, verifyIt.stderr);
      assert.match(verifyIt.stderr, /^error: 'mailcow-2020-02-31-00-00-00' is not a backup name/);
      const prune = await backup(['prune', '--config', sb.configPath], sb.env);
      assert.equal(prune.code, 0, prune.stderr);
      assert.match(prune.stdout, /^ignore "mailcow-2020-02-31-00-00-00"/m);
      const run = await backup(['run', '--config', sb.configPath], sb.env);
      assert.equal(run.code, 0, run.stderr);
      const status = await backup(['status', '--config', sb.configPath], sb.env);
      assert.doesNotMatch(status.stdout + status.stderr, /internal error/);
      for (const b of [bogus, bogusNewest]) assert.ok((await readdir(boxBackups)).includes(b), `${b} was deleted`);
      assert.ok((await readdir(boxBackups)).includes(bogusStaging), 'not taken for a stale staging folder of ours');
      const cmds = (await sb.box.commands()).slice(before);
      assert.ok(cmds.length > 5);
      assert.deepEqual(cmds.filter((c) => /2020-02-31|2099-02-30/.test(c.command)), [], 'the name reached a box command');
    } finally {
      for (const b of [bogus, bogusNewest, bogusStaging]) await rm(join(boxBackups, b), { recursive: true, force: true });
    }
  });
});
