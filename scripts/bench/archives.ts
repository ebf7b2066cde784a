// Archives: the candidates of issue 19, measured on the same day-by-day archives. Each day the
// stand-in mailcow script writes its archives (crypt, redis, rspamd, postfix, mariadb) as it does
// in a run; each candidate stages them its way and rsyncs them, one component at a time, into its
// own folder on the loopback box with --link-dest to its previous day (as the tool uploads). Per
// candidate and component: rsync's bytes sent, and the blocks of the new day's inodes that the
// previous day does not share (files; folders apart). borg and restic back up the same unpacked
// files into local repositories: their growth stands for what they send and store.
//   today / (b)  the archives as files (mailcow's script already uses zstd --rsyncable): delta sent, whole stored
//   no-rsyncable the same archives recompressed without --rsyncable (what --rsyncable buys)
//   (a) tree     the archives unpacked; files with yesterday's content get yesterday's mtime, so they link
//   (c) tree+age (a) with one age file per file, yesterday's ciphertext reused for unchanged files
//   tree+zstd    (a) with each file compressed on its own (yesterday's .zst reused for unchanged files),
//                and +age: encrypted after compression, as (c)
//   (d) borg, restic over the unpacked files
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, lstat, mkdir, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { boxTarget, rsyncShell } from '../../src/sandbox/storage-box.js';
import { duBytes, run, version } from './exec.js';
import { fmtB, table } from './table.js';

export const ARCHIVE_COMPONENTS = ['crypt', 'redis', 'rspamd', 'postfix', 'mariadb'] as const;
type Comp = (typeof ARCHIVE_COMPONENTS)[number];
/** The script's names for them (mysql's archive is backup_mariadb). */
const SCRIPT_ARG: Record<Comp, string> = { crypt: 'crypt', redis: 'redis', rspamd: 'rspamd', postfix: 'postfix', mariadb: 'mysql' };

export const CANDIDATES = ['today', 'today+age', 'no-rsyncable', 'tree', 'tree+age', 'tree+zstd', 'tree+zstd+age', 'borg', 'borg+enc', 'restic'] as const;
export type Candidate = (typeof CANDIDATES)[number];

export interface Bytes {
  sent: number;
  added: number;
  /** rsync's literal data (bytes not found in the basis); undefined for borg/restic. */
  literal?: number;
}

export interface ComponentDay {
  archiveBytes: number;
  treeBytes: number;
  treeFiles: number;
  /** Unpacked files whose content differs from the previous day (or that are new), largest first. */
  changed: { path: string; bytes: number }[];
  changedBytes: number;
}

export interface ArchivesDay {
  label: string;
  kind: string;
  /** The machine's 1-minute load average after the day's measurements (shared with other work). */
  load: number;
  components: Record<Comp, ComponentDay>;
  candidates: Record<Candidate, { total: Bytes; dirsAdded: number; perComponent: Record<Comp, Bytes> }>;
}

export interface ArchivesResult {
  borg: string;
  restic: string;
  age: string;
  days: ArchivesDay[];
  targets: { target: string; measured: string; ok?: boolean }[];
}

const sha = (p: string) =>
  new Promise<string>((res, rej) => {
    const h = createHash('sha256');
    createReadStream(p).on('data', (d) => h.update(d)).on('end', () => res(h.digest('hex'))).on('error', rej);
  });

async function files(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true }).catch(() => [])) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await files(root, p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Inodes below a folder (files and folders). */
async function inodes(root: string, into = new Set<number>()): Promise<Set<number>> {
  for (const e of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    const st = await lstat(join(root, e.name));
    into.add(Number(st.ino));
    if (st.isDirectory()) await inodes(join(root, e.name), into);
  }
  return into;
}

/** Blocks of files (and, apart, folders) below `root` whose inodes `old` lacks. */
async function newBlocks(root: string, old: Set<number>): Promise<{ files: number; dirs: number }> {
  const r = { files: 0, dirs: 0 };
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const st = await lstat(join(d, e.name));
      if (!old.has(Number(st.ino))) {
        if (st.isDirectory()) r.dirs += Number(st.blocks) * 512;
        else r.files += Number(st.blocks) * 512;
        old.add(Number(st.ino));
      }
      if (st.isDirectory()) await walk(join(d, e.name));
    }
  };
  await walk(root);
  return r;
}

