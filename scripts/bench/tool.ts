// One run of the tool as the service runs it (compiled JavaScript, `run --config`), measured from
// outside: wall time, time from spawn to the lock, CPU of the tool and everything it starts
// (a cpuacct cgroup, so the daemonized ssh master is counted too), RSS sampled every 100 ms per
// phase (phase starts from the --debug lines, durations from the status file), bytes on the wire
// per phase (the link's counters), bytes rsync sent (status), bytes added on the box (du).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunStatus } from '../../src/notify/status-file.js';
import { CHECKSUM_FILE, RECORD_FILE } from '../../src/plan/manifest.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';
import { boxGrowth, type Growth } from './box-growth.js';
import { duBytes } from './exec.js';
import type { Link } from './link.js';

export const CLI = fileURLToPath(new URL('../../src/cli/backup-to-hetzner.js', import.meta.url));
export const PRELOAD = fileURLToPath(new URL('./preload.js', import.meta.url));
const CGROOT = '/sys/fs/cgroup/cpuacct';

export interface MemAtPeak {
  rssMiB: number;
  heapTotalMiB: number;
  heapUsedMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
}

export interface PhaseMeasure {
  phase: string;
  ms: number;
  cpuMs?: number;
  toolPeakRssMiB?: number;
  childrenPeakRssMiB?: number;
  wireUpBytes?: number;
  wireDownBytes?: number;
}

export interface RunMeasure {
  label: string;
  exitCode: number;
  wallMs: number;
  spawnToLockMs?: number;
  cpuMs?: number;
  cpuUserMs?: number;
  cpuSysMs?: number;
  /** The tool's node process alone (process.resourceUsage at exit): peak RSS, CPU incl. worker threads. */
  toolPeakRssMiB?: number;
  /** The tool's memory at its sampled RSS peak: V8 heap (total, used), buffers outside it. */
  toolMemAtPeak?: MemAtPeak;
  /** The same at each phase's own peak (sampled in the tool every 20 ms). */
  toolMemAtPeakByPhase?: Record<string, MemAtPeak>;
  /** Each phase's own peak RSS (the kernel's high-water mark, reset at the phase's start). */
  toolPeakRssMiBByPhase?: Record<string, number>;
  toolCpuMs?: number;
  /** Peak of the summed RSS of the tool's child processes (sampled). */
  childrenPeakRssMiB?: number;
  /** GNU time %M: the largest single process of the tree (waited-for processes only). */
  largestProcessRssMiB?: number;
  wireUpBytes?: number;
  wireDownBytes?: number;
  bytesSent?: number;
  addedOnBoxBytes: number;
  /** What the new backup added on the box, by kind (blocks of inodes no older backup shares). */
  growth?: Growth;
  backupBytes?: number;
  files?: number;
  archivesBytes?: number;
  /** rsync's bytes sent by each upload of the run, from its debug lines ("the dump", "vmail", ...). */
  sentByUpload: Record<string, number>;
  backupName?: string;
  phases: PhaseMeasure[];
  status?: RunStatus;
  stderrTail: string;
}

interface Sample {
  t: number;
  cpuNs?: number;
  toolRssKiB: number;
  childrenRssKiB: number;
  up?: number;
  down?: number;
}

async function readNum(f: string): Promise<number | undefined> {
  try {
    return Number((await readFile(f, 'utf8')).trim());
  } catch {
    return undefined;
  }
}

async function pidsOf(cg: string | undefined, rootPid: number): Promise<number[]> {
  if (cg) {
    const t = await readFile(join(cg, 'cgroup.procs'), 'utf8').catch(() => '');
    return t.split('\n').filter(Boolean).map(Number);
  }
  // No cgroup: the process tree below rootPid (a daemonized ssh master escapes it).
  const parent = new Map<number, number>();
  for (const n of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(n)) continue;
    const s = await readFile(`/proc/${n}/stat`, 'utf8').catch(() => '');
    const m = /\) \S (\d+)/.exec(s);
    if (m) parent.set(Number(n), Number(m[1]));
  }
  const out: number[] = [];
  for (const [pid] of parent) {
    let p: number | undefined = pid;
    for (let i = 0; p && i < 64; i++, p = parent.get(p)) if (p === rootPid) { out.push(pid); break; }
  }
  return out;
}

async function rssOf(pid: number): Promise<{ rss: number; tool: boolean; wrapper: boolean }> {
  const st = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(st)?.[1] ?? 0);
  const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return { rss, tool: cmd.includes('backup-to-hetzner.js'), wrapper: cmd.startsWith('/usr/bin/time') || cmd.startsWith('sh\0') };
}

/** Value of a cumulative series at time t (linear between samples). */
function at(samples: Sample[], t: number, key: 'cpuNs' | 'up' | 'down'): number | undefined {
  const s = samples.filter((x) => x[key] !== undefined);
  if (!s.length) return undefined;
  if (t <= s[0]!.t) return s[0]![key];
  for (let i = 1; i < s.length; i++) {
    if (t <= s[i]!.t) {
      const a = s[i - 1]!;
      const b = s[i]!;
      return a[key]! + ((b[key]! - a[key]!) * (t - a.t)) / Math.max(1, b.t - a.t);
    }
  }
  return s[s.length - 1]![key];
}

