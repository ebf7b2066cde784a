// Notifications and monitoring: the report e-mail through a real SMTP server on loopback that
// offers STARTTLS with a self-signed certificate for a mail host name (not localhost), parsed
// back as MIME; delivery failures that never change the backup's result; healthcheck pings
// against a loopback HTTP server; the status file, the Prometheus file and `status`.

import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import type { SMTPServer } from 'smtp-server';
import { startMailSink, startPingServer, type Ping, type ReceivedMail } from './support/listeners.js';
import { createLogger, type Logger } from '../src/adapters/logger.js';
import { configSchema, type Config } from '../src/config/schema.js';
import { summaryText, type RunSummary } from '../src/plan/report.js';
import { notifyAfterRun, notifyStart, runTestEmail, type NotifyDeps } from '../src/notify/after-run.js';
import { composeReport, escapeHtml } from '../src/notify/compose.js';
import { ping, pingUrl } from '../src/notify/healthcheck.js';
import { isLoopbackHost } from '../src/notify/smtp.js';
import { statusReport } from '../src/notify/status-command.js';
import { backupNameFor } from '../src/plan/names.js';
import { nextStatus, readStatus, renderPrometheus, type RunStatus } from '../src/notify/status-file.js';

const MAIL_HOST = 'mail.example.test';
const DB_SECRET = 'Db5ecretPassw0rdXYZ';
const HTML_SECRET = 'p&ss<w>rd"Zq9';
const MAILCOW_CONF = { MAILCOW_HOSTNAME: MAIL_HOST, DBPASS: DB_SECRET, DBROOT: 'r00tSecretQQQ', REDISPASS: HTML_SECRET, API_KEY: 'ApiKeySecret777', TZ: 'Europe/Berlin' };
const SECRETS = [DB_SECRET, 'r00tSecretQQQ', HTML_SECRET, escapeHtml(HTML_SECRET), 'ApiKeySecret777'];

/** A loopback port nothing listens on (just closed). */
async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function okSummary(over: Partial<RunSummary> = {}): RunSummary {
  return {
    ok: true,
    host: 'mx1',
    backupName: 'mailcow-2025-01-15-03-00-00',
    startedAt: '2025-01-15T02:00:00.000Z',
    finishedAt: '2025-01-15T02:12:30.000Z',
    phases: [
      { phase: 'dump', ms: 300_000 },
      { phase: 'upload', ms: 400_000 },
      { phase: 'verify', ms: 50_000 },
    ],
    exitCode: 0,
    components: ['vmail', 'crypt', 'mysql'],
    files: 12345,
    backupBytes: 5 * 1024 ** 3,
    bytesSent: 200 * 1024 ** 2,
    addedOnBoxBytes: 210 * 1024 ** 2,
    verifiedOnBox: 321,
    box: { usedBytes: 400 * 1024 ** 3, availableBytes: 600 * 1024 ** 3, sizeBytes: 1000 * 1024 ** 3 },
    backupsKept: 14,
    removed: [],
    warnings: [],
    logFile: '/var/log/mailcow-backup.log',
    ...over,
  };
}

function failedSummary(over: Partial<RunSummary> = {}): RunSummary {
  return okSummary({
    ok: false,
    exitCode: 1,
    failedPhase: 'dump',
    error: `mailcow's backup script failed: mysqldump: Got error 1045: Access denied for user 'root' using password ${DB_SECRET}`,
    files: undefined,
    backupBytes: undefined,
    bytesSent: undefined,
    addedOnBoxBytes: undefined,
    verifiedOnBox: undefined,
    box: undefined,
    backupsKept: undefined,
    phases: [{ phase: 'dump', ms: 2000 }],
    ...over,
  });
}