const statNum = (out: string, what: string) => Number(new RegExp(`${what}: ([\\d,.]+)`).exec(out)?.[1]?.replace(/[,.]/g, '') ?? NaN);

export interface ArchiveCandidates {
  day(label: string, kind: string): Promise<ArchivesDay>;
  result(): ArchivesResult;
}

export async function archiveCandidates(sb: Sandbox, work: string, log: (m: string) => void): Promise<ArchiveCandidates> {
  const base = join(work, 'archives');
  await rm(base, { recursive: true, force: true });
  await mkdir(base, { recursive: true, mode: 0o755 });
  const stage = (c: Candidate | 'dump', label: string) => join(base, 'stage', c, label);
  const boxDir = (c: Candidate, label?: string) => join(sb.box.root, 'candidates', c, ...(label ? [label] : []));
  await run('age-keygen', ['-o', join(base, 'age-key.txt')]);
  const recipient = (await run('age-keygen', ['-y', join(base, 'age-key.txt')])).stdout.trim();
  const borgEnv = (enc: boolean) => ({
    BORG_BASE_DIR: join(base, enc ? 'borg-enc-home' : 'borg-home'),
    BORG_PASSPHRASE: 'bench',
    BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
    BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
  });
  const borgRepo = (enc: boolean) => join(base, enc ? 'borg-enc-repo' : 'borg-repo');
  const resticEnv = { RESTIC_REPOSITORY: join(base, 'restic-repo'), RESTIC_PASSWORD: 'bench', RESTIC_CACHE_DIR: join(base, 'restic-cache') };
  const borgV = await version('borg', ['--version']);
  const resticV = (await version('restic', ['version'])).replace(/ compiled.*/, '');
  if (borgV !== 'missing') {
    for (const enc of [false, true]) {
      await mkdir(borgEnv(enc).BORG_BASE_DIR, { recursive: true });
      await run('borg', ['init', '-e', enc ? 'repokey-blake2' : 'none', borgRepo(enc)], { env: borgEnv(enc) });
    }
  }
  if (resticV !== 'missing') await run('restic', ['init', '--repository-version', '2'], { env: resticEnv });

  const days: ArchivesDay[] = [];
  let prev: string | undefined;
  /** path in the unpacked tree -> content hash, of the previous day */
  let prevHashes = new Map<string, string>();

  /** mailcow's script, as a run calls it, for the archive components only. */
  const dump = async (label: string): Promise<string> => {
    const loc = stage('dump', label);
    await mkdir(loc, { recursive: true, mode: 0o755 });
    await run('bash', [sb.mailcow.script, 'backup', ...ARCHIVE_COMPONENTS.map((c) => SCRIPT_ARG[c])], { env: { ...sb.env, BACKUP_LOCATION: loc, THREADS: '1' }, input: '' });
    const made = (await readdir(loc)).find((n) => n.startsWith('mailcow-'));
    if (!made) throw new Error(`mailcow's script made no backup folder in ${loc}`);
    return join(loc, made);
  };

  const ageEncrypt = (src: string, dst: string) => run('age', ['-r', recipient, '-o', dst, src]);
  /** The tree's per-file forms: made anew for a changed file, yesterday's reused (hard link, same mtime) otherwise. */
  const perFile: { c: Candidate; suffix: string; make: (plain: string, out: string) => Promise<unknown> }[] = [
    { c: 'tree+age', suffix: '.age', make: ageEncrypt },
    { c: 'tree+zstd', suffix: '.zst', make: (p, o) => run('zstd', ['-q', '-3', '-T1', '-o', o, p]) },
    { c: 'tree+zstd+age', suffix: '.zst.age', make: (p, o) => run('sh', ['-c', 'zstd -q -3 -T1 -c "$0" | age -r "$1" -o "$2"', p, recipient, o]) },
  ];

  /** rsync one component's staged folder to the box, --link-dest to the previous day's. */
  const upload = async (c: Candidate, label: string, comp: Comp): Promise<{ sent: number; literal: number }> => {
    await mkdir(boxDir(c, label), { recursive: true });
    const args = ['-a', '--numeric-ids', '--stats', '-e', rsyncShell(sb.box)];
    if (prev) args.push(`--link-dest=../../${prev}/${comp}`);
    const r = await run('rsync', [...args, `${join(stage(c, label), comp)}/`, `${boxTarget(sb.box)}:candidates/${c}/${label}/${comp}/`]);
    return { sent: statNum(r.stdout, 'Total bytes sent'), literal: statNum(r.stdout, 'Literal data') };
  };

  const day = async (label: string, kind: string): Promise<ArchivesDay> => {
    log(`archives ${label} (${kind}): mailcow's script, then the candidates...`);
    const src = await dump(label);
    const components = {} as Record<Comp, ComponentDay>;
    const hashes = new Map<string, string>();
    for (const comp of ARCHIVE_COMPONENTS) {
      const archive = join(src, `backup_${comp}.tar.zst`);
      const archiveBytes = (await stat(archive)).size;
      // today: the archive as it is; +age: one age file per archive (mailcow.conf is left out: it is no archive)
      for (const c of ['today', 'today+age', 'no-rsyncable'] as const) await mkdir(join(stage(c, label), comp), { recursive: true });
      await link(archive, join(stage('today', label), comp, `backup_${comp}.tar.zst`));
      await ageEncrypt(archive, join(stage('today+age', label), comp, `backup_${comp}.tar.zst.age`));
      await run('sh', ['-c', 'zstd -dc "$0" | zstd -q -3 -T1 -o "$1"', archive, join(stage('no-rsyncable', label), comp, `backup_${comp}.tar.zst`)]);
      // (a): unpacked (tar drops the leading /), beside the archive's entry list the repack needs
      const tree = join(stage('tree', label), comp);
      await mkdir(tree, { recursive: true });
      await run('tar', ['--zstd', '-xpf', archive, '-C', tree, '--numeric-owner']);
      const list = (await run('tar', ['--zstd', '-tvf', archive, '--numeric-owner', '--full-time'])).stdout;
      const treeFiles = await files(tree);
      const changed: { path: string; bytes: number }[] = [];
      let treeBytes = 0;
      for (const f of treeFiles) {
        const p = join(tree, f);
        const st = await stat(p);
        treeBytes += st.size;
        const h = await sha(p);
        const key = `${comp}/${f}`;
        hashes.set(key, h);
        const same = prevHashes.get(key) === h;
        const prevPlain = prev ? join(stage('tree', prev), comp, f) : undefined;
        if (same && prevPlain) {
          // content as yesterday: yesterday's mtime, so rsync's quick check matches and --link-dest links
          const old = await stat(prevPlain);
          await utimes(p, old.atime, old.mtime);
        } else changed.push({ path: f, bytes: st.size });
        for (const v of perFile) {
          const out = join(stage(v.c, label), comp, f + v.suffix);
          await mkdir(dirname(out), { recursive: true });
          if (same && prevPlain) await link(join(stage(v.c, prev!), comp, f + v.suffix), out);
          else await v.make(p, out);
        }
      }
      // the entry list changes with every archive (mariabackup's files get new mtimes): new every day
      await mkdir(join(tree, '.list'), { recursive: true });
      await writeFile(join(tree, '.list', `${comp}.tar.list`), list);
      for (const v of perFile) {
        await mkdir(join(stage(v.c, label), comp, '.list'), { recursive: true });
        await v.make(join(tree, '.list', `${comp}.tar.list`), join(stage(v.c, label), comp, '.list', `${comp}.tar.list${v.suffix}`));
      }
      changed.sort((a, b) => b.bytes - a.bytes);
      components[comp] = { archiveBytes, treeBytes, treeFiles: treeFiles.length, changed, changedBytes: changed.reduce((a, x) => a + x.bytes, 0) };
    }

    const candidates = {} as ArchivesDay['candidates'];
    for (const c of ['today', 'today+age', 'no-rsyncable', 'tree', 'tree+age', 'tree+zstd', 'tree+zstd+age'] as const) {
      const old = prev ? await inodes(boxDir(c, prev)) : new Set<number>();
      const perComponent = {} as Record<Comp, Bytes>;
      let dirs = 0;
      for (const comp of ARCHIVE_COMPONENTS) {
        const u = await upload(c, label, comp);
        const nb = await newBlocks(join(boxDir(c, label), comp), old);
        dirs += nb.dirs;
        perComponent[comp] = { sent: u.sent, added: nb.files, literal: u.literal };
      }
      candidates[c] = { total: sum(Object.values(perComponent)), dirsAdded: dirs, perComponent };
    }
    // (d): the unpacked files (as mailcow's script produced them) into borg's and restic's repositories
    const peers: [Candidate, string, (comp: Comp) => Promise<unknown>][] = [];
    if (borgV !== 'missing') {
      for (const enc of [false, true]) {
        peers.push([enc ? 'borg+enc' : 'borg', borgRepo(enc), (comp) => run('borg', ['create', '--compression', 'lz4', `${borgRepo(enc)}::${label}-${comp}`, '.'], { env: borgEnv(enc), cwd: join(stage('tree', label), comp) })]);
      }
    }
    if (resticV !== 'missing') peers.push(['restic', resticEnv.RESTIC_REPOSITORY, (comp) => run('restic', ['backup', '--quiet', '--tag', comp, '.'], { env: resticEnv, cwd: join(stage('tree', label), comp) })]);
    for (const [c, repo, backup] of peers) {
      const perComponent = {} as Record<Comp, Bytes>;
      for (const comp of ARCHIVE_COMPONENTS) {
        const before = await duBytes(repo);
        await backup(comp);
        const grown = (await duBytes(repo)) - before;
        perComponent[comp] = { sent: grown, added: grown };
      }
      candidates[c] = { total: sum(Object.values(perComponent)), dirsAdded: 0, perComponent };
    }
    const d: ArchivesDay = { label, kind, load: loadavg()[0]!, components, candidates };
    days.push(d);
    log(`archives ${label}: ${CANDIDATES.filter((c) => candidates[c]).map((c) => `${c} sent ${fmtB(candidates[c].total.sent)} added ${fmtB(candidates[c].total.added)}`).join('; ')}`);
    // keep yesterday's staging (the basis of the mtime carry and of the reused ciphertext), drop older
    if (prev) for (const c of [...CANDIDATES, 'dump'] as const) if (days.length > 2) await rm(stage(c, days[days.length - 3]!.label), { recursive: true, force: true });
    prev = label;
    prevHashes = hashes;
    return d;
  };

  return {
    day,
    result: () => ({ borg: borgV, restic: resticV, age: 'age (Debian)', days, targets: archiveTargets(days) }),
  };
}

