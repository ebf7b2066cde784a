/**
 * Lays out a stand-in mailcow-dockerized folder for tests (Docker does not run here):
 *   <dir>/mailcow.conf, <dir>/.env -> mailcow.conf, <dir>/docker-compose.yml,
 *   <dir>/helper-scripts/backup_and_restore.sh (the stand-in script, see its header),
 *   <dir>/volumes/{vmail,crypt,redis,rspamd,postfix,mysql}-vol-1/  ("docker volumes")
 * The stand-in script appends what it "did" to <dir>/standin-actions.log.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encryptStandinMail } from './mail-crypt-fixture.js';
import { createMailcowDatabase } from './mariadb-standin.js';
import { generateMaildir, mulberry32, seededBytes, VMAIL_GID, VMAIL_UID, type GenerateMaildirOptions, type GenerateMaildirResult } from './maildir-fixture.js';

export const STANDIN_VOLUMES = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;
export type StandinVolume = (typeof STANDIN_VOLUMES)[number];

export interface StandinMailcowOptions {
  /** DBPASS (default: 28 random alphanumerics, like generate_config.sh) */
  dbPass?: string;
  /** MAILDIR_SUB (default 'Maildir'; may be '') */
  maildirSub?: string;
  /** MAILCOW_HOSTNAME (default mail.example.com) */
  hostname?: string;
  /** COMPOSE_PROJECT_NAME (default mailcowdockerized) */
  projectName?: string;
  /** TZ (default Europe/Berlin) */
  timezone?: string;
  /** total size of the fake mysql datadir (default 2 MiB) */
  mysqlBytes?: number;
  /** size of redis dump.rdb (default 256 KiB) */
  redisBytes?: number;
  /** seed for the fixture bytes of the small volumes (default 1) */
  seed?: number;
  /** also fill the vmail volume with generateMaildir(...) (maildirSub is taken from the conf) */
  maildir?: Omit<GenerateMaildirOptions, 'maildirSub'>;
  /**
   * The SQL volume becomes a real MariaDB datadir with mailcow's domain/mailbox/alias tables for the
   * fixture's mailboxes (the last one inactive), and the stand-in script's mysql backup a real
   * mariabackup (a few seconds per backup: opt-in, for the drill's tests and the demo).
   */
  realDatabase?: boolean;
  /** Every message is rewritten as mail_crypt stores it, encrypted for the crypt volume's key. */
  mailCrypt?: boolean;
}

export interface StandinMailcow {
  /** absolute path of the stand-in mailcow folder (MAILCOW_PATH) */
  path: string;
  /** absolute path of <path>/helper-scripts/backup_and_restore.sh */
  script: string;
  /** absolute path of <path>/standin-actions.log (append-only, one action per line) */
  actionLog: string;
  /** absolute path of a volume folder; accepts 'vmail' or 'vmail-vol-1' */
  volume(name: StandinVolume | `${StandinVolume}-vol-1`): string;
  /** mailcow.conf as written at creation time */
  conf: Record<string, string>;
  /** re-read the live mailcow.conf (restore of SQL rewrites DB* keys) */
  readConf(): Promise<Record<string, string>>;
  /** lines of standin-actions.log ([] if none yet) */
  readActions(): Promise<string[]>;
  /** result of the maildir generation when opts.maildir was given */
  maildir?: GenerateMaildirResult;
}

export interface MutateDatabasesResult {
  files: number;
  bytesChanged: number;
}

const MYSQL_UID = 999;
const MYSQL_GID = 999;
const PAGE = 16 * 1024;

/** Where the stand-in script lives in the source tree (works from src/ via tsx and from dist/). */
export function standinScriptSource(): string {
  const rel = 'mailcow-standin/helper-scripts/backup_and_restore.sh';
  const candidates = [
    fileURLToPath(new URL(`./${rel}`, import.meta.url)),
    fileURLToPath(new URL(`../../../src/sandbox/${rel}`, import.meta.url)),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`stand-in backup_and_restore.sh not found (looked in ${candidates.join(', ')})`);
  return found;
}

function alnum(n: number): string {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const b = randomBytes(n * 2);
  let s = '';
  for (let i = 0; i < b.length && s.length < n; i++) if (b[i]! < 248) s += chars[b[i]! % 62];
  while (s.length < n) s += 'x';
  return s;
}

