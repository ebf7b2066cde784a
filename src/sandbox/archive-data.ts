// The benchmark's non-mail volumes as a real mailcow's change (issue 19): a real MariaDB datadir
// (the sandbox's realDatabase option) with mailcow's tables that stay put from day to day (SOGo's
// contacts and calendars, profiles, domains, mailboxes, aliases) and the ones that move every day
// (logs, sasl_log, quarantine, SOGo's sessions and cache, quota2), plus a redis holding rspamd's
// Bayes tokens (one small hash per token, as rspamd's redis backend keeps them) and its history.
// redis-server keeps running for the whole benchmark, as redis-mailcow does: a restart picks a new
// hash seed and so a new key order in every dump, which a real server does not do each day.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlOnDatadir } from './mariadb-standin.js';
import { mulberry32 } from './maildir-fixture.js';
import type { StandinMailcow } from './mailcow-standin.js';

/** Rows and tokens at scale 1 (the bench's default 1 GiB of mail): a database archive of tens of MB. */
const BASE = {
  logs: 120_000,
  saslLog: 60_000,
  quarantine: 900,
  sessions: 3_000,
  cache: 6_000,
  store: 8_000,
  profiles: 400,
  tokens: 300_000,
  history: 2_000,
};

/** What one day does, as fractions of the table (or token count) at scale 1. */
export type DayKind = 'mail' | 'quiet';
const DAY: Record<DayKind, { logs: number; saslLog: number; quarantine: number; sessions: number; cache: number; quota: boolean; tokensTouched: number; tokensNew: number; history: number }> = {
  // a day of mail: rspamd learns (a few % of the tokens move, ~1 % are new), users log in, mail is quarantined
  mail: { logs: 0.03, saslLog: 0.03, quarantine: 0.06, sessions: 0.3, cache: 0.05, quota: true, tokensTouched: 0.03, tokensNew: 0.01, history: 0.1 },
  // no mail: clients still log in and poll, SOGo sessions expire and start, the watchdog and API still log
  quiet: { logs: 0.008, saslLog: 0.005, quarantine: 0, sessions: 0.3, cache: 0.01, quota: false, tokensTouched: 0, tokensNew: 0, history: 0.01 },
};

