// doveadm in mailcow's dovecot-mailcow container (`docker compose exec -T`): dovecot holds the
// mail_crypt keys, so only it can read the messages' headers, and only it keeps indexes, quota
// and flags right when mail is added. Its errors become lines an admin can act on.
import type { Exec, RunResult } from './exec.js';
import { isUserError, UserError } from '../errors.js';
import { queryErrorLine } from '../plan/message-search.js';
import { compose } from '../restore/vmail.js';

/** The vmail volume as dovecot-mailcow mounts it: paths handed to doveadm are the container's. */
export const CONTAINER_VMAIL = '/var/vmail';

export async function doveadm(exec: Exec, mailcowPath: string, args: string[], what: string, timeoutMs = 3_600_000): Promise<RunResult> {
  try {
    return await compose(exec, mailcowPath, ['exec', '-T', 'dovecot-mailcow', 'doveadm', ...args], what, timeoutMs);
  } catch (e) {
    if (!isUserError(e) || e.kind === 'interrupted') throw e;
    const bad = queryErrorLine(e.details);
    if (bad) throw new UserError('config', `dovecot refuses the search query: ${bad.replace(/^Fatal: /, '')}; see 'man doveadm-search-query'`);
    const lines = e.details.join('\n');
    if (/is not running/.test(lines)) throw new UserError('preflight', `dovecot-mailcow is not running: start it (cd ${mailcowPath} && docker compose up -d dovecot-mailcow) and try again; nothing was changed`);
    const user = /User doesn't exist|[Uu]nknown user/.exec(lines);
    if (user) throw new UserError('preflight', `dovecot has no such mailbox on this host (${lines.split('\n').find((l) => user[0] && l.includes(user[0]))?.trim()}); create it in mailcow first`);
    throw e;
  }
}