describe('notifications', () => {
  let tmp: string;
  let certFile: string;
  let keyFile: string;
  let smtp: SMTPServer;
  let smtpPort: number;
  const received: ReceivedMail[] = [];
  let refuseRcpt = false;
  let hc: http.Server;
  let hcBase: string;
  const pings: Ping[] = [];
  let hcStatus = 200;
  const loggers: Logger[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-test-'));
    certFile = path.join(tmp, 'cert.pem');
    keyFile = path.join(tmp, 'key.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${MAIL_HOST}`, '-addext', `subjectAltName=DNS:${MAIL_HOST}`],
      { stdio: 'ignore' },
    );
    smtp = await startMailSink([], {
      tls: { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), name: MAIL_HOST },
      refuseRecipient: () => refuseRcpt,
      onMail: (m) => received.push(m),
    });
    smtpPort = (smtp.server.address() as AddressInfo).port;
    hc = await startPingServer(pings, () => hcStatus);
    hcBase = `http://127.0.0.1:${(hc.address() as AddressInfo).port}/ping/0b5e2c1a-uuid`;
  });

  after(async () => {
    for (const l of loggers) await l.close();
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
    await new Promise<void>((resolve) => hc.close(() => resolve()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  let caseDir: string;
  let caseNo = 0;
  beforeEach(() => {
    received.length = 0;
    pings.length = 0;
    refuseRcpt = false;
    hcStatus = 200;
    caseDir = path.join(tmp, `case-${++caseNo}`);
    fs.mkdirSync(caseDir, { recursive: true });
  });

  function configWith(env: Record<string, string> = {}): Config {
    return configSchema.parse({
      HETZNER_HOST: 'u123456.your-storagebox.de',
      HETZNER_USER: 'u123456',
      MAILCOW_PATH: path.join(caseDir, 'mailcow'),
      STATE_DIR: caseDir,
      LOG_FILE: path.join(caseDir, 'run.log'),
      STATUS_FILE: path.join(caseDir, 'state', 'status.json'),
      PROMETHEUS_TEXTFILE: path.join(caseDir, 'prom', 'mailcow_backup.prom'),
      EMAIL_NOTIFICATIONS: 'yes',
      NOTIFICATION_EMAIL: 'admin@example.test',
      NOTIFICATION_FROM: 'backup@example.test',
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(smtpPort),
      HEALTHCHECK_URL: hcBase,
      ...env,
    });
  }

  function depsWith(env: Record<string, string> = {}, over: Partial<NotifyDeps> = {}): NotifyDeps {
    const config = configWith(env);
    const log = createLogger({ logFile: config.LOG_FILE, console: 'silent' });
    loggers.push(log);
    return {
      config,
      log,
      now: () => new Date('2025-01-15T02:13:00.000Z'),
      mailcowConf: MAILCOW_CONF,
      smtpCaFile: certFile,
      smtp: { timeoutMs: 3000 },
      nextRun: async () => 'Thu 2025-01-16 03:07:12 CET',
      toolVersion: '0.1.0-test',
      ...over,
    };
  }

  const logText = (deps: NotifyDeps) => deps.log.tail(200).join('\n');

  function assertNoSecret(text: string, where: string) {
    for (const s of SECRETS) assert.ok(!text.includes(s), `${where} holds the secret ${s}`);
  }

  it('delivers the success report over STARTTLS (certificate checked for MAILCOW_HOSTNAME) as valid multipart MIME', async () => {
    const deps = depsWith();
    await notifyStart(deps);
    deps.log.info(`dump: mysqldump -p${DB_SECRET} finished`);
    const summary = okSummary();
    const out = await notifyAfterRun(deps, summary);
    assert.equal(out.email, 'sent', logText(deps));
    assert.equal(received.length, 1);
    const m = received[0]!;
    assert.equal(m.secure, true, 'the session was upgraded with STARTTLS');
    assert.deepEqual(m.to, ['admin@example.test']);
    assert.equal(m.from, 'backup@example.test');
    assertNoSecret(m.raw, 'the raw message');

    const parsed = await simpleParser(m.raw);
    assert.equal(parsed.subject, '[mailcow-backup] OK mx1 — mailcow-2025-01-15-03-00-00');
    assert.match(String(parsed.headers.get('content-type') && (parsed.headers.get('content-type') as { value: string }).value), /multipart\/alternative/);
    assert.ok(parsed.text && parsed.html, 'both a text and an HTML part');
    const text = parsed.text!;
    for (const want of ['mailcow-2025-01-15-03-00-00', 'mx1', '5.00 GiB in 12345 files', '200.0 MiB', '400.0 GiB used, 600.0 GiB free', 'Backups kept:', '14', 'dump 5 min 0 s', 'upload 6 min 40 s', '12 min 30 s', 'Thu 2025-01-16 03:07:12 CET']) {
      assert.ok(text.includes(want), `text part lacks ${want}:\n${text}`);
    }
    assert.ok(String(parsed.html).includes('<table'), 'the HTML part has the table');
    assert.ok(String(parsed.html).includes('600.0 GiB free'));
    assert.ok(logText(deps).includes('report e-mail sent to admin@example.test'));

    // the status and Prometheus files of the same run
    assert.equal(out.statusWritten, true);
    assert.equal(out.prometheus, 'written');
    const st = await readStatus(deps.config.STATUS_FILE);
    assert.equal(st?.result, 'ok');
    assert.equal(st?.bytesSent, 200 * 1024 ** 2);
    assert.equal(st?.backupsKept, 14);
    const prom = fs.readFileSync(deps.config.PROMETHEUS_TEXTFILE!, 'utf8');
    assert.match(prom, /^mailcow_backup_last_run_success 1$/m);
    assert.match(prom, /^mailcow_backup_backups_kept 14$/m);
    assert.match(prom, /^mailcow_backup_last_run_duration_seconds 750$/m);
    assert.deepEqual(fs.readdirSync(path.dirname(deps.config.PROMETHEUS_TEXTFILE!)), ['mailcow_backup.prom'], 'no temporary file left');

    // pings: start, then success
    assert.deepEqual(pings.map((p) => p.path), ['/ping/0b5e2c1a-uuid/start', '/ping/0b5e2c1a-uuid']);
  });

  it('sends the failure report with the phase, the error, the redacted log tail and the log command', async () => {
    const deps = depsWith();
    await notifyStart(deps);
    deps.log.info('phase dump: start');
    deps.log.error(`mysqldump --password=${DB_SECRET} --host=mysql: Access denied; redis auth ${HTML_SECRET}`);
    const summary = failedSummary();
    const out = await notifyAfterRun(deps, summary);
    assert.equal(out.email, 'sent', logText(deps));
    assert.equal((await readStatus(deps.config.STATUS_FILE))?.exitCode, 1, "the status file records the run's own exit code");
    const m = received[0]!;
    assert.equal(m.secure, true);
    assertNoSecret(m.raw, 'the raw failure message');
    const parsed = await simpleParser(m.raw);
    assert.equal(parsed.subject, '[mailcow-backup] FAILED mx1 — dump');
    const text = parsed.text!;
    assert.match(text, /FAILED in the dump phase/);
    assert.match(text, /Error: +mailcow's backup script failed: mysqldump: Got error 1045/);
    assert.match(text, /less \+G .*run\.log/);
    assert.match(text, /mysqldump --password=\*\*\* --host=mysql/);
    assertNoSecret(String(parsed.html), 'the HTML part');
    assert.ok(!String(parsed.html).includes('<w>'), 'HTML special characters are escaped');

    // the /fail ping carries the log tail, redacted
    assert.deepEqual(pings.map((p) => p.path), ['/ping/0b5e2c1a-uuid/start', '/ping/0b5e2c1a-uuid/fail']);
    const fail = pings[1]!;
    assert.equal(fail.method, 'POST');
    assert.match(fail.body, /FAILED in dump/);
    assert.match(fail.body, /mysqldump --password=\*\*\*/);
    assertNoSecret(fail.body, 'the /fail ping body');
    const st = await readStatus(deps.config.STATUS_FILE);
    assert.equal(st?.result, 'failed');
    assertNoSecret(JSON.stringify(st), 'the status file');
  });

  it('refuses a certificate that is not issued for MAILCOW_HOSTNAME: not delivered, logged, never thrown', async () => {
    const deps = depsWith({}, { mailcowConf: { ...MAILCOW_CONF, MAILCOW_HOSTNAME: 'other.example.test' } });
    const summary = okSummary();
    const out = await notifyAfterRun(deps, summary);
    assert.equal(out.email, 'failed');
    assert.equal(received.length, 0);
    assert.equal((await readStatus(deps.config.STATUS_FILE))?.exitCode, 0, "the status file records the run's own exit code");
    assert.match(logText(deps), /report e-mail was NOT delivered: TLS certificate of 127\.0\.0\.1:\d+ not accepted .*other\.example\.test/);
    assert.equal(out.ping, 'sent', 'the ping still goes out');
  });

  it('SMTP down: the backup still exits 0 and the log says the report was not delivered', async () => {
    const deps = depsWith({ SMTP_PORT: String(await deadPort()) });
    const summary = okSummary();
    const out = await notifyAfterRun(deps, summary);
    assert.equal((await readStatus(deps.config.STATUS_FILE))?.exitCode, 0, "the status file records the run's own exit code");
    assert.equal(out.email, 'failed');
    assert.match(logText(deps), /report e-mail was NOT delivered: nothing listens on 127\.0\.0\.1:\d+ \(connection refused\)/);
    assert.equal(out.statusWritten, true);
    assert.equal(out.ping, 'sent');
  });

  it('SMTP refusing the recipient: logged with the server reply, exit status untouched', async () => {
    refuseRcpt = true;
    const deps = depsWith();
    const summary = okSummary();
    const out = await notifyAfterRun(deps, summary);
    assert.equal((await readStatus(deps.config.STATUS_FILE))?.exitCode, 0, "the status file records the run's own exit code");
    assert.equal(out.email, 'failed');
    assert.match(logText(deps), /report e-mail was NOT delivered: .*Relay access denied/);
  });

  it('NOTIFY_ON=failure: silent on success, reports the failure, then one "recovered" message', async () => {
    const deps = depsWith({ NOTIFY_ON: 'failure', EMAIL_NOTIFICATIONS: '1' });
    const o1 = await notifyAfterRun(deps, okSummary());
    assert.equal(o1.email, 'skipped');
    assert.equal(received.length, 0);
    const o2 = await notifyAfterRun(deps, failedSummary());
    assert.equal(o2.email, 'sent');
    const o3 = await notifyAfterRun(deps, failedSummary({ failedPhase: 'upload' }));
    assert.equal(o3.email, 'sent');
    const o4 = await notifyAfterRun(deps, okSummary({ backupName: 'mailcow-2025-01-16-03-00-00' }));
    assert.equal(o4.email, 'sent');
    assert.equal(o4.recovered, true);
    const o5 = await notifyAfterRun(deps, okSummary({ backupName: 'mailcow-2025-01-17-03-00-00' }));
    assert.equal(o5.email, 'skipped');
    const subjects = await Promise.all(received.map(async (r) => (await simpleParser(r.raw)).subject));
    assert.deepEqual(subjects, ['[mailcow-backup] FAILED mx1 — dump', '[mailcow-backup] FAILED mx1 — upload', '[mailcow-backup] OK mx1 — mailcow-2025-01-16-03-00-00 (recovered)']);
    const recovered = await simpleParser(received[2]!.raw);
    assert.match(recovered.text!, /the previous run failed \(failing since/);
  });

  it('NOTIFY_ON=daily: a day of hourly successes is one digest mail the next day; a failure is mailed at once', async () => {
    let now = new Date();
    const deps = depsWith({ NOTIFY_ON: 'daily' }, { now: () => now });
    const run = (h: number, fail = false) => {
      const start = new Date(2025, 0, 15, h, 0, 0);
      now = new Date(start.getTime() + 90_000);
      const name = backupNameFor(start);
      const times = { backupName: name, startedAt: start.toISOString(), finishedAt: now.toISOString(), dump: { by: backupNameFor(new Date(2025, 0, 15, 1)), at: start.toISOString() } };
      return notifyAfterRun(deps, fail ? failedSummary(times) : okSummary(times));
    };
    for (let h = 1; h <= 23; h++) {
      const out = await run(h, h === 10);
      assert.equal(out.email, h === 10 || h === 11 ? 'sent' : 'skipped', `${h}:00`);
      assert.equal(out.digest, 'held', `${h}:00`);
    }
    const subjects = async () => Promise.all(received.map(async (r) => (await simpleParser(r.raw)).subject));
    assert.deepEqual(await subjects(), ['[mailcow-backup] FAILED mx1 — dump', `[mailcow-backup] OK mx1 — ${backupNameFor(new Date(2025, 0, 15, 11))} (recovered)`]);

    // The first run of the next day sends the day before, once.
    const next = await run(24);
    assert.equal(next.email, 'skipped');
    assert.equal(next.digest, 'sent', logText(deps));
    assert.equal(received.length, 3);
    const digest = await simpleParser(received[2]!.raw);
    assert.equal(digest.subject, '[mailcow-backup] DIGEST mx1 — 2025-01-15: 23 runs, 22 OK, 1 not OK (each reported when it happened)');
    for (let h = 1; h <= 23; h++) assert.ok(digest.text!.includes(backupNameFor(new Date(2025, 0, 15, h))), `${h}:00 in the digest`);
    assert.match(digest.text!, /FAILED/);
    assertNoSecret(received[2]!.raw, 'the digest');
    assert.equal((await run(25)).digest, 'held');
    assert.equal(received.length, 3);
  });

  it('EMAIL_NOTIFICATIONS off: no e-mail, the rest still happens', async () => {
    const deps = depsWith({ EMAIL_NOTIFICATIONS: 'no' });
    const out = await notifyAfterRun(deps, okSummary());
    assert.equal(out.email, 'off');
    assert.equal(received.length, 0);
    assert.equal(out.statusWritten, true);
    assert.equal(out.ping, 'sent');
  });

  it('test-email reports the SMTP dialogue and that it was encrypted', async () => {
    const deps = depsWith();
    const r = await runTestEmail(deps);
    assert.equal(r.ok, true, r.lines.join('\n'));
    assert.equal(r.encrypted, true);
    const lines = r.lines.join('\n');
    assert.match(lines, /certificate verified for mail\.example\.test/);
    assert.match(lines, /S: 220 mail\.example\.test/);
    assert.match(lines, /C: STARTTLS/);
    assert.match(lines, /upgraded with STARTTLS/);
    assert.match(lines, /delivered: the server accepted the message for admin@example\.test \(250 /);
    assert.equal(received.length, 1);
    assert.equal((await simpleParser(received[0]!.raw)).subject, '[mailcow-backup] TEST mx1 — test message'.replace('mx1', os.hostname()));

    const gone = await deadPort();
    const down = await runTestEmail(depsWith({ SMTP_PORT: String(gone) }));
    assert.equal(down.ok, false);
    assert.match(down.lines.join('\n'), new RegExp(`NOT delivered: nothing listens on 127\\.0\\.0\\.1:${gone}`));
  });

  it('delivers to SMTP_HOST=localhost too (the default), verifying against MAILCOW_HOSTNAME', async () => {
    const deps = depsWith({ SMTP_HOST: 'localhost' });
    const out = await notifyAfterRun(deps, okSummary());
    // localhost resolves to 127.0.0.1 and ::1; the server listens on 127.0.0.1 only, so this also
    // shows the client tries the next address rather than giving up on the first.
    assert.equal(out.email, 'sent', logText(deps));
    assert.equal(received.length, 1);
    assert.equal(received[0]!.secure, true, 'upgraded with STARTTLS, the certificate checked for MAILCOW_HOSTNAME');
  });

  it('pings: a failing or slow monitor is logged and never throws', async () => {
    hcStatus = 500;
    const deps = depsWith();
    assert.equal(await ping(hcBase, 'success', { log: deps.log }), false);
    assert.match(logText(deps), /healthcheck ping 'success' to 127\.0\.0\.1:\d+ was answered 500/);
    assert.ok(!logText(deps).includes('0b5e2c1a-uuid'), 'the check UUID is not logged');

    const silent = http.createServer(() => undefined); // never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/x`;
    const t0 = Date.now();
    assert.equal(await ping(url, 'start', { log: deps.log, timeoutMs: 300 }), false);
    assert.ok(Date.now() - t0 < 3000);
    assert.match(logText(deps), /healthcheck ping 'start' .* failed: no answer within 0.3 s/);
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));

    const gone = await deadPort();
    assert.equal(await ping(`http://127.0.0.1:${gone}/x`, 'fail', { log: deps.log, body: 'tail' }), false);
    assert.match(logText(deps), new RegExp(`healthcheck ping 'fail' to 127\\.0\\.0\\.1:${gone} failed: .*ECONNREFUSED`));
  });

  it('ping URLs keep a query string and a trailing slash is harmless', () => {
    assert.equal(pingUrl('https://hc-ping.com/abc', 'start'), 'https://hc-ping.com/abc/start');
    assert.equal(pingUrl('https://hc-ping.com/abc/', 'fail'), 'https://hc-ping.com/abc/fail');
    assert.equal(pingUrl('https://hc.example/ping/key/slug?create=1', 'start'), 'https://hc.example/ping/key/slug/start?create=1');
    assert.equal(pingUrl('https://hc-ping.com/abc', 'success'), 'https://hc-ping.com/abc');
  });
});

describe('compose (pure)', () => {
  const redact = (t: string) => t.split(DB_SECRET).join('***').split(HTML_SECRET).join('***');

  it('escapes HTML and redacts before escaping', () => {
    const m = composeReport(failedSummary({ error: `bad <script>alert(1)</script> ${HTML_SECRET}`, host: 'mx&1' }), { redact, logTail: [`line with ${HTML_SECRET}`] });
    assert.ok(!m.html.includes('<script>'));
    assert.ok(m.html.includes('&lt;script&gt;'));
    assert.ok(m.html.includes('mx&amp;1'));
    assertNoSecretIn(m.html + m.text + m.subject);
    assert.equal(m.subject, '[mailcow-backup] FAILED mx&1 — dump');
  });

  it('a partial run says its backup was published', () => {
    const m = composeReport(okSummary({ ok: false, exitCode: 3, failedPhase: 'prune', error: 'rm failed' }), { redact });
    assert.equal(m.subject, '[mailcow-backup] PARTIAL mx1 — prune failed (backup mailcow-2025-01-15-03-00-00 was published)');
    assert.match(m.text, /is published and verified on the Storage Box, but the prune phase failed afterwards: rm failed/);
  });

  it('a run whose scrub found older damage is not called FAILED; an interrupted run is not either', () => {
    const scrubbed = okSummary({ ok: false, exitCode: 3, failedPhase: 'scrub', error: 'mailcow-2025-01-10-03-00-00 on the Storage Box is DAMAGED', scrub: { verified: [], damaged: ['mailcow-2025-01-10-03-00-00'], skipped: 0 } });
    const m = composeReport(scrubbed, { redact });
    assert.equal(m.subject, '[mailcow-backup] DAMAGED mx1 — mailcow-2025-01-10-03-00-00 (new backup mailcow-2025-01-15-03-00-00 published)');
    assert.match(m.text, /^Backup mailcow-2025-01-15-03-00-00 of mx1 is published and verified on the Storage Box, but the scrub found an older backup DAMAGED: mailcow-2025-01-10-03-00-00\./);
    assert.doesNotMatch(m.subject + m.text, /FAILED/);
    assert.equal(summaryText(scrubbed)[0], 'backup mailcow-2025-01-15-03-00-00 published and verified on the Storage Box, but the scrub found an older backup DAMAGED: mailcow-2025-01-10-03-00-00');
    const stopped = failedSummary({ exitCode: 130, failedPhase: 'verify', error: 'interrupted by SIGINT' });
    const i = composeReport(stopped, { redact });
    assert.equal(i.subject, '[mailcow-backup] INTERRUPTED mx1 — verify');
    assert.doesNotMatch(i.subject + i.text + summaryText(stopped).join('\n'), /FAILED/);
    assert.match(summaryText(stopped)[0]!, /^backup INTERRUPTED in phase verify: nothing was published/);
  });

  it('the e-mail names the method that verified the backup: sha256sum, or rsync --checksum on a box without it', () => {
    const plain = composeReport(okSummary({ verifyMethod: 'sha256sum' }), { redact });
    assert.match(plain.text, /is published and verified on the Storage Box with sha256sum\./);
    assert.match(plain.text, /321 transferred files, the box's sha256sum/);
    const fallback = composeReport(okSummary({ verifyMethod: 'rsync-checksum' }), { redact });
    assert.match(fallback.text, /is published and verified on the Storage Box with rsync --checksum\./);
    assert.match(fallback.text, /321 transferred files, rsync --checksum \(the box has no sha256sum; its rsync read every byte\)/);
    assert.ok(fallback.html.includes('rsync --checksum (the box has no sha256sum'));
    // A first backup's bulk goes to rsync --checksum on a box with sha256sum: both are named, with their counts.
    const mixed = okSummary({ verifyMethod: 'sha256sum', verifiedByRsync: 300 });
    assert.match(composeReport(mixed, { redact }).text, /is published and verified on the Storage Box with sha256sum and rsync --checksum\./);
    assert.match(composeReport(mixed, { redact }).text, /321 transferred files: 21 by the box's sha256sum, 300 by rsync --checksum against this host's copy \(the box's rsync read every byte\)/);
    assert.match(summaryText(mixed).join('\n'), /verified +321 transferred files: 21 by the box's sha256sum, 300 by rsync --checksum/);
    const partial = composeReport(okSummary({ ok: false, exitCode: 3, failedPhase: 'prune', error: 'rm failed', verifyMethod: 'rsync-checksum' }), { redact });
    assert.match(partial.text, /is published and verified on the Storage Box with rsync --checksum, but the prune phase failed/);
  });

  function assertNoSecretIn(s: string) {
    for (const x of [DB_SECRET, HTML_SECRET, escapeHtml(HTML_SECRET)]) assert.ok(!s.includes(x), `holds ${x}`);
  }
});

describe('status file, Prometheus and the status command', () => {
  const now = new Date('2025-01-15T12:00:00.000Z');
  const id = (t: string) => t;

  it('records failure streaks and the last success', () => {
    const s1 = nextStatus(undefined, okSummary(), { now, redact: id });
    assert.equal(s1.consecutiveFailures, 0);
    assert.equal(s1.lastSuccessBackup, 'mailcow-2025-01-15-03-00-00');
    const s2 = nextStatus(s1, failedSummary({ finishedAt: '2025-01-16T02:01:00.000Z' }), { now, redact: id });
    const s3 = nextStatus(s2, failedSummary({ finishedAt: '2025-01-17T02:01:00.000Z' }), { now, redact: id });
    assert.equal(s3.consecutiveFailures, 2);
    assert.equal(s3.failingSince, '2025-01-16T02:01:00.000Z');
    assert.equal(s3.previousResult, 'failed');
    assert.equal(s3.lastSuccessAt, '2025-01-15T02:12:30.000Z');
    const s4 = nextStatus(s3, okSummary({ finishedAt: '2025-01-18T02:12:00.000Z' }), { now, redact: id });
    assert.equal(s4.previousResult, 'failed');
    assert.equal(s4.failingSince, undefined);
    assert.equal(s4.consecutiveFailures, 0);
  });

  it('renders valid Prometheus text', () => {
    const st = nextStatus(undefined, failedSummary(), { now, redact: id });
    const prom = renderPrometheus(st);
    assert.match(prom, /^mailcow_backup_last_run_success 0$/m);
    assert.match(prom, /^mailcow_backup_last_run_result\{result="failed"\} 1$/m);
    assert.match(prom, /^mailcow_backup_last_run_phase_duration_seconds\{phase="dump"\} 2$/m);
    assert.match(prom, /^mailcow_backup_consecutive_failures 1$/m);
    assert.ok(!/size_bytes|sent_bytes/.test(prom), 'no sizes for a run that made none');
    // every sample line is NAME{labels} VALUE, every metric has one HELP and TYPE
    for (const l of prom.trim().split('\n')) assert.match(l, /^(# (HELP|TYPE) \w+ .+|\w+(\{[^}]*\})? -?[0-9.e+]+)$/);
    const types = prom.split('\n').filter((l) => l.startsWith('# TYPE'));
    assert.equal(new Set(types).size, types.length);
  });

  const cfg = { STATUS_FILE: '/nonexistent/status.json', STALE_AFTER_HOURS: 26 };
  const statusAt = (s: RunStatus | undefined) => async () => s;

  it('healthy after a fresh success', async () => {
    const st = nextStatus(undefined, okSummary({ finishedAt: '2025-01-15T03:12:00.000Z' }), { now, redact: id });
    const verification = { state: 'verified' as const, at: '2025-01-15T03:12:00.000Z', by: 'run' as const };
    const r = await statusReport({ config: cfg, now: () => now, readStatus: statusAt(st), newestOnBox: async () => ({ name: 'mailcow-2025-01-15-04-00-00', date: '2025-01-15T03:00:00.000Z', verification }) });
    assert.equal(r.healthy, true, r.lines.join('\n'));
    assert.match(r.lines.join('\n'), /newest backup +mailcow-2025-01-15-04-00-00, 9\.0 h old \(on the box, verified at publish 2025-01-15 \d\d:12, not yet scrubbed\)/);
  });

  it('an interrupted run is shown as such and leaves the failure streak alone', async () => {
    const ok = nextStatus(undefined, okSummary({ finishedAt: '2025-01-15T03:12:00.000Z' }), { now, redact: id });
    const cut = nextStatus(ok, failedSummary({ exitCode: 130, failedPhase: 'verify', error: 'interrupted by SIGINT', finishedAt: '2025-01-15T11:00:00.000Z' }), { now, redact: id });
    assert.equal(cut.result, 'interrupted');
    assert.equal(cut.consecutiveFailures, 0);
    assert.equal(cut.lastSuccessBackup, ok.lastSuccessBackup);
    const r = await statusReport({ config: cfg, now: () => now, readStatus: statusAt(cut) });
    assert.match(r.lines[0]!, /: INTERRUPTED in verify \(exit 130\), nothing was published/);
    assert.doesNotMatch(r.lines.join('\n'), /FAILED|failing/);
    assert.equal(r.healthy, true, r.lines.join('\n'));
    assert.match(renderPrometheus(cut), /^mailcow_backup_last_run_result\{result="interrupted"\} 1$/m);
  });

  it('warns when the newest verified backup is older than the threshold', async () => {
    const st = nextStatus(undefined, okSummary(), { now, redact: id });
    const r = await statusReport({ config: cfg, now: () => new Date('2025-01-17T12:00:00.000Z'), readStatus: statusAt(st) });
    assert.equal(r.healthy, false);
    assert.match(r.lines.join('\n'), /WARNING +the newest verified backup is older than 26 h/);
    assert.match(r.lines.join('\n'), /from the status file; the box was not asked/);
  });

  it('not healthy after a failed run, with no status, or when the box cannot be asked', async () => {
    const st = nextStatus(undefined, failedSummary(), { now, redact: id });
    const r1 = await statusReport({ config: cfg, now: () => now, readStatus: statusAt(st), newestOnBox: async () => ({ name: 'mailcow-2025-01-15-04-00-00', date: '2025-01-15T03:00:00.000Z' }) });
    assert.equal(r1.healthy, false);
    assert.match(r1.lines.join('\n'), /FAILED in dump/);
    const r2 = await statusReport({ config: cfg, now: () => now });
    assert.equal(r2.healthy, false);
    assert.match(r2.lines.join('\n'), /none recorded/);
    const r3 = await statusReport({
      config: cfg,
      now: () => now,
      readStatus: statusAt(nextStatus(undefined, okSummary(), { now, redact: id })),
      newestOnBox: async () => {
        throw new Error('ssh: connect to host timed out');
      },
    });
    assert.equal(r3.healthy, false);
    assert.match(r3.lines.join('\n'), /could not be asked/);
  });

  it('isLoopbackHost', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['mail.example.com', '10.0.0.1', '128.0.0.1']) assert.equal(isLoopbackHost(h), false, h);
  });
});
