// Markdown tables of a benchmark result (stdout and docs/performance.md use the same text).
import { GROWTH_KINDS } from './box-growth.js';
import type { BenchResult } from './result.js';

export function fmtB(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a < 1024) return `${Math.round(n)} B`;
  if (a < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (a < 10 * 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
const s = (ms: number | undefined, d = 1) => (ms === undefined || !Number.isFinite(ms) ? '–' : (ms / 1000).toFixed(d));
const mb = (mib: number | undefined) => (mib === undefined || !Number.isFinite(mib) ? '–' : ((mib * 1024 * 1024) / 1e6).toFixed(0));
const pct = (a: number, b: number) => (b > 0 ? `${((100 * a) / b).toFixed(a / b < 0.01 ? 3 : 1)} %` : '–');

export function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export const GROWTH_LABEL: Record<(typeof GROWTH_KINDS)[number], string> = {
  dirs: 'folders',
  manifest: 'manifest (checksums.sha256 + parts)',
  record: 'run record (backup.json)',
  archives: "mailcow's archives + mailcow.conf",
  vmailNew: 'mail: new files',
  vmailRenamed: 'mail: renamed (content the previous backup holds)',
  vmailRewritten: 'mail: rewritten in place (same path)',
  other: 'other',
};

export function render(r: BenchResult): string {
  const out: string[] = [];
  const m = r.meta;
  out.push(
    `**Setup**: ${m.cpu} (${m.cores} cores), ${m.memGiB} GiB RAM, ${m.os}; Node ${m.node}, ${m.rsync}, ${m.borg}, ${m.restic}. ` +
      `Fixture: ${fmtB(m.fixture.bytes)} of mail in ${m.fixture.files.toLocaleString('en')} files (${m.fixture.users} mailboxes, ${m.fixture.plainText ? 'plain text' : 'incompressible bodies, as mail_crypt stores them'}; ` +
      `generated in ${s(m.fixture.ms)} s) plus the other mailcow volumes (${fmtB(m.fixture.otherVolumesBytes)}). ` +
      `Link: ${m.link.mbit ? `${m.link.mbit} Mbit/s` : 'unlimited'} via **${m.link.method}**. THREADS=${m.threads}. Page cache warm (the machine holds the whole fixture in RAM).`,
  );
  out.push('');
  out.push('**Runs** (run 1: first backup; run 2: after a day of mail change; run 3: a quiet day, no mail, but sessions and logs move)');
  out.push('');
  out.push(
    table(
      ['run', 'wall s', 'of it dump s', 'CPU s (tool + children)', 'tool CPU s', 'tool peak RSS MB', 'children peak RSS MB', 'rsync sent', 'on the wire ↑ / ↓', 'added on box', 'backup size', 'spawn → lock ms'],
      r.runs.map((x) => [
        x.label,
        s(x.wallMs),
        s(x.phases.find((p) => p.phase === 'dump')?.ms),
        s(x.cpuMs),
        s(x.toolCpuMs),
        mb(x.toolPeakRssMiB),
        mb(x.childrenPeakRssMiB),
        fmtB(x.bytesSent),
        x.wireUpBytes === undefined ? '–' : `${fmtB(x.wireUpBytes)} / ${fmtB(x.wireDownBytes)}`,
        fmtB(x.addedOnBoxBytes),
        fmtB(x.backupBytes),
        x.spawnToLockMs === undefined ? '–' : x.spawnToLockMs.toFixed(0),
      ]),
    ),
  );
  out.push('');
  if (r.runs.some((x) => x.toolMemAtPeak)) {
    out.push('**Tool memory at its peak** (sampled every 20 ms in the tool: RSS, V8 heap reserved / used, memory outside the heap)');
    out.push('');
    out.push(
      table(
        ['run', 'RSS MB', 'heap total MB', 'heap used MB', 'external MB'],
        r.runs.filter((x) => x.toolMemAtPeak).map((x) => [x.label, mb(x.toolMemAtPeak!.rssMiB), mb(x.toolMemAtPeak!.heapTotalMiB), mb(x.toolMemAtPeak!.heapUsedMiB), mb(x.toolMemAtPeak!.externalMiB)]),
      ),
    );
    out.push('');
  }
  if (r.runs.some((x) => x.growth)) {
    out.push('**Added on the box, by kind** (blocks of inodes no older backup shares; files: count, size)');
    out.push('');
    const label = GROWTH_LABEL;
    const runs = r.runs.filter((x) => x.growth);
    out.push(
      table(
        ['kind', ...runs.map((x) => x.label)],
        [
          ...GROWTH_KINDS.map((k) => [label[k], ...runs.map((x) => `${x.growth![k].count} · ${fmtB(x.growth![k].bytes)}`)]),
          ['files hard-linked to an older backup (free)', ...runs.map((x) => String(x.growth!.linked))],
          ['total (du)', ...runs.map((x) => fmtB(x.addedOnBoxBytes))],
        ],
      ),
    );
    out.push('');
  }
  const uploads = [...new Set(r.runs.flatMap((x) => Object.keys(x.sentByUpload)))];
  if (uploads.length) {
    out.push("**rsync sent, by upload** (each upload's own `--stats`: the dump's is mailcow's archives, kept as trees)");
    out.push('');
    out.push(table(['upload', ...r.runs.map((x) => x.label)], uploads.map((u) => [u, ...r.runs.map((x) => (x.sentByUpload[u] === undefined ? '–' : fmtB(x.sentByUpload[u])))])));
    out.push('');
  }
  out.push('**Per phase** (CPU: the tool and every process it started, ssh master included; cores = CPU / wall)');
  out.push('');
  const rows: (string | number)[][] = [];
  for (const x of r.runs) {
    for (const p of x.phases) {
      if (!['dump', 'manifest', 'upload', 'verify', 'prune', 'publish', 'preflight'].includes(p.phase)) continue;
      rows.push([
        x.label,
        p.phase,
        s(p.ms, 2),
        s(p.cpuMs, 2),
        p.cpuMs !== undefined && p.ms > 50 ? (p.cpuMs / p.ms).toFixed(2) : '–',
        mb(p.toolPeakRssMiB),
        mb(p.childrenPeakRssMiB),
        p.wireUpBytes === undefined ? '–' : `${fmtB(p.wireUpBytes)} / ${fmtB(p.wireDownBytes)}`,
      ]);
    }
  }
  out.push(table(['run', 'phase', 'wall s', 'CPU s', 'cores', 'tool RSS MB', 'children RSS MB', 'wire ↑ / ↓'], rows));
  out.push('');
  const c = r.references.change;
  const base = r.runs[0]?.backupBytes ?? 0;
  out.push('**References** (same files, same run)');
  out.push('');
  const refRows: (string | number)[][] = [];
  if (c) {
    refRows.push(['the change: new messages', `${c.newMessages} files, ${fmtB(c.newMessageBytes)}`, pct(c.newMessageBytes, base) + ' of the backup']);
    refRows.push(['the change: renamed (flag change)', `${c.renamedMessages} files, ${fmtB(c.renamedBytes)}`, 'same bytes, new name']);
    refRows.push(['the change: deleted', `${c.deletedMessages} files, ${fmtB(c.deletedBytes)}`, '']);
    refRows.push(['the change: rewritten in place', `${c.rewrittenFiles} files, ${fmtB(c.rewrittenBytes)}`, c.rewrittenChangedBytes !== undefined ? `${fmtB(c.rewrittenChangedBytes)} of it overwritten (db, redis)` : '']);
  }
  const f = r.references.fullResend;
  if (f) refRows.push(['full re-send of the backup folder (bash tool), every run', fmtB(f.bytes), f.seconds ? `${f.seconds.toFixed(0)} s at the link rate` : '']);
  const a = r.references.vmailArchiveRsync;
  if (a) refRows.push(["rsync of mailcow's backup_vmail.tar.zst against yesterday's (--rsyncable)", `${fmtB(a.bytesSent)} sent`, `${pct(a.bytesSent, a.archiveBytes)} of the ${fmtB(a.archiveBytes)} archive`]);
  const h = r.references.hashing;
  if (h) {
    refRows.push([`sha256sum, one process over all ${h.files} vmail files (${fmtB(h.bytes)})`, `${h.sha256sumOneProcess.wallS.toFixed(2)} s wall`, `${h.sha256sumOneProcess.cpuS.toFixed(2)} s CPU`]);
    refRows.push([`sha256sum, one process per file (bash tool; ${h.sha256sumPerFile.sampleFiles} files measured, extrapolated)`, `${h.sha256sumPerFile.extrapolatedWallS.toFixed(1)} s wall`, `${h.sha256sumPerFile.extrapolatedCpuS.toFixed(1)} s CPU`]);
    refRows.push(['the tool\'s hashIndex (the run\'s mail hashing), same files, default pool', `${h.hashIndexDefault.wallS.toFixed(2)} s wall`, `${h.hashIndexDefault.cpuS.toFixed(2)} s CPU (${(h.hashIndexDefault.cpuS / h.hashIndexDefault.wallS).toFixed(2)} cores)`]);
    refRows.push(['the tool\'s hashIndex, one worker thread', `${h.hashIndexOneThread.wallS.toFixed(2)} s wall`, `${h.hashIndexOneThread.cpuS.toFixed(2)} s CPU`]);
  }
  const v = r.references.verifyMethods;
  if (v) {
    const x = (a: number, b: number) => (b > 0 ? `${(a / b).toFixed(2)}×` : '–');
    refRows.push([`verify of run 1's mail (${v.files} files, ${fmtB(v.bytes)}) with the box's sha256sum`, `${v.sha256sum.wallS.toFixed(2)} s wall`, `box CPU ${v.sha256sum.boxCpuS.toFixed(2)} s, here ${v.sha256sum.localCpuS.toFixed(2)} s`]);
    refRows.push([
      'the same with rsync --checksum (a box without sha256sum)',
      `${v.rsyncChecksum.wallS.toFixed(2)} s wall = ${x(v.rsyncChecksum.wallS, v.sha256sum.wallS)} sha256sum`,
      `box CPU ${v.rsyncChecksum.boxCpuS.toFixed(2)} s = ${x(v.rsyncChecksum.boxCpuS, v.sha256sum.boxCpuS)}, here ${v.rsyncChecksum.localCpuS.toFixed(2)} s = ${x(v.rsyncChecksum.localCpuS, v.sha256sum.localCpuS)}`,
    ]);
  }
  out.push(table(['reference', 'measured', 'note'], refRows));
  out.push('');
  if (r.peers.length) {
    out.push('**Peers** (local repositories; growth stands for what they would send and store)');
    out.push('');
    const pr: (string | number)[][] = [];
    for (const p of r.peers) for (const [i, x] of p.runs.entries()) pr.push([`${p.name} (${p.version})`, `run ${i + 1}`, x.wallS.toFixed(1), x.cpuS.toFixed(1), mb(x.maxRssMiB), fmtB(x.repoGrowthBytes)]);
    r.runs.forEach((x, i) => pr.push(['this tool', `run ${i + 1}`, s(x.wallMs), s(x.cpuMs), mb(x.toolPeakRssMiB), `${fmtB(x.addedOnBoxBytes)} (sent ${fmtB(x.bytesSent)})`]));
    out.push(table(['tool', 'run', 'wall s', 'CPU s', 'peak RSS MB', 'repository growth'], pr));
    out.push('');
  }
  if (r.rto?.length) {
    out.push(`**RTO** (restore-from-hetzner --yes on the same sandbox, ${r.meta.link.mbit ? `${r.meta.link.mbit} Mbit/s` : 'unlimited'} from the box; steps from the restore's own progress lines)`);
    out.push('');
    out.push(
      table(
        ['case', 'wall s', 'start s', 'download s', 'verify s', 'lock + checks s', "mailcow's script s", 'vmail into volume s', 'from the box', 'from this host', 'host lacked'],
        r.rto.map((x) => [x.case, x.wallS.toFixed(1), (x.steps.start ?? 0).toFixed(1), x.steps.download.toFixed(1), x.steps.verify.toFixed(1), (x.steps.checks ?? 0).toFixed(1), x.steps.archives.toFixed(1), x.steps.vmail.toFixed(1), fmtB(x.fromBoxBytes), fmtB(x.fromHostBytes), `${fmtB(x.lackingBytes)} of ${fmtB(x.selectionBytes)}`]),
      ),
    );
    out.push('');
  }
  out.push('**Targets**');
  out.push('');
  out.push(table(['target', 'measured', 'result'], r.targets.map((t) => [t.target, t.measured, t.ok === undefined ? 'n/a' : t.ok ? 'met' : '**missed**'])));
  return out.join('\n');
}
