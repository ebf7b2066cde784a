// The interactive restore: questions only (inquirer); every action is the engine's.
import { checkbox, input, search, select } from '@inquirer/prompts';
import { listBackups } from '../backup/list.js';
import type { RunContext } from '../backup/context.js';
import { COMPONENTS, type Component } from '../config/schema.js';
import { isUserError, UserError } from '../errors.js';
import { snapshotBackupFolder } from '../plan/snapshots.js';
import { listSnapshotBackups, snapshotListText } from './snapshot-list.js';
import { age, bytes } from '../plan/human.js';
import { verificationText } from '../plan/verification.js';
import { executeRestore, listBackupMailboxes, prepareRestore, type RestoreReport, type RestoreRequest } from './engine.js';
import { DONE, mailboxRows, toggle } from './mailbox-list.js';
import { type Check, type Mode } from './plan.js';
import { restoreMessagesWizard } from './wizard-messages.js';

export const CONFIRM_WORD = 'RESTORE';

const COMPONENT_TEXT: Record<Component, string> = {
  vmail: 'vmail    all mailboxes (mail files)',
  crypt: 'crypt    mail_crypt keys (needed to read the mail)',
  redis: 'redis    redis DB',
  rspamd: 'rspamd   rspamd data (same architecture only)',
  postfix: 'postfix  postfix spool / queue',
  mysql: 'mysql    SQL DB (stops all of mailcow, may rewrite DB credentials)',
};

export const checkLine = (c: Check) => `${c.status.padEnd(4)} ${c.title.padEnd(17)} ${c.detail}`;

/** The box must be connected. Returns the report, or undefined when the admin backed out. */
export async function runWizard(ctx: RunContext, out: (l: string) => void, identity?: string): Promise<RestoreReport | undefined> {
  out(`connected to the Storage Box ${ctx.config.HETZNER_USER}@${ctx.config.HETZNER_HOST} (host key checked against ${ctx.config.SSH_KNOWN_HOSTS})`);
  const list = await listBackups(ctx, { sizes: true });
  let backup: string;
  if (list.length === 0) {
    // Wiped by whoever had this server's key? The box's read-only snapshots may still hold them.
    out('the live folder on the Storage Box holds no published backup; looking inside the box\'s snapshots...');
    backup = await pickFromSnapshots(ctx, out);
  } else {
    backup = await select({
      message: 'Which backup?',
      choices: [
        ...list.map((b) => ({
          name: `${b.name}  ${new Date(b.date).toLocaleString('sv-SE').slice(0, 16)}  ${age(b.ageHours * 3_600_000).padEnd(8)} ${b.addedBytes === undefined ? '' : `adds ${bytes(b.addedBytes)}`}  ${verificationText(b)}`,
          value: b.name,
        })),
        { name: "a copy inside one of the box's snapshots (read-only)...", value: FROM_SNAPSHOT },
      ],
      // The cursor starts on the newest backup not known to be damaged.
      default: list.find((b) => b.state !== 'damaged')?.name,
      pageSize: 12,
    });
    if (backup === FROM_SNAPSHOT) backup = await pickFromSnapshots(ctx, out);
  }
  const what = await select({
    message: 'What should be restored?',
    choices: [
      { name: 'everything (all components)', value: 'all' },
      { name: 'chosen components', value: 'components' },
      { name: 'one or more mailboxes', value: 'mailboxes' },
      { name: 'one or more messages (search a mailbox in this backup and older ones)', value: 'messages' },
    ],
  });
  if (what === 'messages') return restoreMessagesWizard(ctx, backup, out, CONFIRM_WORD);
  let components: Component[] = [];
  let mailboxes: string[] = [];
  let mode: Mode = 'replace';
  if (what === 'all') components = [...COMPONENTS];
  else if (what === 'components') {
    components = await checkbox({
      message: 'Components (space to toggle, enter to accept)',
      choices: COMPONENTS.map((c) => ({ name: COMPONENT_TEXT[c], value: c })),
      required: true,
    });
  } else {
    mailboxes = await chooseMailboxes(ctx, backup, out);
    mode = await select({
      message: 'Replace the mailbox, or merge the backup in as a restored folder?',
      choices: [
        { name: 'merge: add the backup as folder "Restored-<date>", keep current mail', value: 'merge' as Mode },
        { name: 'replace: the mailbox becomes the backup (newer mail is removed)', value: 'replace' as Mode },
      ],
    });
  }
  const req = { components, mailboxes, mode, identity };
  try {
    return await restoreOne(ctx, out, { ...req, backup });
  } catch (e) {
    // The live copy failed its verification: the same backup as a snapshot holds it is untouched.
    if (!isUserError(e) || e.kind !== 'verify' || backup.includes('@')) throw e;
    out(`error: ${e.message}`);
    // Its own copies first: a snapshot's is the same backup, made before anyone could damage it.
    const all = (await listSnapshotBackups(ctx)).backups;
    const copies = [...all.filter((c) => c.name === backup), ...all.filter((c) => c.name !== backup)];
    if (copies.length === 0) throw e;
    out(`the box's read-only snapshots hold ${copies.length} backup(s)${copies[0]!.name === backup ? `, ${backup} among them` : ` (not ${backup})`}`);
    const again = await select({ message: 'Restore from a snapshot instead?', choices: [...copies.map((c) => ({ name: `${c.ref}${c.live ? '' : '  (gone from the live folder)'}`, value: c.ref })), { name: 'no, stop here', value: '' }] });
    if (!again) throw e;
    return restoreOne(ctx, out, { ...req, backup: again });
  }
}