function sum(xs: Bytes[]): Bytes {
  return { sent: xs.reduce((a, x) => a + x.sent, 0), added: xs.reduce((a, x) => a + x.added, 0), literal: xs.every((x) => x.literal !== undefined) ? xs.reduce((a, x) => a + x.literal!, 0) : undefined };
}

const PAIRS: [Candidate, Candidate][] = [['today', 'today+age'], ['tree', 'tree+age'], ['tree+zstd', 'tree+zstd+age'], ['borg', 'borg+enc']];

/** The issue's targets, per candidate. "What mailcow's data really changed": rsync's literal data of the unpacked files. */
export function archiveTargets(days: ArchivesDay[]): ArchivesResult['targets'] {
  const t: ArchivesResult['targets'] = [];
  const quiet = days.find((d) => d.kind.startsWith('quiet'));
  if (quiet) {
    const real = quiet.candidates.tree?.total.literal ?? NaN;
    for (const c of CANDIDATES) {
      const x = quiet.candidates[c];
      if (!x) continue;
      t.push({
        target: `${c}: quiet day adds ≤ its folders + 1 MiB + what mailcow's data changed`,
        measured: `added ${fmtB(x.total.added)} (+ folders ${fmtB(x.dirsAdded)}); allowed 1 MiB + ${fmtB(real)} = ${fmtB(1024 ** 2 + real)}`,
        ok: x.total.added <= 1024 ** 2 + real,
      });
    }
  }
  for (const d of days.slice(1)) {
    for (const [plain, enc] of PAIRS) {
      const p = d.candidates[plain];
      const e = d.candidates[enc];
      if (!p || !e) continue;
      const rs = e.total.sent / p.total.sent;
      const ra = e.total.added / p.total.added;
      t.push({
        target: `${enc} (${d.label}, ${d.kind}): sends and stores ≤ 1.5× ${plain}`,
        measured: `sent ${fmtB(e.total.sent)} = ${rs.toFixed(2)}×, added ${fmtB(e.total.added)} = ${ra.toFixed(2)}×`,
        ok: rs <= 1.5 && ra <= 1.5,
      });
    }
  }
  return t;
}

