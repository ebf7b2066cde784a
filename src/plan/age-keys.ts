// Pure: age public keys (recipients) and private keys (identities) as text, which files of a
// backup get encrypted, and how their names change. The config schema validates with this
// module without loading the age library (it is slow to import and most commands never need it),
// and before the daily run's lock: node:crypto (~5 ms to load) is therefore fetched only when a
// fingerprint is made (process.getBuiltinModule, not an import, which would load it at start).

/** Encrypted files carry age's usual suffix; the manifest lists them under that name. */
export const AGE_SUFFIX = '.age';

/** Everything mailcow's script writes except the architecture marker: mailcow.conf and the archives. */
export function isEncryptable(name: string): boolean {
  return name === 'mailcow.conf' || /^backup_[a-z]+\.tar\.(zst|gz)$/.test(name);
}

export const encryptedName = (name: string) => `${name}${AGE_SUFFIX}`;
export const isEncryptedName = (name: string) => name.endsWith(AGE_SUFFIX);
export const plainName = (name: string) => (isEncryptedName(name) ? name.slice(0, -AGE_SUFFIX.length) : name);

// bech32 (BIP 173), which age uses for its keys, without the 90-character limit.
const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i]!;
  }
  return chk >>> 0;
}

/** The data length in bytes of a valid bech32 string with the given prefix, or a reason it is not one. */
function bech32Bytes(s: string, hrp: string): number | string {
  const lower = s.toLowerCase();
  if (s !== lower && s !== s.toUpperCase()) return 'mixes upper and lower case';
  const sep = lower.lastIndexOf('1');
  if (lower.slice(0, sep) !== hrp) return `does not start with ${hrp}1`;
  const data: number[] = [];
  for (const ch of lower.slice(sep + 1)) {
    const v = CHARSET.indexOf(ch);
    if (v < 0) return `holds '${ch}', which is not a bech32 character`;
    data.push(v);
  }
  if (data.length < 6) return 'is too short';
  const expanded = [...[...hrp].map((c) => c.charCodeAt(0) >> 5), 0, ...[...hrp].map((c) => c.charCodeAt(0) & 31)];
  if (polymod([...expanded, ...data]) !== 1) return 'has a bad checksum (a typo or a cut copy)';
  return Math.floor(((data.length - 6) * 5) / 8);
}

// age's two standard key types: X25519 (age1…, 32 bytes) and the post-quantum hybrid (age1pq1…).
const RECIPIENT_TYPES = [
  { hrp: 'age1pq', bytes: 1216 },
  { hrp: 'age', bytes: 32 },
];
const IDENTITY_TYPES = [
  { hrp: 'age-secret-key-pq-', bytes: 32 },
  { hrp: 'age-secret-key-', bytes: 32 },
];

/** Why `value` is not an age recipient, or undefined when it is one. Never echoes a private key. */
export function recipientProblem(value: string): string | undefined {
  if (/^AGE-SECRET-KEY-/i.test(value)) return 'is an age PRIVATE key: give its public key (age1…, age-keygen -y) and keep the private key off this host';
  if (/^(ssh-|ecdsa-)/.test(value)) return 'is an SSH key, not an age public key (age1…, from age-keygen)';
  if (!/^age1/i.test(value)) return `'${shorten(value)}' is not an age public key (age1…, from age-keygen)`;
  if (value !== value.toLowerCase()) return `'${shorten(value)}' must be lower case`;
  const type = RECIPIENT_TYPES.find((t) => value.startsWith(`${t.hrp}1`))!;
  const n = bech32Bytes(value, type.hrp);
  if (typeof n === 'string') return `'${shorten(value)}' ${n}`;
  if (n !== type.bytes) return `'${shorten(value)}' has the wrong length for an age public key`;
  return undefined;
}

/** Whether a text line is an age identity (private key) that decodes. */
export function isIdentity(line: string): boolean {
  if (line !== line.toUpperCase()) return false;
  const type = IDENTITY_TYPES.find((t) => line.toLowerCase().startsWith(`${t.hrp}1`));
  return type !== undefined && bech32Bytes(line, type.hrp) === type.bytes;
}

const shorten = (v: string) => (v.length > 24 ? `${v.slice(0, 20)}…` : v).replace(/[^\x20-\x7e…]/g, '?');

/** Lines of an age recipients or identities file: `#` comments and blank lines are skipped. */
export const keyLines = (text: string) =>
  text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

/** A short, stable name for a recipient in records and messages (the public key is not secret, but long). */
export function recipientFingerprint(recipient: string): string {
  const { createHash } = process.getBuiltinModule('node:crypto');
  return `SHA256:${createHash('sha256').update(recipient).digest('base64').replace(/=+$/, '').slice(0, 16)}`;
}
