// RTO: how long mail is down, measured with the real restore command on the bench's sandbox:
// (a) cold restore on a host without mail, (b) rollback on the same host a day later,
// (c) failover on a host holding the previous day's standby copy, (d) one mailbox. Each: wall
// time, where it went (download, verify, mailcow's script for the archives, copying vmail into
// the volume), and the restore's own "fetched … from the Storage Box, … from this host".
import { spawn } from 'node:child_process';
import { chmod, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutateMaildir } from '../../src/sandbox/maildir-fixture.js';
import { mutateDatabases } from '../../src/sandbox/mailcow-standin.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { run } from './exec.js';
import type { Link } from './link.js';

const RESTORE = fileURLToPath(new URL('../../src/cli/restore-from-hetzner.js', import.meta.url));
const UNIT: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

export interface RtoCase {
  case: string;
  wallS: number;
  /** Seconds per step, from the restore's own progress lines. */
  steps: { start: number; download: number; verify: number; checks: number; archives: number; vmail: number };
  fromBoxBytes: number;
  fromHostBytes: number;
  /** What this host holds at the start. */
  note: string;
  /** Bytes of the backup's selection this host lacks (by path, size and time): what must travel. */
  lackingBytes: number;
  /** Bytes of the backup's selection. */
  selectionBytes: number;
}

/** Regular files under root: relative path -> size and mtime (s). */
async function files(root: string, rel = '', out = new Map<string, { size: number; mtime: number }>()): Promise<Map<string, { size: number; mtime: number }>> {
  for (const e of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await files(root, p, out);
    else if (e.isFile()) {
      const st = await stat(join(root, p));
      out.set(p, { size: st.size, mtime: Math.floor(st.mtimeMs / 1000) });
    }
  }
  return out;
}

/** The backup's files under `only` (a path prefix) and how many of their bytes no basis holds. */
async function lacking(backup: string, bases: { dir: string; prefix: string }[], only = ''): Promise<{ lacking: number; total: number }> {
  const have = await Promise.all(bases.map(async (b) => ({ prefix: b.prefix, files: await files(b.dir) })));
  let total = 0;
  let lack = 0;
  for (const [p, f] of await files(backup)) {
    if (!p.startsWith(only) || p.startsWith('manifest/') || p === 'checksums.sha256' || p === 'backup.json') continue;
    total += f.size;
    const held = have.some((h) => p.startsWith(h.prefix) && ((g) => g && g.size === f.size && g.mtime === f.mtime)(h.files.get(p.slice(h.prefix.length))));
    if (!held) lack += f.size;
  }
  return { lacking: lack, total };
}

/**
 * Without the namespace's shaped link the uploads are limited by rsync --bwlimit; the restore
 * has no such setting (a disaster wants full speed), so its rsync to the box gets the same
 * limit from a wrapper first on PATH. Local rsync (into the volumes) stays unlimited.
 */
async function limitedRsync(dir: string, link: Link, path: string): Promise<Record<string, string>> {
  if (link.method !== 'rsync --bwlimit') return {};
  const kbps = Math.round((link.mbit * 1e6) / 8 / 1024);
  await mkdir(dir, { recursive: true });
  const real = (await run('sh', ['-c', 'command -v rsync'])).stdout.trim();
  await writeFile(join(dir, 'rsync'), `#!/bin/sh\nfor a in "$@"; do [ "$a" = -e ] && exec ${real} --bwlimit=${kbps} "$@"; done\nexec ${real} "$@"\n`);
  await chmod(join(dir, 'rsync'), 0o755);
  return { PATH: `${dir}:${path}` };
}