export function renderArchives(r: ArchivesResult): string {
  const out: string[] = [];
  const present = CANDIDATES.filter((c) => r.days[0]?.candidates[c]);
  out.push(`**Archives: candidates** (${r.days.map((d) => `${d.label}: ${d.kind}, load ${d.load.toFixed(1)}`).join('; ')}; ${r.borg}, ${r.restic}; sent = rsync's total bytes sent, for borg/restic ≈ repository growth; added = new blocks on the box, folders apart)`);
  out.push('');
  out.push(
    table(
      ['candidate', ...r.days.flatMap((d) => [`${d.label} sent`, `${d.label} added`]), 'folders added / day'],
      present.map((c) => [c, ...r.days.flatMap((d) => [fmtB(d.candidates[c].total.sent), fmtB(d.candidates[c].total.added)]), fmtB(r.days[r.days.length - 1]!.candidates[c].dirsAdded)]),
    ),
  );
  out.push('');
  for (const d of r.days.slice(1)) {
    out.push(`**${d.label} (${d.kind}), per component: sent / added**`);
    out.push('');
    out.push(
      table(
        ['component', 'archive', 'unpacked (files)', 'changed files (largest)', ...present],
        ARCHIVE_COMPONENTS.map((comp) => {
          const k = d.components[comp];
          const top = k.changed.slice(0, 3).map((x) => `${x.path.split('/').pop()} ${fmtB(x.bytes)}`).join(', ');
          return [comp, fmtB(k.archiveBytes), `${fmtB(k.treeBytes)} (${k.treeFiles})`, `${k.changed.length}: ${fmtB(k.changedBytes)}${top ? ` — ${top}` : ''}`, ...present.map((c) => `${fmtB(d.candidates[c].perComponent[comp].sent)} / ${fmtB(d.candidates[c].perComponent[comp].added)}`)];
        }),
      ),
    );
    out.push('');
  }
  out.push('**Archives: targets**');
  out.push('');
  out.push(table(['target', 'measured', 'met'], r.targets.map((x) => [x.target, x.measured, x.ok === undefined ? '–' : x.ok ? 'yes' : '**no**'])));
  return out.join('\n');
}
