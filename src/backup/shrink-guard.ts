// The shrink guard's side that touches the world: the newest published backup's record, read
// from the box (a fresh standby host has no local state to compare with), set against this run.
// It runs right after the manifest: before a byte is uploaded, before publish and before
// retention could prune anything.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorText, UserError } from '../errors.js';
import type { StorageBox } from '../adapters/storage-box.js';
import type { Logger } from '../adapters/logger.js';
import { RECORD_FILE } from '../plan/manifest.js';
import { describeShrink, measuresOfRecord, shrinkOf, shrinkRefusal, type BackupMeasures } from '../plan/shrink.js';

/** The measures `name`'s backup.json records; undefined (and why) when it cannot be read. */
export async function recordedMeasures(box: StorageBox, root: string, name: string, localDir: string): Promise<{ measures?: BackupMeasures; problem?: string }> {
  const local = join(localDir, `${name}.${RECORD_FILE}`);
  try {
    if (!(await box.getFile(`${root}/${name}/${RECORD_FILE}`, local))) return { problem: `${name} has no ${RECORD_FILE}` };
    return { measures: measuresOfRecord(JSON.parse(await readFile(local, 'utf8'))) };
  } catch (e) {
    return { problem: `${name}/${RECORD_FILE} could not be read: ${errorText(e)}` };
  }
}

/**
 * Throws the refusal when this run's backup shrank past SHRINK_GUARD_PERCENT against `newest`;
 * with `accept`, lets it through and returns the warning the report carries.
 */
export async function guardShrink(
  o: { box: StorageBox; log: Logger; root: string; newest: string; localDir: string; percent: number; accept: boolean; record?: object },
  current: BackupMeasures,
): Promise<string | undefined> {
  if (o.percent <= 0) return undefined;
  // `record`: the newest backup's backup.json as this run already read it (no second download).
  const { measures, problem } = o.record !== undefined ? { measures: measuresOfRecord(o.record as Parameters<typeof measuresOfRecord>[0]), problem: undefined } : await recordedMeasures(o.box, o.root, o.newest, o.localDir);
  if (!measures) {
    o.log.warn(`the size of this backup is not compared with ${o.newest}: ${problem}`);
    return undefined;
  }
  const shrunk = shrinkOf(measures, current, o.percent);
  if (shrunk.length === 0) return undefined;
  if (!o.accept) throw new UserError('failed', shrinkRefusal(o.newest, shrunk, o.percent));
  const w = `published although far smaller than ${o.newest} (--accept-shrink): ${describeShrink(shrunk)}`;
  o.log.warn(w);
  return w;
}
