// `npm run bench`: builds its own sandbox (fixture maildir + the other mailcow volumes + the
// stand-in mailcow script + a loopback Storage Box behind a limited link), runs the tool three
// times (first backup; after a day of mail change; a quiet day: no mail, mailcow's sessions and
// logs still move), then an hourly run between dumps after an hour of mail
// (scripts/bench/hourly.ts), measures every phase and the
// references (the change itself, the bash tool's ways, rsync of mailcow's vmail archive,
// sha256sum, BorgBackup and restic on the same volumes; verification on a box without sha256sum
// against one with it) and prints a table; JSON to --out.
//
//   npm run bench -- [--mail-mib 1024] [--plain-text] [--bwlimit-mbit 100] [--messages-x10]
//                    [--threads auto|N] [--skip-peers] [--skip-rto] [--out bench-results/latest.json]
//                    [--work DIR] [--keep] [--shaping auto|bwlimit] [--archives-only] [--skip-archives]
//                    [--rto-again] (after the RTO cases, case (c) again on each touch of WORK/rto-again)
//                    [--skip-verify-methods] (no sha256sum / rsync --checksum reference over run 1)
// Environment: BENCH_MAIL_MIB, BENCH_BWLIMIT_MBIT, BENCH_OUT. Run scripts/bench-setup.sh first
// (borg, restic, GNU time). Needs root for the network namespace (else rsync --bwlimit is used).
import { mkdir, rm } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { STANDIN_VOLUMES } from '../src/sandbox/mailcow-standin.js';
import { archiveDataDay, fillArchiveData, type RedisStandin } from '../src/sandbox/archive-data.js';
import { archiveCandidates, renderArchives } from './bench/archives.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { version } from './bench/exec.js';
import { NETNS_ENV, reexecInNetns, shapeLink } from './bench/link.js';
import { makePeers, type PeerRun } from './bench/peers.js';
import { classify, hashReferences, rsyncArchiveDelta, snapshot, vmailArchive } from './bench/references.js';
import type { BenchResult } from './bench/result.js';
import { fmtB, render } from './bench/table.js';
import { nodeBaselineMs, runTool, writeJson, type RunMeasure } from './bench/tool.js';
import { verifyMethods } from './bench/verify-methods.js';
import { failoverAgain, rtoCases, rtoTargets, type RtoCase } from './bench/rto.js';
import { hourlyRun, type HourlyResult } from './bench/hourly.js';
import { hourlyTargets, renderHourly } from './bench/hourly-table.js';

const root = resolve(fileURLToPath(new URL('../../', import.meta.url)));