let runSeq = 0;

export async function runTool(sb: Sandbox, link: Link, label: string, opts: { extraArgs?: string[]; env?: Record<string, string> } = {}): Promise<RunMeasure> {
  const stateDir = join(sb.dir, 'state');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const boxFolder = join(sb.box.root, sb.remotePath);
  await mkdir(boxFolder, { recursive: true });
  const duBefore = await duBytes(boxFolder);
  const rusageFile = join(sb.dir, `rusage-${runSeq}.json`);
  const timeFile = join(sb.dir, `time-${runSeq}.txt`);
  await rm(rusageFile, { force: true });

  let cg: string | undefined = join(CGROOT, `mcbench-${process.pid}-${runSeq++}`);
  try {
    await mkdir(cg);
  } catch {
    cg = undefined;
  }
  const cgUser = async () => (cg ? ((await readNum(join(cg, 'cpuacct.usage_user'))) ?? 0) : 0);
  const cgSys = async () => (cg ? ((await readNum(join(cg, 'cpuacct.usage_sys'))) ?? 0) : 0);

  // Lock appearance, watched on the state folder.
  let lockAt: number | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(stateDir, (_ev, name) => {
      if (lockAt === undefined && name === 'backup.lock' && existsSync(join(stateDir, 'backup.lock'))) lockAt = performance.now();
    });
  } catch {
    watcher = undefined;
  }

  const phaseStarts: { phase: string; t: number }[] = [];
  const sentByUpload: Record<string, number> = {};
  const samples: Sample[] = [];
  const t0 = performance.now();
  const t0Epoch = Date.now();
  const script = `${cg ? `echo $$ > ${cg}/cgroup.procs && ` : ''}exec /usr/bin/time -f '%e %U %S %M' -o "$0" "$@"`;
  const child = spawn('sh', ['-c', script, timeFile, process.execPath, ...serviceNodeFlags(), '--import', PRELOAD, CLI, 'run', '--config', sb.configPath, '--debug', ...(opts.extraArgs ?? [])], {
    env: { ...serviceEnv(), ...sb.env, ...opts.env, BENCH_RUSAGE_FILE: rusageFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  let buf = '';
  const onData = (d: string) => {
    const now = performance.now();
    tail = (tail + d).slice(-4000);
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = /phase (\w+): start/.exec(line);
      if (m) phaseStarts.push({ phase: m[1]!, t: now });
      if (lockAt === undefined && m && m[1] === 'preflight') lockAt = now; // lock is done when preflight starts
      const up = /uploading (.+?) to the Storage Box: (\d+) B sent/.exec(line);
      if (up) sentByUpload[up[1]!] = (sentByUpload[up[1]!] ?? 0) + Number(up[2]);
    }
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);

  let busy = false;
  const sample = async () => {
    if (busy) return;
    busy = true;
    try {
      const t = performance.now();
      const pids = await pidsOf(cg, child.pid!);
      let tool = 0;
      let children = 0;
      for (const p of pids) {
        const r = await rssOf(p);
        if (r.tool) tool += r.rss;
        else if (!r.wrapper) children += r.rss;
      }
      const c = await link.counters();
      samples.push({ t, cpuNs: cg ? (await cgUser()) + (await cgSys()) : undefined, toolRssKiB: tool, childrenRssKiB: children, up: c?.up, down: c?.down });
    } finally {
      busy = false;
    }
  };
  await sample();
  const timer = setInterval(() => void sample(), 100);
  const exitCode = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  const wallMs = performance.now() - t0;
  clearInterval(timer);
  while (busy) await new Promise((r) => setTimeout(r, 5));
  await sample();
  watcher?.close();

  const cpuUserNs = await cgUser();
  const cpuSysNs = await cgSys();
  if (cg) await rmdir(cg).catch(() => undefined);

  const status = JSON.parse(await readFile(join(stateDir, 'status.json'), 'utf8').catch(() => 'null')) as RunStatus | null;
  if (status && Date.parse(status.startedAt) < t0Epoch - 2000) throw new Error(`${label}: the status file is from an earlier run`);
  const rusage = JSON.parse(await readFile(rusageFile, 'utf8').catch(() => 'null')) as { maxRssKiB: number; userUs: number; systemUs: number; atPeak?: MemAtPeak; atPeakByPhase?: Record<string, MemAtPeak>; peakRssMiBByPhase?: Record<string, number> } | null;
  const time = (await readFile(timeFile, 'utf8').catch(() => '')).trim().split('\n').pop()?.split(' ').map(Number);
  const duAfter = await duBytes(boxFolder);

  // Archives: the new backup's top-level files on the box (mailcow's script makes them anew every run).
  let archivesBytes: number | undefined;
  if (status?.backupName) {
    const dir = join(boxFolder, status.backupName);
    archivesBytes = 0;
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isFile() && e.name !== CHECKSUM_FILE && e.name !== RECORD_FILE) archivesBytes += (await stat(join(dir, e.name))).size;
    }
  }

  const growth = status?.backupName ? await boxGrowth(boxFolder, status.backupName).catch(() => undefined) : undefined;

  // Phase windows: start from the debug line, length from the status file.
  const phases: PhaseMeasure[] = [];
  const starts = [...phaseStarts];
  for (const p of status?.phases ?? []) {
    const i = starts.findIndex((s) => s.phase === p.phase);
    const start = i >= 0 ? starts.splice(i, 1)[0]!.t : undefined;
    if (start === undefined) {
      phases.push({ phase: p.phase, ms: p.ms });
      continue;
    }
    const end = start + p.ms;
    const inWin = samples.filter((s) => s.t >= start && s.t <= end);
    const near = inWin.length ? inWin : samples.filter((s) => s.t >= start).slice(0, 1);
    const d = (k: 'cpuNs' | 'up' | 'down') => {
      const a = at(samples, start, k);
      const b = at(samples, end, k);
      return a === undefined || b === undefined ? undefined : Math.max(0, b - a);
    };
    const cpu = d('cpuNs');
    phases.push({
      phase: p.phase,
      ms: p.ms,
      cpuMs: cpu === undefined ? undefined : cpu / 1e6,
      toolPeakRssMiB: near.length ? Math.max(...near.map((s) => s.toolRssKiB)) / 1024 : undefined,
      childrenPeakRssMiB: near.length ? Math.max(...near.map((s) => s.childrenRssKiB)) / 1024 : undefined,
      wireUpBytes: d('up'),
      wireDownBytes: d('down'),
    });
  }
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  return {
    label,
    exitCode,
    wallMs,
    spawnToLockMs: lockAt === undefined ? undefined : lockAt - t0,
    cpuMs: cg ? (cpuUserNs + cpuSysNs) / 1e6 : time ? (time[1]! + time[2]!) * 1000 : undefined,
    cpuUserMs: cg ? cpuUserNs / 1e6 : time ? time[1]! * 1000 : undefined,
    cpuSysMs: cg ? cpuSysNs / 1e6 : time ? time[2]! * 1000 : undefined,
    toolPeakRssMiB: rusage ? rusage.maxRssKiB / 1024 : undefined,
    toolMemAtPeak: rusage?.atPeak,
    toolMemAtPeakByPhase: rusage?.atPeakByPhase,
    toolPeakRssMiBByPhase: rusage?.peakRssMiBByPhase,
    toolCpuMs: rusage ? (rusage.userUs + rusage.systemUs) / 1000 : undefined,
    childrenPeakRssMiB: Math.max(...samples.map((s) => s.childrenRssKiB)) / 1024,
    largestProcessRssMiB: time?.[3] ? time[3] / 1024 : undefined,
    wireUpBytes: first.up === undefined || last.up === undefined ? undefined : last.up - first.up,
    wireDownBytes: first.down === undefined || last.down === undefined ? undefined : last.down - first.down,
    bytesSent: status?.bytesSent,
    addedOnBoxBytes: duAfter - duBefore,
    growth,
    backupBytes: status?.backupBytes,
    files: status?.files,
    archivesBytes,
    sentByUpload,
    backupName: status?.backupName,
    phases,
    status: status ?? undefined,
    stderrTail: tail,
  };
}

