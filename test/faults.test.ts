// Fault injection against the real CLI on the loopback box: kill the tool at every phase (SIGKILL
// to its process group, as systemd kills a cgroup; SIGTERM to its pid only), the SSH server dying
// or stalling mid-upload, a full temp filesystem, two runs at once, a byte flipped on the box,
// clock jumps. After each: nothing unverified published, every earlier backup intact (hashes),
// the lock recovered, the next run succeeds. Prints a scenario/trials/outcome table at the end.
// FAULT_TRIALS=N repeats each scenario N times (default 1).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildContext } from '../src/cli/context.js';
import { runScrub } from '../src/backup/scrub.js';
import { readManifest } from '../src/plan/manifest.js';
import { planRetention } from '../src/plan/retention.js';
import { backupNameFor, parseBackupName } from '../src/plan/names.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { startStorageBox } from '../src/sandbox/storage-box.js';
import { backup, backupsAtLeast, publishedOnBox, sleep, flipByte, spawnBackup, treeHashes, type Spawned } from './support/cli.js';

const TRIALS = Math.max(1, Number(process.env.FAULT_TRIALS ?? 1) || 1);
let sb: Sandbox;
let dir: string;
let boxBackups: string;
const table: { scenario: string; trials: number; outcome: string }[] = [];

/** What the admin reads: the phase from the run's "FAILED in phase …" summary, the reason from its error line. */
function failLine(output: string): string {
  const phase = /FAILED in phase (\S+)/.exec(output)?.[1];
  const lines = output.split('\n');
  const reason = (lines.find((l) => /^error: /.test(l)) ?? lines.find((l) => /error/i.test(l)) ?? '').replace(/^error: /, '');
  return phase ? `FAILED in phase ${phase}: ${reason}` : reason;
}

function record(scenario: string, trials: number, outcome: string) {
  table.push({ scenario, trials, outcome });
}

// ---------------------------------------------------------------------------------------------
// helpers

function spawnRun(env: Record<string, string> = {}, config = sb.configPath, args: string[] = []): Spawned {
  return spawnBackup(['run', '--debug', '--config', config, ...args], { ...sb.env, ...env });
}

/** sha256sum -c in every published folder (the README's command), on the box's disk: the names of broken ones. */
function brokenBackups(): string[] {
  const bad: string[] = [];
  for (const n of readdirSync(boxBackups).filter((n) => /^mailcow-\d{4}(-\d{2}){5}$/.test(n))) {
    try {
      execFileSync('sh', ['-c', 'zcat -f checksums.sha256 $(ls -d manifest/*.gz 2>/dev/null) | sha256sum --quiet --strict -c'], { cwd: join(boxBackups, n), stdio: 'pipe' });
    } catch {
      bad.push(n);
    }
  }
  return bad;
}

async function manifestPaths(folder: string): Promise<string[]> {
  const out: string[] = [];
  await readManifest(folder, (e) => out.push(e.path));
  return out;
}

const runDirs = () => (existsSync(join(dir, 'tmp')) ? readdirSync(join(dir, 'tmp')).filter((n) => n.startsWith('run-')) : []);
const stagings = () => readdirSync(boxBackups).filter((n) => n.startsWith('.incomplete-'));
const lockHeld = () => existsSync(join(dir, 'state', 'backup.lock'));
const status = () => JSON.parse(readFileSync(join(dir, 'state', 'status.json'), 'utf8')) as Record<string, unknown>;

/** Processes (other than the box's sshd and its sessions) whose command line mentions the sandbox. */
function strayProcesses(exclude: Set<number>): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid || exclude.has(pid)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (cmd.includes(dir) && !cmd.includes('sshd_config') && !cmd.includes('box-state.json') && !cmd.includes('rsync --server')) out.push({ pid, cmd });
  }
  return out;
}

/**
 * The stray processes once the killed run's children had their chance to end: returns as soon as
 * there are none, else what is still there after `withinMs` (the bound a test allows them).
 */
async function strayAfter(withinMs: number): Promise<{ pid: number; cmd: string }[]> {
  const t0 = Date.now();
  for (;;) {
    const stray = strayProcesses(new Set());
    if (!stray.length || Date.now() - t0 >= withinMs) return stray;
    await sleep(20);
  }
}