async function restore(sb: Sandbox, env: Record<string, string>, label: string, args: string[], note: string, need: { lacking: number; total: number }): Promise<RtoCase> {
  const t0 = performance.now();
  const at: Record<string, number> = {};
  let out = '';
  const code = await new Promise<number>((resolve) => {
    const p = spawn(process.execPath, [RESTORE, ...args, '--yes', '--config', sb.configPath], { env: { ...process.env, ...sb.env, ...env, STANDIN_PROMPTS: 'tty' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const seen = (d: Buffer) => {
      out += d;
      const now = performance.now() - t0;
      for (const [k, re] of [['download', /^downloading mailcow-/m], ['verify', /^verifying every downloaded/m], ['verified', /^verified \d+ files and \d+ archives/m], ['restore', /^restoring /m], ['vmail', /^restoring (vmail|mailbox)/m]] as const) if (at[k] === undefined && re.test(out)) at[k] = now;
    };
    p.stdout.on('data', seen);
    p.stderr.on('data', seen);
    p.on('close', (c) => resolve(c ?? 1));
  });
  const wall = performance.now() - t0;
  if (code !== 0) throw new Error(`RTO ${label}: restore exited ${code}\n${out.slice(-3000)}`);
  const m = /^fetched ([\d.]+) (\S+) from the Storage Box, ([\d.]+) (\S+) from this host/m.exec(out);
  const s = (a?: number, b?: number) => (a === undefined || b === undefined ? 0 : (b - a) / 1000);
  return {
    case: label,
    wallS: wall / 1000,
    steps: { start: s(0, at.download), download: s(at.download, at.verify), verify: s(at.verify, at.verified), checks: s(at.verified, at.restore), archives: s(at.restore, at.vmail ?? wall), vmail: s(at.vmail, wall) },
    fromBoxBytes: m ? Number(m[1]) * UNIT[m[2]!]! : NaN,
    fromHostBytes: m ? Number(m[3]) * UNIT[m[4]!]! : NaN,
    note,
    lackingBytes: need.lacking,
    selectionBytes: need.total,
  };
}

const empty = async (dir: string) => {
  for (const n of await readdir(dir)) await rm(join(dir, n), { recursive: true, force: true });
};

/** The four cases on a sandbox whose box holds `previous` and `latest` (a day apart). */
export async function rtoCases(sb: Sandbox, link: Link, o: { work: string; standbyDir: string; previous: string; latest: string; log: (m: string) => void }): Promise<RtoCase[]> {
  const env = await limitedRsync(join(o.work, 'rto-bin'), link, sb.env.PATH ?? process.env.PATH ?? '/usr/bin:/bin');
  const vmail = sb.mailcow.volume('vmail');
  const out: RtoCase[] = [];
  const box = (n: string) => join(sb.box.root, sb.remotePath, n);

  o.log('RTO (a): cold restore on a host without mail...');
  await empty(vmail);
  out.push(await restore(sb, env, '(a) cold restore, empty host', ['--backup', o.latest, '--components', 'all'], 'nothing on this host', await lacking(box(o.latest), [])));

  o.log('RTO (b): rollback on the same host a day later...');
  await mutateMaildir(vmail, { seed: 11, newFraction: 0.01, deleteFraction: 0.002, renameFraction: 0.005 });
  await mutateDatabases(sb.mailcow, 11);
  out.push(await restore(sb, env, '(b) rollback a day later', ['--backup', o.latest, '--components', 'all'], 'live volume a day after the backup', await lacking(box(o.latest), [{ dir: vmail, prefix: 'vmail/' }])));

  o.log("RTO (c): failover on a host holding the previous day's standby copy...");
  out.push(await failover(sb, env, o));

  o.log('RTO (d): one mailbox...');
  const users = sb.mailcow.maildir?.users ?? [];
  const user = users[Math.floor(users.length / 2)];
  if (user) {
    const [local, domain] = user.split('@');
    await rm(join(vmail, domain!, local!), { recursive: true, force: true });
    out.push(await restore(sb, env, `(d) one mailbox (${user})`, ['--backup', o.latest, '--mailbox', user, '--mode', 'replace'], 'the mailbox lost on this host', await lacking(box(o.latest), [], `vmail/${domain}/${local}/`)));
  }
  return out;
}

/** Case (c): the previous backup copied into the standby folder as a mirror would, vmail empty. */
async function failover(sb: Sandbox, env: Record<string, string>, o: { standbyDir: string; previous: string; latest: string }): Promise<RtoCase> {
  const box = (n: string) => join(sb.box.root, sb.remotePath, n);
  await run('cp', ['-a', box(o.previous), join(o.standbyDir, o.previous)]);
  await empty(sb.mailcow.volume('vmail'));
  const r = await restore(sb, env, "(c) failover, yesterday's mirror", ['--backup', o.latest, '--components', 'all'], `standby copy of ${o.previous}`, await lacking(box(o.latest), [{ dir: join(o.standbyDir, o.previous), prefix: '' }]));
  await empty(o.standbyDir);
  return r;
}

/**
 * For working on the failover's time (--rto-again): case (c) again each time WORK/rto-again
 * appears (the restore is started from dist/ anew, so a rebuilt tool is measured), until
 * WORK/rto-stop appears.
 */
export async function failoverAgain(sb: Sandbox, link: Link, o: { work: string; standbyDir: string; previous: string; latest: string; log: (m: string) => void }): Promise<void> {
  const env = await limitedRsync(join(o.work, 'rto-bin'), link, sb.env.PATH ?? process.env.PATH ?? '/usr/bin:/bin');
  const again = join(o.work, 'rto-again');
  o.log(`--rto-again: touch ${again} to run case (c) again, ${join(o.work, 'rto-stop')} to end`);
  for (;;) {
    if (await stat(join(o.work, 'rto-stop')).then(() => true, () => false)) return;
    if (!(await stat(again).then(() => true, () => false))) {
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    await rm(again, { force: true });
    const c = await failover(sb, env, o);
    const st = c.steps;
    o.log(`(c) again: ${c.wallS.toFixed(1)} s; start ${st.start.toFixed(1)}, download ${st.download.toFixed(1)}, verify ${st.verify.toFixed(1)}, checks ${st.checks.toFixed(1)}, script ${st.archives.toFixed(1)}, vmail ${st.vmail.toFixed(1)}; beyond the script ${(c.wallS - st.archives).toFixed(1)} s; ${(c.fromBoxBytes / 1048576).toFixed(1)} MiB from the box`);
  }
}

/** The targets for the RTO cases. */
export function rtoTargets(cases: RtoCase[], fmtB: (n: number) => string): { target: string; measured: string; ok?: boolean }[] {
  const [a, b, c] = cases;
  const t: { target: string; measured: string; ok?: boolean }[] = [];
  if (a && c) {
    const beyond = c.wallS - c.steps.archives;
    t.push({ target: "RTO (c) failover ≤ 10 % of (a)'s wall time beyond mailcow's script", measured: `${beyond.toFixed(1)} s (of ${c.wallS.toFixed(1)} s; mailcow's script ${c.steps.archives.toFixed(1)} s) = ${((100 * beyond) / a.wallS).toFixed(1)} % of ${a.wallS.toFixed(1)} s`, ok: beyond <= 0.1 * a.wallS });
  }
  for (const x of [b, c]) {
    if (!x) continue;
    const allowed = x.lackingBytes + 0.01 * x.selectionBytes;
    t.push({ target: `RTO ${x.case.slice(0, 3)} fetches from the box ≤ what the host lacks + 1 %`, measured: `${fmtB(x.fromBoxBytes)}; lacking ${fmtB(x.lackingBytes)} + 1 % of ${fmtB(x.selectionBytes)} = ${fmtB(allowed)}`, ok: x.fromBoxBytes <= allowed });
  }
  return t;
}