export function parseMailcowConf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!.trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]!] = v;
  }
  return out;
}

function mailcowConfText(c: Record<string, string>): string {
  return `# ------------------------------
# mailcow web ui configuration
# ------------------------------
# example.org is _not_ a valid hostname, use a fqdn here.
# Default admin user is "admin"
# Default password is "moohoo"

MAILCOW_HOSTNAME=${c.MAILCOW_HOSTNAME}

# Password hash algorithm
MAILCOW_PASS_SCHEME=BLF-CRYPT

# ------------------------------
# SQL database configuration
# ------------------------------

DBNAME=${c.DBNAME}
DBUSER=${c.DBUSER}

# Please use long, random alphanumeric strings (A-Za-z0-9)

DBPASS=${c.DBPASS}
DBROOT=${c.DBROOT}

# ------------------------------
# REDIS configuration
# ------------------------------

REDISPASS=${c.REDISPASS}

# ------------------------------
# HTTP/S Bindings
# ------------------------------

HTTP_PORT=80
HTTP_BIND=
HTTPS_PORT=443
HTTPS_BIND=

# ------------------------------
# Other bindings
# ------------------------------

SMTP_PORT=25
SMTPS_PORT=465
SUBMISSION_PORT=587
IMAP_PORT=143
IMAPS_PORT=993
POP_PORT=110
POPS_PORT=995
SIEVE_PORT=4190
DOVEADM_PORT=127.0.0.1:19991
SQL_PORT=127.0.0.1:13306
REDIS_PORT=127.0.0.1:7654

# Your timezone
TZ=${c.TZ}

# Fixed project name
# Please use lowercase letters only
COMPOSE_PROJECT_NAME=${c.COMPOSE_PROJECT_NAME}

# Used Docker Compose version
# Switch here between native (compose plugin) and standalone
DOCKER_COMPOSE_VERSION=${c.DOCKER_COMPOSE_VERSION}

# Set this to "allow" to enable the anyone pseudo user. Disabled by default.
ACL_ANYONE=disallow

# Garbage collector cleanup
MAILDIR_GC_TIME=7200

# Additional SAN for the certificate
ADDITIONAL_SAN=

# Skip running ACME (acme-mailcow, Let's Encrypt certs) - y/n
SKIP_LETS_ENCRYPT=n

# Skip ClamAV (clamd-mailcow) anti-virus (Rspamd will auto-detect a missing ClamAV container) - y/n
SKIP_CLAMD=n

# Skip SOGo: Will disable SOGo integration and therefore webmail, DAV protocols and ActiveSync support (experimental, unsupported, not fully implemented) - y/n
SKIP_SOGO=n

# Maildir subfolder (mailcow default: Maildir)
MAILDIR_SUB=${c.MAILDIR_SUB}

# SOGo session timeout in minutes
SOGO_EXPIRE_SESSION=480

# Prevent netfilter from setting an iptables/nftables rule to isolate the mailcow network - y/n
DISABLE_NETFILTER_ISOLATION_RULE=n

WATCHDOG_NOTIFY_EMAIL=
WATCHDOG_NOTIFY_BAN=n
WATCHDOG_EXTERNAL_CHECKS=n
WATCHDOG_VERBOSE=n

LOG_LINES=9999
IPV4_NETWORK=172.22.1
IPV6_NETWORK=fd4d:6169:6c63:6f77::/64
API_KEY=
API_KEY_READ_ONLY=
API_ALLOW_FROM=172.22.1.1,127.0.0.1
`;
}

