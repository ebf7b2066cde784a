// The stand-in mailcow's SQL volume as a real MariaDB datadir (Debian's mariadb-server here, the
// `mariadb` image on a real host): mailcow's tables for domains, mailboxes and aliases (only the
// columns a drill reads, as in data/web/inc/init_db.inc.php), filled with the stand-in's mailboxes.
// Made by a throwaway mariadbd on a private socket, stopped again: nothing listens afterwards.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Small redo log: the default (96 MiB) would make every backup archive that much larger. */
export const STANDIN_MARIADB_ARGS = ['--innodb-log-file-size=4M', '--skip-networking', '--user=root'];

export interface StandinMailbox {
  address: string;
  /** 0 inactive, 1 active (mailcow's `mailbox.active`). */
  active: 0 | 1;
}

const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** SQL that creates mailcow's tables (abbreviated) and fills them. */
export function mailcowSql(dbName: string, mailboxes: StandinMailbox[]): string {
  const domains = [...new Set(mailboxes.map((m) => m.address.split('@')[1]!))].sort();
  const rows: string[] = [
    `CREATE DATABASE IF NOT EXISTS \`${dbName}\` CHARACTER SET utf8mb4;`,
    `USE \`${dbName}\`;`,
    `CREATE TABLE domain (domain VARCHAR(255) NOT NULL PRIMARY KEY, description VARCHAR(255), aliases INT NOT NULL DEFAULT 400, mailboxes INT NOT NULL DEFAULT 10, quota BIGINT NOT NULL DEFAULT 10240, active TINYINT(1) NOT NULL DEFAULT 1) ENGINE=InnoDB;`,
    `CREATE TABLE mailbox (username VARCHAR(255) NOT NULL PRIMARY KEY, password VARCHAR(255) NOT NULL DEFAULT '', name VARCHAR(255), local_part VARCHAR(255) NOT NULL, domain VARCHAR(255) NOT NULL, mailbox_path_prefix VARCHAR(150) DEFAULT '/var/vmail/', attributes JSON, kind VARCHAR(100) NOT NULL DEFAULT '', quota BIGINT NOT NULL DEFAULT 102400, active TINYINT(1) NOT NULL DEFAULT 1) ENGINE=InnoDB;`,
    `CREATE TABLE alias (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, address VARCHAR(255) NOT NULL UNIQUE, goto TEXT NOT NULL, domain VARCHAR(255) NOT NULL, active TINYINT(1) NOT NULL DEFAULT 1) ENGINE=InnoDB;`,
  ];
  for (const d of domains) rows.push(`INSERT INTO domain (domain, description) VALUES (${q(d)}, ${q(`${d} (stand-in)`)});`);
  for (const m of mailboxes) {
    const [local, domain] = m.address.split('@') as [string, string];
    rows.push(`INSERT INTO mailbox (username, local_part, domain, attributes, active) VALUES (${q(m.address)}, ${q(local)}, ${q(domain)}, '{"mailbox_format":"maildir:"}', ${m.active});`);
    // mailcow keeps an alias row per mailbox that delivers to itself
    rows.push(`INSERT INTO alias (address, goto, domain, active) VALUES (${q(m.address)}, ${q(m.address)}, ${q(domain)}, ${m.active});`);
  }
  for (const d of domains) {
    const first = mailboxes.find((m) => m.address.endsWith(`@${d}`))!;
    rows.push(`INSERT INTO alias (address, goto, domain) VALUES (${q(`postmaster@${d}`)}, ${q(first.address)}, ${q(d)});`);
  }
  return rows.join('\n') + '\n';
}

function run(cmd: string, args: string[], input?: string): void {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.stdout || '').trim().split('\n').slice(-5).join(' | ')}`);
}

/** Starts mariadbd on `datadir` with a socket in a short private folder; resolves once it answers. */
export async function startThrowawayMariadb(datadir: string): Promise<{ socket: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mdb-')); // a socket path must stay under 108 bytes
  const socket = join(dir, 's');
  const child = spawn('mariadbd', ['--no-defaults', `--datadir=${datadir}`, `--socket=${socket}`, `--pid-file=${join(dir, 'pid')}`, `--log-error=${join(dir, 'err.log')}`, ...STANDIN_MARIADB_ARGS], { stdio: 'ignore' });
  const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  for (;;) {
    const pinged = spawnSync('mariadb-admin', ['--no-defaults', '-S', socket, '-u', 'root', 'ping'], { encoding: 'utf8' });
    if (pinged.status === 0) break;
    if (child.exitCode !== null) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mariadbd on ${datadir} exited ${child.exitCode} before it answered`);
    }
    await new Promise((r) => setTimeout(r, 50)); // mariadbd has no readiness signal but its socket
  }
  return {
    socket,
    stop: async () => {
      spawnSync('mariadb-admin', ['--no-defaults', '-S', socket, '-u', 'root', 'shutdown']);
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Replaces `datadir`'s content by a fresh datadir holding mailcow's tables for `mailboxes`. */
export async function createMailcowDatabase(datadir: string, dbName: string, mailboxes: StandinMailbox[]): Promise<void> {
  rmSync(datadir, { recursive: true, force: true });
  run('mariadb-install-db', ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...STANDIN_MARIADB_ARGS.filter((a) => a !== '--skip-networking')]);
  const db = await startThrowawayMariadb(datadir);
  try {
    run('mariadb', ['--no-defaults', '-S', db.socket, '-u', 'root'], mailcowSql(dbName, mailboxes));
  } finally {
    await db.stop();
  }
}

/** Runs SQL on a stand-in datadir (tests: a mailbox added, a row changed), through a throwaway server. */
export async function sqlOnDatadir(datadir: string, dbName: string, sql: string): Promise<string> {
  const db = await startThrowawayMariadb(datadir);
  try {
    const r = spawnSync('mariadb', ['--no-defaults', '-S', db.socket, '-u', 'root', '-N', '-B', dbName], { input: sql, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`SQL failed: ${r.stderr}`);
    return r.stdout;
  } finally {
    await db.stop();
  }
}
