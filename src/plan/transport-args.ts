// Argument lists for ssh, rsync and sftp, built from the config alone. The rules come from the
// Storage Box reference: host keys always checked against the pinned file, one reused connection
// per run, keepalives, and rsync without owner/group with an absolute --link-dest, or hard links
// silently become copies.

export interface BoxTarget {
  host: string;
  port: number;
  user: string;
  keyPath: string;
  knownHosts: string;
  connectTimeout: number;
  /** Socket of the run's shared connection (ControlMaster); undefined: no multiplexing. */
  controlPath?: string;
}

export function sshOptions(t: BoxTarget): string[] {
  const o = (kv: string) => ['-o', kv];
  return [
    '-F', 'none', // the admin's ~/.ssh/config must not change how the backup connects
    '-p', String(t.port),
    '-i', t.keyPath,
    ...o('IdentitiesOnly=yes'),
    ...o('BatchMode=yes'),
    ...o('StrictHostKeyChecking=yes'),
    ...o(`UserKnownHostsFile=${t.knownHosts}`),
    ...o('GlobalKnownHostsFile=/dev/null'),
    ...o(`ConnectTimeout=${t.connectTimeout}`),
    ...o('ServerAliveInterval=15'),
    ...o('ServerAliveCountMax=4'),
    ...o('LogLevel=ERROR'),
    // Commands ride on the run's master connection when it is up, else connect on their own.
    ...(t.controlPath ? [...o('ControlMaster=no'), ...o(`ControlPath=${t.controlPath}`)] : []),
  ];
}

/** The run's shared connection: a foreground `ssh -M -N` child that lives as long as the run. */
export function masterStartArgs(t: BoxTarget): string[] {
  if (!t.controlPath) throw new Error('internal: no control path');
  const base = sshOptions({ ...t, controlPath: undefined });
  return [...base, '-o', 'ControlMaster=yes', '-o', `ControlPath=${t.controlPath}`, '-o', 'ControlPersist=no', '-N', userAtHost(t)];
}

/** `ssh -O check|exit` against the run's master. */
export function masterControlArgs(t: BoxTarget, op: 'check' | 'exit'): string[] {
  return ['-F', 'none', '-o', `ControlPath=${t.controlPath}`, '-O', op, userAtHost(t)];
}

/** sftp takes the same options, but the port as -P. */
export function sftpArgs(t: BoxTarget): string[] {
  const o = sshOptions(t);
  const i = o.indexOf('-p');
  o[i] = '-P';
  return [...o, '-b', '-', userAtHost(t)];
}

export const userAtHost = (t: BoxTarget) => `${t.user}@${t.host.includes(':') ? `[${t.host}]` : t.host}`;

/** ssh's argv for one box command. */
export function sshCommandArgs(t: BoxTarget, command: string): string[] {
  return [...sshOptions(t), userAtHost(t), command];
}

