// Delivery of the reports through SMTP (nodemailer), by default mailcow's own postfix on
// localhost:25. Its STARTTLS certificate is issued for MAILCOW_HOSTNAME, not for localhost:
// on a loopback connection the certificate is verified against MAILCOW_HOSTNAME (read from
// mailcow.conf); on any other host against that host's name. A certificate that does not
// verify ends the delivery: it never falls back to plain text. Credentials are only sent
// over TLS.
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { format } from 'node:util';
// Types only here: nodemailer itself is loaded when a mail is sent, not at every start-up.
import type nodemailer from 'nodemailer';
import type { ComposedMail } from './compose.js';

export interface SmtpSettings {
  host: string;
  port: number;
  user?: string;
  password?: string;
  /** The name the server's certificate must carry (MAILCOW_HOSTNAME for a loopback host). */
  certName?: string;
  /** Extra CA certificates (PEM file), trusted besides the system's. */
  caFile?: string;
  /** Per step (connect, greeting, each reply); default 20 s. */
  timeoutMs?: number;
  /** EHLO name; nodemailer's default is the host name. */
  ehloName?: string;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::1' || h === '::ffff:127.0.0.1';
}

/** SMTP settings from the config: MAILCOW_HOSTNAME is the certificate's name on loopback. */
export function smtpSettingsFrom(
  c: { SMTP_HOST: string; SMTP_PORT: number; SMTP_USER?: string; SMTP_PASSWORD?: string },
  mailcowHostname: string | undefined,
  caFile?: string,
): SmtpSettings {
  return {
    host: c.SMTP_HOST,
    port: c.SMTP_PORT,
    user: c.SMTP_USER,
    password: c.SMTP_PASSWORD,
    certName: isLoopbackHost(c.SMTP_HOST) ? mailcowHostname : undefined,
    caFile,
  };
}

/** One sentence on how the certificate is checked, for logs and the test message. */
export function tlsPolicyText(s: SmtpSettings): string {
  const name = s.certName ?? s.host;
  const implicit = s.port === 465;
  const how = implicit ? 'TLS from the start (port 465)' : s.user ? 'STARTTLS required (credentials are never sent in clear)' : 'STARTTLS when the server offers it';
  const missing = isLoopbackHost(s.host) && !s.certName ? '; MAILCOW_HOSTNAME unknown (mailcow.conf unreadable?), so the certificate must name the host itself' : '';
  return `${how}, certificate verified for ${name}${s.caFile ? ` (system CAs and ${s.caFile})` : ''}${missing}`;
}

export type SmtpTransportOptions = Parameters<typeof nodemailer.createTransport>[0];

