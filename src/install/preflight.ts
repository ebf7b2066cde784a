// Before anything is written: root, Node.js, systemd, the tools a run needs (with the apt/dnf
// command for what is missing), and where mailcow lives. Each check either passes, or stops the
// install with one line naming the problem and the fix (exit 4).
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from '../errors.js';
import type { Exec } from '../adapters/exec.js';
import { SCRIPT } from '../adapters/mailcow.js';
import { findPackageRoot, rooted } from './layout.js';
import type { Asker } from './prompts.js';
import type { Out } from './ops.js';
import { commandText } from './ops.js';

/** The oldest supported Node.js: package.json's engines field ">=X.Y", which scripts/setup.sh reads too. */
export function minNodeOf(packageJson: string): string {
  const range = (JSON.parse(packageJson) as { engines?: { node?: string } }).engines?.node ?? '';
  const m = /^>=\s*(\d+(?:\.\d+){0,2})$/.exec(range.trim());
  if (!m) throw new Error(`internal: package.json's engines.node is "${range}", not ">=X.Y"`);
  return m[1]!;
}
export const MIN_NODE = minNodeOf(readFileSync(join(findPackageRoot(), 'package.json'), 'utf8'));
export const DEFAULT_MAILCOW = '/opt/mailcow-dockerized';

/** Tools a backup run (and this installer) calls, and the package each comes in. */
export const TOOLS: { cmd: string; apt?: string; dnf?: string; why: string }[] = [
  { cmd: 'rsync', apt: 'rsync', dnf: 'rsync', why: 'uploads the dump' },
  { cmd: 'ssh', apt: 'openssh-client', dnf: 'openssh-clients', why: 'talks to the box' },
  { cmd: 'ssh-keyscan', apt: 'openssh-client', dnf: 'openssh-clients', why: "fetches the box's host key" },
  { cmd: 'ssh-keygen', apt: 'openssh-client', dnf: 'openssh-clients', why: 'fingerprints and key generation' },
  { cmd: 'zstd', apt: 'zstd', dnf: 'zstd', why: 'tests the archives' },
  { cmd: 'docker', why: "mailcow's backup script runs it" },
];