const COMPOSE_YML = `services:
    unbound-mailcow:
      image: ghcr.io/mailcow/unbound:1.23
    mysql-mailcow:
      image: mariadb:10.11
      volumes:
        - mysql-vol-1:/var/lib/mysql/
    redis-mailcow:
      image: redis:7.4.2-alpine
      volumes:
        - redis-vol-1:/data/
    rspamd-mailcow:
      image: ghcr.io/mailcow/rspamd:2.1
      volumes:
        - rspamd-vol-1:/var/lib/rspamd
    dovecot-mailcow:
      image: ghcr.io/mailcow/dovecot:2.33
      volumes:
        - vmail-vol-1:/var/vmail
        - crypt-vol-1:/mail_crypt/
    postfix-mailcow:
      image: ghcr.io/mailcow/postfix:1.80
      volumes:
        - postfix-vol-1:/var/spool/postfix
    watchdog-mailcow:
      image: ghcr.io/mailcow/watchdog:2.08

volumes:
  vmail-vol-1:
  vmail-index-vol-1:
  mysql-vol-1:
  mysql-socket-vol-1:
  redis-vol-1:
  rspamd-vol-1:
  solr-vol-1:
  postfix-vol-1:
  crypt-vol-1:
  sogo-web-vol-1:
  sogo-userdata-backup-vol-1:
`;

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

async function writeFileOwned(file: string, data: Buffer | string, owner?: [number, number], mode = 0o644): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, data, { mode });
  if (owner && isRoot()) await fsp.chown(file, owner[0], owner[1]);
}

/** InnoDB-ish file: 16 KiB pages, most random, some zero-filled (free pages). */
function innodbBytes(size: number, seed: number, name: string): Buffer {
  const pages = Math.max(1, Math.round(size / PAGE));
  const rnd = mulberry32(seed ^ name.length * 7919);
  const buf = Buffer.alloc(pages * PAGE);
  const data = seededBytes(pages * PAGE, seed, 'innodb', name);
  for (let p = 0; p < pages; p++) {
    if (p === 0 || rnd() < 0.75) data.copy(buf, p * PAGE, p * PAGE, (p + 1) * PAGE);
    buf.writeUInt32BE(p, p * PAGE + 4); // FIL_PAGE_OFFSET, for looks
  }
  return buf;
}

const MYSQL_LAYOUT: readonly { file: string; share: number }[] = [
  { file: 'ibdata1', share: 0.3 },
  { file: 'ib_logfile0', share: 0.15 },
  { file: 'mailcow/mailbox.ibd', share: 0.1 },
  { file: 'mailcow/alias.ibd', share: 0.06 },
  { file: 'mailcow/quota2.ibd', share: 0.04 },
  { file: 'mailcow/sogo_user_profile.ibd', share: 0.08 },
  { file: 'mailcow/sogo_sessions_folder.ibd', share: 0.05 },
  { file: 'mailcow/logs.ibd', share: 0.12 },
  { file: 'mysql/innodb_index_stats.ibd', share: 0.05 },
  { file: 'mysql/innodb_table_stats.ibd', share: 0.05 },
];