const rows = (n: number, scale: number) => Math.max(1, Math.round(n * scale));
/** `n` random bytes as base64 text (RANDOM_BYTES gives at most 1024 at a time). */
const b64 = (n: number) => `TO_BASE64(CONCAT(${Array.from({ length: Math.ceil(n / 1024) }, () => 'RANDOM_BYTES(1024)').join(', ')}))`;
const pick = (...xs: string[]) => `ELT(1 + FLOOR(RAND() * ${xs.length}), ${xs.map((x) => `'${x}'`).join(', ')})`;
const user = `CONCAT(${pick('alice', 'bob', 'carol', 'dave', 'erin', 'frank')}, '@example.com')`;
const ip = `CONCAT('203.0.113.', FLOOR(RAND() * 250))`;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS logs (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, task CHAR(32) NOT NULL DEFAULT '000000', type VARCHAR(32) DEFAULT '', msg TEXT, \`call\` TEXT, user VARCHAR(64) NOT NULL, role VARCHAR(32) NOT NULL, remote VARCHAR(39) NOT NULL, time INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS sasl_log (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, service VARCHAR(32) NOT NULL DEFAULT '', app_password INT, username VARCHAR(255) NOT NULL, real_rip VARCHAR(64) NOT NULL, datetime DATETIME(0) NOT NULL DEFAULT NOW(0)) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS quarantine (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, qid VARCHAR(30) NOT NULL, subject VARCHAR(500), score FLOAT(8,2), ip VARCHAR(50), action CHAR(20) NOT NULL DEFAULT 'unknown', symbols JSON, sender VARCHAR(255) NOT NULL DEFAULT 'unknown', rcpt VARCHAR(255), msg LONGTEXT, domain VARCHAR(255), notified INT NOT NULL DEFAULT 0, created DATETIME(0) NOT NULL DEFAULT NOW(0), user VARCHAR(255) NOT NULL DEFAULT 'unknown') ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS sogo_sessions_folder (c_id VARCHAR(255) NOT NULL PRIMARY KEY, c_value VARCHAR(4096) NOT NULL, c_creationdate INT NOT NULL, c_lastseen INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS sogo_cache_folder (id INT NOT NULL PRIMARY KEY, c_uid VARCHAR(255) NOT NULL, c_path VARCHAR(255) NOT NULL, c_parent_path VARCHAR(255), c_type TINYINT NOT NULL, c_creationdate INT NOT NULL, c_lastmodified INT NOT NULL, c_version INT NOT NULL DEFAULT 0, c_deleted TINYINT NOT NULL DEFAULT 0, c_content LONGTEXT) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS sogo_store (c_folder_id INT NOT NULL, c_name VARCHAR(255) NOT NULL, c_content MEDIUMTEXT NOT NULL, c_creationdate INT NOT NULL, c_lastmodified INT NOT NULL, c_version INT NOT NULL, c_deleted INT, PRIMARY KEY (c_folder_id, c_name)) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS sogo_user_profile (c_uid VARCHAR(255) NOT NULL PRIMARY KEY, c_defaults LONGTEXT, c_settings LONGTEXT) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS quota2 (username VARCHAR(255) NOT NULL PRIMARY KEY, bytes BIGINT NOT NULL DEFAULT 0, messages INT NOT NULL DEFAULT 0) ENGINE=InnoDB;
`;

const logRows = (n: number) => `INSERT INTO logs (task, type, msg, \`call\`, user, role, remote, time)
  SELECT SUBSTR(MD5(RAND()), 1, 6), ${pick('success', 'danger', 'info', 'warning')},
    CONCAT('["', ${pick('mailbox_modified', 'login_success', 'object_modified', 'mailbox_added', 'app_passwd_modified', 'acl_modified')}, '","', ${user}, '","', MD5(RAND()), '"]'),
    CONCAT('["', ${pick('mailbox', 'edit', 'add', 'delete', 'login')}, '",{"username":"', ${user}, '","active":"1","quota":"', FLOOR(RAND() * 10240), '","token":"', SHA2(RAND(), 256), '"}]'),
    ${user}, ${pick('admin', 'user', 'domainadmin')}, ${ip}, UNIX_TIMESTAMP() - FLOOR(RAND() * 86400)
  FROM seq_1_to_${n};`;
const saslRows = (n: number) => `INSERT INTO sasl_log (service, app_password, username, real_rip)
  SELECT ${pick('imap', 'smtp', 'pop3', 'sogo')}, IF(RAND() < 0.2, FLOOR(RAND() * 9), NULL), ${user}, ${ip} FROM seq_1_to_${n};`;
const quarantineRows = (n: number) => `INSERT INTO quarantine (qid, subject, score, ip, action, symbols, sender, rcpt, msg, domain, user)
  SELECT UPPER(SUBSTR(MD5(RAND()), 1, 12)), CONCAT('Re: ', MD5(RAND())), 10 + RAND() * 20, ${ip}, ${pick('reject', 'add header')},
    CONCAT('[{"name":"BAYES_SPAM","score":', RAND() * 5, '},{"name":"RBL_SPAMHAUS","score":4}]'), CONCAT(MD5(RAND()), '@spam.example'), ${user},
    CONCAT('Received: from mx.spam.example\\r\\nSubject: offer\\r\\nContent-Transfer-Encoding: base64\\r\\n\\r\\n', ${b64(12 * 1024)}), 'example.com', ${user}
  FROM seq_1_to_${n};`;
const sessionRows = (n: number) => `INSERT INTO sogo_sessions_folder (c_id, c_value, c_creationdate, c_lastseen)
  SELECT SHA2(RAND(), 256), ${b64(450)}, UNIX_TIMESTAMP(), UNIX_TIMESTAMP() FROM seq_1_to_${n};`;
const cacheContent = `CONCAT('<?xml version="1.0"?><cache user="', ${user}, '">', ${b64(1500)}, '</cache>')`;

/** Adds mailcow's daily and static tables and rspamd's Bayes data, sized by `scale` (1: 1 GiB of mail). */
export async function fillArchiveData(mc: Pick<StandinMailcow, 'volume' | 'conf'>, scale: number): Promise<RedisStandin> {
  const n = (k: keyof typeof BASE) => rows(BASE[k], scale);
  const sql = [
    SCHEMA,
    logRows(n('logs')),
    saslRows(n('saslLog')),
    quarantineRows(n('quarantine')),
    sessionRows(n('sessions')),
    `INSERT INTO sogo_cache_folder SELECT seq, ${user}, CONCAT('/', MD5(seq)), NULL, 1, UNIX_TIMESTAMP(), UNIX_TIMESTAMP(), 0, 0, ${cacheContent} FROM seq_1_to_${n('cache')};`,
    `INSERT INTO sogo_store SELECT 1 + seq % 40, CONCAT(MD5(seq), '.vcf'), CONCAT('BEGIN:VCARD\\nVERSION:3.0\\nFN:', MD5(RAND()), '\\nEMAIL:', MD5(RAND()), '@example.org\\nPHOTO;ENCODING=b:', ${b64(900)}, '\\nEND:VCARD'), UNIX_TIMESTAMP(), UNIX_TIMESTAMP(), 0, NULL FROM seq_1_to_${n('store')};`,
    `INSERT INTO sogo_user_profile SELECT CONCAT('user', seq, '@example.com'), CONCAT('{"SOGoLanguage":"English","SOGoMailSignature":"', ${b64(600)}, '"}'), '{}' FROM seq_1_to_${n('profiles')};`,
    `INSERT INTO quota2 SELECT username, 0, 0 FROM mailbox;`,
  ];
  await sqlOnDatadir(mc.volume('mysql'), mc.conf.DBNAME!, sql.join('\n'));
  // the stand-in's dump.rdb is filler bytes no redis-server loads: this one starts empty and saves a real dump
  rmSync(join(mc.volume('redis'), 'dump.rdb'), { force: true });
  const redis = await startRedisStandin(mc.volume('redis'));
  const rnd = mulberry32(0xba7e5);
  const cmds: string[][] = [];
  for (let i = 0; i < n('tokens'); i++) cmds.push(tokenCmd(rnd, i));
  cmds.push(['HSET', 'RS', 'learns_spam', String(n('tokens') >> 4), 'learns_ham', String(n('tokens') >> 3)]);
  for (let i = 0; i < n('history'); i++) cmds.push(['LPUSH', 'rs_historymail.example.com_zst', historyEntry(rnd)]);
  await redis.pipe(cmds);
  await redis.save();
  return redis;
}

/** One Bayes token: its hash as rspamd names it, spam and ham counts (mostly small). */
function tokenCmd(rnd: () => number, i: number): string[] {
  return ['HSET', tokenKey(i), 'S', String(1 + Math.floor(rnd() ** 3 * 40)), 'H', String(Math.floor(rnd() ** 3 * 40))];
}
/** rspamd's history rows are zstd-compressed JSON: incompressible bytes, ~1 KB each. */
const historyEntry = (rnd: () => number) => Buffer.from(Array.from({ length: 700 + Math.floor(rnd() * 600) }, () => Math.floor(rnd() * 256))).toString('latin1');

export interface DayResult {
  kind: DayKind;
  /** Rows inserted and deleted in the daily tables, Bayes tokens learned (touched + new). */
  rowsInserted: number;
  rowsDeleted: number;
  tokensLearned: number;
}

/** One day of mailcow's own data change; the caller then backs up. Deterministic in shape, not in bytes. */
export async function archiveDataDay(mc: Pick<StandinMailcow, 'volume' | 'conf'>, redis: RedisStandin, kind: DayKind, scale: number, seed: number): Promise<DayResult> {
  const d = DAY[kind];
  const k = (base: keyof typeof BASE, f: number) => (f > 0 ? rows(BASE[base] * f, scale) : 0);
  const churn = (table: string, base: keyof typeof BASE, f: number, insert: (n: number) => string, order = 'id') => {
    const n = k(base, f);
    return n ? [insert(n), `DELETE FROM ${table} ORDER BY ${order} LIMIT ${n};`] : [];
  };
  const nLogs = k('logs', d.logs), nSasl = k('saslLog', d.saslLog), nQ = k('quarantine', d.quarantine), nS = k('sessions', d.sessions), nC = k('cache', d.cache);
  const sql = [
    ...churn('logs', 'logs', d.logs, logRows),
    ...churn('sasl_log', 'saslLog', d.saslLog, saslRows),
    ...churn('quarantine', 'quarantine', d.quarantine, quarantineRows),
    // expired sessions go (oldest first), new ones start, live ones are touched
    `DELETE FROM sogo_sessions_folder ORDER BY c_lastseen, c_id LIMIT ${nS};`,
    sessionRows(nS),
    `UPDATE sogo_sessions_folder SET c_lastseen = UNIX_TIMESTAMP() + 1 ORDER BY RAND() LIMIT ${nS};`,
    nC ? `UPDATE sogo_cache_folder SET c_content = ${cacheContent}, c_lastmodified = UNIX_TIMESTAMP(), c_version = c_version + 1 ORDER BY RAND() LIMIT ${nC};` : '',
    d.quota ? `UPDATE quota2 SET bytes = bytes + FLOOR(RAND() * 5000000), messages = messages + FLOOR(RAND() * 60);` : '',
  ];
  await sqlOnDatadir(mc.volume('mysql'), mc.conf.DBNAME!, sql.join('\n'));
  const rnd = mulberry32(seed ^ 0x5a17);
  const tokens = rows(BASE.tokens, scale);
  const cmds: string[][] = [];
  const touched = k('tokens', d.tokensTouched);
  for (let i = 0; i < touched; i++) cmds.push(['HINCRBY', tokenKey(Math.floor(rnd() * tokens)), rnd() < 0.3 ? 'S' : 'H', '1']);
  const fresh = k('tokens', d.tokensNew);
  for (let i = 0; i < fresh; i++) cmds.push(tokenCmd(rnd, tokens + seed * 1_000_000 + i));
  const hist = k('history', d.history);
  for (let i = 0; i < hist; i++) cmds.push(['LPUSH', 'rs_historymail.example.com_zst', historyEntry(rnd)]);
  if (hist) cmds.push(['LTRIM', 'rs_historymail.example.com_zst', '0', String(rows(BASE.history, scale) - 1)]);
  if (touched || fresh) cmds.push(['HINCRBY', 'RS', 'learns_ham', String(fresh)]);
  if (cmds.length) await redis.pipe(cmds);
  await redis.save();
  return { kind, rowsInserted: nLogs + nSasl + nQ + nS, rowsDeleted: nLogs + nSasl + nQ + nS, tokensLearned: touched + fresh };
}

/** Token i's key: a fixed mix of i, so a later day can touch token i again without a table of keys. */
function tokenKey(i: number): string {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return `RS${(BigInt((h ^ (h >>> 16)) >>> 0) << 32n) | BigInt(i)}`;
}

export interface RedisStandin {
  pipe(cmds: string[][]): Promise<void>;
  /** SAVE: dump.rdb in the volume is current (mailcow's script runs `redis-cli save` too). */
  save(): Promise<void>;
  stop(): Promise<void>;
}

/** redis-server on the volume as its data folder, on a private socket only. */
export async function startRedisStandin(dir: string): Promise<RedisStandin> {
  const sockDir = mkdtempSync(join(tmpdir(), 'rds-'));
  const sock = join(sockDir, 's');
  const child = spawn('redis-server', ['--port', '0', '--unixsocket', sock, '--dir', dir, '--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--logfile', join(sockDir, 'log')], { stdio: 'ignore' });
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const cli = (args: string[], input?: Buffer) => {
    const r = spawnSync('redis-cli', ['-s', sock, ...args], { input, encoding: 'latin1', maxBuffer: 1 << 26 });
    if (r.status !== 0 || /ERR|errors: [1-9]/.test(r.stdout)) throw new Error(`redis-cli ${args.join(' ')}: ${(r.stderr || r.stdout).slice(-500)}`);
    return r.stdout;
  };
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${dir} exited ${child.exitCode}`);
    if (spawnSync('redis-cli', ['-s', sock, 'ping'], { encoding: 'utf8' }).stdout?.trim() === 'PONG') break;
    await new Promise((r) => setTimeout(r, 50)); // redis-server has no readiness signal but its socket
  }
  return {
    pipe: async (cmds) => {
      const resp = cmds.map((c) => `*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('')}`).join('');
      cli(['--pipe'], Buffer.from(resp, 'latin1'));
    },
    save: async () => {
      cli(['save']);
    },
    stop: async () => {
      spawnSync('redis-cli', ['-s', sock, 'shutdown', 'nosave']);
      await exited;
      rmSync(sockDir, { recursive: true, force: true });
    },
  };
}
