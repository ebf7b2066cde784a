// The config is where an admin meets the tool first: an existing .env of the bash tool must keep
// working, and every bad value must be named with a fix, all at once, with exit code 2.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig, parseConfigText } from '../src/config/load.js';
import { normalizeRemotePath } from '../src/config/schema.js';
import { UserError } from '../src/errors.js';
import { backup } from './support/cli.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-config-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const BASH_TOOL_ENV = `# /etc/mailcow-backup/.env as the earlier bash tool wrote it
HETZNER_HOST="u123456.your-storagebox.de"
HETZNER_PORT=23
HETZNER_USER=u123456
SSH_KEY_PATH=/root/.ssh/hetzner_backup
HETZNER_REMOTE_PATH=/backups/mailcow
MAILCOW_PATH=/opt/mailcow-dockerized
BACKUP_COMPONENTS="vmail crypt redis rspamd postfix mysql"
THREADS=4
LOCAL_RETENTION_DAYS=7
REMOTE_RETENTION_DAYS=30
LOCK_TIMEOUT_HOURS=6
LOG_FILE=/var/log/mailcow-backup.log
TEMP_BACKUP_DIR=/tmp/mailcow-backup
EMAIL_NOTIFICATIONS=yes
NOTIFICATION_EMAIL=admin@example.com
NOTIFICATION_FROM='backup@example.com'
`;

test('an .env of the earlier bash tool keeps working, with its meaning', () => {
  const { config, warnings } = parseConfigText(BASH_TOOL_ENV, '/etc/mailcow-backup/.env');
  assert.deepEqual(warnings, []);
  assert.equal(config.HETZNER_HOST, 'u123456.your-storagebox.de');
  assert.equal(config.HETZNER_PORT, 23);
  assert.equal(config.HETZNER_REMOTE_PATH, 'backups/mailcow');
  assert.deepEqual(config.BACKUP_COMPONENTS, ['vmail', 'crypt', 'redis', 'rspamd', 'postfix', 'mysql']);
  assert.equal(config.THREADS, 4);
  assert.equal(config.LOCAL_RETENTION_DAYS, 7);
  assert.equal(config.EMAIL_NOTIFICATIONS, true);
  assert.equal(config.NOTIFICATION_FROM, 'backup@example.com');
  // New keys have their defaults.
  assert.equal(config.SSH_KNOWN_HOSTS, '/etc/mailcow-backup/known_hosts');
  assert.equal(config.KEEP_DAILY, 0);
});

test('booleans accept what the bash tool accepted', () => {
  for (const [v, want] of [['true', true], ['yes', true], ['1', true], ['on', true], ['false', false], ['no', false], ['0', false], ['', false]] as const) {
    const { config } = parseConfigText(`HETZNER_HOST=h.example\nHETZNER_USER=u1\nEMAIL_NOTIFICATIONS=${v}\nNOTIFICATION_EMAIL=a@b.c\n`, 'x');
    assert.equal(config.EMAIL_NOTIFICATIONS, want, v);
  }
});

test('every bad value is reported at once, one line each, naming the key and a good value', () => {
  const text = 'HETZNER_PORT=abc\nTHREADS=0\nBACKUP_COMPONENTS=vmail,mail\nHETZNER_REMOTE_PATH=../etc\nLOG_FILE=relative.log\nREMOTE_RETENTION_DAYS=-3\nTYPO_KEY=1\n';
  try {
    parseConfigText(text, '/etc/mailcow-backup/.env');
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof UserError);
    assert.equal(e.kind, 'config');
    const lines = e.details;
    const expect: [string, RegExp][] = [
      ['HETZNER_HOST', /HETZNER_HOST is required \(example: HETZNER_HOST=u123456\.your-storagebox\.de\)/],
      ['HETZNER_USER', /HETZNER_USER is required/],
      ['HETZNER_PORT', /HETZNER_PORT must be a whole number from 1 to 65535 \(example: HETZNER_PORT=23\)/],
      ['THREADS', /THREADS must be 'auto' or a whole number from 1 to 99/],
      ['BACKUP_COMPONENTS', /BACKUP_COMPONENTS must be 'all' or a list of vmail crypt redis rspamd postfix mysql/],
      ['HETZNER_REMOTE_PATH', /HETZNER_REMOTE_PATH must be a folder path .* without "\.\."/],
      ['LOG_FILE', /LOG_FILE must be an absolute path/],
      ['REMOTE_RETENTION_DAYS', /REMOTE_RETENTION_DAYS must be a whole number/],
    ];
    for (const [key, re] of expect) assert.ok(lines.some((l) => re.test(l) && l.startsWith('/etc/mailcow-backup/.env: ')), `${key}: ${lines.join('\n')}`);
    assert.equal(lines.length, expect.length);
  }
});

test('hostile values are refused, never passed on', () => {
  const hostile = ['u1; rm -rf /', '$(id)', 'a b', '`x`', '../..', 'ü', 'x'.repeat(300), '-oProxyCommand=x'];
  for (const v of hostile) {
    for (const key of ['HETZNER_HOST', 'HETZNER_USER', 'HETZNER_REMOTE_PATH']) {
      const base = { HETZNER_HOST: 'h.example', HETZNER_USER: 'u1', [key]: JSON.stringify(v) };
      const text = Object.entries(base).map(([k, val]) => `${k}=${val.startsWith('"') ? val : val}`).join('\n');
      assert.throws(() => parseConfigText(text, 'x'), (e: unknown) => e instanceof UserError && e.details.some((l) => l.includes(key)), `${key}=${v}`);
    }
  }
});

test('remote paths: /home/x, /x, ./x and x mean the same folder', () => {
  for (const p of ['/home/backups/mailcow', '/backups/mailcow', './backups/mailcow', 'backups/mailcow/', 'backups//mailcow']) assert.equal(normalizeRemotePath(p), 'backups/mailcow');
});

test('a config with secrets that others can read gets a warning naming chmod 600', async () => {
  const p = join(dir, 'open.env');
  await writeFile(p, 'HETZNER_HOST=h.example\nHETZNER_USER=u1\nSMTP_USER=a\nSMTP_PASSWORD=hunter22\n');
  await chmod(p, 0o644);
  assert.ok(loadConfig(p).warnings.some((w) => w.includes(`chmod 600 ${p}`)));
  await chmod(p, 0o600);
  assert.deepEqual(loadConfig(p).warnings, []);
});

test('the command prints one line per problem and exits 2, without a stack trace', async () => {
  const p = join(dir, 'bad.env');
  await writeFile(p, 'HETZNER_HOST=h.example\nHETZNER_USER=u1\nHETZNER_PORT=99999\nKEEP_DAILY=many\n', { mode: 0o600 });
  const r = await backup(['run', '--config', p], {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /HETZNER_PORT must be at most 65535/);
  assert.match(r.stderr, /KEEP_DAILY must be a whole number/);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\.js:\d+/);
  const missing = await backup(['run', '--config', join(dir, 'nope.env')], {});
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.env: config file does not exist/);
  const flag = await backup(['run', '--bogus'], {});
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /Unknown option '--bogus'/);
});

test('under systemd (no terminal) lines carry syslog priorities and no colours or timestamps', async () => {
  const p = join(dir, 'journal.env');
  await writeFile(p, 'HETZNER_HOST=h.example\nHETZNER_USER=u1\nHETZNER_PORT=0\n', { mode: 0o600 });
  const r = await backup(['run', '--config', p], { INVOCATION_ID: 'test', JOURNAL_STREAM: '8:1' });
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  assert.match(lines[0]!, /^<3>.*1 configuration problem$/);
  assert.ok(lines.every((l) => /^<[0-7]>/.test(l)), r.stderr);
  assert.doesNotMatch(r.stderr, /\x1b\[|\d{4}-\d{2}-\d{2}T/);
});