const { values: opt } = parseArgs({
  options: {
    'mail-mib': { type: 'string', default: process.env.BENCH_MAIL_MIB ?? '1024' },
    'plain-text': { type: 'boolean', default: false },
    'bwlimit-mbit': { type: 'string', default: process.env.BENCH_BWLIMIT_MBIT ?? '100' },
    'messages-x10': { type: 'boolean', default: false },
    'messages-x30': { type: 'boolean', default: false },
    threads: { type: 'string', default: '1' },
    'skip-peers': { type: 'boolean', default: false },
    'skip-rto': { type: 'boolean', default: false },
    'rto-again': { type: 'boolean', default: false },
    'skip-verify-methods': { type: 'boolean', default: false },
    out: { type: 'string', default: process.env.BENCH_OUT ?? join(root, 'bench-results', 'latest.json') },
    work: { type: 'string', default: join(root, 'bench-results', 'work') },
    keep: { type: 'boolean', default: false },
    shaping: { type: 'string', default: process.env.MCBENCH_SHAPING ?? 'bwlimit' },
    'archives-only': { type: 'boolean', default: false },
    'skip-archives': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const log = (m: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  if (opt.help) {
    console.log(readFileHeader());
    return 0;
  }
  if (opt.shaping === 'bwlimit') process.env.MCBENCH_SHAPING = 'bwlimit';
  const inner = await reexecInNetns(process.argv.slice(1));
  if (inner !== undefined) return inner;

  const mailMiB = Number(opt['mail-mib']);
  const mbit = Number(opt['bwlimit-mbit']);
  if (!(mailMiB > 0) || !(mbit >= 0)) throw new Error('--mail-mib must be > 0 and --bwlimit-mbit >= 0');
  const x10 = opt['messages-x10'] || opt['messages-x30'];
  // 30x: ~1M messages at the default size (issue 19: memory with the index on disk, verify).
  const times = opt['messages-x30'] ? 30 : 10;
  const work = resolve(opt.work!);
  const out = resolve(opt.out!);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const netns = !!process.env[NETNS_ENV];

  // 10x the messages: 600 B..5 KB messages and no big attachments. The default mix averages
  // ~30 KB a message (2..50 KB log-uniform plus 0.5 % with ~3 MB attachments), the small one
  // ~2.1 KB, so 10x the count fits in ~0.7x the bytes.
  const maildir = x10 ? { minMsg: 600, maxMsg: 5000, attachmentFraction: 0 } : {};
  const mailBytes = Math.round((x10 ? mailMiB * 0.069 * times : mailMiB) * 1024 * 1024);
  log(`building the sandbox in ${work}: ${fmtB(mailBytes)} of ${opt['plain-text'] ? 'plain-text' : 'incompressible'} mail${x10 ? ` (${times}x the messages)` : ''}...`);
  const t0 = performance.now();
  const sb: Sandbox = await createSandbox({
    dir: join(work, 'sandbox'),
    mailBytes,
    seed: 42,
    mailcow: { realDatabase: true, maildir: { seed: 42, totalBytes: mailBytes, plainText: opt['plain-text'], ...maildir } },
    config: {
      THREADS: opt.threads!,
      REMOTE_RETENTION_DAYS: '0',
      STANDBY_DIR: join(work, 'standby'),
      ...(!netns && mbit > 0 ? { BWLIMIT_KBPS: String(Math.round((mbit * 1e6) / 8 / 1024)) } : {}),
    },
  });
  let code = 0;
  let redis: RedisStandin | undefined;
  try {
    // mailcow's database and redis sized with the mail (scale 1 = 1 GiB: a database archive of tens of MB)
    const scale = mailMiB / 1024;
    redis = await fillArchiveData(sb.mailcow, scale);
    const fixtureMs = performance.now() - t0;
    const link = await shapeLink(sb.box.port, mbit);
    log(`fixture ready in ${(fixtureMs / 1000).toFixed(1)} s; link ${mbit || 'unlimited'} Mbit/s via ${link.method}`);
    const vols = STANDIN_VOLUMES.map((v) => sb.mailcow.volume(v));
    const vmail = sb.mailcow.volume('vmail');
    const peers = opt['skip-peers'] ? [] : await makePeers(work, vols);
    const peerRuns = new Map<string, PeerRun[]>(peers.map((p) => [p.name, []]));
    const refs: BenchResult['references'] = {};
    const runs: RunMeasure[] = [];
    const threads = Math.max(1, Number(opt.threads) || 1);
    const refDir = join(work, 'refs');
    await mkdir(refDir, { recursive: true });

    const snap0 = await snapshot(vols);
    const vmailBytes = [...snap0].filter(([p]) => p.startsWith(vmail + '/')).reduce((a, [, f]) => a + f.size, 0);
    const vmailFiles = [...snap0.keys()].filter((p) => p.startsWith(vmail + '/')).length;
    const otherBytes = [...snap0].filter(([p]) => !p.startsWith(vmail + '/')).reduce((a, [, f]) => a + f.size, 0);
    const nodeStartupMs = await nodeBaselineMs();
    const cands = opt['skip-archives'] ? undefined : await archiveCandidates(sb, work, log);
    if (opt['archives-only'] && cands) {
      await cands.day('day 1', 'first backup');
      await mutateMaildir(vmail, { seed: 7, newFraction: 0.01, deleteFraction: 0.002, renameFraction: 0.005 });
      await archiveDataDay(sb.mailcow, redis, 'mail', scale, 7);
      await cands.day('day 2', 'mail day');
      await archiveDataDay(sb.mailcow, redis, 'quiet', scale, 8);
      await cands.day('day 3', 'quiet day');
      console.log(renderArchives(cands.result()));
      await writeJson(out, { archives: cands.result() });
      return 0;
    }

    const toolRun = async (label: string) => {
      log(`${label}: backup-to-hetzner run...`);
      const r = await runTool(sb, link, label);
      if (r.exitCode !== 0) throw new Error(`${label} exited ${r.exitCode}:\n${r.stderrTail}`);
      log(`${label}: ${(r.wallMs / 1000).toFixed(1)} s, sent ${fmtB(r.bytesSent)}, added on box ${fmtB(r.addedOnBoxBytes)}, lock after ${r.spawnToLockMs?.toFixed(0)} ms`);
      // Said as it goes: a long run (--messages-x30) stopped later still leaves these.
      log(`${label}: tool peak RSS ${r.toolPeakRssMiB?.toFixed(0) ?? '?'} MiB; phases ${r.phases.map((p) => `${p.phase} ${(p.ms / 1000).toFixed(1)} s`).join(', ')}`);
      const mem = Object.entries(r.toolMemAtPeakByPhase ?? {}).map(([ph, m]) => `${ph} ${m.rssMiB}/${m.heapTotalMiB}/${m.heapUsedMiB}/${m.arrayBuffersMiB}`);
      if (mem.length) log(`${label}: tool memory at each phase's peak, MiB RSS/heap total/heap used/array buffers: ${mem.join(', ')}`);
      const hwm = Object.entries(r.toolPeakRssMiBByPhase ?? {}).map(([ph, m]) => `${ph} ${m}`);
      if (hwm.length) log(`${label}: tool peak RSS of each phase (kernel high-water mark), MiB: ${hwm.join(', ')}`);
      runs.push(r);
    };
    const peerRun = async (label: string) => {
      for (const p of peers) {
        log(`${label}: ${p.name}...`);
        const x = await p.backup(label);
        peerRuns.get(p.name)!.push(x);
        log(`${label}: ${p.name} ${x.wallS.toFixed(1)} s, repository +${fmtB(x.repoGrowthBytes)}`);
      }
    };

    // Run 1: the first backup, then the references on the same files.
    await toolRun('run 1');
    log('references: sha256sum and hashIndex over the vmail files...');
    refs.hashing = await hashReferences(vmail, refDir);
    // At 10x the messages the box's sha256sum over run 1 takes an hour on this machine.
    if (!opt['skip-verify-methods']) {
      log('references: verifying run 1\'s mail with the box\'s sha256sum and with rsync --checksum (a box without it)...');
      refs.verifyMethods = await verifyMethods(sb, runs[0]!.backupName!, refDir);
    }
    log("references: mailcow's vmail archive (day 1)...");
    const day1 = await vmailArchive(vmail, join(refDir, 'day1.tar.zst'), threads);
    await peerRun('run1');
    await cands?.day('day 1', 'first backup');

    // A day of mail.
    const ch = await mutateMaildir(vmail, { seed: 7, newFraction: 0.01, deleteFraction: 0.002, renameFraction: 0.005 });
    const db = await archiveDataDay(sb.mailcow, redis, 'mail', scale, 7);
    refs.change = classify(snap0, await snapshot(vols));
    log(`a day of mail: ${ch.newFiles} new (${fmtB(ch.newBytes)}), ${ch.deleted} deleted, ${ch.renamed} renamed; ${db.rowsInserted} rows in, ${db.rowsDeleted} out, ${db.tokensLearned} Bayes tokens learned`);
    await sleep(1100);
    await toolRun('run 2');
    await peerRun('run2');
    await cands?.day('day 2', 'mail day');
    log("references: mailcow's vmail archive (day 2) and rsync against day 1...");
    const day2 = await vmailArchive(vmail, join(refDir, 'day2.tar.zst'), threads);
    const delta = await rsyncArchiveDelta(join(refDir, 'day1.tar.zst'), join(refDir, 'day2.tar.zst'), refDir);
    refs.vmailArchiveRsync = { ...delta, archiveSeconds: (day1.wallS + day2.wallS) / 2 };
    const archives = runs[1]!.archivesBytes ?? 0;
    refs.fullResend = { bytes: archives + day2.bytes, seconds: mbit > 0 ? ((archives + day2.bytes) * 8) / (mbit * 1e6) : undefined };
    await rm(join(refDir, 'day1.tar.zst'), { force: true });
    await rm(join(refDir, 'day2.tar.zst'), { force: true });

    // Run 3: a quiet day: no mail, but sessions and logs still move.
    await archiveDataDay(sb.mailcow, redis, 'quiet', scale, 8);
    await sleep(1100);
    await toolRun('run 3');
    await peerRun('run3');
    await cands?.day('day 3', 'quiet day');

    // An hour of mail, then a run between dumps (issue 16).
    log('hourly: an hour of mail, then a run between dumps...');
    const hourly: HourlyResult = await hourlyRun(sb, link, work, log);
    log(`hourly: ${(hourly.run.wallMs / 1000).toFixed(1)} s, sent ${fmtB(hourly.run.bytesSent)}, added on box ${fmtB(hourly.run.addedOnBoxBytes)}`);

    // RTO: restores of run 3's backup (yesterday's is run 1's), after every backup measurement.
    let rto: RtoCase[] | undefined;
    if (!opt['skip-rto']) {
      await mkdir(join(work, 'standby'), { recursive: true });
      rto = await rtoCases(sb, link, { work, standbyDir: join(work, 'standby'), previous: runs[0]!.backupName!, latest: runs[2]!.backupName!, log });
      for (const x of rto) log(`${x.case}: ${x.wallS.toFixed(1)} s, ${fmtB(x.fromBoxBytes)} from the box, ${fmtB(x.fromHostBytes)} from this host`);
      if (opt['rto-again']) await failoverAgain(sb, link, { work, standbyDir: join(work, 'standby'), previous: runs[0]!.backupName!, latest: runs[2]!.backupName!, log });
    }

    const result: BenchResult = {
      version: 1,
      at: new Date().toISOString(),
      meta: {
        cpu: cpus()[0]?.model.trim() ?? '?',
        cores: cpus().length,
        memGiB: Math.round(totalmem() / 1024 ** 3),
        os: `Linux ${release()}`,
        node: process.version,
        rsync: await version('rsync', ['--version']).then((v) => v.replace(/\s+protocol.*/, '').replace(/\s+version\s+/, ' ')),
        borg: peers.find((p) => p.name === 'borg')?.version ?? 'borg skipped',
        restic: peers.find((p) => p.name === 'restic')?.version.replace(/ compiled.*/, '') ?? 'restic skipped',
        threads: opt.threads!,
        link: { method: link.method, mbit },
        nodeStartupMs,
        fixture: { bytes: vmailBytes, files: vmailFiles, users: sb.mailcow.maildir?.users.length ?? 0, plainText: opt['plain-text']!, messagesX10: x10!, messagesX30: opt['messages-x30']!, ms: fixtureMs, otherVolumesBytes: otherBytes, mailMiB },
      },
      runs: runs.map(({ status: _s, stderrTail: _t, ...r }) => r),
      references: refs,
      peers: peers.map((p) => ({ name: p.name, version: p.version, runs: peerRuns.get(p.name)! })),
      rto,
      hourly,
      archives: cands?.result(),
      targets: [],
    };
    result.targets = [...targets(result), ...hourlyTargets(result, hourly), ...(rto ? rtoTargets(rto, fmtB) : [])];
    const text = `${render(result)}\n\n${renderHourly(result, hourly)}` + (result.archives ? `\n\n${renderArchives(result.archives)}` : '');
    console.log(text);
    await mkdir(dirname(out), { recursive: true });
    await writeJson(out, result);
    log(`results: ${out}`);
    if (result.targets.some((t) => t.ok === false)) log('some targets were missed (see the table)');
  } catch (e) {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
    code = 1;
  } finally {
    await redis?.stop();
    await sb.stop();
    if (!opt.keep) await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
  return code;
}

function targets(r: BenchResult): BenchResult['targets'] {
  const t: BenchResult['targets'] = [];
  const [r1, r2, r3] = r.runs;
  const growth = (name: string, i: number) => r.peers.find((p) => p.name === name)?.runs[i]?.repoGrowthBytes;
  const borg2 = growth('borg', 1);
  const restic2 = growth('restic', 1);
  if (r2) {
    const peers2 = [borg2, restic2].filter((x): x is number => x !== undefined);
    const sent = r2.bytesSent ?? NaN;
    t.push({
      target: 'run 2 sends fewer bytes than borg and restic add',
      measured: `sent ${fmtB(sent)} (wire ↑ ${fmtB(r2.wireUpBytes)}) vs borg +${fmtB(borg2)}, restic +${fmtB(restic2)}`,
      ok: peers2.length ? peers2.every((p) => sent < p) : undefined,
    });
    const best = peers2.length ? Math.min(...peers2) : undefined;
    t.push({
      target: 'run 2 adds on the box ≤ 1.5× the better peer (goal ≤ 1×)',
      measured: best === undefined ? `added ${fmtB(r2.addedOnBoxBytes)}` : `added ${fmtB(r2.addedOnBoxBytes)} = ${(r2.addedOnBoxBytes / best).toFixed(2)}× of ${fmtB(best)}`,
      ok: best === undefined ? undefined : r2.addedOnBoxBytes <= 1.5 * best,
    });
  }
  if (r1 && r3) {
    // The archives are made anew every run; rsync sends them (as trees since issue 19: the
    // database's changed files) as deltas against yesterday's, in the dump's own upload ("the
    // dump": the tool's label for it). Each upload's own stats, the manifest's included; should
    // none be logged, the run's total counts as beyond the archives rather than as nothing sent.
    const size = r3.backupBytes ?? 0;
    const all = Math.max(Object.values(r3.sentByUpload).reduce((a, b) => a + b, 0), r3.bytesSent ?? 0);
    const archives = r3.sentByUpload['the dump'] ?? 0;
    const beyond = all - archives;
    t.push({
      target: 'run 3 sends ≤ 0.1 % of the backup beyond the archives',
      measured: `all uploads sent ${fmtB(all)} = ${((100 * all) / size).toFixed(3)} % of ${fmtB(size)}, the archives' (the dump's) ${fmtB(archives)}: beyond them ${fmtB(beyond)} = ${((100 * beyond) / size).toFixed(3)} %; allowed 0.1 % = ${fmtB(0.001 * size)}`,
      ok: beyond <= 0.001 * size,
    });
    const dump = r3.phases.find((p) => p.phase === 'dump')?.ms ?? 0;
    t.push({
      target: "run 3 takes ≤ 10 % of run 1's wall time beyond its dump",
      measured: `${((r3.wallMs - dump) / 1000).toFixed(2)} s = ${((100 * (r3.wallMs - dump)) / r1.wallMs).toFixed(1)} % of ${(r1.wallMs / 1000).toFixed(1)} s`,
      ok: r3.wallMs - dump <= 0.1 * r1.wallMs,
    });
  }
  const h = r.references.hashing;
  if (h) {
    const m1 = r1?.phases.find((p) => p.phase === 'manifest');
    const speed = h.sha256sumOneProcess.wallS / h.hashIndexDefault.wallS;
    t.push({
      target: 'manifest hashing ≥ 3× faster than sha256sum on the same files',
      measured: `hashIndex ${h.hashIndexDefault.wallS.toFixed(2)} s vs sha256sum ${h.sha256sumOneProcess.wallS.toFixed(2)} s (one process) = ${speed.toFixed(2)}×; vs one sha256sum per file ${(h.sha256sumPerFile.extrapolatedWallS / h.hashIndexDefault.wallS).toFixed(1)}×; run 1 manifest phase ${((m1?.ms ?? 0) / 1000).toFixed(2)} s`,
      ok: speed >= 3,
    });
    const cores = h.hashIndexDefault.cpuS / h.hashIndexDefault.wallS;
    t.push({
      target: 'hashing uses both cores',
      measured: `hashIndex ${cores.toFixed(2)} cores; run 1 manifest phase ${m1?.cpuMs !== undefined ? (m1.cpuMs / m1.ms).toFixed(2) : '–'} cores`,
      ok: r.meta.cores < 2 ? undefined : cores >= 1.6,
    });
  }
  const peak = Math.max(...r.runs.map((x) => x.toolPeakRssMiB ?? 0));
  t.push({ target: `tool peak RSS < 150 MB${r.meta.fixture.messagesX30 ? ' (30× messages)' : r.meta.fixture.messagesX10 ? ' (10× messages)' : ''}`, measured: `${((peak * 1024 * 1024) / 1e6).toFixed(0)} MB (${r.meta.fixture.files} files)`, ok: peak * 1024 * 1024 < 150e6 });
  const locks = r.runs.map((x) => x.spawnToLockMs ?? Infinity);
  t.push({
    target: 'process start → lock taken < 300 ms',
    measured: `${locks.map((l) => l.toFixed(0)).join(' / ')} ms (node -e "" alone: ${r.meta.nodeStartupMs.toFixed(0)} ms)`,
    ok: Math.max(...locks) < 300,
  });
  return t;
}

function readFileHeader(): string {
  return 'npm run bench -- [--mail-mib 1024] [--plain-text] [--bwlimit-mbit 100] [--messages-x10] [--threads N] [--skip-peers] [--skip-rto] [--out FILE] [--work DIR] [--keep] [--archives-only] [--skip-archives]';
}

main().then(
  (c) => process.exit(c),
  (e) => {
    console.error(`bench failed: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
