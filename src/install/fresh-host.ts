// The installer's half of the shrink guard: on a standby host installed with the old host's
// .env, the daily timer would back up the fresh, nearly empty mailcow into the same box folder
// before (or instead of) the restore. So before it enables the timer, the installer sets this
// host's mail store against the newest backup on the box with the run's own comparison
// (mailboxes, mail files; SHRINK_GUARD_PERCENT) and holds the timer back when it shrank.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Exec } from '../adapters/exec.js';
import { createLogger } from '../adapters/logger.js';
import { folderTotals, readMailcowConf, volumePath } from '../adapters/mailcow.js';
import { StorageBox } from '../adapters/storage-box.js';
import { recordedMeasures } from '../backup/shrink-guard.js';
import { boxTargetOf } from '../cli/context.js';
import type { Config } from '../config/schema.js';
import { errorText } from '../errors.js';
import { publishedBackups } from '../plan/names.js';
import { describeShrink, shrinkOf, SHRINK_KEY } from '../plan/shrink.js';
import { rooted, UNIT_NAMES } from './layout.js';

export interface FreshHostVerdict {
  /** Set when the timer must wait: the one line to print. */
  holdTimer?: string;
  /** What was found otherwise (no backups, the box not reachable yet), for an info line. */
  note: string;
}

export async function freshHostVerdict(config: Config, root: string, exec: Exec): Promise<FreshHostVerdict> {
  const percent = config.SHRINK_GUARD_PERCENT;
  if (percent <= 0) return { note: `${SHRINK_KEY}=0: this host's mail is not compared with the backups on the box` };
  if (!config.BACKUP_COMPONENTS.includes('vmail')) return { note: 'no vmail in BACKUP_COMPONENTS: this host\'s mail is not compared with the backups on the box' };
  const box = new StorageBox(boxTargetOf(config), exec, createLogger({ console: 'silent' }));
  const tmp = await mkdtemp(join(tmpdir(), 'mcb-install-'));
  try {
    let newest: string | undefined;
    let recorded;
    try {
      await box.connect();
      const r = config.HETZNER_REMOTE_PATH;
      newest = publishedBackups(await box.list(r)).pop();
      if (!newest) return { note: `no backups in ${r} on the box yet` };
      recorded = (await recordedMeasures(box, r, newest, tmp)).measures;
    } catch (e) {
      return { note: `could not ask the box for its newest backup (${errorText(e)}); the daily run still refuses a backup far smaller than the newest (${SHRINK_KEY})` };
    } finally {
      await box.close().catch(() => undefined);
    }
    if (!recorded) return { note: `${newest} has no readable backup.json: this host's mail is not compared with it` };
    // Mailboxes and mail files: the record's bytes include the archives, which this host has not dumped.
    const need = { mailboxes: recorded.mailboxes, mailFiles: recorded.mailFiles };
    const vmail = config.VMAIL_VOLUME_PATH ?? (await volumePath(exec, readMailcowConf(rooted(root, config.MAILCOW_PATH)).COMPOSE_PROJECT_NAME || 'mailcowdockerized', 'vmail'));
    const mailboxes = new Set<string>();
    const enough = (n: number | undefined, have: number) => n === undefined || have >= n * (1 - percent / 100);
    // Stops as soon as this host holds enough: a re-install on a large primary walks a little.
    const t = vmail
      ? await folderTotals(rooted(root, vmail), (rel, files, sofar) => {
          // As mailboxTotals counts them for the record: `domain/user` of the files below it.
          const parts = rel.split('/');
          if (files > 0 && parts.length >= 2) mailboxes.add(`${parts[0]}/${parts[1]}`);
          return enough(need.mailboxes, mailboxes.size) && enough(need.mailFiles, sofar.files) && sofar.files > 0;
        })
      : { files: 0, bytes: 0 };
    const shrunk = shrinkOf(need, { mailboxes: mailboxes.size, mailFiles: t.files }, percent);
    if (shrunk.length === 0) return { note: `this host's mail store is not far smaller than ${newest}, the newest backup on the box` };
    return {
      note: '',
      holdTimer:
        `this host's mailcow looks freshly installed while the box holds backups (against ${newest}: ${describeShrink(shrunk)}), so ${UNIT_NAMES.timer} is NOT enabled: a backup now would be refused, or published over the good one with --accept-shrink. ` +
        `Restore first (sudo restore-from-hetzner), then enable it: systemctl enable --now ${UNIT_NAMES.timer}`,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
