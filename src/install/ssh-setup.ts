// SSH: the key (exists, mode 0600, or generated), and the box's host key: scanned with
// ssh-keyscan, checked against the fingerprints Hetzner publishes for every Storage Box, and
// pinned as [host]:port in SSH_KNOWN_HOSTS. A key that is not Hetzner's is only pinned when the
// admin confirms it (or passes --accept-host-key with its fingerprint).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import type { Config } from '../config/schema.js';
import { UserError } from '../errors.js';
import { PUBLISHED_FINGERPRINTS, knownHostsName, pinnedFingerprints, scanHostKeys, type ScannedKey } from '../adapters/host-key.js';
import { pinHostKeys } from '../adapters/host-key.js';
import type { Exec } from '../adapters/exec.js';
import { rooted } from './layout.js';
import type { InstallOptions } from './options.js';
import type { Asker } from './prompts.js';
import { commandText, modeText, type Ops } from './ops.js';

export function installKeyCommand(c: Pick<Config, 'HETZNER_HOST' | 'HETZNER_PORT' | 'HETZNER_USER' | 'SSH_KEY_PATH' | 'SSH_KNOWN_HOSTS'>): string {
  return `${commandText('ssh', ['-p', String(c.HETZNER_PORT), '-o', `UserKnownHostsFile=${c.SSH_KNOWN_HOSTS}`, '-o', 'StrictHostKeyChecking=yes', `${c.HETZNER_USER}@${c.HETZNER_HOST}`, 'install-ssh-key'])} < ${c.SSH_KEY_PATH}.pub`;
}

/** The key exists with mode 0600 afterwards, or the admin declined and was told what to do. */
export async function ensureKey(opts: InstallOptions, c: Config, asker: Asker, ops: Ops): Promise<{ generated: boolean; present: boolean }> {
  const key = rooted(opts.root, c.SSH_KEY_PATH);
  if (existsSync(key)) {
    const mode = statSync(key).mode & 0o777;
    if (mode & 0o077) {
      await ops.chmod(key, 0o600);
      ops.out.ok(`${key}: mode ${modeText(mode)} tightened to 0600 (ssh refuses keys others can read)`);
    } else ops.out.ok(`SSH key ${key} (mode ${modeText(mode)})`);
    if (!existsSync(`${key}.pub`)) {
      const r = await ops.probe('ssh-keygen', ['-y', '-f', key], { what: 'ssh-keygen -y', capture: true, errorKind: 'preflight' });
      await ops.writeFile(`${key}.pub`, r.stdout.trim() + '\n', 0o644);
      ops.out.ok(`${key}.pub derived from the private key`);
    }
    return { generated: false, present: true };
  }
  const generate =
    opts.keygen && (await asker.confirm({ name: 'generateKey', message: `${c.SSH_KEY_PATH} does not exist. Generate an ed25519 key there (no passphrase, for the timer)?`, default: true }));
  if (!generate) {
    ops.out.warn(`no SSH key at ${c.SSH_KEY_PATH}: the backup cannot log in until it exists (ssh-keygen -t ed25519 -N '' -f ${c.SSH_KEY_PATH})`);
    return { generated: false, present: false };
  }
  await ops.mkdir(dirname(key), 0o700);
  await ops.run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `mailcow-backup@${hostname()}`, '-f', key], { what: 'ssh-keygen', errorKind: 'preflight' });
  ops.out.ok(`${ops.dryRun ? 'would generate' : 'generated'} ${key} (ed25519, mode 0600)`);
  return { generated: true, present: !ops.dryRun };
}

export interface HostKeyResult {
  pinned: ScannedKey[];
  hetzner: boolean;
}

