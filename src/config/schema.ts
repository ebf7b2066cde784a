// The one source of truth for every configuration key: type, default, help text and an
// example of a good value. `.env.example` and the README's table are generated from it
// (scripts/gen-config-docs.ts), and a test fails when they drift apart.
//
// Written with zod/mini (functions: z.pipe(a, b), s.check(z.regex(…))) rather than zod's chainable
// API: the same validation core and messages, but the bundle keeps only what is used, ~36 KB
// instead of ~290 KB of zod. The daily run loads, builds and runs this schema before it takes its
// lock, and zod's full API was two thirds of the tool's own work up to the lock (docs/performance.md).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { keyLines, recipientProblem } from '../plan/age-keys.js';

// zod's own messages (a too long SMTP_USER) in English; zod's chainable API sets this itself.
z.config(en());

export const COMPONENTS = ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql'] as const;
export type Component = (typeof COMPONENTS)[number];

/** Values that reach a remote command are held to these patterns (the box shell parses words). */
// A DNS name: at most 253 characters, labels of 1-63 letters, digits and inner hyphens; the last
// label not all digits (so "1.2.3.999" is not taken for a name). IP literals go to node's isIP.
const HOSTNAME_PATTERN = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*(?=[A-Za-z0-9-]*[A-Za-z-])[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/**
 * A host name or a bare IPv4/IPv6 address: no [ ] (userAtHost adds them where rsync needs them),
 * no %zone (isIP takes "fe80::1%eth0"; a link-local zone has no place in a box or SMTP address).
 * The name first: isIP of a name compiles node's IPv6 pattern, ~6 ms of every start (the
 * default SMTP_HOST is "localhost"), before the run's lock.
 */
export const isHost = (v: string): boolean => HOSTNAME_PATTERN.test(v) || (isIP(v) !== 0 && !v.includes('%'));
const HOST_ERROR = 'must be a host name or an IP address (IPv6 without [ ])';
export const USER_PATTERN = /^[a-z_][a-z0-9_-]{0,31}$/;
export const REMOTE_PATH_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;

const TRUE_WORDS = ['true', 'yes', '1', 'on'];
const FALSE_WORDS = ['false', 'no', '0', 'off'];

/** dotenv gives `KEY=` as "": treat it as unset so the default applies. */
const unsetIfEmpty = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : typeof v === 'string' ? v.trim() : v);

/** Every value is trimmed, and "" is unset, before its schema sees it (zod's preprocess). */
function preprocessed<T extends z.ZodMiniType>(schema: T) {
  return z.pipe(z.transform(unsetIfEmpty), schema);
}

function int(min: number, max: number) {
  return preprocessed(
    z.pipe(
      z.pipe(z.string().check(z.regex(/^[0-9]+$/, { error: `must be a whole number from ${min} to ${max}` })), z.transform(Number)),
      z.number().check(z.gte(min, { error: `must be at least ${min}` }), z.lte(max, { error: `must be at most ${max}` })),
    ),
  );
}

function bool() {
  return preprocessed(
    z.pipe(
      z.string().check(
        z.refine((v) => TRUE_WORDS.includes(v.toLowerCase()) || FALSE_WORDS.includes(v.toLowerCase()), {
          error: `must be one of ${[...TRUE_WORDS, ...FALSE_WORDS].join('/')}`,
        }),
      ),
      z.transform((v: string) => TRUE_WORDS.includes(v.toLowerCase())),
    ),
  );
}

function absPath() {
  return preprocessed(
    z.string().check(
      z.refine((v) => v.startsWith('/'), { error: 'must be an absolute path' }),
      z.refine((v) => !/[\0\n]/.test(v), { error: 'must not contain newlines or NUL bytes' }),
      z.refine((v) => v.length <= 1024, { error: 'is too long (1024 characters at most)' }),
    ),
  );
}

function optional<T extends z.ZodMiniType>(schema: T) {
  return preprocessed(z.optional(schema));
}