export function versionAtLeast(have: string, want: string): boolean {
  const a = have.replace(/^v/, '').split('.').map(Number);
  const b = want.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

export function onPath(cmd: string, path: string = process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

const field = (osRelease: string, k: string) => new RegExp(`^${k}=["']?([^"'\\n]*)`, 'm').exec(osRelease)?.[1]?.toLowerCase() ?? '';

/** How to get a supported Node.js on this distribution (README "Install" has the same table). */
export function nodeAdvice(osRelease: string): string {
  const id = field(osRelease, 'ID');
  const major = field(osRelease, 'VERSION_ID').split('.')[0];
  const script = join(findPackageRoot(), 'scripts/node-version.sh');
  const fromNpm = existsSync(script)
    ? `apt-get install -y npm && bash ${script} 24 /usr/local (Node.js 24 from the npm registry into /usr/local/bin)`
    : 'bash scripts/node-version.sh 24 /usr/local in a clone of this repository (Node.js 24 from the npm registry into /usr/local/bin)';
  if (id === 'debian' && Number(major) >= 13) return `install Debian's nodejs (20.19): apt-get install -y nodejs`;
  if (id === 'debian' || id === 'ubuntu') return `${id === 'debian' ? 'Debian' : 'Ubuntu'} ${field(osRelease, 'VERSION_ID')} ships an older one; ${fromNpm}, or NodeSource's nodejs 22 packages`;
  if (['rocky', 'almalinux', 'rhel', 'centos'].includes(id) && major === '9') return 'dnf module reset -y nodejs && dnf module install -y nodejs:22';
  if (['rocky', 'almalinux', 'rhel', 'centos'].includes(id) && Number(major) >= 10) return 'dnf install -y nodejs (Node.js 22)';
  return `install it from your distribution or NodeSource, or: ${fromNpm}`;
}

export type PackageManager = 'apt' | 'dnf' | undefined;

export function packageManagerOf(osRelease: string): PackageManager {
  const ids = `${field(osRelease, 'ID')} ${field(osRelease, 'ID_LIKE')}`.split(/\s+/);
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return 'apt';
  if (ids.some((i) => ['rhel', 'fedora', 'centos', 'rocky', 'almalinux'].includes(i))) return 'dnf';
  return undefined;
}

/** The command that installs the missing tools (docker excluded: mailcow's own docs cover it). */
export function installCommand(missing: string[], pm: PackageManager): string[] | undefined {
  const pkgs = (which: 'apt' | 'dnf') => [...new Set(TOOLS.filter((t) => missing.includes(t.cmd) && t[which]).map((t) => t[which]!))];
  if (pm === 'apt' && pkgs('apt').length) return ['apt-get', 'install', '-y', ...pkgs('apt')];
  if (pm === 'dnf' && pkgs('dnf').length) return ['dnf', 'install', '-y', ...pkgs('dnf')];
  return undefined;
}

export interface PreflightInput {
  root: string;
  dryRun: boolean;
  nodeVersion?: string;
  euid?: number;
  pathEnv?: string;
  osRelease?: string;
}

export async function checkBasics(inp: PreflightInput, out: Out): Promise<void> {
  const euid = inp.euid ?? process.geteuid?.() ?? 0;
  if (euid !== 0 && inp.root === '/' && !inp.dryRun) {
    throw new UserError('preflight', 'the installer must run as root (it writes /etc, /opt and systemd units); run it with sudo');
  }
  const node = inp.nodeVersion ?? process.versions.node;
  if (!versionAtLeast(node, MIN_NODE)) {
    throw new UserError('preflight', `Node.js ${node} is too old; ${MIN_NODE} or newer is needed: ${nodeAdvice(inp.osRelease ?? readOsRelease())}, then run the installer again`);
  }
  out.ok(`Node.js ${node} (${process.execPath})`);
  if (inp.root === '/' && !existsSync('/run/systemd/system')) {
    throw new UserError('preflight', 'systemd is not running on this host; the backup timer needs it (use --root DIR to install into a folder instead)');
  }
}

/** Checks the tools; offers (interactive) or names (unattended) the command that installs them. */
export async function checkTools(inp: PreflightInput, asker: Asker, exec: Exec, out: Out): Promise<void> {
  const find = () => TOOLS.filter((t) => !onPath(t.cmd, inp.pathEnv));
  let missing = find();
  if (missing.length === 0) {
    out.ok(`tools: ${TOOLS.map((t) => t.cmd).join(', ')}`);
    return;
  }
  const pm = packageManagerOf(inp.osRelease ?? readOsRelease());
  const cmd = installCommand(missing.map((t) => t.cmd), pm);
  const names = missing.map((t) => `${t.cmd} (${t.why})`).join(', ');
  if (cmd && asker.interactive && !inp.dryRun && (await asker.confirm({ name: 'installPackages', message: `Missing: ${names}. Run '${commandText(cmd[0]!, cmd.slice(1))}' now?`, default: true }))) {
    await exec(cmd[0]!, cmd.slice(1), { what: cmd.slice(0, 2).join(' '), onLine: (l) => out.info(l), timeoutMs: 15 * 60_000 });
    missing = find();
  }
  if (missing.length === 0) return out.ok('tools installed');
  const fixes: string[] = [];
  const again = installCommand(missing.map((t) => t.cmd), pm);
  if (again) fixes.push(commandText(again[0]!, again.slice(1)));
  else if (missing.some((t) => t.apt)) fixes.push(`apt-get install -y ${[...new Set(missing.filter((t) => t.apt).map((t) => t.apt))].join(' ')} (Debian/Ubuntu) or dnf install -y ${[...new Set(missing.filter((t) => t.dnf).map((t) => t.dnf))].join(' ')} (Rocky/RHEL)`);
  if (missing.some((t) => t.cmd === 'docker')) fixes.push('install Docker as https://docs.mailcow.email/getstarted/install/ describes (mailcow needs it anyway)');
  throw new UserError('preflight', `missing: ${missing.map((t) => t.cmd).join(', ')}; install ${fixes.join(', and ')}`);
}

function readOsRelease(): string {
  try {
    return readFileSync('/etc/os-release', 'utf8');
  } catch {
    return '';
  }
}

export const isMailcowFolder = (realPath: string) => existsSync(join(realPath, 'mailcow.conf')) && existsSync(join(realPath, SCRIPT));

/** /opt/mailcow-dockerized and the working folders of running mailcow compose projects. */
export async function mailcowCandidates(exec: Exec, root: string): Promise<string[]> {
  const found = new Set<string>([DEFAULT_MAILCOW]);
  if (root === '/') {
    try {
      const r = await exec('docker', ['ps', '--format', '{{.Label "com.docker.compose.project"}}\t{{.Label "com.docker.compose.project.working_dir"}}'], {
        what: 'docker ps',
        capture: true,
        timeoutMs: 20_000,
      });
      for (const line of r.stdout.split('\n')) {
        const [project, dir] = line.split('\t');
        if (dir?.startsWith('/') && /mailcow/i.test(`${project} ${dir}`)) found.add(dir);
      }
    } catch {
      // docker not running: only the default is offered
    }
  }
  return [...found].filter((p) => isMailcowFolder(rooted(root, p)));
}

export function checkMailcow(root: string, path: string): void {
  if (!isMailcowFolder(rooted(root, path))) {
    throw new UserError('preflight', `${path} is not a mailcow-dockerized folder (no mailcow.conf or ${SCRIPT}); pass --mailcow-path DIR (or MAILCOW_PATH in the .env)`);
  }
}
