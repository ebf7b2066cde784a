// Loopback listeners the notification tests read from: an SMTP server that keeps every message it
// receives (plain, no STARTTLS) and an HTTP server that keeps every healthcheck ping.
import http from 'node:http';
import { SMTPServer } from 'smtp-server';

/** Pushes each received message, as text, onto `mails`; listening on 127.0.0.1 when it resolves. */
export async function startMailSink(mails: string[]): Promise<SMTPServer> {
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _s, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => (mails.push(Buffer.concat(chunks).toString('utf8')), cb()));
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  return smtp;
}

/** Pushes each request's path and body onto `pings`; listening on 127.0.0.1 when it resolves. */
export async function startPingServer(pings: { path: string; body: string }[]): Promise<http.Server> {
  const hc = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => (pings.push({ path: req.url ?? '', body }), res.end('OK')));
  });
  await new Promise<void>((resolve) => hc.listen(0, '127.0.0.1', resolve));
  return hc;
}