/** Scans, checks and pins the box's host key. */
export async function pinBoxHostKey(opts: InstallOptions, c: Config, asker: Asker, ops: Ops, exec: Exec, publishedKeys = PUBLISHED_FINGERPRINTS): Promise<HostKeyResult> {
  const known = rooted(opts.root, c.SSH_KNOWN_HOSTS);
  const name = knownHostsName(c.HETZNER_HOST, c.HETZNER_PORT);
  ops.out.info(`scanning: ssh-keyscan -p ${c.HETZNER_PORT} ${c.HETZNER_HOST}`);
  const scanned = await scanHostKeys(exec, c.HETZNER_HOST, c.HETZNER_PORT, Math.min(c.SSH_CONNECT_TIMEOUT, 30), publishedKeys);
  if (scanned.length === 0) {
    throw new UserError('preflight', `ssh-keyscan got no host key from ${c.HETZNER_HOST} port ${c.HETZNER_PORT}; check HETZNER_HOST, HETZNER_PORT (23) and that this host can reach the box`);
  }
  for (const k of scanned) ops.out.info(`${k.line.split(/\s+/)[1]} ${k.fingerprint}${k.hetzner ? "  (Hetzner's published Storage Box key)" : ''}`);
  const previously = await pinnedFingerprints(exec, known, c.HETZNER_HOST, c.HETZNER_PORT);

  const hetzner = scanned.filter((k) => k.hetzner);
  let chosen: ScannedKey[];
  if (hetzner.length) {
    chosen = hetzner;
    ops.out.ok(`host key matches Hetzner's published fingerprint ${hetzner[0]!.fingerprint}`);
  } else {
    const seen = scanned.map((k) => k.fingerprint);
    const published = publishedKeys.join(', ');
    if (opts.acceptHostKey) {
      chosen = scanned.filter((k) => k.fingerprint === opts.acceptHostKey);
      if (!chosen.length) {
        throw new UserError('preflight', `--accept-host-key ${opts.acceptHostKey} is not a key of ${name}, which presents ${seen.join(', ')}; the host key was not pinned`);
      }
      ops.out.warn(`pinning ${opts.acceptHostKey} for ${name} as --accept-host-key says (not one of Hetzner's published keys)`);
    } else if (!asker.interactive) {
      throw new UserError('preflight', `${name} presents host key ${seen[0]}, which is not one of Hetzner's published Storage Box keys; if you trust it, pass --accept-host-key ${seen[0]}`);
    } else {
      ops.out.warn(`none of these is one of Hetzner's published Storage Box keys (${published}).`);
      ops.out.warn('A real Storage Box always presents them: a different key means another server, or someone in between.');
      const yes = await asker.confirm({ name: 'acceptHostKey', message: `Pin ${seen[0]} for ${name} anyway?`, default: false });
      if (!yes) throw new UserError('preflight', `host key of ${name} refused (${seen[0]}); nothing was pinned: check HETZNER_HOST`);
      chosen = scanned.filter((k) => k.fingerprint === seen[0]);
    }
  }
  const fresh = chosen.map((k) => k.fingerprint).sort();
  if (previously.length && previously.slice().sort().join() === fresh.join()) {
    ops.out.ok(`${known}: ${name} already pinned`);
    return { pinned: chosen, hetzner: hetzner.length > 0 };
  }
  if (previously.length) ops.out.warn(`${known} had other keys pinned for ${name} (${previously.join(', ')}); replacing them`);
  if (ops.dryRun) {
    await ops.writeFile(known, previewPins(known, name, chosen), 0o644);
  } else {
    await ops.ensureDir(dirname(known), 0o700);
    await pinHostKeys(known, c.HETZNER_HOST, c.HETZNER_PORT, chosen);
  }
  ops.out.ok(`${ops.dryRun ? 'would pin' : 'pinned'} ${fresh.join(', ')} as ${name} in ${known}`);
  return { pinned: chosen, hetzner: hetzner.length > 0 };
}

function previewPins(known: string, name: string, keys: ScannedKey[]): string {
  const old = existsSync(known) ? readFileSync(known, 'utf8').split('\n').filter((l) => l.trim() && !l.split(/\s+/)[0]?.split(',').includes(name)) : [];
  return [...old, ...keys.map((k) => `${name} ${k.line.split(/\s+/).slice(1, 3).join(' ')}`)].join('\n') + '\n';
}

/** Shows (and, if asked, runs) the box's install-ssh-key command for the public key. */
export async function offerKeyUpload(opts: InstallOptions, c: Config, asker: Asker, ops: Ops, exec: Exec, generated: boolean): Promise<void> {
  const cmd = installKeyCommand(c);
  ops.out.info('The box must know the public key. Hetzner documents this (it asks for the box password once):');
  ops.out.info(`  ${cmd}`);
  if (!asker.interactive || ops.dryRun || opts.root !== '/') return;
  const run = await asker.confirm({ name: 'uploadKey', message: 'Run that now?', default: generated });
  if (!run) return;
  const pub = readFileSync(`${c.SSH_KEY_PATH}.pub`, 'utf8');
  await exec('ssh', ['-p', String(c.HETZNER_PORT), '-o', `UserKnownHostsFile=${c.SSH_KNOWN_HOSTS}`, '-o', 'StrictHostKeyChecking=yes', `${c.HETZNER_USER}@${c.HETZNER_HOST}`, 'install-ssh-key'], {
    what: 'install-ssh-key on the box',
    input: pub,
    onLine: (l) => ops.out.info(l),
    errorKind: 'preflight',
    timeoutMs: 5 * 60_000,
  });
  ops.out.ok('public key installed on the box');
}
