// Dead-man's switch pings, healthchecks.io style: <url>/start when a run starts, <url> when it
// succeeded, <url>/fail (the log tail as body) when it failed, <url>/log (an entry that changes
// nothing) when it was interrupted. The monitoring service alerts
// when the success ping does not come: that covers the night nothing ran at all. A ping that
// fails is logged and never fails the backup; this module never throws.
import type { Logger } from '../adapters/logger.js';

export type PingKind = 'start' | 'success' | 'fail' | 'log';

export const PING_TIMEOUT_MS = 10_000;
/** healthchecks.io keeps the first 100 kB of a body; stay well below. */
const MAX_BODY = 10_000;

/** <url>/start, <url>, <url>/fail, <url>/log; a query string (e.g. ?create=1) is kept. */
export function pingUrl(base: string, kind: PingKind): string {
  const u = new URL(base);
  if (kind !== 'success') u.pathname = u.pathname.replace(/\/+$/, '') + '/' + kind;
  return u.toString();
}

export interface PingOptions {
  log: Logger;
  body?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** Sends one ping; true when the server answered 2xx. Never throws. */
export async function ping(base: string | undefined, kind: PingKind, opts: PingOptions): Promise<boolean> {
  if (!base) return false;
  let where = 'the healthcheck URL';
  try {
    const url = pingUrl(base, kind);
    // The URL's path is the check's secret: log the host only.
    where = new URL(url).host;
    const doFetch = opts.fetch ?? fetch;
    let body = opts.body === undefined ? undefined : opts.log.redact(opts.body);
    if (body && body.length > MAX_BODY) body = '…' + body.slice(body.length - MAX_BODY);
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=utf-8', 'user-agent': 'backup-to-hetzner' },
      body: body ?? '',
      signal: AbortSignal.timeout(opts.timeoutMs ?? PING_TIMEOUT_MS),
      redirect: 'follow',
    });
    // Drain the body so the connection is released.
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) {
      opts.log.warn(`healthcheck ping '${kind}' to ${where} was answered ${res.status} ${res.statusText}; the monitor may report a missed backup`);
      return false;
    }
    opts.log.debug(`healthcheck ping '${kind}' to ${where}: ${res.status}`);
    return true;
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const cause = err?.cause?.code ?? err?.cause?.message;
    const why = err?.name === 'TimeoutError' ? `no answer within ${(opts.timeoutMs ?? PING_TIMEOUT_MS) / 1000} s` : `${err?.message ?? String(e)}${cause ? ` (${cause})` : ''}`;
    opts.log.warn(opts.log.redact(`healthcheck ping '${kind}' to ${where} failed: ${why}; the backup itself is not affected`));
    return false;
  }
}