function ppidOf(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The box's sshd listener and every process below it (its sessions, box-shell, rsync). */
function boxProcesses(): { listener: number; sessions: number[] } {
  const listener = Number(readFileSync(join(dir, 'box', 'sshd.pid'), 'utf8').trim());
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  const below = new Set<number>([listener]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) if (!below.has(p) && below.has(ppidOf(p) ?? -1)) (below.add(p), (grew = true));
  }
  below.delete(listener);
  return { listener, sessions: [...below] };
}

const sshdSessions = (pids: number[]) =>
  pids.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sshd' || readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('sshd');
    } catch {
      return false;
    }
  });

/** Restarts the box on the same folder (new port and keys: the config is rewritten to match). */
async function restartBox(): Promise<void> {
  await sb.box.stop().catch(() => undefined);
  const box = await startStorageBox({ dir: join(dir, 'box'), strict: true });
  sb.box = box;
  const cfg = await readFile(sb.configPath, 'utf8');
  await writeFile(sb.configPath, cfg.replace(/^HETZNER_PORT=.*$/m, `HETZNER_PORT=${box.port}`), { mode: 0o600 });
}

async function nextRunSucceeds(env: Record<string, string> = {}, args: string[] = []): Promise<{ stderr: string; bytesSent: number }> {
  const r = await backup(['run', '--config', sb.configPath, ...args], { ...sb.env, ...env }, 120_000);
  assert.equal(r.code, 0, `next run: ${r.stderr.slice(-3000)}`);
  assert.deepEqual(stagings(), [], 'the next run removed dead staging folders');
  assert.deepEqual(runDirs(), [], 'temp cleaned');
  assert.equal(lockHeld(), false);
  return { stderr: r.stderr, bytesSent: status().bytesSent as number };
}


before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-faults-'));
  sb = await createSandbox({ dir, mailBytes: 1024 * 1024, seed: 31, strict: true });
  boxBackups = join(sb.box.root, sb.remotePath);
  const r = await backup(['run', '--config', sb.configPath], sb.env);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await sb?.box.stop().catch(() => undefined);
  await rm(dir, { recursive: true, force: true, maxRetries: 5 });
  const w = Math.max(...table.map((t) => t.scenario.length), 8);
  console.log(`\n${'scenario'.padEnd(w)}  trials  outcome`);
  for (const t of table) console.log(`${t.scenario.padEnd(w)}  ${String(t.trials).padEnd(6)}  ${t.outcome}`);
});

// ---------------------------------------------------------------------------------------------

const PHASES = ['lock', 'preflight', 'dump', 'manifest', 'compare', 'upload', 'verify', 'publish', 'prune'] as const;

describe('killed at each phase', () => {
  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    for (const ph of PHASES) {
      test(`${signal} at ${ph}`, async () => {
        const outcomes: string[] = [];
        for (let t = 0; t < TRIALS; t++) {
          const before = await publishedOnBox(sb.box.root, sb.remotePath);
          // The dump is widened so that a kill "at dump" lands inside mailcow's script.
          const run = spawnRun(ph === 'dump' ? { STANDIN_SLOW_SECONDS: '1' } : {});
          await run.waitFor(new RegExp(`phase ${ph}: start`));
          if (signal === 'SIGKILL') process.kill(-run.p.pid!, 'SIGKILL');
          else process.kill(run.p.pid!, 'SIGTERM');
          const ex = await Promise.race([run.exit, sleep(60_000).then(() => undefined)]);
          assert.ok(ex, `${signal} at ${ph}: the tool did not exit within 60 s`);
          const after = await publishedOnBox(sb.box.root, sb.remotePath);
          const added = after.filter((n) => !before.includes(n));
          assert.ok(before.every((n) => after.includes(n)), 'no earlier backup vanished');
          assert.ok(added.length <= 1 && (added.length === 0 || ph === 'publish' || ph === 'prune' || ph === 'verify'), `published by a killed run at ${ph}: ${added}`);
          assert.deepEqual(brokenBackups(), [], 'every published backup passes sha256sum -c');
          let note = added.length ? 'published (rename done before the kill), intact' : 'nothing published';
          if (signal === 'SIGTERM') {
            // SIGTERM after the summary was written exits 0; otherwise 143 with the cleanup done.
            assert.ok(ex.code === 143 || ex.code === 0, `exit ${ex.code}: ${run.stderr().slice(-2000)}`);
            assert.equal(lockHeld(), false, 'lock released on SIGTERM');
            assert.deepEqual(runDirs(), [], 'temp removed on SIGTERM');
            const stray = await strayAfter(500);
            assert.deepEqual(stray, [], 'no child left running after SIGTERM');
            note += `, exit ${ex.code}, lock released, temp removed, no stray child`;
          } else {
            const stray = await strayAfter(300);
            for (const s of stray) process.kill(s.pid, 'SIGKILL');
            // Every child runs in the run's process group: killing the group leaves nothing behind.
            assert.deepEqual(stray.map((s) => s.cmd), [], 'a process outside the killed group survived SIGKILL');
          }
          const next = await nextRunSucceeds();
          if (signal === 'SIGKILL' && lockHeld() === false) note += /taking over/.test(next.stderr) ? ', lock taken over' : ', no lock left';
          outcomes.push(`${note}; next run OK`);
        }
        record(`${signal} at ${ph}`, TRIALS, [...new Set(outcomes)].join(' | '));
      });
    }
  }
});

