// Loopback listeners the notification tests read from: an SMTP server that keeps every message it
// receives (plain by default; with a certificate it offers STARTTLS) and an HTTP server that keeps
// every healthcheck ping.
import http from 'node:http';
import { SMTPServer } from 'smtp-server';

/** One delivered message: its text, whether it came over TLS, and its envelope. */
export interface ReceivedMail {
  raw: string;
  secure: boolean;
  from: string;
  to: string[];
}

export interface MailSinkOptions {
  /** Offer STARTTLS with this certificate, as mailcow's postfix does. */
  tls?: { key: Buffer; cert: Buffer; name: string };
  /** Asked at each RCPT TO: true refuses the recipient with postfix's relay-denied answer. */
  refuseRecipient?: () => boolean;
  /** Also told every message with its envelope and TLS state. */
  onMail?: (m: ReceivedMail) => void;
}

/** Pushes each received message, as text, onto `mails`; listening on 127.0.0.1 when it resolves. */
export async function startMailSink(mails: string[], o: MailSinkOptions = {}): Promise<SMTPServer> {
  const smtp = new SMTPServer({
    ...(o.tls ? { key: o.tls.key, cert: o.tls.cert, name: o.tls.name } : { disabledCommands: ['STARTTLS'] }),
    authOptional: true,
    logger: false,
    onRcptTo(addr, _session, cb) {
      if (o.refuseRecipient?.()) return cb(Object.assign(new Error(`5.7.1 <${addr.address}>: Relay access denied`), { responseCode: 554 }));
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        mails.push(raw);
        o.onMail?.({
          raw,
          secure: session.secure,
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  return smtp;
}

export interface Ping {
  method: string;
  path: string;
  body: string;
}

/**
 * Pushes each request's method, path and body onto `pings`; answers with `status()` (200 unless
 * told otherwise); listening on 127.0.0.1 when it resolves.
 */
export async function startPingServer(pings: Ping[] | { path: string; body: string }[], status: () => number = () => 200): Promise<http.Server> {
  const hc = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      (pings as Ping[]).push({ method: req.method ?? '', path: req.url ?? '', body });
      const code = status();
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end(code === 200 ? 'OK' : 'nope');
    });
  });
  await new Promise<void>((resolve) => hc.listen(0, '127.0.0.1', resolve));
  return hc;
}