/** age recipients inline, or a file of them; every bad value is its own issue (one line each). */
function encryptRecipients() {
  return z.pipe(z.string(), z.transform((v: string, ctx): string[] => {
    const addIssue = (message: string) => ctx.issues.push({ code: 'custom', message, input: v });
    // [where, value] pairs: "value 2" inline, "line 7 of FILE" in a recipients file.
    let values: [string, string][] = v.split(/[\s,]+/).filter(Boolean).map((r, i) => [`value ${i + 1}`, r]);
    if (v.startsWith('/')) {
      let text: string;
      try {
        text = readFileSync(v, 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        addIssue(`names the recipients file ${v}, which ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`);
        return [];
      }
      values = text.split(/\r?\n/).map((l, i): [string, string] => [`line ${i + 1} of ${v}`, l.trim()]).filter(([, l]) => keyLines(l).length > 0);
      if (values.length === 0) addIssue(`names the recipients file ${v}, which holds no age public key`);
    }
    // One line for the key (as for every key), naming each bad value; two say enough on a screen.
    const bad = values.flatMap(([where, r]) => {
      const problem = recipientProblem(r);
      return problem ? [`${where} ${problem}`] : [];
    });
    if (bad.length) addIssue(`${bad.slice(0, 2).join('; ')}${bad.length > 2 ? ` (and ${bad.length - 2} more bad values)` : ''}`);
    return [...new Set(values.map(([, r]) => r))];
  }));
}

const email = z.string().check(z.regex(/^[^\s@<>"',;]+@[A-Za-z0-9.-]+$/, { error: 'must be an e-mail address' }));

/** Keys of the earlier bash tool keep their meaning; an existing .env of theirs must keep working. */
export interface KeyDoc {
  key: string;
  group: string;
  help: string;
  example: string;
  /** The default as written in .env.example; undefined when the key is required or optional. */
  defaultText?: string;
  required?: boolean;
  secret?: boolean;
  fromBashTool?: boolean;
}

export const KEY_DOCS: KeyDoc[] = [
  { key: 'HETZNER_HOST', group: 'Storage Box', help: 'Storage Box host name.', example: 'u123456.your-storagebox.de', required: true, fromBashTool: true },
  { key: 'HETZNER_PORT', group: 'Storage Box', help: 'SSH port of the box; 23 is the one that speaks rsync.', example: '23', defaultText: '23', fromBashTool: true },
  { key: 'HETZNER_USER', group: 'Storage Box', help: 'Box account or sub-account.', example: 'u123456-sub1', required: true, fromBashTool: true },
  { key: 'SSH_KEY_PATH', group: 'Storage Box', help: 'Private key for the box (mode 0600).', example: '/root/.ssh/id_ed25519', defaultText: '/root/.ssh/id_ed25519', fromBashTool: true },
  { key: 'SSH_KNOWN_HOSTS', group: 'Storage Box', help: "Pinned host key file ('[host]:port key' lines); host keys are always checked.", example: '/etc/mailcow-backup/known_hosts', defaultText: '/etc/mailcow-backup/known_hosts' },
  { key: 'HETZNER_REMOTE_PATH', group: 'Storage Box', help: "Folder on the box, relative to its home (a leading '/' or '/home/' is accepted and means the same).", example: 'backups/mailcow', defaultText: 'backups/mailcow', fromBashTool: true },
  { key: 'SSH_CONNECT_TIMEOUT', group: 'Storage Box', help: 'Seconds to wait for the box to answer a connection.', example: '20', defaultText: '20' },
  { key: 'RSYNC_TIMEOUT', group: 'Storage Box', help: 'Seconds without any data before a transfer is given up (rsync --timeout).', example: '600', defaultText: '600' },
  { key: 'BWLIMIT_KBPS', group: 'Storage Box', help: 'Upload bandwidth limit in KiB/s; 0 means no limit.', example: '10000', defaultText: '0' },
  { key: 'MAILCOW_PATH', group: 'mailcow', help: 'Folder of mailcow-dockerized (holds mailcow.conf and helper-scripts/).', example: '/opt/mailcow-dockerized', defaultText: '/opt/mailcow-dockerized', fromBashTool: true },
  { key: 'BACKUP_COMPONENTS', group: 'mailcow', help: "Components to back up: 'all' or a list of vmail crypt redis rspamd postfix mysql (spaces or commas).", example: 'all', defaultText: 'all', fromBashTool: true },
  { key: 'ALLOW_VMAIL_WITHOUT_CRYPT', group: 'mailcow', help: 'Allow vmail without crypt; mail_crypt mail cannot be read back without the crypt keys.', example: 'false', defaultText: 'false' },
  { key: 'VMAIL_VOLUME_PATH', group: 'mailcow', help: "Host folder of the vmail volume; empty: asked of 'docker volume inspect'.", example: '/var/lib/docker/volumes/mailcowdockerized_vmail-vol-1/_data' },
  { key: 'THREADS', group: 'mailcow', help: "zstd threads for mailcow's script (1-99), or 'auto' for CPU cores minus 2 (at least 1).", example: 'auto', defaultText: 'auto', fromBashTool: true },
  { key: 'DUMP_INTERVAL_HOURS', group: 'mailcow', help: "Hours between dumps with mailcow's script (database, crypt, redis, rspamd, postfix); a run in between backs up the mail and takes the newest backup's dump by hard link on the box. A dump is due 45 min early (a 1-hour interval: 30 min), for the timer's random delay. 0: every run dumps.", example: '24', defaultText: '24' },
  { key: 'ENCRYPT_RECIPIENTS', group: 'Encryption', help: "age public keys (age1…, spaces or commas between them) or the absolute path of a recipients file (one per line): mailcow.conf and the archives are encrypted to them before they leave this host (vmail stays a file tree). Empty: no encryption. Keep the private key OFF this host.", example: 'age1w38azznkeltuh73dl63gg5tzayec6sqlslca6dejkuq28ah8kegs2cp0q5' },
  { key: 'TEMP_BACKUP_DIR', group: 'Local', help: "Where mailcow's script writes the dump before upload.", example: '/var/tmp/mailcow-backup', defaultText: '/var/tmp/mailcow-backup', fromBashTool: true },
  { key: 'LOCAL_RETENTION_DAYS', group: 'Local', help: 'Days to keep local dumps; 0 deletes each dump once its remote copy is verified.', example: '0', defaultText: '0', fromBashTool: true },
  { key: 'STATE_DIR', group: 'Local', help: 'Lock, hash cache and status of the last run.', example: '/var/lib/mailcow-backup', defaultText: '/var/lib/mailcow-backup' },
  { key: 'LOCK_TIMEOUT_HOURS', group: 'Local', help: 'A lock older than this is taken over (its run is presumed dead).', example: '6', defaultText: '6', fromBashTool: true },
  { key: 'LOG_FILE', group: 'Local', help: 'Full log of every run (rotated by logrotate).', example: '/var/log/mailcow-backup.log', defaultText: '/var/log/mailcow-backup.log', fromBashTool: true },
  { key: 'REMOTE_RETENTION_DAYS', group: 'Retention', help: 'Delete published backups older than this many days (unless a KEEP_ rule keeps them); 0 keeps all.', example: '30', defaultText: '30', fromBashTool: true },
  { key: 'KEEP_DAILY', group: 'Retention', help: 'Also keep the newest backup of each of the last N days.', example: '7', defaultText: '0' },
  { key: 'KEEP_WEEKLY', group: 'Retention', help: 'Also keep the newest backup of each of the last N ISO weeks.', example: '4', defaultText: '0' },
  { key: 'KEEP_MONTHLY', group: 'Retention', help: 'Also keep the newest backup of each of the last N months.', example: '6', defaultText: '0' },
  { key: 'KEEP_HOURLY', group: 'Retention', help: 'Also keep the newest backup of each of the last N hours (for runs more often than daily).', example: '48', defaultText: '0' },
  { key: 'SCRUB_BUDGET_MINUTES', group: 'Verification', help: "Each daily run also re-verifies older backups on the box (oldest-unverified first) for up to this many minutes, as 'verify' does; 0: off.", example: '20', defaultText: '0' },
  { key: 'SHRINK_GUARD_PERCENT', group: 'Verification', help: "Refuse to publish a backup with more than this many percent fewer mailboxes, mail files or bytes than the newest published one (exit 1, nothing published: a fresh host's nearly empty mailcow must not become the newest backup); 'backup-to-hetzner run --accept-shrink' publishes it once. 0: off.", example: '50', defaultText: '50' },
  { key: 'EMAIL_NOTIFICATIONS', group: 'Notifications', help: 'Send a report by e-mail after each run (true/yes/1 or false/no/0).', example: 'true', defaultText: 'false', fromBashTool: true },
  { key: 'NOTIFICATION_EMAIL', group: 'Notifications', help: 'Who receives the report.', example: 'admin@example.com', fromBashTool: true },
  { key: 'NOTIFICATION_FROM', group: 'Notifications', help: 'Sender of the report.', example: 'backup@example.com', fromBashTool: true },
  { key: 'NOTIFY_ON', group: 'Notifications', help: "'always', or 'failure' (plus one 'recovered' message after a failure), or 'daily' (for hourly runs: failures and 'recovered' at once, and one digest a day of the day's runs).", example: 'always', defaultText: 'always' },
  { key: 'SMTP_HOST', group: 'Notifications', help: "SMTP server; mailcow's postfix on this host by default.", example: 'localhost', defaultText: 'localhost' },
  { key: 'SMTP_PORT', group: 'Notifications', help: 'SMTP port.', example: '25', defaultText: '25' },
  { key: 'SMTP_USER', group: 'Notifications', help: 'SMTP login, if the server wants one.', example: 'backup@example.com' },
  { key: 'SMTP_TLS_CA', group: 'Notifications', help: "Extra CA certificate (PEM file) trusted for the SMTP server's certificate besides the system CAs; empty: system CAs only.", example: '/etc/mailcow-backup/smtp-ca.pem' },
  { key: 'SMTP_PASSWORD', group: 'Notifications', help: 'SMTP password (never logged).', example: 'secret', secret: true },
  { key: 'HEALTHCHECK_URL', group: 'Monitoring', help: 'Dead-man switch ping URL (healthchecks.io style: /start, success, /fail).', example: 'https://hc-ping.com/your-uuid' },
  { key: 'STATUS_FILE', group: 'Monitoring', help: 'JSON status of the last run.', example: '/var/lib/mailcow-backup/status.json', defaultText: '/var/lib/mailcow-backup/status.json' },
  { key: 'PROMETHEUS_TEXTFILE', group: 'Monitoring', help: 'Prometheus textfile-collector file for the last run; empty: none.', example: '/var/lib/node_exporter/textfile_collector/mailcow_backup.prom' },
  { key: 'STALE_AFTER_HOURS', group: 'Monitoring', help: "'status' warns when the newest verified backup is older than this.", example: '26', defaultText: '26' },
  { key: 'ROLE', group: 'Standby', help: "'primary': this host is backed up; 'standby': this host only mirrors the box's newest backup ('restore-from-hetzner standby') and refuses to back up, so it never writes into the primary's backups.", example: 'primary', defaultText: 'primary' },
  { key: 'STANDBY_DIR', group: 'Standby', help: "Where a standby host keeps its verified copies of the newest backups (restores on this host fetch only what these lack).", example: '/var/lib/mailcow-backup/standby', defaultText: '/var/lib/mailcow-backup/standby' },
  { key: 'STANDBY_KEEP', group: 'Standby', help: 'How many mirrored backups a standby host keeps (unchanged files are hard links between them).', example: '2', defaultText: '2' },
  { key: 'AGE_IDENTITY_FILE', group: 'Standby', help: "age identity (private key) file on THIS host, for a standby or a drill to prove that encrypted backups decrypt; empty: not proved (said so). Never needed on the primary.", example: '/root/mailcow-backup-age.key' },
];

const docOf = (key: string) => {
  const d = KEY_DOCS.find((k) => k.key === key);
  if (!d) throw new Error(`internal: no doc for ${key}`);
  return d;
};

function withDefault<T extends z.ZodMiniType>(key: string, schema: T) {
  // prefault, not default: zod 4 returns a default as is, and ours are text that must be parsed.
  return z.prefault(schema, docOf(key).defaultText as never);
}

export const configSchema = z
  .object({
    HETZNER_HOST: preprocessed(z.string({ error: 'is required' }).check(z.refine(isHost, { error: HOST_ERROR }))),
    HETZNER_PORT: withDefault('HETZNER_PORT', int(1, 65535)),
    HETZNER_USER: preprocessed(z.string({ error: 'is required' }).check(z.regex(USER_PATTERN, { error: 'must be a box user name like u123456 or u123456-sub1' }))),
    SSH_KEY_PATH: withDefault('SSH_KEY_PATH', absPath()),
    SSH_KNOWN_HOSTS: withDefault('SSH_KNOWN_HOSTS', absPath()),
    HETZNER_REMOTE_PATH: withDefault(
      'HETZNER_REMOTE_PATH',
      preprocessed(
        z.pipe(z.string(), z.transform(normalizeRemotePath)).check(
          z.refine((v) => REMOTE_PATH_PATTERN.test(v) && !v.split('/').some((part) => part === '..' || part.length > 255) && v.length <= 1024, {
            error: 'must be a folder path of letters, digits, . _ - and /, without ".." (names up to 255 characters)',
          }),
        ),
      ),
    ),
    SSH_CONNECT_TIMEOUT: withDefault('SSH_CONNECT_TIMEOUT', int(1, 600)),
    RSYNC_TIMEOUT: withDefault('RSYNC_TIMEOUT', int(10, 86400)),
    BWLIMIT_KBPS: withDefault('BWLIMIT_KBPS', int(0, 10_000_000)),
    MAILCOW_PATH: withDefault('MAILCOW_PATH', absPath()),
    BACKUP_COMPONENTS: withDefault(
      'BACKUP_COMPONENTS',
      preprocessed(
        z.pipe(
          z
            .pipe(
              z.string(),
              z.transform((v: string) => v.toLowerCase().split(/[\s,]+/).filter(Boolean)),
            )
            .check(
              z.refine((list) => list.every((c) => c === 'all' || (COMPONENTS as readonly string[]).includes(c)), {
                error: `must be 'all' or a list of ${COMPONENTS.join(' ')}`,
              }),
            ),
          z.transform((list: string[]): Component[] => (list.includes('all') ? [...COMPONENTS] : COMPONENTS.filter((c) => list.includes(c)))),
        ),
      ),
    ),
    ALLOW_VMAIL_WITHOUT_CRYPT: withDefault('ALLOW_VMAIL_WITHOUT_CRYPT', bool()),
    VMAIL_VOLUME_PATH: optional(absPath()),
    THREADS: withDefault(
      'THREADS',
      preprocessed(
        z.pipe(
          z.string().check(z.regex(/^(auto|[1-9][0-9]?)$/i, { error: "must be 'auto' or a whole number from 1 to 99" })),
          z.transform((v: string): number | 'auto' => (v.toLowerCase() === 'auto' ? 'auto' : Number(v))),
        ),
      ),
    ),
    DUMP_INTERVAL_HOURS: withDefault('DUMP_INTERVAL_HOURS', int(0, 8760)),
    ENCRYPT_RECIPIENTS: optional(encryptRecipients()),
    TEMP_BACKUP_DIR: withDefault('TEMP_BACKUP_DIR', absPath()),
    LOCAL_RETENTION_DAYS: withDefault('LOCAL_RETENTION_DAYS', int(0, 3650)),
    STATE_DIR: withDefault('STATE_DIR', absPath()),
    LOCK_TIMEOUT_HOURS: withDefault('LOCK_TIMEOUT_HOURS', int(1, 720)),
    LOG_FILE: withDefault('LOG_FILE', absPath()),
    REMOTE_RETENTION_DAYS: withDefault('REMOTE_RETENTION_DAYS', int(0, 36500)),
    KEEP_DAILY: withDefault('KEEP_DAILY', int(0, 3650)),
    KEEP_WEEKLY: withDefault('KEEP_WEEKLY', int(0, 520)),
    KEEP_MONTHLY: withDefault('KEEP_MONTHLY', int(0, 1200)),
    KEEP_HOURLY: withDefault('KEEP_HOURLY', int(0, 87600)),
    SCRUB_BUDGET_MINUTES: withDefault('SCRUB_BUDGET_MINUTES', int(0, 1440)),
    SHRINK_GUARD_PERCENT: withDefault('SHRINK_GUARD_PERCENT', int(0, 99)),
    EMAIL_NOTIFICATIONS: withDefault('EMAIL_NOTIFICATIONS', bool()),
    NOTIFICATION_EMAIL: optional(email),
    NOTIFICATION_FROM: optional(email),
    NOTIFY_ON: withDefault('NOTIFY_ON', preprocessed(z.enum(['always', 'failure', 'daily'], { error: "must be 'always', 'failure' or 'daily'" }))),
    SMTP_HOST: withDefault('SMTP_HOST', preprocessed(z.string().check(z.refine(isHost, { error: HOST_ERROR })))),
    SMTP_PORT: withDefault('SMTP_PORT', int(1, 65535)),
    SMTP_USER: optional(z.string().check(z.maxLength(256))),
    SMTP_PASSWORD: optional(z.string().check(z.maxLength(1024))),
    SMTP_TLS_CA: optional(absPath()),
    HEALTHCHECK_URL: optional(z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })),
    STATUS_FILE: withDefault('STATUS_FILE', absPath()),
    PROMETHEUS_TEXTFILE: optional(absPath()),
    STALE_AFTER_HOURS: withDefault('STALE_AFTER_HOURS', int(1, 8760)),
    ROLE: withDefault('ROLE', preprocessed(z.enum(['primary', 'standby'], { error: "must be 'primary' or 'standby'" }))),
    STANDBY_DIR: withDefault('STANDBY_DIR', absPath()),
    STANDBY_KEEP: withDefault('STANDBY_KEEP', int(1, 100)),
    AGE_IDENTITY_FILE: optional(absPath()),
  })
  .check(
    z.superRefine((c, ctx) => {
      if (c.EMAIL_NOTIFICATIONS && !c.NOTIFICATION_EMAIL) {
        ctx.addIssue({ code: 'custom', path: ['NOTIFICATION_EMAIL'], message: 'is required when EMAIL_NOTIFICATIONS is on' });
      }
      if (c.SMTP_PASSWORD && !c.SMTP_USER) {
        ctx.addIssue({ code: 'custom', path: ['SMTP_USER'], message: 'is required when SMTP_PASSWORD is set' });
      }
    }),
  );

export type Config = z.infer<typeof configSchema>;

/** The box sees its home as /home (shell) or / (sftp); we keep every path relative to it. */
export function normalizeRemotePath(raw: string): string {
  let p = raw.trim();
  if (p.startsWith('/home/')) p = p.slice('/home/'.length);
  else if (p === '/home') p = '';
  p = p.replace(/^(\.\/)+/, '').replace(/^\/+/, '').replace(/\/+$/, '').replace(/\/{2,}/g, '/');
  return p;
}
