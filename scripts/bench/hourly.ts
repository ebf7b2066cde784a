// The hourly run (issue 16): after the daily runs, an hour of mail (1/24 of the bench's day of
// change), then a run between dumps (DUMP_INTERVAL_HOURS=24, the tool's clock an hour later), and
// what every kept backup costs in folders: a tree of hard links still needs its own directories.
import { lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mutateMaildir } from '../../src/sandbox/maildir-fixture.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { run } from './exec.js';
import type { Link } from './link.js';
import { runTool, type RunMeasure } from './tool.js';

/** The bench's day of change, of which an hour is 1/24. */
export const DAY = { newFraction: 0.01, deleteFraction: 0.002, renameFraction: 0.005 };

export interface FolderCost {
  /** Folders of the hourly backup by how many entries they hold: count, blocks as du counts them. */
  bySize: { entries: string; folders: number; bytes: number }[];
  /** `du -sk` of each backup folder alone (its whole tree) and with the older ones first (what it adds). */
  duPerBackup: { name: string; aloneBytes: number; addedBytes: number }[];
  /** A fresh folder of N empty files on this machine's filesystem: its size with maildir names and with 16-character names. */
  synthetic: { files: number; maildirNameBytes: number; shortNameBytes: number }[];
  fs: string;
  avgNameLength: number;
}

export interface HourlyResult {
  change: { newFiles: number; newBytes: number; deleted: number; renamed: number };
  run: Omit<RunMeasure, 'status' | 'stderrTail'>;
  dumped: boolean;
  folders: FolderCost;
}

async function setConfig(sb: Sandbox, key: string, value: string): Promise<void> {
  const text = await readFile(sb.configPath, 'utf8');
  const line = `${key}=${value}`;
  await writeFile(sb.configPath, new RegExp(`^${key}=.*$`, 'm').test(text) ? text.replace(new RegExp(`^${key}=.*$`, 'm'), line) : `${text}${line}\n`);
}

export async function hourlyRun(sb: Sandbox, link: Link, work: string, log: (m: string) => void): Promise<HourlyResult> {
  const vmail = sb.mailcow.volume('vmail');
  const ch = await mutateMaildir(vmail, { seed: 24, newFraction: DAY.newFraction / 24, deleteFraction: DAY.deleteFraction / 24, renameFraction: DAY.renameFraction / 24 });
  log(`an hour of mail: ${ch.newFiles} new, ${ch.deleted} deleted, ${ch.renamed} renamed`);
  await setConfig(sb, 'DUMP_INTERVAL_HOURS', '24');
  let r: RunMeasure;
  try {
    r = await runTool(sb, link, 'hourly', { env: { MAILCOW_BACKUP_TEST_CLOCK: new Date(Date.now() + 3600_000).toISOString() } });
  } finally {
    await setConfig(sb, 'DUMP_INTERVAL_HOURS', '0');
  }
  if (r.exitCode !== 0) throw new Error(`hourly run exited ${r.exitCode}:\n${r.stderrTail}`);
  const dumped = r.status?.lastDumpBackup === r.backupName;
  if (dumped) throw new Error(`the hourly run dumped (it should have linked the newest backup's dump):\n${r.stderrTail}`);
  const { status: _s, stderrTail: _t, ...run } = r;
  return { change: { newFiles: ch.newFiles, newBytes: ch.newBytes, deleted: ch.deleted, renamed: ch.renamed }, run, dumped, folders: await folderCost(join(sb.box.root, sb.remotePath), r.backupName!, work) };
}

const BUCKETS = [0, 16, 128, 1024, 8192, Infinity];

async function folderCost(boxFolder: string, name: string, work: string): Promise<FolderCost> {
  const counts = BUCKETS.slice(1).map(() => ({ folders: 0, bytes: 0 }));
  let names = 0;
  let nameChars = 0;
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    const st = await lstat(dir);
    const i = BUCKETS.findIndex((b, k) => k > 0 && entries.length <= b) - 1;
    counts[i]!.folders++;
    counts[i]!.bytes += Number(st.blocks) * 512;
    for (const e of entries) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else if (dir.endsWith('/cur') || dir.endsWith('/new')) {
        names++;
        nameChars += e.name.length;
      }
    }
  };
  await walk(join(boxFolder, name));
  const bySize = counts.map((c, i) => ({ entries: BUCKETS[i + 1] === Infinity ? `> ${BUCKETS[i]}` : `${BUCKETS[i] === 0 ? 0 : BUCKETS[i]! + 1}..${BUCKETS[i + 1]}`, ...c }));

  // du alone vs du after the older backups in one invocation (hard links counted once).
  const backups = (await readdir(boxFolder)).filter((n) => !n.startsWith('.')).sort();
  const duPerBackup: FolderCost['duPerBackup'] = [];
  for (const [i, b] of backups.entries()) {
    const alone = await run('du', ['-sk', join(boxFolder, b)]);
    const all = await run('du', ['-sk', ...backups.slice(0, i + 1).map((x) => join(boxFolder, x))]);
    duPerBackup.push({ name: b, aloneBytes: Number(alone.stdout.split(/\s+/)[0]) * 1024, addedBytes: Number(all.stdout.trim().split('\n').pop()!.split(/\s+/)[0]) * 1024 });
  }

  // A maildir name as dovecot writes it, at the fixture's average length, against a 16-character one.
  const avg = names ? Math.round(nameChars / names) : 60;
  const lab = join(work, 'folder-cost');
  const synthetic: FolderCost['synthetic'] = [];
  for (const n of [0, 10, 100, 1000, 10000]) {
    const size: number[] = [];
    for (const len of [avg, 16]) {
      await rm(lab, { recursive: true, force: true });
      await mkdir(lab, { recursive: true });
      for (let k = 0; k < n; k++) await writeFile(join(lab, String(k).padStart(len, 'x')), '');
      size.push(Number((await stat(lab)).blocks) * 512);
    }
    synthetic.push({ files: n, maildirNameBytes: size[0]!, shortNameBytes: size[1]! });
  }
  await rm(lab, { recursive: true, force: true });
  const fs = (await run('findmnt', ['-no', 'FSTYPE', '-T', boxFolder])).stdout.trim();
  return { bySize, duPerBackup, synthetic, fs, avgNameLength: avg };
}