async function fillVolumes(root: string, o: { seed: number; mysqlBytes: number; redisBytes: number }): Promise<void> {
  const vol = (n: StandinVolume) => path.join(root, 'volumes', `${n}-vol-1`);
  const mysql: [number, number] = [MYSQL_UID, MYSQL_GID];

  // mysql: a mariadb datadir
  for (const { file, share } of MYSQL_LAYOUT) {
    await writeFileOwned(path.join(vol('mysql'), file), innodbBytes(o.mysqlBytes * share, o.seed, file), mysql, 0o660);
  }
  for (const t of ['mailbox', 'alias', 'quota2', 'sogo_user_profile', 'sogo_sessions_folder', 'logs']) {
    await writeFileOwned(path.join(vol('mysql'), 'mailcow', `${t}.frm`), seededBytes(1024 + t.length * 97, o.seed, 'frm', t), mysql, 0o660);
  }
  await writeFileOwned(path.join(vol('mysql'), 'mailcow', 'db.opt'), 'default-character-set=utf8mb4\ndefault-collation=utf8mb4_unicode_ci\n', mysql, 0o660);
  await writeFileOwned(path.join(vol('mysql'), 'aria_log_control'), seededBytes(52, o.seed, 'aria'), mysql, 0o660);
  await writeFileOwned(path.join(vol('mysql'), 'aria_log.00000001'), innodbBytes(PAGE * 2, o.seed, 'aria_log'), mysql, 0o660);
  await writeFileOwned(path.join(vol('mysql'), 'mysql_upgrade_info'), '10.11.10-MariaDB', mysql, 0o644);
  if (isRoot()) {
    for (const d of ['', 'mailcow', 'mysql']) await fsp.chown(path.join(vol('mysql'), d), MYSQL_UID, MYSQL_GID);
  }

  // redis: dump.rdb
  const rdb = Buffer.concat([Buffer.from('REDIS0011\xfa\tredis-ver\x057.4.2', 'latin1'), seededBytes(Math.max(64, o.redisBytes - 24), o.seed, 'rdb')]);
  await writeFileOwned(path.join(vol('redis'), 'dump.rdb'), rdb, [999, 1000], 0o644);

  // crypt: mail_crypt EC key pair (real keys, like `openssl ecparam -name prime256v1 -genkey`)
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await writeFileOwned(path.join(vol('crypt'), 'ecprivkey.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, undefined, 0o600);
  await writeFileOwned(path.join(vol('crypt'), 'ecpubkey.pem'), publicKey.export({ type: 'spki', format: 'pem' }) as string, undefined, 0o644);

  // rspamd: /var/lib/rspamd
  await writeFileOwned(path.join(vol('rspamd'), 'stats.ucl'), `version = 2;\nrevision = ${o.seed};\nscanned = 48213;\nlearned = 1312;\nspam_count = 3121;\nham_count = 45092;\n`);
  await writeFileOwned(path.join(vol('rspamd'), 'rspamd_dynamic'), JSON.stringify([{ name: 'actions', value: { reject: 15, 'add header': 8, greylist: 7 } }], null, 2));
  await writeFileOwned(path.join(vol('rspamd'), 'rspamd.history.zst'), seededBytes(48 * 1024, o.seed, 'rspamd-history'));
  await writeFileOwned(path.join(vol('rspamd'), 'fuzzy/fuzzy.sqlite'), seededBytes(64 * 1024, o.seed, 'fuzzy'));
  await writeFileOwned(path.join(vol('rspamd'), '.rspamd_version'), '3.11.1\n');

  // postfix: /var/spool/postfix
  for (const d of ['active', 'bounce', 'corrupt', 'defer', 'deferred', 'flush', 'hold', 'incoming', 'maildrop', 'pid', 'private', 'public', 'saved', 'trace']) {
    await fsp.mkdir(path.join(vol('postfix'), d), { recursive: true, mode: 0o700 });
  }
  await writeFileOwned(path.join(vol('postfix'), 'pid', 'master.pid'), '        97\n');
  await writeFileOwned(path.join(vol('postfix'), 'deferred', 'A', 'A1B2C3D4E5'), seededBytes(6 * 1024, o.seed, 'deferred1'), undefined, 0o700);
  await writeFileOwned(path.join(vol('postfix'), 'deferred', '7', '7F3E2D1C0B'), seededBytes(3 * 1024, o.seed, 'deferred2'), undefined, 0o700);
  await writeFileOwned(path.join(vol('postfix'), 'sasl_passwd.db'), seededBytes(12 * 1024, o.seed, 'sasl'), undefined, 0o600);
  await writeFileOwned(path.join(vol('postfix'), 'prng_exch'), seededBytes(1024, o.seed, 'prng'), undefined, 0o600);
}

export async function createStandinMailcow(dir: string, opts: StandinMailcowOptions = {}): Promise<StandinMailcow> {
  const root = path.resolve(dir);
  await fsp.mkdir(root, { recursive: true });
  const conf: Record<string, string> = {
    MAILCOW_HOSTNAME: opts.hostname ?? 'mail.example.com',
    DBNAME: 'mailcow',
    DBUSER: 'mailcow',
    DBPASS: opts.dbPass ?? alnum(28),
    DBROOT: alnum(28),
    REDISPASS: alnum(28),
    TZ: opts.timezone ?? 'Europe/Berlin',
    COMPOSE_PROJECT_NAME: opts.projectName ?? 'mailcowdockerized',
    DOCKER_COMPOSE_VERSION: 'native',
    MAILDIR_SUB: opts.maildirSub ?? 'Maildir',
  };
  const confText = mailcowConfText(conf);
  await fsp.writeFile(path.join(root, 'mailcow.conf'), confText, { mode: 0o600 });
  await fsp.rm(path.join(root, '.env'), { force: true });
  await fsp.symlink('mailcow.conf', path.join(root, '.env'));
  await fsp.writeFile(path.join(root, 'docker-compose.yml'), COMPOSE_YML);

  const script = path.join(root, 'helper-scripts', 'backup_and_restore.sh');
  await fsp.mkdir(path.dirname(script), { recursive: true });
  await fsp.copyFile(standinScriptSource(), script);
  await fsp.chmod(script, 0o755);

  for (const v of STANDIN_VOLUMES) await fsp.mkdir(path.join(root, 'volumes', `${v}-vol-1`), { recursive: true, mode: 0o755 });
  if (isRoot()) await fsp.chown(path.join(root, 'volumes', 'vmail-vol-1'), VMAIL_UID, VMAIL_GID);
  await fillVolumes(root, { seed: opts.seed ?? 1, mysqlBytes: opts.mysqlBytes ?? 2 * 1024 * 1024, redisBytes: opts.redisBytes ?? 256 * 1024 });

  const volume = (name: StandinVolume | `${StandinVolume}-vol-1`): string => {
    const base = name.endsWith('-vol-1') ? name.slice(0, -'-vol-1'.length) : name;
    if (!(STANDIN_VOLUMES as readonly string[]).includes(base)) throw new Error(`unknown stand-in volume ${name}`);
    return path.join(root, 'volumes', `${base}-vol-1`);
  };
  const actionLog = path.join(root, 'standin-actions.log');
  const mc: StandinMailcow = {
    path: root,
    script,
    actionLog,
    volume,
    conf: parseMailcowConf(confText),
    readConf: async () => parseMailcowConf(await fsp.readFile(path.join(root, 'mailcow.conf'), 'utf8')),
    readActions: async () => {
      try {
        return (await fsp.readFile(actionLog, 'utf8')).split('\n').filter((l) => l.length > 0);
      } catch {
        return [];
      }
    },
  };
  if (opts.maildir) mc.maildir = await generateMaildir(volume('vmail'), { ...opts.maildir, maildirSub: conf.MAILDIR_SUB });
  if (opts.mailCrypt) await encryptStandinMail(volume('vmail'), volume('crypt'));
  if (opts.realDatabase) {
    const users = mc.maildir?.users ?? [];
    await createMailcowDatabase(volume('mysql'), conf.DBNAME!, users.map((address, i) => ({ address, active: i === users.length - 1 && users.length > 1 ? 0 : 1 })));
  }
  return mc;
}

/**
 * Simulate a day of database change: rewrite ~3% of the 16 KiB pages of every mysql file
 * (at least one page) and a few 4 KiB regions of redis' dump.rdb, in place (sizes unchanged).
 * Deterministic for a seed.
 */
export async function mutateDatabases(mc: Pick<StandinMailcow, 'volume'>, seed: number): Promise<MutateDatabasesResult> {
  const rnd = mulberry32(seed ^ 0xdb);
  let files = 0;
  let bytesChanged = 0;
  const walk = async (dir: string): Promise<string[]> => {
    const out: string[] = [];
    for (const e of (await fsp.readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) out.push(...(await walk(p)));
      else if (e.isFile()) out.push(p);
    }
    return out;
  };
  const rewrite = async (file: string, block: number, fraction: number, tag: string): Promise<void> => {
    const { size } = await fsp.stat(file);
    if (size === 0) return;
    const blocks = Math.max(1, Math.ceil(size / block));
    const n = Math.max(1, Math.round(blocks * fraction));
    const fh = await fsp.open(file, 'r+');
    try {
      for (let k = 0; k < n; k++) {
        const b = Math.floor(rnd() * blocks);
        const len = Math.min(block, size - b * block);
        await fh.write(seededBytes(len, seed, tag, file, k), 0, len, b * block);
        bytesChanged += len;
      }
    } finally {
      await fh.close();
    }
    files += 1;
  };
  for (const f of await walk(mc.volume('mysql'))) {
    if (/\.(ibd|frm)$|^ibdata|^ib_logfile|^aria_log\./.test(path.basename(f)) && !f.endsWith('.frm')) {
      await rewrite(f, PAGE, 0.03, 'mysql-day');
    }
  }
  await rewrite(path.join(mc.volume('redis'), 'dump.rdb'), 4096, 0.05, 'redis-day');
  return { files, bytesChanged };
}
