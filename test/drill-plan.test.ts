// Pure parts of the restore drill: mail_crypt's key id read from a message that Debian's dovecot
// 2.3 saved with mail_crypt on (`doveadm save`; `doveadm dump -t dcrypt-file` printed the same id),
// the stand-in's headers and key ids checked against it, the database's answer, the comparison
// with the mail tree, the disk scope and the summary line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { drillNeed, drillScope, drillSubject, drillSummaryLine, mailCryptKeyIdOf, parseDbOutput, setAgainstVmail, sqlImageOf } from '../src/plan/drill.js';
import { mailCryptHeader, mailCryptKeyId } from '../src/sandbox/mail-crypt-fixture.js';

// The first 240 bytes of that message, and its global public key.
const DOVECOT_MESSAGE_HEAD = Buffer.from(
  '4352595054454403070200000002000000ff060960864801650304012e060960864801650304020100000800000000cf01026a107faf4341785f02bea21a49ffd80f82edce5274d4be0d288e142ec948ca2200000041041978681e47256c821fc517109673e5c958bf5eddd70282a58f71dc6d9f495c5bbcce7174a5317b8ee120a7f629ec3217f989cf5dae61c9ff909d47e3aa991dc0000000407dc2349615f236900e2074cc3c0cf2e6ad39069b4fb7fd27325fc46486cc363ff41a82c9a6e6ab235536a7bfdfa0799f921532607eff7739b0f0620ce3e7a263000000200194eeac2a521d34b2bd52ab72be0790ea',
  'hex',
);
const DOVECOT_PUBLIC_KEY = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6HiqKq+lPCoraXQzy0XkJjyFUJ2H
wQylbL0EWHRdfpTcfTxxIqNUoOIMJTrR5szQhDiVpkOMUV75czgfhCunkA==
-----END PUBLIC KEY-----
`;
const DOVECOT_KEY_ID = '6a107faf4341785f02bea21a49ffd80f82edce5274d4be0d288e142ec948ca22';

describe('drill: pure parts', () => {
  it("reads the key id of a real dovecot mail_crypt message, and the stand-in's key id and header agree with dovecot", () => {
    assert.equal(mailCryptKeyIdOf(DOVECOT_MESSAGE_HEAD), DOVECOT_KEY_ID);
    assert.equal(mailCryptKeyId(DOVECOT_PUBLIC_KEY), DOVECOT_KEY_ID);
    assert.equal(mailCryptKeyIdOf(mailCryptHeader(DOVECOT_KEY_ID, 'x')), DOVECOT_KEY_ID);
    // Same bytes up to the key id but for the header's length (dovecot's header holds more after the key).
    const mine = mailCryptHeader(DOVECOT_KEY_ID, 'x');
    assert.deepEqual(Buffer.concat([mine.subarray(0, 14), mine.subarray(18, 0x52)]), Buffer.concat([DOVECOT_MESSAGE_HEAD.subarray(0, 14), DOVECOT_MESSAGE_HEAD.subarray(18, 0x52)]));
    assert.equal(mailCryptKeyIdOf(Buffer.from('Return-Path: <a@b>\n')), undefined, 'plaintext mail has no key id');
    assert.equal(mailCryptKeyIdOf(DOVECOT_MESSAGE_HEAD.subarray(0, 40)), undefined, 'a cut header is not read past its end');
  });

  it("reads the database's answer; a schema without mailcow's tables is no answer", () => {
    const db = parseDbOutput('domains\t2\t2\naliases\t8\t7\nmailbox\talice@example.com\texample.com\talice\t1\nmailbox\tbob@example.org\texample.org\tbob\t0\n');
    assert.deepEqual(db, {
      domains: 2,
      activeDomains: 2,
      aliases: 8,
      mailboxes: [
        { address: 'alice@example.com', domain: 'example.com', localPart: 'alice', active: 1 },
        { address: 'bob@example.org', domain: 'example.org', localPart: 'bob', active: 0 },
      ],
    });
    assert.equal(parseDbOutput(''), undefined);
    const { missing, orphans } = setAgainstVmail(db!.mailboxes, new Map([['example.com/alice', {}], ['example.net/old', {}]]));
    assert.deepEqual(missing.map((m) => m.address), ['bob@example.org']);
    assert.deepEqual(orphans, ['example.net/old']);
  });

  it('finds the SQL image as mailcow\'s script does, scopes a drill to free space, and words the result', () => {
    assert.equal(sqlImageOf('    mysql-mailcow:\n      image: mariadb:10.11\n'), 'mariadb:10.11');
    // The database unpacked, as recorded, counts (InnoDB compresses 10-1000x); unrecorded: 20x its archive.
    assert.equal(drillNeed(1000, { bytes: 100, unpackedBytes: 4000 }), 1000 + 100 + 5000);
    assert.equal(drillNeed(1000, { bytes: 100 }), 1000 + 100 + 2500);
    assert.equal(drillNeed(1000), 1000);
    assert.deepEqual(drillScope(100, 1000, []), { full: true });
    assert.deepEqual(drillScope(1000, 100, [{ dir: 'a/x', bytes: 9 }, { dir: 'a/y', bytes: 1 }, { dir: 'b/z', bytes: 5 }, { dir: 'c/w', bytes: 3 }]), { full: false, mailboxes: ['a/y', 'b/z', 'c/w'], skipped: 1 });
    const ok = { backup: 'mailcow-2026-12-06-03-00-00', verdict: 'OK' as const, domains: 3, mailboxes: 41, messages: 211733, bytes: 18.4 * 1024 ** 3, fetchMs: 192_000, openMs: 48_000, checks: [] };
    assert.equal(drillSummaryLine(ok), 'drill OK: mailcow-2026-12-06-03-00-00 restores: 3 domains, 41 mailboxes, 211,733 messages, 18.4 GiB; fetched in 3 min 12 s, opened in 48.0 s');
    assert.equal(drillSubject(false, 'mx1', ok.backup), '[mailcow-backup] DRILL FAILED mx1 — mailcow-2026-12-06-03-00-00');
  });
});
