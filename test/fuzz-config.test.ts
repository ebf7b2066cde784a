// Config fuzzing: random and hostile values for every key. Through the schema in-process (many
// values, fast) and through the real CLI (one bad key per file, then every key bad at once):
// exit 2, one line per bad key naming it, never a stack trace, nothing written.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfigText } from '../src/config/load.js';
import { KEY_DOCS } from '../src/config/schema.js';
import { UserError } from '../src/errors.js';
import { mulberry32 } from '../src/sandbox/maildir-fixture.js';
import { backup, type CliResult } from './support/cli.js';

let dir: string;
const KEYS = KEY_DOCS.map((k) => k.key);

/** A valid config whose writable paths all point at folders that must never appear. */
function baseValues(d: string): Record<string, string> {
  return {
    HETZNER_HOST: 'u123456.your-storagebox.de',
    HETZNER_USER: 'u123456-sub1',
    SSH_KEY_PATH: join(d, 'key'),
    SSH_KNOWN_HOSTS: join(d, 'known_hosts'),
    MAILCOW_PATH: join(d, 'mailcow'),
    TEMP_BACKUP_DIR: join(d, 'written', 'tmp'),
    STATE_DIR: join(d, 'written', 'state'),
    STATUS_FILE: join(d, 'written', 'state', 'status.json'),
    LOG_FILE: join(d, 'written', 'log', 'backup.log'),
    PROMETHEUS_TEXTFILE: join(d, 'written', 'prom', 'x.prom'),
    NOTIFICATION_EMAIL: 'admin@example.com',
    SMTP_USER: 'backup@example.com',
  };
}

const BIG = 'x'.repeat(1024 * 1024);
const path2k = '/' + 'a'.repeat(2000);

/** Values each key must refuse (at least one per key; the test checks every key is covered). */
const BAD: Record<string, string[]> = {};
const add = (keys: string[], values: string[]) => keys.forEach((k) => (BAD[k] = [...(BAD[k] ?? []), ...values]));
const INTS = ['HETZNER_PORT', 'SSH_CONNECT_TIMEOUT', 'RSYNC_TIMEOUT', 'BWLIMIT_KBPS', 'LOCAL_RETENTION_DAYS', 'LOCK_TIMEOUT_HOURS', 'REMOTE_RETENTION_DAYS', 'KEEP_DAILY', 'KEEP_WEEKLY', 'KEEP_MONTHLY', 'SCRUB_BUDGET_MINUTES', 'SHRINK_GUARD_PERCENT', 'SMTP_PORT', 'STALE_AFTER_HOURS', 'STANDBY_KEEP', 'KEEP_HOURLY', 'DUMP_INTERVAL_HOURS'];
const PATHS = ['SSH_KEY_PATH', 'SSH_KNOWN_HOSTS', 'MAILCOW_PATH', 'VMAIL_VOLUME_PATH', 'TEMP_BACKUP_DIR', 'STATE_DIR', 'LOG_FILE', 'SMTP_TLS_CA', 'STATUS_FILE', 'PROMETHEUS_TEXTFILE', 'STANDBY_DIR', 'AGE_IDENTITY_FILE'];
add(INTS, ['-1', '1.5', 'abc', '99999999999999999999', '١٢', '0x10', '1 2', '1;reboot', '$(id)', BIG]);
add(['ALLOW_VMAIL_WITHOUT_CRYPT', 'EMAIL_NOTIFICATIONS'], ['maybe', 'tru e', '$(true)', 'ja', BIG]);
add(PATHS, ['relative/path', '~/x', 'C:\\x', 'with space/rel', '$(id)', path2k]);
add(['HETZNER_HOST', 'SMTP_HOST'], ['bad host', 'x;reboot', '$(id)', 'ü.example', '-oProxyCommand=x', 'z'.repeat(300), 'h`id`']);
add(['HETZNER_USER'], ['Root', 'u1;id', '-oProxyCommand=x', 'u 1', '$(id)', 'ü', 'u'.repeat(40)]);
add(['HETZNER_REMOTE_PATH'], ['../etc', 'a/../b', 'has space', '$(id)', 'a;b', '-rf', 'a\\b', 'ü', 'x/' + 'a'.repeat(300)]);
add(['BACKUP_COMPONENTS'], ['vmail,bogus', 'rm -rf /', '$(id)', 'all;id']);
add(['THREADS'], ['0', '100', 'auto;id', '-1', 'many']);
add(['SHRINK_GUARD_PERCENT'], ['100', '50%']);
add(['NOTIFICATION_EMAIL', 'NOTIFICATION_FROM'], ['not an email', 'a@b;c', '<a@b>', 'a@b c']);
add(['NOTIFY_ON'], ['sometimes', 'always;id', 'ALWAYS ']);
add(['ROLE'], ['backup', 'standby;id', '$(id)', 'secondary']);
add(['STANDBY_KEEP'], ['0', '101']);
add(['HEALTHCHECK_URL'], ['file:///etc/passwd', 'javascript:alert(1)', 'ftp://x', 'not a url', '$(id)']);
add(['SMTP_USER'], ['u'.repeat(300), BIG]);
add(['SMTP_PASSWORD'], ['p'.repeat(2000), BIG]);
add(['ENCRYPT_RECIPIENTS'], ['age1', 'age1qqqq;id', '$(id)', 'AGE-SECRET-KEY-1QQQQ', 'ssh-ed25519 AAAA', 'relative/recipients.txt', '/nonexistent/recipients', 'x, y, z, w', 'age1' + 'q'.repeat(300), BIG]);

