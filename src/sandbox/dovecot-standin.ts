// The stand-in mailcow's dovecot: Debian's real dovecot (2.3, as in mailcow's dovecot-mailcow
// image) with a sandbox-private config, so `docker compose exec dovecot-mailcow doveadm …`
// answers as mailcow's does. mailcow's layout: users from a userdb whose `mail` field is
// `maildir:/var/vmail/<domain>/<user>/<MAILDIR_SUB>` with indexes in a separate place, the `/`
// hierarchy separator, and (optionally) mail_crypt with the global keys from the crypt volume.
// The fake docker starts the dovecot master on the first doveadm call (doveadm looks users up
// through its auth socket) and rebuilds the userdb from the vmail volume's mailbox folders.
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface StandinDovecotOptions {
  /** Turn on mail_crypt with the crypt volume's ecprivkey.pem / ecpubkey.pem, as mailcow does. */
  mailCrypt?: boolean;
}

export const dovecotDir = (mailcowPath: string) => join(mailcowPath, '.docker', 'dovecot');

export async function enableStandinDovecot(mailcowPath: string, o: StandinDovecotOptions = {}): Promise<void> {
  const d = dovecotDir(mailcowPath);
  const vmail = join(mailcowPath, 'volumes', 'vmail-vol-1');
  const crypt = join(mailcowPath, 'volumes', 'crypt-vol-1');
  await mkdir(join(d, 'index'), { recursive: true });
  await mkdir(join(d, 'run'), { recursive: true });
  // Mail processes run as the mailboxes' owner (5000 when root): it must reach the volume.
  await chmod(join(d, 'index'), 0o1777);
  for (let p = vmail; p !== dirname(p); p = dirname(p)) {
    const st = await stat(p);
    if ((st.mode & 0o011) !== 0o011) await chmod(p, st.mode | 0o011);
  }
  const me = process.getuid?.() === 0 ? undefined : (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.split(':')[2] === String(process.getuid?.()))?.split(':')[0];
  const conf = [
    `base_dir = ${join(d, 'run')}`,
    `state_dir = ${join(d, 'state')}`,
    `log_path = ${join(d, 'dovecot.log')}`,
    'protocols =',
    'ssl = no',
    'first_valid_uid = 1',
    ...(me ? [`default_internal_user = ${me}`, `default_login_user = ${me}`, `default_internal_group = ${me}`] : []),
    'namespace inbox {',
    '  inbox = yes',
    '  separator = /',
    '}',
    'userdb {',
    '  driver = passwd-file',
    `  args = username_format=%u ${join(d, 'users')}`,
    '}',
    'passdb {',
    '  driver = passwd-file',
    `  args = username_format=%u ${join(d, 'users')}`,
    '}',
    ...(o.mailCrypt
      ? [
          'mail_plugins = $mail_plugins mail_crypt',
          'plugin {',
          `  mail_crypt_global_private_key = <${join(crypt, 'ecprivkey.pem')}`,
          `  mail_crypt_global_public_key = <${join(crypt, 'ecpubkey.pem')}`,
          '  mail_crypt_save_version = 2',
          '}',
        ]
      : []),
  ];
  // The container's paths, which doveadm's arguments use, and where they are on this host.
  await writeFile(join(d, 'paths'), `/var/vmail\t${vmail}\n/mail_crypt\t${crypt}\n`);
  await writeFile(join(d, 'dovecot.conf'), conf.join('\n') + '\n');
}

/** Stops the stand-in's dovecot master, if it runs (sandbox teardown). */
export async function stopStandinDovecot(mailcowPath: string): Promise<void> {
  const pidFile = join(dovecotDir(mailcowPath), 'run', 'master.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    /* already gone */
  }
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await rm(pidFile, { force: true });
}
