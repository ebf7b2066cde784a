// What the SMTP code promises about TLS, checked against a real SMTP server on loopback with a
// self-signed certificate made by openssl: SMTP_USER's credentials only ever travel inside TLS
// (a server that offers no STARTTLS gets none of them), port 465 speaks TLS from the first byte,
// SMTP_TLS_CA is read from the config, and a host that is not loopback is verified against
// SMTP_HOST itself (not MAILCOW_HOSTNAME).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dns from 'node:dns';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createLogger } from '../src/adapters/logger.js';
import { configSchema } from '../src/config/schema.js';
import { runTestEmail, type NotifyDeps } from '../src/notify/after-run.js';

const MAIL_HOST = 'mail.example.test';
/** Not loopback by name; the test's resolver answers 127.0.0.1 for it. */
const REMOTE_HOST = 'smtp.example.test';
const PASSWORD = 'SmtpPassw0rd-Zx81';

interface Seen {
  /** Each AUTH the server received: was the session inside TLS, and which password. */
  auths: { secure: boolean; password: string }[];
  delivered: { secure: boolean }[];
}

describe('SMTP over TLS', () => {
  let tmp: string;
  let cert: string;
  let key: string;
  const servers: SMTPServer[] = [];
  const realResolve4 = dns.Resolver.prototype.resolve4;
  const realLookup = dns.lookup;

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smtp-tls-test-'));
    cert = path.join(tmp, 'cert.pem');
    key = path.join(tmp, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${MAIL_HOST}`, '-addext', `subjectAltName=DNS:${MAIL_HOST},DNS:${REMOTE_HOST}`], { stdio: 'ignore' });
    // REMOTE_HOST resolves to loopback for nodemailer (its resolver first, dns.lookup as fallback).
    (dns.Resolver.prototype as unknown as Record<string, unknown>).resolve4 = function (this: dns.Resolver, host: string, ...rest: unknown[]) {
      const cb = rest[rest.length - 1] as (e: Error | null, a: string[]) => void;
      if (host === REMOTE_HOST) return void process.nextTick(cb, null, ['127.0.0.1']);
      return (realResolve4 as (...a: unknown[]) => unknown).call(this, host, ...rest);
    };
    (dns as unknown as Record<string, unknown>).lookup = (host: string, opts: unknown, cb: unknown) =>
      host === REMOTE_HOST ? (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]) : (realLookup as (...a: unknown[]) => unknown)(host, opts, cb);
  });

  after(async () => {
    dns.Resolver.prototype.resolve4 = realResolve4;
    (dns as unknown as Record<string, unknown>).lookup = realLookup;
    for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  /** A real SMTP server on loopback that records every AUTH and delivery. */
  async function server(opts: Partial<SMTPServerOptions>, listen: { host?: string; port?: number } = {}): Promise<{ port: number; seen: Seen }> {
    const seen: Seen = { auths: [], delivered: [] };
    const s = new SMTPServer({
      key: fs.readFileSync(key),
      cert: fs.readFileSync(cert),
      name: MAIL_HOST,
      logger: false,
      // Accept AUTH even without TLS: a client that sends its password in clear is then seen.
      allowInsecureAuth: true,
      authOptional: true,
      onAuth(auth, session, cb) {
        seen.auths.push({ secure: session.secure, password: auth.password ?? '' });
        cb(null, { user: auth.username });
      },
      onData(stream, session, cb) {
        stream.on('data', () => undefined);
        stream.on('end', () => {
          seen.delivered.push({ secure: session.secure });
          cb();
        });
      },
      ...opts,
    });
    servers.push(s);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.listen(listen.port ?? 0, listen.host ?? '127.0.0.1', resolve);
    });
    return { port: (s.server.address() as AddressInfo).port, seen };
  }

  let caseNo = 0;
  function deps(env: Record<string, string>): NotifyDeps {
    const dir = path.join(tmp, `case-${++caseNo}`);
    fs.mkdirSync(dir);
    const config = configSchema.parse({
      HETZNER_HOST: 'u123456.your-storagebox.de',
      HETZNER_USER: 'u123456',
      MAILCOW_PATH: path.join(dir, 'mailcow'),
      STATE_DIR: dir,
      LOG_FILE: path.join(dir, 'run.log'),
      STATUS_FILE: path.join(dir, 'status.json'),
      EMAIL_NOTIFICATIONS: 'yes',
      NOTIFICATION_EMAIL: 'admin@example.test',
      NOTIFICATION_FROM: 'backup@example.test',
      SMTP_HOST: '127.0.0.1',
      ...env,
    });
    return {
      config,
      log: createLogger({ logFile: config.LOG_FILE, console: 'silent' }),
      now: () => new Date('2025-01-15T02:13:00.000Z'),
      mailcowConf: { MAILCOW_HOSTNAME: MAIL_HOST },
      smtp: { timeoutMs: 3000 },
    };
  }

  it('with SMTP_USER: logs in only after STARTTLS, and never to a server that offers no STARTTLS', async () => {
    const tls = await server({});
    const ok = await runTestEmail(deps({ SMTP_PORT: String(tls.port), SMTP_USER: 'backup', SMTP_PASSWORD: PASSWORD, SMTP_TLS_CA: cert }));
    assert.equal(ok.ok, true, ok.lines.join('\n'));
    assert.deepEqual(tls.seen.auths, [{ secure: true, password: PASSWORD }], 'one login, inside TLS');
    assert.deepEqual(tls.seen.delivered, [{ secure: true }]);
    assert.ok(!ok.lines.join('\n').includes(PASSWORD), 'the dialogue shown does not hold the password');

    // The same server without STARTTLS (a downgrade on the way): nothing is sent, no login.
    const plain = await server({ disabledCommands: ['STARTTLS'] });
    const refused = await runTestEmail(deps({ SMTP_PORT: String(plain.port), SMTP_USER: 'backup', SMTP_PASSWORD: PASSWORD, SMTP_TLS_CA: cert }));
    assert.equal(refused.ok, false, refused.lines.join('\n'));
    assert.deepEqual(plain.seen.auths, [], 'the password never reached a server without TLS');
    assert.deepEqual(plain.seen.delivered, []);
    assert.match(refused.error ?? '', /STARTTLS|TLS/i);
  });

  it('port 465 is TLS from the first byte', async () => {
    // 465 needs root; any loopback address of 127/8 serves, one no other test uses.
    const host = `127.${1 + (process.pid % 200)}.${(process.pid >> 8) % 250}.${2 + (Date.now() % 200)}`;
    const implicit = await server({ secure: true }, { host, port: 465 }).catch((e: NodeJS.ErrnoException) => e);
    if (implicit instanceof Error) {
      assert.equal(implicit.code, 'EACCES', String(implicit));
      return; // not root: binding 465 is not allowed here
    }
    const r = await runTestEmail(deps({ SMTP_HOST: host, SMTP_PORT: '465', SMTP_USER: 'backup', SMTP_PASSWORD: PASSWORD, SMTP_TLS_CA: cert }));
    assert.equal(r.ok, true, r.lines.join('\n'));
    assert.deepEqual(implicit.seen.auths, [{ secure: true, password: PASSWORD }]);
    assert.deepEqual(implicit.seen.delivered, [{ secure: true }]);
    assert.doesNotMatch(r.lines.join('\n'), /C: STARTTLS/, 'no STARTTLS: the connection was TLS already');
  });

  it('trusts the CA named by SMTP_TLS_CA in the config, and only then', async () => {
    const s = await server({});
    const withCa = await runTestEmail(deps({ SMTP_PORT: String(s.port), SMTP_TLS_CA: cert }));
    assert.equal(withCa.ok, true, withCa.lines.join('\n'));
    assert.match(withCa.lines.join('\n'), new RegExp(`system CAs and ${cert.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    const without = await runTestEmail(deps({ SMTP_PORT: String(s.port) }));
    assert.equal(without.ok, false, without.lines.join('\n'));
    assert.match(without.error ?? '', /TLS certificate of 127\.0\.0\.1:\d+ not accepted/);
    assert.deepEqual(s.seen.delivered, [{ secure: true }], 'only the run with the CA delivered');
  });

  it('verifies a host that is not loopback against SMTP_HOST, not MAILCOW_HOSTNAME', async () => {
    // A certificate for SMTP_HOST: accepted.
    const s = await server({});
    const ok = await runTestEmail(deps({ SMTP_HOST: REMOTE_HOST, SMTP_PORT: String(s.port), SMTP_TLS_CA: cert }));
    assert.equal(ok.ok, true, ok.lines.join('\n'));
    assert.match(ok.lines.join('\n'), new RegExp(`certificate verified for ${REMOTE_HOST.replace(/\./g, '\\.')}`));
    // A certificate for MAILCOW_HOSTNAME only: refused, although it would pass on loopback.
    const only = path.join(tmp, 'only-mail');
    fs.mkdirSync(only);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(only, 'key.pem'), '-out', path.join(only, 'cert.pem'), '-days', '2', '-subj', `/CN=${MAIL_HOST}`, '-addext', `subjectAltName=DNS:${MAIL_HOST}`], { stdio: 'ignore' });
    const t = await server({ key: fs.readFileSync(path.join(only, 'key.pem')), cert: fs.readFileSync(path.join(only, 'cert.pem')) });
    const refused = await runTestEmail(deps({ SMTP_HOST: REMOTE_HOST, SMTP_PORT: String(t.port), SMTP_TLS_CA: path.join(only, 'cert.pem') }));
    assert.equal(refused.ok, false, refused.lines.join('\n'));
    assert.match(refused.error ?? '', new RegExp(`TLS certificate of ${REMOTE_HOST.replace(/\./g, '\\.')}:\\d+ not accepted .*it must be valid for ${REMOTE_HOST.replace(/\./g, '\\.')}$`));
    assert.deepEqual(t.seen.delivered, []);
  });
});