/** rsync's -e value: rsync splits it on spaces, honouring quotes. */
export function rsyncRemoteShell(t: BoxTarget): string {
  return ['ssh', ...sshOptions(t)].map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export const remoteSpec = (t: BoxTarget, path: string) => `${userAtHost(t)}:${path}`;

/** The box sees its home as /home: --link-dest must be absolute in that form (rsync #715, #928). */
export const boxAbsolute = (relPath: string) => `/home/${relPath}`;

export interface UploadArgs {
  target: BoxTarget;
  /** Local source folder, trailing slash added here. */
  source: string;
  /** Destination folder relative to the box's home. */
  dest: string;
  /** Previous backups' folders relative to the box's home, newest first. */
  linkDest: string[];
  /** NUL-separated list of paths relative to source; without it the whole folder is sent. */
  filesFrom?: string;
  /**
   * The whole folder, every file itemized (-ii, so unchanged and linked files are reported too),
   * symlinks and special files skipped as the manifest skips them. Faster than --files-from for
   * a big tree: rsync reads a --files-from list one byte per system call (38k files: +5 s).
   */
  tree?: boolean;
  timeoutSec: number;
  bwlimitKBps: number;
  /** Keep files already at the destination that are not in the source. */
  keepExtraneous?: boolean;
  /** Send even files whose size and time match (a file that changed while it was read). */
  ignoreTimes?: boolean;
  /** Compare by content, not size and time (small files only: the box reads both sides). */
  checksum?: boolean;
  /**
   * With filesFrom: a listed path missing here is deleted there, a folder with what it holds
   * (the mail tree uploaded into a copy of the previous backup's).
   */
  deleteMissing?: boolean;
  /**
   * Its own ssh connection with compression: a tree sent against yesterday's is mostly rsync's
   * list of names (357k names: 22.7 MiB a run), which ssh's zlib shrinks ~4× (measured 6.6 →
   * 1.7 MB for 100k). Not on the run's master: the first backup's mail_crypt data does not
   * compress and would cost zlib's CPU for nothing.
   */
  compress?: boolean;
}

export function uploadArgs(a: UploadArgs): string[] {
  return [
    a.tree ? '-rpt' : '-rlpt', // never -a: the box cannot keep owner/group and would then never link
    ...(a.filesFrom ? ['--files-from', a.filesFrom, '--from0', '--no-r', '--dirs'] : []),
    ...(a.ignoreTimes ? ['--ignore-times'] : []),
    ...(a.checksum ? ['--checksum'] : []),
    ...(a.filesFrom && a.deleteMissing ? ['--delete-missing-args', '--force'] : []),
    // No --fuzzy: renamed mail is linked on the box before rsync runs (planRenameLinks), and
    // `--fuzzy --fuzzy` made the box score every new file's name against every file of its
    // folder in the link-dest base: at 357k messages (7k a folder) run 2's upload took the box's
    // rsync 13+ minutes of CPU instead of seconds (issue 4).
    '--partial',
    ...a.linkDest.slice(0, 20).map((d) => `--link-dest=${boxAbsolute(d)}`),
    ...(a.keepExtraneous || a.filesFrom ? [] : ['--delete']),
    ...(a.tree ? ['-ii'] : ['--itemize-changes']),
    '--stats',
    `--timeout=${a.timeoutSec}`,
    ...(a.bwlimitKBps > 0 ? [`--bwlimit=${a.bwlimitKBps}`] : []),
    '-e', a.compress ? `${rsyncRemoteShell({ ...a.target, controlPath: undefined })} -o Compression=yes` : rsyncRemoteShell(a.target),
    a.source.endsWith('/') ? a.source : `${a.source}/`,
    remoteSpec(a.target, `${a.dest}/`),
  ];
}

/** Bytes of paths per rsync command line: well under Linux's 2 MiB for arguments and environment. */
const CHECK_ARG_BYTES = 512 << 10;

/**
 * `rsync --checksum --dry-run` of `rels` (relative to the source folder, the process's cwd) against
 * `dest` on the box, one command line per batch. The paths are arguments, not --files-from: rsync
 * reads a list one byte per system call, which made a round of 4,000 files 1.6 s of this host's
 * CPU (0.2 s this way). './' marks where -R's kept part starts, keeps a leading '-' from being an
 * option and a ':' from naming a host; -d compares that '.' instead of "skipping directory".
 */
export function checksumCheckArgs(t: BoxTarget, rels: readonly string[], dest: string, maxBytes = CHECK_ARG_BYTES): string[][] {
  const head = ['-ltRd', '--checksum', '--dry-run', '--itemize-changes', '-e', rsyncRemoteShell(t), '--'];
  const out: string[][] = [];
  let batch: string[] = [];
  let bytes = 0;
  const flush = () => batch.length && out.push([...head, ...batch, remoteSpec(t, dest)]);
  for (const r of rels) {
    const n = Buffer.byteLength(r) + 3;
    if (batch.length && bytes + n > maxBytes) {
      flush();
      batch = [];
      bytes = 0;
    }
    batch.push(`./${r}`);
    bytes += n;
  }
  flush();
  return out;
}

/**
 * rsync's itemize line: `>f+++++++++ path`, or with -ii `hf          path` (linked to a
 * --link-dest basis) and `.f          path` (already there); names are escaped as \#ooo.
 */
export function parseItemize(line: string): { code: string; path: string } | undefined {
  const m = /^([<>ch.][fdLDS](?:[^ ]{9}| {9})) (.+)$/.exec(line);
  if (!m) return undefined;
  return { code: m[1]!, path: unescapeRsync(m[2]!) };
}

export function unescapeRsync(s: string): string {
  return s.replace(/\\#([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** `Total bytes sent: 1,234` and friends from --stats. */
export function parseStats(lines: string[]): { bytesSent: number; bytesReceived: number; totalSize: number; transferredSize: number; literalBytes: number } {
  const num = (re: RegExp) => {
    for (const l of lines) {
      const m = re.exec(l);
      if (m) return Number(m[1]!.replace(/[,.]/g, ''));
    }
    return 0;
  };
  return {
    bytesSent: num(/^Total bytes sent: ([\d,.]+)/),
    totalSize: num(/^Total file size: ([\d,.]+)/),
    transferredSize: num(/^Total transferred file size: ([\d,.]+)/),
    bytesReceived: num(/^Total bytes received: ([\d,.]+)/),
    literalBytes: num(/^Literal data: ([\d,.]+)/),
  };
}

/** `drwxr-xr-x          4,096 2026/11/23 10:00:00 name` from rsync --list-only. */
export function parseListOnly(line: string): { type: 'dir' | 'file' | 'other'; size: number; mtime: string; name: string } | undefined {
  const m = /^([dl-])[rwxsStT-]{9}\s+([\d,.]+)\s+(\d{4}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2})\s(.+)$/.exec(line);
  if (!m) return undefined;
  return {
    type: m[1] === 'd' ? 'dir' : m[1] === '-' ? 'file' : 'other',
    size: Number(m[2]!.replace(/[,.]/g, '')),
    mtime: m[3]!,
    name: unescapeRsync(m[4]!),
  };
}
