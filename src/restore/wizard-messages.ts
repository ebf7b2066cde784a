// The wizard's "one or more messages": a mailbox from the backup's list, a folder or all, a
// search in dovecot's language, then a checkbox list of what was found in the picked backup and
// the older ones; the chosen messages are imported after the typed confirmation.
import { checkbox, input, search } from '@inquirer/prompts';
import type { RunContext } from '../backup/context.js';
import { bytes } from '../plan/human.js';
import { foundLines, splitQuery } from '../plan/message-search.js';
import type { RestoreReport } from './engine.js';
import { listBackupMailboxes } from './engine.js';
import { DONE, mailboxRows } from './mailbox-list.js';
import { importMessages, searchMessages } from './messages.js';

export async function restoreMessagesWizard(ctx: RunContext, backup: string, out: (l: string) => void, confirmWord: string): Promise<RestoreReport | undefined> {
  out(`reading the mailboxes ${backup} holds...`);
  const list = await listBackupMailboxes(ctx, backup);
  let mailbox = DONE;
  while (mailbox === DONE) {
    mailbox = await search({ message: 'Mailbox to search: type to narrow the list, Enter picks one', source: (term) => mailboxRows(list, term, []).filter((r) => r.value !== DONE), pageSize: 12 });
  }
  const folder = (await input({ message: 'Folder (INBOX, Sent, Archive/2024, ...; empty: all folders):' })).trim();
  const query = splitQuery(
    await input({
      message: "Search (dovecot's search language, e.g. subject invoice from bob, since 2026-11-01; all):",
      validate: (v) => (splitQuery(v).length ? true : "type a search, or 'all'"),
    }),
  );
  out(`searching ${mailbox} in ${backup} and the older backups...`);
  const s = await searchMessages(ctx, { mailbox, query, folder: folder || undefined, upTo: backup }, out);
  try {
    const r = s.result;
    if (r.found.length === 0) {
      out(`no message of ${r.mailbox} matches; ${r.searched.length} backup(s) searched: ${r.searched.join(', ')}`);
      return undefined;
    }
    const lines = foundLines(r.found, bytes);
    const picked = await checkbox({
      message: `${r.found.length} message(s) found, newest first (space to pick, enter to accept)`,
      choices: r.found.map((m, i) => ({ name: lines[i]!, value: i, disabled: m.inMailbox ? '(still in the mailbox)' : false })),
      pageSize: 15,
      required: true,
    });
    const typed = await input({ message: `Type ${confirmWord} to restore ${picked.length} message(s) into folder "Restored-<today>" of ${r.mailbox} (anything else cancels):` });
    if (typed.trim() !== confirmWord) {
      out('cancelled: nothing was changed');
      return undefined;
    }
    const done = await importMessages(s, picked.map((i) => r.found[i]!));
    return { name: backup, restored: [`${done.restored} message(s) of ${r.mailbox} into folder ${done.folder}`], skipped: done.skipped ? [`${done.skipped} still in the mailbox`] : [], next: [`open ${done.folder} in ${r.mailbox} (webmail or an IMAP client)`] };
  } finally {
    await s.remove();
  }
}
