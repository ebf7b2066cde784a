// `restore-from-hetzner standby`: one run of a standby host. It mirrors the newest published
// backup into STANDBY_DIR, hard-linked against the previous copy so only the change travels,
// verifies every file against the manifest and tests the archives, and only then gives the
// folder the backup's name (see plan/standby.ts for the names STANDBY_DIR may hold). It reads
// from the box only and never touches mailcow's volumes.
import { lstat, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { loadIdentities } from '../adapters/age.js';
import { phase, type PhaseTiming, type RunContext } from '../backup/context.js';
import { loadScrubState } from '../backup/scrub.js';
import { errorText, isUserError, UserError } from '../errors.js';
import { publishedBackups } from '../plan/names.js';
import type { MirrorFacts, RunSummary } from '../plan/report.js';
import { completeCopies, copiesToRemove, DELETING_PREFIX, INCOMING_PREFIX, lagSeconds, planMirror } from '../plan/standby.js';
import { verificationOf } from '../plan/verification.js';
import { downloadBackup } from '../restore/download.js';
import { badFiles, readChecksums } from '../restore/verify-local.js';
import { NOT_PROVED, testArchives } from './verify-copy.js';

export interface MirrorOptions {
  /** The last status's mirror facts: an up-to-date run keeps when that copy was verified. */
  previous?: MirrorFacts;
}

/** Runs the mirror (connecting to the box itself); the summary's exitCode says how it ended. Errors carry the summary. */
export async function runMirror(ctx: RunContext, o: MirrorOptions = {}): Promise<RunSummary> {
  const c = ctx.config;
  const phases: PhaseTiming[] = [];
  const mirror: MirrorFacts = {};
  const summary: RunSummary = { ok: false, host: hostname(), startedAt: ctx.now().toISOString(), phases, exitCode: 1, components: [], warnings: [], logFile: c.LOG_FILE, mirror };
  const warn = (w: string) => {
    ctx.log.warn(w);
    summary.warnings.push(w);
  };
  const dir = c.STANDBY_DIR;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { published, damaged } = await phase(phases, 'list', ctx.log, async () => {
      const known = await loadScrubState(c.STATE_DIR);
      await ctx.box.connect();
      return { published: publishedBackups(await ctx.box.list(c.HETZNER_REMOTE_PATH)), damaged: (n: string) => verificationOf(known[n]).state === 'damaged' };
    });
    const local = await readdir(dir);
    const held = completeCopies(local);
    mirror.name = held[held.length - 1];
    const r = planMirror(published, local, damaged);
    if (!r.ok) throw new UserError('failed', `nothing to mirror: ${r.reason}`);
    const plan = r.plan;
    mirror.newestOnBox = plan.newestOnBox;
    if (plan.skipped.length) warn(`the newest backup${plan.skipped.length > 1 ? 's' : ''} ${plan.skipped.join(', ')} ${plan.skipped.length > 1 ? 'are' : 'is'} known DAMAGED on the box: mirroring ${plan.target} instead`);
    const name = plan.target;
    summary.backupName = name;

    if (plan.upToDate) {
      ctx.log.info(`${name} is already mirrored and verified in ${join(dir, name)}: nothing to fetch`);
      mirror.verifiedAt = o.previous?.name === name ? o.previous.verifiedAt : undefined;
      mirror.decryption = o.previous?.name === name ? o.previous.decryption : undefined;
      mirror.bytesFromBox = 0;
    } else {
      const incoming = join(dir, `${INCOMING_PREFIX}${name}`);
      // The previous copy first; a cut-off download of an older backup may lend what it has too
      // (whatever it lends is hashed below like every other file).
      const basis = [plan.basis, ...local.filter((n) => n.startsWith(INCOMING_PREFIX) && n !== `${INCOMING_PREFIX}${name}`).sort().reverse()]
        .filter((n): n is string => Boolean(n))
        .map((n) => ({ dir: join(dir, n), how: 'link' as const }));
      ctx.log.info(`mirroring ${name} into ${incoming}${plan.basis ? `, hard-linked against ${plan.basis}` : ' (the first copy: everything travels)'}`);
      const fetch = (withBasis: boolean) =>
        downloadBackup(ctx.exec, ctx.log, { target: ctx.box.target, remoteFolder: `${c.HETZNER_REMOTE_PATH}/${name}`, localFolder: incoming, filters: [], basis: withBasis ? basis : [], timeoutSec: c.RSYNC_TIMEOUT }).catch((e) => goneOrRethrow(ctx, name, incoming, e));
      const got = await phase(phases, 'download', ctx.log, () => fetch(true));
      mirror.bytesFromBox = got.bytesFromBox;

      const { checksums, files } = await phase(phases, 'verify', ctx.log, async () => {
        const checksums = await readChecksums(incoming);
        const paths = [...checksums.keys()];
        let bad = await badFiles(incoming, checksums, paths, ctx.signal);
        if (ctx.signal.aborted) throw new UserError('interrupted', `interrupted while verifying ${name}; the copy stays in ${incoming} and is resumed by the next run`);
        if (bad.length) {
          // A copy on this host that changed after it was verified lent its bad file: that copy
          // is no longer a verified copy. The file is fetched again from the box, never used.
          const tainted = await copiesSharing(dir, incoming, bad.map((b) => b.path));
          for (const b of bad) warn(`${b.why} in the copy on this host: not used; fetched again from the Storage Box`);
          for (const t of tainted) {
            warn(`${t} held a file that no longer matches its manifest (changed on this host): that copy is removed`);
            await removeCopy(dir, t);
          }
          for (const b of bad) await unlink(join(incoming, b.path)).catch(() => undefined);
          const again = await fetch(false);
          mirror.bytesFromBox = (mirror.bytesFromBox ?? 0) + again.bytesFromBox;
          bad = await badFiles(incoming, checksums, bad.map((b) => b.path), ctx.signal);
          if (bad.length) throw new UserError('verify', `${name} on the Storage Box does not match its checksums.sha256: ${bad[0]!.why}${bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''}; it is not used as a mirror (see 'backup-to-hetzner verify ${name}')`, bad.slice(0, 20).map((b) => b.why));
        }
        return { checksums, files: paths.length };
      });
      const ids = c.AGE_IDENTITY_FILE ? await loadIdentities(c.AGE_IDENTITY_FILE).catch((e) => { throw new UserError('config', `AGE_IDENTITY_FILE: ${errorText(e).replace(/^--identity /, '')}`); }) : undefined;
      for (const k of ids?.keys ?? []) ctx.log.addSecret(k);
      const t = await phase(phases, 'archives', ctx.log, () => testArchives(ctx.exec, incoming, [...checksums.keys()], ids));
      mirror.decryption = t.decryption;
      if (t.decryption === 'not proved') warn(NOT_PROVED);
      summary.files = files;
      // Verified: now, and only now, the folder gets the backup's name.
      await rename(incoming, join(dir, name));
      mirror.verifiedAt = ctx.now().toISOString();
      ctx.log.info(`mirrored ${name}: ${files} files verified against its manifest, ${t.archives} archive(s) tested${t.decryption === 'proved' ? ' (decrypted with AGE_IDENTITY_FILE)' : ''}`);
    }
    mirror.name = name;
    mirror.lagSeconds = lagSeconds(name, plan.newestOnBox);
    summary.ok = true;
    summary.exitCode = 0;
    summary.published = true;
    await phase(phases, 'rotate', ctx.log, async () => {
      for (const n of copiesToRemove(await readdir(dir), name, c.STANDBY_KEEP)) {
        try {
          await removeCopy(dir, n);
          ctx.log.info(`removed ${n} from ${dir} (STANDBY_KEEP=${c.STANDBY_KEEP})`);
        } catch (e) {
          warn(`could not remove ${join(dir, n)}: ${errorText(e)}`);
          summary.exitCode = 3;
          summary.failedPhase = 'rotate';
          summary.error = `could not remove ${n}`;
        }
      }
    });
  } catch (e) {
    summary.ok = false;
    summary.published = false;
    summary.error = errorText(e);
    summary.failedPhase = (e as { phase?: string }).phase ?? 'list';
    throw Object.assign(e instanceof Error ? e : new Error(String(e)), { summary });
  } finally {
    await ctx.box.close().catch(() => undefined);
    summary.finishedAt = ctx.now().toISOString();
    mirror.copies = completeCopies(await readdir(dir).catch(() => [])).reverse();
    if (!summary.ok) {
      mirror.name = mirror.copies[0];
      if (o.previous && mirror.name && o.previous.name === mirror.name) {
        mirror.verifiedAt = o.previous.verifiedAt;
        mirror.decryption = o.previous.decryption;
      }
      if (mirror.newestOnBox) mirror.lagSeconds = lagSeconds(mirror.name, mirror.newestOnBox);
    }
  }
  return summary;
}

