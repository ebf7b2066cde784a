// Every exit code the commands use, in one table; the README documents the same table
// (a test checks that they agree).
import type { ErrorKind } from '../errors.js';

export const EXIT = {
  ok: 0,
  failed: 1,
  config: 2,
  partial: 3,
  preflight: 4,
  verify: 5,
  unhealthy: 6,
  dumpBusy: 7,
  internal: 70,
  locked: 75,
  interrupted: 130,
  terminated: 143,
} as const;

export const EXIT_DOCS: [code: number, meaning: string][] = [
  [EXIT.ok, 'Success: the backup is published and verified (or the command did what it was asked).'],
  [EXIT.failed, 'The run failed; nothing new was published. Earlier backups are untouched.'],
  [EXIT.config, 'Bad configuration or command line; the message names the key or flag and a good value.'],
  [EXIT.partial, 'Backup: published and verified, but a later step (retention, local cleanup) failed, or the scrub found an older backup DAMAGED (the report names it; see verify). Restore: done, but some mailcow containers are not up.'],
  [EXIT.preflight, 'A precondition failed before anything was written: disk space, mailcow folder, the box, its host key; restore: a pre-restore check failed or the age identity does not decrypt the backup, nothing was changed.'],
  [EXIT.verify, 'Data on the box does not match the manifest; nothing was published (restore: the download does not match checksums.sha256, nothing was changed).'],
  [EXIT.unhealthy, "'status' or 'verify': the newest backup is too old, a run failed, or a backup on the box is damaged."],
  [EXIT.dumpBusy, "Backup: mailcow's dump container (mailcow-backup) exists and no dead run of this tool left it: mailcow's script is running by hand, or its container is stuck (the message names it and how to remove it); nothing was dumped. Restore: the same container would make mailcow's script fail to restore; nothing was restored (checked before anything is stopped)."],
  [EXIT.internal, 'An internal error (a bug): the message carries the details; please report it.'],
  [EXIT.locked, 'Another run holds the lock; try again later (sysexits TEMPFAIL). Logged only: no e-mail, no ping, the status file is unchanged.'],
  [EXIT.interrupted, 'Interrupted by SIGINT (Ctrl-C); children stopped, lock released, temp files removed; status shows the run as interrupted, not failed.'],
  [EXIT.terminated, 'Stopped by SIGTERM (e.g. systemd); cleanup as for SIGINT.'],
];

export function exitCodeFor(kind: ErrorKind): number {
  switch (kind) {
    case 'config':
      return EXIT.config;
    case 'locked':
      return EXIT.locked;
    case 'dump-busy':
      return EXIT.dumpBusy;
    case 'preflight':
      return EXIT.preflight;
    case 'failed':
      return EXIT.failed;
    case 'verify':
      return EXIT.verify;
    case 'partial':
      return EXIT.partial;
    case 'interrupted':
      return EXIT.interrupted;
  }
}
