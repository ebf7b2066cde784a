// What the tool says about a backup's integrity and about a run's outcome must be what it knows:
// a backup the scrub found damaged is shown damaged everywhere (list, restore, status) and is not
// `latest`; a folder nobody verified here is "not verified on this host"; a run whose own backup
// was published is not "FAILED" because an older one is damaged; a run refused because another
// holds the lock, or stopped by Ctrl-C, is no failure: no e-mail, no /fail ping, no failure count.
// Through the real commands on the loopback box, with a real SMTP server and healthcheck server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import type { SMTPServer } from 'smtp-server';
import { startMailSink, startPingServer, type Ping } from './support/listeners.js';
import { backupNameFor } from '../src/plan/names.js';
import { readManifest } from '../src/plan/manifest.js';
import type { Sandbox } from '../src/sandbox/sandbox.js';
import { backup, BACKUP_CLI, flipByte, publishedOnBox, removeSandbox, RESTORE_CLI, runCli, sandboxWithBackups, withRunClock } from './support/cli.js';

let sb: Sandbox;
let dir: string;
let boxBackups: string;
let names: string[] = [];
let smtp: SMTPServer;
let hc: http.Server;
const raw: string[] = [];
const received: Ping[] = [];
/** Subjects of the e-mails received so far. */
const subjects = () => Promise.all(raw.map(async (r) => (await simpleParser(r)).subject ?? ''));
/** Paths of the healthcheck pings received so far. */
const pings = () => received.map((p) => p.path);

const restore = (args: string[]) => runCli(RESTORE_CLI, [...args, '--config', sb.configPath], sb.env);
const cli = (args: string[]) => backup([...args, '--config', sb.configPath], sb.env);
const statusFile = () => readFile(join(sb.dir, 'state', 'status.json'), 'utf8');

async function mailFile(name: string): Promise<string> {
  const paths: string[] = [];
  await readManifest(join(boxBackups, name), (e) => paths.push(e.path));
  return join(boxBackups, name, paths.find((p) => p.startsWith('vmail/') && p.includes('/cur/') && /^[\w/.,:=-]+$/.test(p))!);
}

