// `backup-to-hetzner list`: the published backups on the box, newest first, each with what this
// host knows of its integrity (STATE_DIR/scrub.json; see plan/verification.ts).
import { age, bytes } from '../plan/human.js';
import { parseBackupName, publishedBackups } from '../plan/names.js';
import { verificationOf, verificationText, type Verification } from '../plan/verification.js';
import type { RunContext } from './context.js';
import { loadScrubState } from './scrub.js';

export interface ListedBackup extends Verification {
  name: string;
  date: string;
  ageHours: number;
  /** What this backup adds on the box beyond the older ones (hard links counted once). */
  addedBytes?: number;
}

export async function listBackups(ctx: RunContext, opts: { sizes: boolean }): Promise<ListedBackup[]> {
  const root = ctx.config.HETZNER_REMOTE_PATH;
  const entries = await ctx.box.list(root);
  const published = publishedBackups(entries);
  const known = await loadScrubState(ctx.config.STATE_DIR);
  let added = new Map<string, number>();
  if (opts.sizes && published.length) {
    // Oldest first: du charges each hard-linked file to the first folder that holds it.
    added = await ctx.box.duKiB(published.map((n) => `${root}/${n}`));
  }
  const now = ctx.now().getTime();
  return published
    .map((name) => {
      const d = parseBackupName(name)!; // publishedBackups holds only names that parse
      const kib = added.get(`${root}/${name}`);
      return { name, date: d.toISOString(), ageHours: (now - d.getTime()) / 3_600_000, addedBytes: kib === undefined ? undefined : kib * 1024, ...verificationOf(known[name]) };
    })
    .reverse();
}

export function listText(list: ListedBackup[]): string[] {
  if (list.length === 0) return ['no published backups on the Storage Box yet'];
  const lines = ['NAME                          LOCAL TIME           AGE       ADDS ON BOX   STATE'];
  for (const b of list) {
    const local = new Date(b.date).toLocaleString('sv-SE').slice(0, 19);
    lines.push(`${b.name.padEnd(30)}${local.padEnd(21)}${age(b.ageHours * 3_600_000).padEnd(10)}${(b.addedBytes === undefined ? '-' : bytes(b.addedBytes)).padEnd(14)}${verificationText(b)}`);
  }
  if (list.some((b) => b.state === 'unverified')) lines.push("not verified on this host: no run or scrub of this host checked it; 'backup-to-hetzner verify NAME' makes the box re-hash it");
  return lines;
}