/** Removes a copy or leftover so that a removal cut off half-way never looks like a complete copy. */
async function removeCopy(dir: string, n: string): Promise<void> {
  const doomed = n.startsWith('.') ? join(dir, n) : join(dir, `${DELETING_PREFIX}${n}`);
  if (!n.startsWith('.')) await rename(join(dir, n), doomed);
  await rm(doomed, { recursive: true, force: true });
}

/** Complete copies holding one of `paths` as the very same file (hard link) as `incoming` does. */
async function copiesSharing(dir: string, incoming: string, paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const inodes = new Set<string>();
  for (const p of paths) {
    const st = await lstat(join(incoming, p)).catch(() => undefined);
    if (st && st.nlink > 1) inodes.add(`${st.dev}:${st.ino}`);
  }
  if (inodes.size === 0) return out;
  for (const copy of completeCopies(await readdir(dir))) {
    for (const p of paths) {
      const st = await lstat(join(dir, copy, p)).catch(() => undefined);
      if (st && inodes.has(`${st.dev}:${st.ino}`)) {
        out.push(copy);
        break;
      }
    }
  }
  return out;
}

/** A download that failed because the backup left the box (pruned by the primary) says so. */
async function goneOrRethrow(ctx: RunContext, name: string, incoming: string, e: unknown): Promise<never> {
  if (ctx.signal.aborted) throw e;
  let still: boolean | undefined;
  try {
    still = publishedBackups(await ctx.box.list(ctx.config.HETZNER_REMOTE_PATH)).includes(name);
  } catch {
    still = undefined;
  }
  if (still === false) {
    await rm(incoming, { recursive: true, force: true });
    throw new UserError('failed', `${name} was removed from the Storage Box while it was being mirrored (retention on the primary?); its partial copy is discarded, the copies this host held before are kept, and the next run mirrors the newest backup`);
  }
  const why = errorText(e);
  throw new UserError(isUserError(e) ? e.kind : 'failed', `mirroring ${name} failed: ${why}; the partial copy stays in ${incoming} (never used as a backup) and the next run resumes it`, isUserError(e) ? e.details : []);
}