/**
 * The environment as systemd gives the service: without NODE_EXTRA_CA_CERTS, which this machine
 * sets to the whole system CA bundle (Node parses its 144 certificates at every start, ~60 ms;
 * the unit sets no such variable and the tool's SMTP to localhost needs none).
 */
function serviceEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  // The unit's own Environment= lines (malloc's settings), as systemd gives them to the tool.
  const unit = readFileSync(new URL('../../../systemd/mailcow-backup.service', import.meta.url), 'utf8');
  for (const m of unit.matchAll(/^Environment=(\w+)=(\S*)$/gm)) env[m[1]!] = m[2]!;
  return env;
}

/** Time from spawn to exit of `node -e ''` through the same wrapper: the floor for startup. */
export async function nodeBaselineMs(): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve) => spawn('sh', ['-c', 'exec "$@"', 'sh', process.execPath, '-e', ''], { stdio: 'ignore', env: serviceEnv() }).on('close', () => resolve()));
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[2]!;
}

export async function writeJson(file: string, data: unknown): Promise<void> {
  await writeFile(file, JSON.stringify(data, null, 2) + '\n');
}

/** The node flags of the systemd unit's ExecStart: the tool is measured as the service runs it. */
export function serviceNodeFlags(): string[] {
  const unit = readFileSync(new URL('../../../systemd/mailcow-backup.service', import.meta.url), 'utf8');
  const m = /^ExecStart=@NODE@ (.*?)@INSTALL_DIR@\//m.exec(unit);
  if (!m) throw new Error('systemd/mailcow-backup.service: ExecStart is not "@NODE@ [flags] @INSTALL_DIR@/…"; the bench would not run the tool as the service does');
  return m[1]!.split(/\s+/).filter(Boolean);
}