const FROM_SNAPSHOT = '@snapshots';

/** The backups the box's snapshots hold, newest snapshot first; throws when there are none. */
async function pickFromSnapshots(ctx: RunContext, out: (l: string) => void): Promise<string> {
  const l = await listSnapshotBackups(ctx);
  if (l.backups.length === 0) throw new UserError('failed', `there is no published backup on the Storage Box to restore, and ${snapshotListText(l, ctx.now())[0]}`);
  out(`${l.backups.length} backup(s) inside ${l.snapshots} snapshot(s); a restore checks every file against the backup's own checksums.sha256`);
  return select({
    message: 'Which backup, from which snapshot?',
    choices: l.backups.map((b) => ({ name: `${b.ref}${b.live ? '' : '  (gone from the live folder)'}`, value: b.ref })),
    pageSize: 12,
  });
}

/** Prepare, check, confirm, execute: one backup (NAME or NAME@SNAPSHOT). */
async function restoreOne(ctx: RunContext, out: (l: string) => void, req: Omit<RestoreRequest, 'downloadOnly' | 'keepDownload'>): Promise<RestoreReport | undefined> {
  out('reading the backup and checking this host...');
  const prep = await prepareRestore(ctx, req, async (name, fps) => {
    out(`${name} is encrypted with age (to ${fps.join(', ') || 'its recipients'}): its private key is needed to restore it.`);
    return input({
      message: 'Path of the age identity file (the private key, e.g. from your offline copy):',
      validate: (v) => (v.trim().startsWith('/') ? true : 'give an absolute path, e.g. /root/mailcow-backup.agekey'),
    }).then((v) => v.trim());
  });
  out('');
  out('pre-restore checks:');
  for (const c of prep.checks) out(`  ${checkLine(c)}`);
  if (prep.checks.some((c) => c.status === 'FAIL')) {
    out('');
    throw new UserError('preflight', 'a pre-restore check failed (FAIL above); nothing was changed');
  }
  out('');
  out('plan:');
  for (const l of prep.plan) out(`  ${l}`);
  out('');
  const typed = await input({ message: `Type ${CONFIRM_WORD} to start (anything else cancels):` });
  if (typed.trim() !== CONFIRM_WORD) {
    out('cancelled: nothing was changed');
    return undefined;
  }
  return executeRestore(ctx, prep, { progress: out, tty: Boolean(process.stderr.isTTY) });
}

/** The backup's mailboxes as a searchable list; each Enter adds (or removes) one, "done" ends. */
async function chooseMailboxes(ctx: RunContext, backup: string, out: (l: string) => void): Promise<string[]> {
  out(`reading the mailboxes ${backup} holds...`);
  const [name, snapshot] = backup.split('@') as [string, string | undefined];
  const list = await listBackupMailboxes(ctx, name, snapshot ? snapshotBackupFolder(snapshot, ctx.config.HETZNER_REMOTE_PATH, name) : undefined);
  const missing = list.filter((m) => m.onHost === false).length;
  out(`${backup} holds ${list.length} mailbox(es)${missing ? `; ${missing} of them NOT ON THIS HOST` : ''}`);
  let chosen: string[] = [];
  for (;;) {
    const pick = await search({
      message: `Mailboxes to restore: type to search (or a full address), Enter adds or removes one${chosen.length ? `; chosen: ${chosen.join(', ')}` : ''}`,
      source: (term) => mailboxRows(list, term, chosen),
      pageSize: 12,
    });
    if (pick === DONE) return chosen;
    chosen = toggle(chosen, pick);
  }
}