function envText(values: Record<string, string>): string {
  // Single-line values unquoted (dotenv keeps them as they are up to a ' #' comment); the
  // others double-quoted (dotenv turns \n into a newline there).
  return Object.entries(values)
    .map(([k, v]) => (/[\n"#']/.test(v) || v !== v.trim() ? `${k}="${v.replace(/\n/g, '\\n').replace(/"/g, '')}"` : `${k}=${v}`))
    .join('\n') + '\n';
}

/** The keys named by a config error, asserting every detail line has the documented shape. */
function namedKeys(e: unknown, path: string): string[] {
  assert.ok(e instanceof UserError, `not a UserError: ${(e as Error)?.stack}`);
  assert.equal(e.kind, 'config');
  return e.details.map((l) => {
    assert.ok(l.startsWith(`${path}: `), l);
    const key = l.slice(path.length + 2).split(' ')[0]!;
    assert.ok(KEYS.includes(key), `line does not name a key: ${l}`);
    assert.ok(l.length < 400, `line too long (${l.length}): ${l.slice(0, 200)}…`);
    assert.ok(!l.includes('\n'));
    return key;
  });
}

function assertCleanCli(r: CliResult, keys: string[], label = ''): void {
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 2, `${label}: ${out.slice(0, 2000)}`);
  assert.doesNotMatch(out, /^\s+at .*\(.*:\d+:\d+\)$|^\s+at file:|internal error|TypeError|ZodError/m, out.slice(0, 2000));
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.match(lines[0]!, /^error: .*: \d+ configuration problems?$/);
  for (const k of keys) {
    const hits = lines.filter((l) => new RegExp(`: ${k} `).test(l));
    assert.equal(hits.length, 1, `${k} should be named once:\n${r.stderr.slice(0, 3000)}`);
  }
  for (const l of lines) assert.ok(l.length < 400, `line too long: ${l.slice(0, 200)}`);
  assert.equal(lines.length, 1 + keys.length, r.stderr.slice(0, 3000));
}

async function nothingWritten(): Promise<void> {
  assert.ok(!existsSync(join(dir, 'written')), `written: ${existsSync(join(dir, 'written')) ? (await readdir(join(dir, 'written'))).join(', ') : ''}`);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mcb-fuzz-'));
  await mkdir(join(dir, 'cfg'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('config fuzzing', () => {
  test('every key has hostile values', () => {
    for (const k of KEYS) assert.ok(BAD[k]?.length, `no bad values for ${k}`);
  });

  test('schema: every hostile value is refused, naming its key only; random values never throw anything else', () => {
    const base = baseValues(dir);
    const p = '/cfg.env';
    for (const [k, values] of Object.entries(BAD)) {
      for (const v of values) {
        try {
          parseConfigText(envText({ ...base, [k]: v }), p);
          assert.fail(`${k}=${v.slice(0, 60)} was accepted`);
        } catch (e) {
          if ((e as Error).name === 'AssertionError') throw e;
          assert.deepEqual([...new Set(namedKeys(e, p))], [k], `${k}=${v.slice(0, 60)}`);
        }
      }
    }
    // Random values from a hostile alphabet: accepted, or refused naming that key only.
    const rnd = mulberry32(42);
    const alphabet = ['a', 'Z', '0', '9', '-', '_', '.', '/', ' ', ';', '&', '|', '$', '(', ')', '`', '\\', '*', '?', '~', '@', ':', '=', 'ü', '€', '😀', '\u202e', '\t', '%', '!'];
    let refused = 0;
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const k = KEYS[Math.floor(rnd() * KEYS.length)]!;
      const len = Math.floor(rnd() * (rnd() < 0.05 ? 5000 : 24));
      let v = '';
      for (let j = 0; j < len; j++) v += alphabet[Math.floor(rnd() * alphabet.length)];
      if (rnd() < 0.3) v = String(Math.floor((rnd() - 0.3) * 10 ** Math.floor(rnd() * 25)));
      try {
        parseConfigText(envText({ ...base, [k]: v }), p);
        accepted++;
      } catch (e) {
        const keys = namedKeys(e, p);
        assert.deepEqual(keys, [k], `${k}=${JSON.stringify(v.slice(0, 80))}`);
        refused++;
      }
    }
    assert.ok(refused > 1000 && accepted > 100, `refused ${refused}, accepted ${accepted}`);
  });

  test('CLI: one bad key per file → exit 2, that key named once, no stack, nothing written', async () => {
    const base = baseValues(dir);
    let n = 0;
    for (const k of KEYS) {
      // The first and the last (the largest) hostile value of each key.
      for (const v of new Set([BAD[k]![0]!, BAD[k]!.at(-1)!])) {
        const f = join(dir, 'cfg', `one-${n++}.env`);
        await writeFile(f, envText({ ...base, [k]: v }), { mode: 0o600 });
        const r = await backup(['run', '--config', f], {});
        assertCleanCli(r, [k], `${k}=${JSON.stringify(v.slice(0, 60))}`);
        await nothingWritten();
      }
    }
  });

  const allBad = async (cls: string, pick: (k: string) => string) => {
    const values: Record<string, string> = { ...baseValues(dir) };
    for (const k of KEYS) values[k] = pick(k);
    const f = join(dir, 'cfg', `all-${cls}.env`);
    await writeFile(f, envText(values), { mode: 0o600 });
    return f;
  };
  const classes: Record<string, (k: string) => string> = {
    first: (k) => BAD[k]![0]!,
    last: (k) => BAD[k]!.at(-1)!,
    shell: (k) => BAD[k]!.find((v) => v.includes('$(')) ?? BAD[k]![0]!,
  };

  test('CLI: every key bad at once, for each hostile class and every command → exit 2, distinct keys, no stack, nothing written', async () => {
    for (const [cls, pick] of Object.entries(classes)) {
      const f = await allBad(cls, pick);
      for (const cmd of cls === 'first' ? ['run', 'check', 'list', 'prune', 'status', 'test-email'] : ['run']) {
        const r = await backup([cmd, '--config', f], {});
        const out = r.stdout + r.stderr;
        assert.equal(r.code, 2, out.slice(0, 2000));
        assert.doesNotMatch(out, /^\s+at |internal error|TypeError|ZodError/m);
        const lines = r.stderr.split('\n').filter(Boolean);
        assert.equal(lines[0], `error: ${f}: ${KEYS.length} configuration problems`);
        const named = lines.slice(1).map((l) => l.trim().slice(f.length + 2).split(' ')[0]);
        assert.equal(new Set(named).size, named.length, 'each key once');
        assert.ok(named.every((k) => KEYS.includes(k!)));
        for (const l of lines) assert.ok(l.length < 400, `line too long: ${l.slice(0, 200)}`);
      }
      await nothingWritten();
    }
  });

  // Regression (src/cli/main.ts reportError once cut details to 20 lines): with more than 20 bad
  // keys the admin saw "36 configuration problems" but only 20 of them.
  test('CLI: every key bad at once → every one of them named', async () => {
    const f = await allBad('first', classes.first!);
    assertCleanCli(await backup(['run', '--config', f], {}), KEYS, 'all keys bad');
  });

  // Regression: absPath()'s refines do not abort, so a relative path that is also too long (or
  // holds a newline) gave two lines for one key; the formatter (config/load.ts) keeps the first.
  test('one line per bad key, even when a value breaks two rules', () => {
    for (const v of ['rel' + 'a'.repeat(2000), 'rel\\nx']) {
      try {
        parseConfigText(envText({ ...baseValues(dir), STATUS_FILE: v }), '/c');
        assert.fail('accepted');
      } catch (e) {
        assert.deepEqual(namedKeys(e, '/c'), ['STATUS_FILE']);
      }
    }
  });

  // Regression: the old HOST_PATTERN's IP branch /^\[?[0-9a-fA-F:.]+\]?$/ took any string of hex
  // letters, so a 300-character "aaaa…" (not a host name: labels are at most 63) passed; so did
  // "[a" and "a]". IP literals now go to node:net isIP, names to a strict DNS pattern.
  test('a 300-letter host of hex letters is refused; real names and IP literals are not', () => {
    const refused = ['a'.repeat(300), '[abc', 'abc]', ':::::', '[::1]', 'fe80::1%eth0', '1.2.3.999', '1.2.3.4.5', 'a'.repeat(64) + '.de', '-a.de', 'a-.de', 'a..de', `${'a'.repeat(60)}.`.repeat(5) + 'de'];
    for (const v of refused) {
      assert.throws(() => parseConfigText(envText({ ...baseValues(dir), HETZNER_HOST: v }), '/c'), UserError, v.slice(0, 20));
    }
    for (const v of ['u123456.your-storagebox.de', 'localhost', '127.0.0.1', '::1', '2a01:4f8:c17:1234::1', 'a'.repeat(63) + '.de', 'mx-1.example.com']) {
      assert.equal(parseConfigText(envText({ ...baseValues(dir), HETZNER_HOST: v, SMTP_HOST: v }), '/c').config.HETZNER_HOST, v);
    }
  });

  test('CLI: broken files (binary, NUL bytes, a folder, missing, huge) → exit 2 with one line, no stack', async () => {
    const cases: [string, () => Promise<string>][] = [
      ['missing', async () => join(dir, 'cfg', 'nope.env')],
      ['a folder', async () => join(dir, 'cfg')],
      ['binary', async () => {
        const f = join(dir, 'cfg', 'bin.env');
        await writeFile(f, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 131 + 7) % 256)));
        return f;
      }],
      ['empty', async () => {
        const f = join(dir, 'cfg', 'empty.env');
        await writeFile(f, '');
        return f;
      }],
      ['huge', async () => {
        const f = join(dir, 'cfg', 'huge.env');
        await writeFile(f, `HETZNER_HOST=${'h'.repeat(20 * 1024 * 1024)}\n`);
        return f;
      }],
      ['path with spaces and metacharacters', async () => join(dir, 'cfg', 'sp ace;$(id)`x`.env')],
    ];
    for (const [what, make] of cases) {
      const f = await make();
      const r = await backup(['run', '--config', f], {});
      const out = r.stdout + r.stderr;
      assert.equal(r.code, 2, `${what}: ${out.slice(0, 1000)}`);
      assert.doesNotMatch(out, /^\s+at |internal error/m, `${what}: ${out.slice(0, 1000)}`);
      assert.match(r.stderr, /^error: /, what);
      assert.ok(r.stderr.split('\n').every((l) => l.length < 400), what);
      await nothingWritten();
    }
  });
});