describe('the link to the box fails mid-upload', () => {
  // A slow upload of fresh, incompressible mail: 12 MiB at 1 MiB/s.
  let slowConfig: string;
  const BIG = ['example.com', 'big', 'Maildir', 'cur'];
  const addBigMail = async (tag: string) => {
    const folder = join(sb.mailcow.volume('vmail'), ...BIG);
    await mkdir(folder, { recursive: true });
    for (let i = 0; i < 6; i++) await writeFile(join(folder, `${Date.now()}.${tag}${i}.host:2,S`), randomBytes(2 * 1024 * 1024));
    return 6 * 2 * 1024 * 1024;
  };
  /**
   * The big mail tagged `tag` in a staging folder on the box: files under their own name (whole, or
   * kept by --partial), and rsync's temp file (`.NAME.XXXXXX`) of the one being received.
   */
  const bigOnBox = (staging: string, tag: string) => {
    const folder = join(boxBackups, staging, 'vmail', ...BIG);
    const named = new Map<string, number>();
    let temp: { of: string; size: number } | undefined;
    for (const n of existsSync(folder) ? readdirSync(folder) : []) {
      if (!n.includes(`.${tag}`)) continue;
      // rsync renames its temp file when the file is whole: a name listed a moment ago may be gone.
      const size = statSync(join(folder, n), { throwIfNoEntry: false })?.size;
      if (size === undefined) continue;
      if (n.startsWith('.')) temp = { of: n.slice(1, n.lastIndexOf('.')), size };
      else named.set(n, size);
    }
    return { named, temp, tempSize: temp?.size ?? 0 };
  };
  /** Polls the box's disk until `probe` answers (the upload's progress is the event), failing if the run ends first. */
  const until = async <T>(what: string, run: Spawned | undefined, probe: () => T | undefined): Promise<T> => {
    let ended = false;
    void run?.exit.then(() => (ended = true));
    const t0 = Date.now();
    try {
      for (;;) {
        const v = probe();
        if (v !== undefined) return v;
        if (ended) throw new Error(`the run ended before ${what}:\n${run!.stderr().slice(-3000)}`);
        if (Date.now() - t0 > 60_000) throw new Error(`no ${what} within 60 s`);
        await sleep(20);
      }
    } catch (e) {
      // A run left behind would hold the lock and fail every later test in this file.
      if (run && !ended) {
        try {
          process.kill(-run.p.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
        await run.exit;
      }
      throw e;
    }
  };
  /** The server dies: the listener and every sshd session, at once (its children see EOF). */
  const cutConnection = () => {
    const { listener, sessions } = boxProcesses();
    for (const p of [listener, ...sshdSessions(sessions)]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  };
  /** What the box's rsync had received when its connection died, once it has kept the cut file (--partial). */
  const arrivedIn = async (stagingsOfRun: string[], tag: string) => {
    for (const st of stagingsOfRun) await until(`the cut file kept under its name in ${st}`, undefined, () => (bigOnBox(st, tag).temp ? undefined : true));
    const best = new Map<string, number>();
    for (const st of stagingsOfRun) for (const [n, size] of bigOnBox(st, tag).named) best.set(n, Math.max(best.get(n) ?? 0, size));
    return [...best.values()].reduce((a, b) => a + b, 0);
  };
  /** Bytes rsync sent for the mail tree (the dump is new every run and delta'd against yesterday's). */
  const vmailSent = (stderr: string) => {
    const m = /uploading vmail to the Storage Box: (\d+) B sent/.exec(stderr);
    assert.ok(m, `no upload statistics for vmail in:\n${stderr.slice(-3000)}`);
    return Number(m[1]);
  };
  /** rsync's file list and the block checksums' replies for a few hundred files. */
  const MARGIN = 64 * 1024;
  /** The run after the broken ones: it sends no more than what had not arrived, and publishes the mail exactly. */
  const resumeSendsOnlyTheRest = async (missing: number, size: number): Promise<number> => {
    const next = await nextRunSucceeds({}, ['--debug']);
    const sent = vmailSent(next.stderr);
    assert.ok(sent <= missing + MARGIN, `the resumed run sent ${sent} B of mail; ${missing} B of ${size} had not arrived`);
    assert.deepEqual(brokenBackups(), []);
    const newest = (await publishedOnBox(sb.box.root, sb.remotePath)).pop()!;
    const box = await treeHashes(join(boxBackups, newest, 'vmail'));
    const src = await treeHashes(sb.mailcow.volume('vmail'));
    assert.deepEqual([...box].sort(), [...src].sort(), `the published ${newest} holds the mail tree exactly (no partial or temp file)`);
    return sent;
  };
  before(async () => {
    slowConfig = join(dir, 'slow.env');
  });
  const writeSlow = async () => {
    const cfg = (await readFile(sb.configPath, 'utf8')) + 'BWLIMIT_KBPS=1024\nRSYNC_TIMEOUT=10\nSSH_CONNECT_TIMEOUT=5\n';
    await writeFile(slowConfig, cfg, { mode: 0o600 });
  };

  test('the SSH server dies mid-upload: clear failure within the timeouts; the next run resumes', async () => {
    const outcomes: string[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const tag = `dies${t}`;
      const size = await addBigMail(tag);
      await writeSlow();
      const before = await publishedOnBox(sb.box.root, sb.remotePath);
      const run = spawnRun({}, slowConfig);
      // Cut once one new message has arrived whole and the next one is on its way.
      const staging = await until('the new mail arriving on the box', run, () => {
        const st = stagings()[0];
        const b = st ? bigOnBox(st, tag) : undefined;
        return b && b.named.size >= 1 && b.tempSize >= 256 * 1024 ? st : undefined;
      });
      cutConnection();
      const ex = await Promise.race([run.exit, sleep(90_000).then(() => undefined)]);
      assert.ok(ex, `no exit within 90 s after the server died:\n${run.stderr().slice(-2000)}`);
      assert.equal(ex.code, 1, run.stderr().slice(-3000));
      assert.doesNotMatch(run.stderr(), /internal error|^\s+at /m);
      const msg = failLine(run.stderr());
      assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before);
      assert.deepEqual(runDirs(), []);
      const missing = size - (await arrivedIn([staging], tag));
      await restartBox();
      const sent = await resumeSendsOnlyTheRest(missing, size);
      outcomes.push(`exit 1 after ${(ex.ms / 1000).toFixed(0)} s ("${msg.slice(0, 140)}"); ${missing} B of ${size} had not arrived, the next run sent ${sent} B of mail`);
    }
    record('SSH server dies mid-upload', TRIALS, outcomes.join(' | '));
  });

  test('the link stalls (no packets) mid-upload: fails within RSYNC_TIMEOUT; the next run resumes', async () => {
    const outcomes: string[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const tag = `stall${t}`;
      const size = await addBigMail(tag);
      await writeSlow();
      const before = await publishedOnBox(sb.box.root, sb.remotePath);
      const run = spawnRun({}, slowConfig);
      const staging = await until('the new mail arriving on the box', run, () => {
        const st = stagings()[0];
        return st && bigOnBox(st, tag).tempSize >= 256 * 1024 ? st : undefined;
      });
      const { sessions } = boxProcesses();
      for (const p of sessions) {
        try {
          process.kill(p, 'SIGSTOP');
        } catch {
          /* gone */
        }
      }
      const t0 = Date.now();
      const ex = await Promise.race([run.exit, sleep(120_000).then(() => undefined)]);
      const stalledFor = (Date.now() - t0) / 1000;
      // The box's side learns that the link is dead (its sshd drops the session); its rsync then
      // sees EOF and ends as a real one would, keeping the cut file (--partial).
      for (const p of sshdSessions(sessions)) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      for (const p of sessions) {
        try {
          process.kill(p, 'SIGCONT');
        } catch {
          /* gone */
        }
      }
      // Bound: ssh's keepalive (ServerAliveInterval 15 s × 4) plus RSYNC_TIMEOUT, plus slack.
      assert.ok(ex && stalledFor < 90, `no exit within 90 s of a stalled link (RSYNC_TIMEOUT=10):\n${run.stderr().slice(-2000)}`);
      assert.equal(ex.code, 1, run.stderr().slice(-3000));
      assert.doesNotMatch(run.stderr(), /internal error|^\s+at /m);
      const msg = failLine(run.stderr());
      assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before);
      const missing = size - (await arrivedIn([staging], tag));
      await restartBox();
      const sent = await resumeSendsOnlyTheRest(missing, size);
      outcomes.push(`exit 1 ${stalledFor.toFixed(0)} s after the stall ("${msg.slice(0, 140)}"); ${missing} B of ${size} had not arrived, the next run sent ${sent} B of mail`);
    }
    record('link stalls mid-upload', TRIALS, outcomes.join(' | '));
  });

  test('the connection dies twice in the same message: the third run sends only what never arrived', async () => {
    const outcomes: string[] = [];
    for (let t = 0; t < TRIALS; t++) {
      const tag = `twice${t}`;
      const size = await addBigMail(tag);
      const before = await publishedOnBox(sb.box.root, sb.remotePath);
      /** A slow run cut once more than `moreThan` B of a message (`name`, or any) are on the box: that message and how much of it is kept. */
      const cutRun = async (moreThan: number, name?: string) => {
        await writeSlow();
        const old = new Set(stagings());
        const run = spawnRun({}, slowConfig);
        const [staging, cut] = await until(`more than ${moreThan} B of ${name ?? 'a message'} on the box`, run, () => {
          const st = stagings().find((n) => !old.has(n));
          const temp = st ? bigOnBox(st, tag).temp : undefined;
          return temp && temp.size > moreThan && (name ?? temp.of) === temp.of ? ([st!, temp.of] as const) : undefined;
        });
        cutConnection();
        const ex = await run.exit;
        assert.equal(ex.code, 1, run.stderr().slice(-3000));
        await arrivedIn([staging], tag);
        await restartBox();
        return { name: cut, kept: bigOnBox(staging, tag).named.get(cut) ?? 0 };
      };
      const first = await cutRun(256 * 1024);
      const second = await cutRun(first.kept + 512 * 1024, first.name);
      assert.ok(second.kept > first.kept + 512 * 1024, `the second run resumed ${first.name} (${first.kept} B kept), then kept ${second.kept} B of it`);
      const dead = stagings();
      assert.equal(dead.length, 2);
      const listed = await backup(['list', '--config', sb.configPath], sb.env);
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before, 'nothing published by the cut runs');
      const shown = listed.stdout + listed.stderr;
      assert.ok(before.every((n) => shown.includes(n)), `list shows the published backups:\n${shown}`);
      for (const d of dead) assert.ok(!shown.includes(d.replace('.incomplete-', '')), `list shows the dead run's ${d}:\n${shown}`);
      const missing = size - (await arrivedIn(dead, tag));
      const sent = await resumeSendsOnlyTheRest(missing, size);
      outcomes.push(`cut at ${first.kept} B and ${second.kept} B of one message; ${missing} B of ${size} had not arrived, the third run sent ${sent} B of mail`);
    }
    record('SSH server dies twice in one message', TRIALS, outcomes.join(' | '));
  });
});