/** A run in its own process group (as a terminal's Ctrl-C or systemd reaches it), its output awaited line by line. */
function spawnRun(env: Record<string, string> = {}) {
  const p = spawn(process.execPath, [BACKUP_CLI, 'run', '--debug', '--config', sb.configPath], { env: { ...process.env, ...withRunClock(['run'], { ...sb.env, ...env }) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const waiters: { re: RegExp; go: () => void }[] = [];
  const exit = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  const onData = (d: Buffer) => {
    out += d;
    for (const w of [...waiters]) if (w.re.test(out)) (waiters.splice(waiters.indexOf(w), 1), w.go());
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  const waitFor = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      if (re.test(out)) return resolve();
      waiters.push({ re, go: resolve });
      void exit.then(() => setImmediate(() => reject(new Error(`the run exited before ${re}:\n${out.slice(-3000)}`))));
    });
  return { p, exit, waitFor, output: () => out };
}

before(async () => {
  smtp = await startMailSink(raw);
  hc = await startPingServer(received);
  ({ sb, dir, boxBackups, names } = await sandboxWithBackups('mcb-honest-', { mailBytes: 512 * 1024, seed: 41 }, 2));
  const settings = {
    EMAIL_NOTIFICATIONS: 'yes',
    NOTIFY_ON: 'failure',
    NOTIFICATION_EMAIL: 'admin@example.test',
    NOTIFICATION_FROM: 'backup@example.test',
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
    HEALTHCHECK_URL: `http://127.0.0.1:${(hc.address() as AddressInfo).port}/ping/check-uuid`,
  };
  await writeFile(sb.configPath, (await readFile(sb.configPath, 'utf8')) + Object.entries(settings).map(([k, v]) => `${k}=${v}\n`).join(''));
});

after(async () => {
  await removeSandbox(sb, dir);
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await new Promise<void>((resolve) => hc.close(() => resolve()));
});

beforeEach(() => {
  raw.length = 0;
  received.length = 0;
});

interface Listed {
  name: string;
  state: string;
  by?: string;
}

describe('what is known about each backup', () => {
  test('a backup damaged on the box: verify says DAMAGED; list, restore --list and status say so; latest skips it, naming it', async () => {
    const [older, newer] = names as [string, string];
    const before = JSON.parse((await cli(['list', '--json'])).stdout) as Listed[];
    assert.deepEqual(before.map((b) => [b.name, b.state, b.by]), [[newer, 'verified', 'run'], [older, 'verified', 'run']], 'each verified by the run that published it');
    const victim = await mailFile(newer);
    await flipByte(victim);
    try {
      const v = await cli(['verify', newer]);
      assert.equal(v.code, 6, v.stdout + v.stderr);
      assert.match(v.stdout, new RegExp(`^DAMAGED +${newer}`, 'm'));

      const list = await cli(['list']);
      assert.equal(list.code, 0, list.stderr);
      const line = list.stdout.split('\n').find((l) => l.startsWith(newer))!;
      assert.match(line, /DAMAGED \(found by the scrub \d{4}-\d\d-\d\d \d\d:\d\d, 1 file\) +no$/);
      assert.doesNotMatch(line, /verified/);
      assert.match(list.stdout.split('\n').find((l) => l.startsWith(older))!, /verified at publish \d{4}-\d\d-\d\d \d\d:\d\d, not yet scrubbed +no$/);
      const json = JSON.parse((await cli(['list', '--json'])).stdout) as Listed[];
      assert.deepEqual(json.map((b) => [b.name, b.state]), [[newer, 'damaged'], [older, 'verified']]);
      const offered = JSON.parse((await restore(['--list', '--json'])).stdout) as Listed[];
      assert.deepEqual(offered.map((b) => [b.name, b.state]), [[newer, 'damaged'], [older, 'verified']]);

      const latest = await restore(['--backup', 'latest', '--components', 'crypt', '--check-only']);
      assert.equal(latest.code, 0, latest.stdout + latest.stderr);
      assert.match(latest.stdout, new RegExp(`^pre-restore checks for ${older}:`, 'm'));
      assert.match(latest.stdout, new RegExp(`WARN +backup +'latest' skipped ${newer} \\(DAMAGED`));
      assert.match(latest.stderr, new RegExp(`'latest' skips ${newer}: known DAMAGED`));

      const status = await cli(['status']);
      assert.equal(status.code, 6, status.stdout);
      const newest = status.stdout.split('\n').find((l) => l.startsWith('newest backup'))!;
      assert.match(newest, new RegExp(`${newer}, .* \\(on the box, DAMAGED \\(found by the scrub`));
      assert.doesNotMatch(newest, /verified/);
    } finally {
      await flipByte(victim);
    }
    assert.equal((await cli(['verify', newer])).code, 0);
    const healed = JSON.parse((await cli(['list', '--json'])).stdout) as Listed[];
    assert.deepEqual(healed.map((b) => [b.name, b.state, b.by]), [[newer, 'verified', 'scrub'], [older, 'verified', 'run']]);
  });

  test('a folder made by hand, and every backup on a host with no record (a fresh restore host), is "not verified on this host"', async () => {
    const [older] = names as [string, string];
    const hand = backupNameFor(new Date(Date.now() + 3_600_000));
    await cp(join(boxBackups, older), join(boxBackups, hand), { recursive: true });
    const record = join(sb.dir, 'state', 'scrub.json');
    try {
      const list = await cli(['list']);
      assert.match(list.stdout.split('\n').find((l) => l.startsWith(hand))!, /not verified on this host +\?$/);
      const json = JSON.parse((await cli(['list', '--json'])).stdout) as Listed[];
      assert.equal(json.find((b) => b.name === hand)!.state, 'unverified');
      const status = await cli(['status']);
      assert.match(status.stdout, new RegExp(`^newest backup +${hand}, .*\\(on the box, not verified on this host\\)$`, 'm'));

      await rename(record, `${record}.aside`);
      const fresh = JSON.parse((await restore(['--list', '--json'])).stdout) as Listed[];
      assert.deepEqual(fresh.map((b) => b.state), fresh.map(() => 'unverified'));
      const check = await restore(['--backup', older, '--components', 'crypt', '--check-only']);
      assert.match(check.stdout, new RegExp(`OK +backup +${older} is not verified on this host .*; the download is verified against its checksums\\.sha256`));
    } finally {
      await rename(`${record}.aside`, record).catch(() => undefined);
      await rm(join(boxBackups, hand), { recursive: true, force: true });
    }
  });
});

describe('runs that did not fail', () => {
  test('a second run while the first holds the lock: exit 75, no e-mail, no ping, the status file untouched', async () => {
    const statusBefore = await statusFile();
    assert.equal(JSON.parse(statusBefore).result, 'ok');
    const first = spawnRun();
    // The first run holds the lock once its preflight begins; it is held still while the second runs.
    await first.waitFor(/phase preflight: start/);
    process.kill(-first.p.pid!, 'SIGSTOP');
    const pingsBefore = received.length;
    let second, pingsOfSecond, statusWhileHeld;
    try {
      second = await cli(['run']);
      pingsOfSecond = pings().slice(pingsBefore);
      statusWhileHeld = await statusFile();
    } finally {
      process.kill(-first.p.pid!, 'SIGCONT');
    }
    const firstExit = await first.exit;
    assert.equal(second.code, 75, second.stdout + second.stderr);
    assert.deepEqual(pingsOfSecond, [], 'the refused run pinged nothing');
    assert.equal(statusWhileHeld, statusBefore, 'the refused run left the status file alone');
    assert.doesNotMatch(second.stderr, /FAILED/);
    assert.match(second.stderr, /another backup run holds the lock .*This run did nothing: no report, no ping, the status file is unchanged/);

    assert.equal(firstExit, 0, first.output().slice(-3000));
    assert.deepEqual(await subjects(), [], 'no FAILED for the refused run, no "recovered" for the first');
    assert.ok(!pings().some((p) => p.endsWith('/fail')), pings().join(' '));
    assert.ok(pings().includes('/ping/check-uuid'), 'the first run sent its success ping');
    const st = JSON.parse(await statusFile());
    assert.equal(st.result, 'ok');
    assert.equal(st.consecutiveFailures, 0);
  });

  test('a run stopped by Ctrl-C is shown as interrupted, not failed: no e-mail, no /fail, no failure counted', async () => {
    const run = spawnRun({ STANDIN_SLOW_SECONDS: '1' });
    await run.waitFor(/phase dump: start/);
    process.kill(-run.p.pid!, 'SIGINT'); // what a terminal's Ctrl-C does: the whole foreground group
    assert.equal(await run.exit, 130, run.output().slice(-3000));
    const st = JSON.parse(await statusFile());
    assert.equal(st.result, 'interrupted');
    assert.equal(st.consecutiveFailures, 0);
    const status = await cli(['status']);
    assert.equal(status.code, 0, status.stdout);
    assert.match(status.stdout, /^last run .*: INTERRUPTED in dump \(exit 130\), nothing was published/m);
    assert.doesNotMatch(status.stdout, /FAILED|failing/);
    assert.deepEqual(await subjects(), []);
    assert.ok(!pings().some((p) => p.endsWith('/fail')), pings().join(' '));
    assert.ok(pings().includes('/ping/check-uuid/log'), `a neutral log ping: ${pings().join(' ')}`);
  });

  test('the scrub finds an older backup damaged: the new backup is published, exit 3, and nothing calls the run FAILED', async () => {
    const [older] = names as [string, string];
    const config = await readFile(sb.configPath, 'utf8');
    await writeFile(sb.configPath, config + 'SCRUB_BUDGET_MINUTES=5\n');
    const victim = await mailFile(older);
    await flipByte(victim);
    try {
      const before = await publishedOnBox(sb.box.root, sb.remotePath);
      const r = await cli(['run']);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      const made = (await publishedOnBox(sb.box.root, sb.remotePath)).filter((n) => !before.includes(n));
      assert.equal(made.length, 1, 'the new backup was published');
      assert.match(r.stdout, new RegExp(`^backup ${made[0]} published and verified on the Storage Box with sha256sum, but the scrub found an older backup DAMAGED: ${older}`));
      assert.doesNotMatch(r.stdout + r.stderr, /backup FAILED/);
      assert.deepEqual(await subjects(), [`[mailcow-backup] DAMAGED ${JSON.parse(await statusFile()).host} — ${older} (new backup ${made[0]} published)`]);
      const st = JSON.parse(await statusFile());
      assert.deepEqual(st.scrub.damaged, [older]);
      assert.ok(!st.scrub.verified.includes(made[0]), 'the backup this run verified itself is not scrubbed again as an "older" one');
      const status = await cli(['status']);
      assert.match(status.stdout, /^last run .*: PUBLISHED, but the scrub found older backups DAMAGED/m);
      assert.doesNotMatch(status.stdout, /FAILED/);
    } finally {
      await flipByte(victim);
      await writeFile(sb.configPath, config);
    }
  });
});