export function transportOptions(s: SmtpSettings, extra: { transactionLog?: (line: string) => void } = {}): SmtpTransportOptions {
  const timeout = s.timeoutMs ?? 20_000;
  const tls: import('node:tls').ConnectionOptions = { rejectUnauthorized: true, minVersion: 'TLSv1.2' };
  if (s.certName) tls.servername = s.certName;
  if (s.caFile) tls.ca = [...rootCertificates, readFileSync(s.caFile, 'utf8')];
  const opts: SmtpTransportOptions = {
    host: s.host,
    port: s.port,
    secure: s.port === 465,
    requireTLS: Boolean(s.user),
    tls,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    dnsTimeout: timeout,
    // nodemailer skips loopback-only address families unless told: the default host is localhost.
    allowInternalNetworkInterfaces: isLoopbackHost(s.host),
    ...(s.ehloName ? { name: s.ehloName } : {}),
    ...(s.user ? { auth: { user: s.user, pass: s.password ?? '' } } : {}),
  };
  if (extra.transactionLog) {
    const sink = extra.transactionLog;
    const write =
      (level: string) =>
      (entry: { tnx?: string } | undefined, message?: string, ...args: unknown[]) => {
        const text = format(message ?? '', ...args);
        const prefix = entry?.tnx === 'server' ? 'S: ' : entry?.tnx === 'client' ? 'C: ' : level === 'error' || level === 'warn' ? `${level}: ` : '   ';
        for (const l of text.split(/\r?\n/)) if (l) sink(prefix + l);
      };
    Object.assign(opts as object, {
      transactionLog: true,
      logger: { trace: () => undefined, debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error'), fatal: write('error') },
    });
  }
  return opts;
}

export interface Message extends ComposedMail {
  from: string;
  to: string;
}

export interface DeliveryResult {
  /** The server's reply to the message, e.g. "250 2.0.0 Ok: queued as 4XyZ". */
  response: string;
  messageId: string;
  accepted: string[];
  rejected: string[];
}

/** Sends one message; throws a readable error when it is not accepted. */
export async function sendMessage(s: SmtpSettings, msg: Message, opts: { transactionLog?: (line: string) => void; transport?: SmtpTransportOptions } = {}): Promise<DeliveryResult> {
  const { default: mailer } = await import('nodemailer');
  const transporter = mailer.createTransport((opts.transport ?? transportOptions(s, { transactionLog: opts.transactionLog })) as never);
  try {
    const info = (await transporter.sendMail({
      from: msg.from,
      to: msg.to,
      subject: msg.subject,
      text: msg.text,
      html: msg.html,
      headers: { 'Auto-Submitted': 'auto-generated', 'X-Mailer': 'backup-to-hetzner' },
    })) as { response?: string; messageId?: string; accepted?: unknown[]; rejected?: unknown[] };
    const rejected = (info.rejected ?? []).map(String);
    if (rejected.length) throw new Error(`the server rejected ${rejected.join(', ')}: ${info.response ?? ''}`);
    return { response: String(info.response ?? ''), messageId: String(info.messageId ?? ''), accepted: (info.accepted ?? []).map(String), rejected };
  } catch (e) {
    throw new Error(smtpErrorText(e, s));
  } finally {
    transporter.close();
  }
}

/** One line an admin can act on: what failed, the server's words, and the likely fix. */
export function smtpErrorText(e: unknown, s: SmtpSettings): string {
  const err = e as { message?: string; code?: string; response?: string; command?: string };
  const target = `${s.host}:${s.port}`;
  const msg = (err?.message ?? String(e)).replace(/[\r\n]+/g, ' ');
  if (/certificate|altnames|self[- ]signed|unable to verify|UNABLE_TO|CERT_/i.test(msg)) {
    return `TLS certificate of ${target} not accepted (${msg}); it must be valid for ${s.certName ?? s.host}${isLoopbackHost(s.host) ? ' (MAILCOW_HOSTNAME)' : ''}`;
  }
  if (err?.code === 'ESOCKET' && /ECONNREFUSED/.test(msg)) return `nothing listens on ${target} (connection refused); is mailcow's postfix running?`;
  if (err?.code === 'ETIMEDOUT' || /timed? ?out/i.test(msg)) return `${target} did not answer in time (${msg})`;
  if (err?.code === 'EAUTH') return `${target} refused the login of SMTP_USER (${msg})`;
  if (err?.response) return `${target} refused${err.command ? ` ${err.command}` : ''}: ${String(err.response).replace(/[\r\n]+/g, ' ')}`;
  return `${target}: ${msg}`;
}

export interface TestOutcome {
  ok: boolean;
  /** Human lines: the policy, the redacted SMTP dialogue, and the verdict. */
  lines: string[];
  /** The connection was encrypted (STARTTLS upgrade or port 465). */
  encrypted: boolean;
  response?: string;
  error?: string;
}

/**
 * Sends a test message and tells how the SMTP dialogue went: every command and reply (AUTH
 * hidden by nodemailer, everything through the redactor), whether it was encrypted, and the
 * server's final word.
 */
export async function sendTest(s: SmtpSettings, msg: Message, redact: (t: string) => string): Promise<TestOutcome> {
  const dialogue: string[] = [];
  const lines = [`SMTP server: ${s.host}:${s.port}`, `TLS policy:  ${tlsPolicyText(s)}`, `from ${msg.from} to ${msg.to}`, ''];
  try {
    const r = await sendMessage(s, msg, { transactionLog: (l) => dialogue.push(redact(l)) });
    const encrypted = s.port === 465 || dialogue.some((l) => /upgraded with STARTTLS/i.test(l));
    lines.push(...dialogue, '');
    lines.push(`delivered: the server accepted the message for ${r.accepted.join(', ')} (${redact(r.response)})`);
    lines.push(encrypted ? 'the connection was encrypted and the certificate verified' : 'WARNING: the server offered no STARTTLS; the message went unencrypted');
    return { ok: true, lines, encrypted, response: r.response };
  } catch (e) {
    const error = redact((e as Error).message);
    const encrypted = s.port === 465 || dialogue.some((l) => /upgraded with STARTTLS/i.test(l));
    lines.push(...dialogue, '', `NOT delivered: ${error}`);
    return { ok: false, lines, encrypted, error };
  }
}
