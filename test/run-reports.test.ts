// What a real `backup-to-hetzner run` reports to the outside, end to end on the sandbox: the
// healthcheck pings and the Prometheus file of an OK and of a failed run, the report e-mail
// through a real SMTP server on loopback, and redaction with a positive control: the stand-in
// mailcow script prints mailcow.conf's DB passwords (as a failing mysqldump can), and neither
// reaches the log, the e-mail, the /fail ping or the status file, while the lines around them do.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import type { SMTPServer } from 'smtp-server';
import { startMailSink, startPingServer, type ReceivedMail } from './support/listeners.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { backup, removeSandbox } from './support/cli.js';

const MAIL_HOST = 'mail.example.com'; // the stand-in's MAILCOW_HOSTNAME

describe('reports of a real run', () => {
  let dir: string;
  let sb: Sandbox;
  let smtp: SMTPServer;
  let hc: http.Server;
  const mails: ReceivedMail[] = [];
  const pings: { path: string; body: string }[] = [];
  let prom: string;
  let conf: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcb-reports-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${MAIL_HOST}`, '-addext', `subjectAltName=DNS:${MAIL_HOST}`], { stdio: 'ignore' });
    smtp = await startMailSink([], { tls: { key: fs.readFileSync(key), cert: fs.readFileSync(cert), name: MAIL_HOST }, onMail: (m) => mails.push(m) });
    hc = await startPingServer(pings);
    prom = join(dir, 'prom', 'mailcow_backup.prom');
    sb = await createSandbox({
      dir,
      mailBytes: 256 * 1024,
      seed: 41,
      strict: true,
      config: {
        HEALTHCHECK_URL: `http://127.0.0.1:${(hc.address() as AddressInfo).port}/ping/check-uuid`,
        PROMETHEUS_TEXTFILE: prom,
        EMAIL_NOTIFICATIONS: 'yes',
        NOTIFICATION_EMAIL: 'admin@example.test',
        NOTIFICATION_FROM: 'backup@example.test',
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String((smtp.server.address() as AddressInfo).port),
        SMTP_TLS_CA: cert,
      },
    });
    conf = Object.fromEntries(
      (await readFile(join(sb.mailcow.path, 'mailcow.conf'), 'utf8'))
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  });

  after(async () => {
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
    await new Promise<void>((resolve) => hc.close(() => resolve()));
    await removeSandbox(sb, dir);
  });

  const metric = (name: string) => (fs.readFileSync(prom, 'utf8').match(new RegExp(`^mailcow_backup_${name} (\\S+)$`, 'm')) ?? [])[1];

  test('an OK run pings start then success, writes the Prometheus file and mails the report over STARTTLS', async () => {
    const r = await backup(['run', '--config', sb.configPath], sb.env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(pings.map((p) => p.path), ['/ping/check-uuid/start', '/ping/check-uuid']);
    assert.equal(metric('last_run_success'), '1');
    assert.equal(metric('last_run_exit_code'), '0');
    assert.equal(metric('last_run_result{result="ok"}'.replace(/[{}"]/g, '\\$&')), '1');
    assert.deepEqual(fs.readdirSync(join(dir, 'prom')), ['mailcow_backup.prom'], 'written in place, no temporary file left');
    assert.equal(mails.length, 1);
    assert.equal(mails[0]!.secure, true);
    assert.match((await simpleParser(mails[0]!.raw)).subject ?? '', /^\[mailcow-backup\] OK \S+ — mailcow-\d{4}-/);
  });

  test('secrets the mailcow script prints reach neither log, e-mail, /fail ping nor status; the lines around them do', async () => {
    pings.length = 0;
    mails.length = 0;
    const secrets = [conf.DBPASS!, conf.DBROOT!];
    assert.ok(secrets.every((s) => s.length >= 16), 'the stand-in has DB passwords');
    // mysql's archive is missing too: the run fails and its report carries the log tail.
    const r = await backup(['run', '--debug', '--config', sb.configPath], { ...sb.env, STANDIN_PRINT_SECRETS: '1', STANDIN_FAIL_COMPONENT: 'mysql' });
    assert.equal(r.code, 1, r.stderr);
    const log = await readFile(join(dir, 'log', 'mailcow-backup.log'), 'utf8');
    // Positive control: the script's lines did reach the log, with the passwords masked.
    assert.match(log, /Using a password on the command line interface can be insecure: --password=\*\*\*/);
    assert.match(log, /Access denied for user 'root'@'localhost' \(using password: \*\*\*\)/);

    assert.deepEqual(pings.map((p) => p.path), ['/ping/check-uuid/start', '/ping/check-uuid/fail']);
    assert.equal(metric('last_run_success'), '0');
    assert.equal(metric('last_run_exit_code'), '1');
    assert.equal(mails.length, 1);
    const mail = await simpleParser(mails[0]!.raw);
    assert.match(mail.subject ?? '', /^\[mailcow-backup\] FAILED /);
    const status = await readFile(join(dir, 'state', 'status.json'), 'utf8');
    const places: [string, string][] = [
      ['the log file', log],
      ['the raw e-mail', mails[0]!.raw],
      ['the e-mail text', mail.text ?? ''],
      ['the /fail ping body', pings[1]!.body],
      ['the status file', status],
      ['the run output', r.stdout + r.stderr],
    ];
    for (const [where, text] of places) for (const s of secrets) assert.ok(!text.includes(s), `${where} holds a DB password`);
  });
});