describe('other faults', () => {
  test('the temp filesystem fills up during the dump: clean failure, temp cleaned, nothing published', async (t) => {
    const mnt = join(dir, 'smalltmp');
    await mkdir(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=80m,mode=0700', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (e) {
      record('temp filesystem full during dump', 0, `not run: cannot mount a tmpfs here (${(e as Error).message.split('\n')[0]})`);
      t.skip('cannot mount a tmpfs');
      return;
    }
    try {
      const cfg = join(dir, 'smalltmp.env');
      await writeFile(cfg, (await readFile(sb.configPath, 'utf8')).replace(/^TEMP_BACKUP_DIR=.*$/m, `TEMP_BACKUP_DIR=${join(mnt, 'tmp')}`), { mode: 0o600 });
      const outcomes: string[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const before = await publishedOnBox(sb.box.root, sb.remotePath);
        const run = spawnRun({ STANDIN_SLOW_SECONDS: '1' }, cfg);
        await run.waitFor(/phase dump: start/);
        // Preflight found room; now something else eats it all.
        try {
          execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, 'filler')}`, 'bs=1M'], { stdio: 'pipe' });
        } catch {
          /* ENOSPC is the point */
        }
        const ex = await run.exit;
        await rm(join(mnt, 'filler'), { force: true });
        assert.notEqual(ex.code, 0, 'the run must fail');
        assert.ok(ex.code === 1 || ex.code === 4, `exit ${ex.code}: ${run.stderr().slice(-2000)}`);
        assert.doesNotMatch(run.stderr(), /internal error|^\s+at /m);
        assert.deepEqual(await publishedOnBox(sb.box.root, sb.remotePath), before);
        assert.deepEqual(readdirSync(join(mnt, 'tmp')).filter((n) => n.startsWith('run-')), [], 'temp cleaned');
        const msg = failLine(run.stderr());
        outcomes.push(`exit ${ex.code} ("${msg.slice(0, 140)}"), temp cleaned, nothing published`);
      }
      await nextRunSucceeds();
      record('temp filesystem full during dump', TRIALS, outcomes.join(' | ') + '; next run OK');
    } finally {
      execFileSync('umount', ['-l', mnt], { stdio: 'pipe' });
    }
  });

  test('two runs started at the same instant: exactly one proceeds', async () => {
    const outcomes = new Map<string, number>();
    for (let i = 0; i < Math.max(3, TRIALS); i++) {
      const a = spawnRun();
      const b = spawnRun();
      const [ea, eb] = await Promise.all([a.exit, b.exit]);
      const codes = [ea.code, eb.code].sort();
      assert.deepEqual(codes, [0, 75], `exit codes ${codes}\n${a.stderr().slice(-1500)}\n${b.stderr().slice(-1500)}`);
      outcomes.set(`exits ${codes.join(' and ')}`, (outcomes.get(`exits ${codes.join(' and ')}`) ?? 0) + 1);
      assert.deepEqual(brokenBackups(), []);
    }
    record('two runs at the same instant', Math.max(3, TRIALS), [...outcomes].map(([k, v]) => `${v}× ${k}`).join(', ') + '; one backup each time');
  });

  test('a byte of a published backup flipped on the box: verify names the file', async () => {
    const names = await publishedOnBox(sb.box.root, sb.remotePath);
    const victim = names.at(-1)!;
    const sums = await manifestPaths(join(boxBackups, victim));
    const file = sums.find((p) => p.includes('/cur/'))!;
    await flipByte(join(boxBackups, victim, file));
    try {
      const ctx = buildContext({ config: sb.configPath }, new AbortController().signal, 'silent');
      await ctx.box.connect();
      const r = await runScrub(ctx, { names: names.slice(-2) }).finally(async () => {
        await ctx.box.close();
        await ctx.log.close();
      });
      const bad = r.results.filter((x) => x.state !== 'ok');
      assert.deepEqual(bad.map((x) => [x.name, x.problems.map((p) => p.path)]), [[victim, [file]]]);
      record('byte flipped in a published backup: verify', 1, `verify named ${file.split('/').slice(-1)[0]} in ${victim}; ${r.results.length - 1} other backups OK`);
    } finally {
      await flipByte(join(boxBackups, victim, file));
    }
  });

  // Regression: retention knew nothing of the scrub. When the newest backup is damaged and the
  // older good ones are past REMOTE_RETENTION_DAYS, prune deleted every good one and kept the damaged.
  test('retention never deletes the last good backup because the newer one is damaged', async () => {
    const names = await backupsAtLeast(sb, 2);
    // Age every backup but the newest past REMOTE_RETENTION_DAYS=30, then damage the newest.
    let d = new Date(Date.now() - 90 * 86_400_000);
    for (const n of names.slice(0, -1)) {
      d = new Date(d.getTime() + 60_000);
      await rename(join(boxBackups, n), join(boxBackups, backupNameFor(d)));
    }
    // Renamed by hand: the host forgets the names it left, or its prune stops (issue 20).
    await rm(join(dir, 'state', 'published-backups.json'), { force: true });
    const newest = names.at(-1)!;
    const sums = await manifestPaths(join(boxBackups, newest));
    await flipByte(join(boxBackups, newest, sums.find((p) => p.includes('/cur/'))!));
    const ctx = buildContext({ config: sb.configPath }, new AbortController().signal, 'silent');
    await ctx.box.connect();
    await runScrub(ctx, { all: true }).finally(async () => {
      await ctx.box.close();
      await ctx.log.close();
    });
    const r = await backup(['prune', '--config', sb.configPath], sb.env);
    const left = await publishedOnBox(sb.box.root, sb.remotePath);
    const good = left.filter((n) => n !== newest && !brokenBackups().includes(n));
    record('byte flipped: retention keeps last good backup', 1, good.length ? `kept ${good.join(' ')} as last known good` : `FAILS: prune kept only the damaged ${newest}; exit ${r.code}`);
    assert.ok(good.length >= 1, `prune deleted every good backup and kept only the damaged ${newest}`);
    assert.equal(r.code, 0, r.stderr);
    // The newest good one is kept, and the admin is told why.
    assert.deepEqual(good, [backupNameFor(d)]);
    assert.match(r.stdout, new RegExp(`^keep +${good[0]} +\\(last known good: newer ${newest} is damaged\\)$`, 'm'));
    assert.match(r.stderr, new RegExp(`retention keeps ${good[0]} as the last known good`));
  });

  test('the clock jumps a day forward, then back: retention keeps what it promises', async () => {
    // No faketime here: the jump is simulated on the box. A backup made while the clock was a day
    // ahead carries tomorrow's name; the next run (clock back) must keep it and its own.
    await rm(boxBackups, { recursive: true, force: true });
    await mkdir(boxBackups, { recursive: true });
    await rm(join(dir, 'state', 'hash-cache.jsonl'), { force: true });
    // The backups were removed on purpose: the host forgets them, or its next run stops (issue 20).
    await rm(join(dir, 'state', 'published-backups.json'), { force: true });
    await nextRunSucceeds();
    const [made] = await publishedOnBox(sb.box.root, sb.remotePath);
    const tomorrow = backupNameFor(new Date(parseBackupName(made!)!.getTime() + 86_400_000));
    await rename(join(boxBackups, made!), join(boxBackups, tomorrow));
    await rm(join(dir, 'state', 'published-backups.json'), { force: true });
    await nextRunSucceeds();
    let left = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.equal(left.length, 2, `after the jump back: ${left}`);
    assert.ok(left.includes(tomorrow), 'the future-dated backup is kept');
    // Forward: the clock jumps far ahead (runs "40 days later"): the newest is never deleted, and
    // the pure plan with the jumped clock keeps the newest.
    const plan = planRetention(left, { retentionDays: 30, keepDaily: 0, keepWeekly: 0, keepMonthly: 0 }, new Date(Date.now() + 40 * 86_400_000));
    assert.ok(plan.keep.some((k) => k.name === [...left].sort().at(-1)), 'the newest is kept when the clock jumps forward');
    // Back a day: a new run names its backup before the future-dated one; both are kept.
    left = await publishedOnBox(sb.box.root, sb.remotePath);
    assert.deepEqual(brokenBackups(), []);
    record('clock jumps a day forward / back (simulated by names)', 1, `future-dated backup kept, new backup published beside it, newest kept when "now" is 40 days ahead`);
  });
});
