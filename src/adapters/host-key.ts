// Host-key pinning. Every Storage Box presents the same keys and Hetzner publishes their
// fingerprints, so a scanned key can be checked rather than trusted on first use.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Exec } from './exec.js';

/** From Hetzner's Storage Box documentation ("SSH host keys"), port 23. */
export const HETZNER_FINGERPRINTS = {
  ed25519: 'SHA256:XqONwb1S0zuj5A1CDxpOSuD2hnAArV1A3wKY7Z3sdgM',
  rsa: 'SHA256:EMlfI8GsRIfpVkoW1H2u0zYVpFGKkIMKHFZIRkf2ioI',
  ecdsa: 'SHA256:oDHZqKXnoMtgvPBjjC57pcuFez28roaEuFcfwyg8O5c',
} as const;

/** The published list; tests pass their own to drive the auto-pin with a key they control. */
export const PUBLISHED_FINGERPRINTS: readonly string[] = Object.values(HETZNER_FINGERPRINTS);

/** How ssh names a host in known_hosts: a port other than 22 needs the [host]:port form. */
export const knownHostsName = (host: string, port: number) => (port === 22 ? host : `[${host}]:${port}`);

/** SHA256 fingerprints of known_hosts lines (as `ssh-keygen -lf` prints them). */
export async function fingerprintsOf(exec: Exec, keyLines: string[]): Promise<string[]> {
  if (keyLines.length === 0) return [];
  const r = await exec('ssh-keygen', ['-l', '-f', '-'], { what: 'ssh-keygen -l', input: keyLines.join('\n') + '\n', capture: true, okCodes: [0, 1, 255] });
  return [...r.stdout.matchAll(/SHA256:[A-Za-z0-9+/]+/g)].map((m) => m[0]);
}

export async function pinnedLines(knownHosts: string, host: string, port: number): Promise<string[]> {
  const name = knownHostsName(host, port);
  const text = await readFile(knownHosts, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.split(/\s+/)[0]?.split(',').includes(name));
}

export async function pinnedFingerprints(exec: Exec, knownHosts: string, host: string, port: number): Promise<string[]> {
  return fingerprintsOf(exec, await pinnedLines(knownHosts, host, port));
}

export interface ScannedKey {
  line: string;
  fingerprint: string;
  hetzner: boolean;
}

export async function scanHostKeys(exec: Exec, host: string, port: number, timeoutSec = 10, published = PUBLISHED_FINGERPRINTS): Promise<ScannedKey[]> {
  const r = await exec('ssh-keyscan', ['-T', String(timeoutSec), '-p', String(port), '-t', 'ed25519,ecdsa,rsa', host], {
    what: `ssh-keyscan ${host}:${port}`,
    capture: true,
    errorKind: 'preflight',
    okCodes: [0, 1],
  });
  const lines = r.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
  const out: ScannedKey[] = [];
  for (const line of lines) {
    const [fp] = await fingerprintsOf(exec, [line]);
    if (fp) out.push({ line, fingerprint: fp, hetzner: published.includes(fp) });
  }
  return out;
}

/** Replaces this host's lines in the known_hosts file with the given keys (mode 0644). */
export async function pinHostKeys(knownHosts: string, host: string, port: number, keys: ScannedKey[]): Promise<void> {
  const name = knownHostsName(host, port);
  const old = (await readFile(knownHosts, 'utf8').catch(() => '')).split('\n').filter((l) => l.trim() && !l.split(/\s+/)[0]?.split(',').includes(name));
  const fresh = keys.map((k) => {
    const [, type, key] = k.line.split(/\s+/);
    return `${name} ${type} ${key}`;
  });
  await mkdir(dirname(knownHosts), { recursive: true, mode: 0o700 });
  await writeFile(knownHosts, [...old, ...fresh].join('\n') + '\n', { mode: 0o644 });
}
