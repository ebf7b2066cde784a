// The hourly run's tables and targets (docs/performance.md "Hourly runs" uses the same text).
import { GROWTH_KINDS } from './box-growth.js';
import type { HourlyResult } from './hourly.js';
import type { BenchResult } from './result.js';
import { fmtB, GROWTH_LABEL, table } from './table.js';

const s = (ms: number | undefined, d = 1) => (ms === undefined || !Number.isFinite(ms) ? '–' : (ms / 1000).toFixed(d));
const KEEPS = [24, 48, 168];

export function hourlyTargets(r: BenchResult, h: HourlyResult): BenchResult['targets'] {
  const r1 = r.runs[0]!;
  const x = h.run;
  const size = x.backupBytes ?? 0;
  const sentAllowed = h.change.newBytes + 0.001 * size;
  const g = x.growth;
  const t: BenchResult['targets'] = [];
  if (r.meta.fixture.messagesX10) {
    t.push({ target: 'hourly run < 2 minutes (10× messages)', measured: `${s(x.wallMs)} s`, ok: x.wallMs < 120_000 });
  } else {
    t.push({ target: "hourly run ≤ 5 % of run 1's wall time", measured: `${s(x.wallMs, 2)} s = ${((100 * x.wallMs) / r1.wallMs).toFixed(1)} % of ${s(r1.wallMs)} s`, ok: x.wallMs <= 0.05 * r1.wallMs });
  }
  t.push({
    target: 'hourly run sends ≤ the new mail + 0.1 % of the backup',
    measured: `sent ${fmtB(x.bytesSent)}; allowed: new mail ${fmtB(h.change.newBytes)} + 0.1 % of ${fmtB(size)} = ${fmtB(sentAllowed)}`,
    ok: x.bytesSent === undefined ? undefined : x.bytesSent <= sentAllowed,
  });
  if (g) {
    const allowed = g.vmailNew.bytes + g.dirs.bytes;
    const rest = x.addedOnBoxBytes - allowed;
    t.push({
      target: 'hourly run adds on the box ≤ the new mail + its folders',
      measured: `added ${fmtB(x.addedOnBoxBytes)}; new mail ${fmtB(g.vmailNew.bytes)} + folders ${fmtB(g.dirs.bytes)} = ${fmtB(allowed)}${rest > 0 ? `; beyond: ${fmtB(rest)} (manifest parts ${fmtB(g.manifest.bytes)}, run record ${fmtB(g.record.bytes)}, rewritten ${fmtB(g.vmailRewritten.bytes)})` : ''}`,
      ok: x.addedOnBoxBytes <= allowed,
    });
  }
  return t;
}

export function renderHourly(r: BenchResult, h: HourlyResult): string {
  const x = h.run;
  const r1 = r.runs[0]!;
  const out: string[] = [];
  out.push(
    `**Hourly run** (after run 3: an hour of mail, 1/24 of the day's change — ${h.change.newFiles} new messages (${fmtB(h.change.newBytes)}), ${h.change.deleted} deleted, ${h.change.renamed} renamed — ` +
      `then a run an hour later with DUMP_INTERVAL_HOURS=24: no dump, run 3's archives linked on the box)`,
  );
  out.push('');
  out.push(
    table(
      ['run', 'wall s', "of run 1's wall", 'CPU s (tool + children)', 'tool CPU s', 'rsync sent', 'added on box', 'backup size', 'files'],
      [[x.label, s(x.wallMs, 2), `${((100 * x.wallMs) / r1.wallMs).toFixed(1)} %`, s(x.cpuMs, 2), s(x.toolCpuMs, 2), fmtB(x.bytesSent), fmtB(x.addedOnBoxBytes), fmtB(x.backupBytes), (x.files ?? 0).toLocaleString('en')]],
    ),
  );
  out.push('');
  if (x.growth) {
    const g = x.growth;
    out.push(
      table(
        ['added on the box, by kind', 'hourly'],
        [...GROWTH_KINDS.map((k) => [GROWTH_LABEL[k], `${g[k].count} · ${fmtB(g[k].bytes)}`]), ['files hard-linked to an older backup (free)', String(g.linked)], ['total (du)', fmtB(x.addedOnBoxBytes)]],
      ),
    );
    out.push('');
  }
  out.push(
    table(
      ['hourly run: phase', 'wall s', 'CPU s', 'share of the run'],
      x.phases.map((p) => [p.phase, s(p.ms, 2), s(p.cpuMs, 2), `${((100 * p.ms) / x.wallMs).toFixed(0)} %`]),
    ),
  );
  out.push('');
  const f = h.folders;
  const per = x.growth?.dirs.bytes ?? 0;
  out.push(`**Folders** of the hourly backup by entries (${f.fs}; average maildir name ${f.avgNameLength} characters)`);
  out.push('');
  out.push(table(['entries', 'folders', 'blocks (du)'], f.bySize.filter((b) => b.folders).map((b) => [b.entries, b.folders, fmtB(b.bytes)])));
  out.push('');
  out.push('**A fresh folder of N files** on this filesystem: its own size with names of the fixture\'s average length and with 16-character names');
  out.push('');
  out.push(table(['files', 'maildir names', '16-character names'], f.synthetic.map((y) => [y.files.toLocaleString('en'), fmtB(y.maildirNameBytes), fmtB(y.shortNameBytes)])));
  out.push('');
  out.push('**du per backup**: each backup alone (a complete tree) and what it adds after the older ones');
  out.push('');
  out.push(table(['backup', 'du alone', 'added after the older ones'], f.duPerBackup.map((d) => [d.name, fmtB(d.aloneBytes), fmtB(d.addedBytes)])));
  out.push('');
  out.push(`**Folders kept** (${fmtB(per)} of folders per backup, measured above): N hourly backups kept (KEEP_HOURLY, when REMOTE_RETENTION_DAYS keeps no more)`);
  out.push('');
  out.push(table(['kept hourly backups', 'folders on the box'], KEEPS.map((k) => [`${k}${k === 48 ? ' (the installer\'s KEEP_HOURLY for hourly runs)' : ''}`, fmtB(k * per)]).concat([['720 (every hourly backup of REMOTE_RETENTION_DAYS=30)', fmtB(720 * per)]])));
  return out.join('\n');
}
