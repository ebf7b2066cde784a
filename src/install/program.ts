// The program where the units expect it: INSTALL_DIR with the compiled JavaScript, the templates,
// package.json/package-lock.json and the production dependencies (npm ci --omit=dev, or with
// --skip-npm / under --root a copy of them from this checkout, offline), plus the commands as
// symlinks in /usr/local/bin. A new version is staged next to the old one and swapped in.
import { existsSync, readFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { UserError } from '../errors.js';
import { rooted, type Layout } from './layout.js';
import type { Ops } from './ops.js';

/** Top-level entries copied from the package root (besides node_modules). */
export const PROGRAM_FILES = ['dist/src', 'dist/install.js', 'systemd', 'logrotate', 'package.json', 'package-lock.json', '.env.example', 'README.md', 'LICENSE'];
export const REQUIRED_FILES = ['dist/src/cli/backup-to-hetzner.js', 'dist/install.js', 'package.json', 'package-lock.json', 'systemd', 'logrotate'];

interface PackageJson {
  bin?: Record<string, string>;
}

export function binsOf(packageRoot: string): Record<string, string> {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as PackageJson).bin ?? {};
}

/** Folders of node_modules that `npm ci --omit=dev` would install, from package-lock.json. */
export function productionPackages(packageRoot: string): string[] {
  const lock = JSON.parse(readFileSync(join(packageRoot, 'package-lock.json'), 'utf8')) as { packages?: Record<string, { dev?: boolean; link?: boolean }> };
  return Object.entries(lock.packages ?? {})
    .filter(([p, v]) => p.startsWith('node_modules/') && !v.dev && !v.link)
    .map(([p]) => p)
    .sort();
}

export function npmPath(nodePath: string): string {
  const beside = join(dirname(nodePath), 'npm');
  return existsSync(beside) ? beside : 'npm';
}

export interface ProgramParams {
  packageRoot: string;
  layout: Layout;
  nodePath: string;
  skipNpm: boolean;
}

export async function installProgram(p: ProgramParams, ops: Ops): Promise<void> {
  const missing = REQUIRED_FILES.filter((f) => !existsSync(join(p.packageRoot, f)));
  if (missing.length) {
    throw new UserError('preflight', `${p.packageRoot} has no ${missing.join(', ')}: build it first (cd ${p.packageRoot} && npm ci && npm run build), then run node dist/install.js`);
  }
  const dest = rooted(p.layout.root, p.layout.installDir);
  if (dest === p.packageRoot) {
    ops.out.ok(`program: running from ${dest} itself; files kept as they are`);
    return;
  }
  const stage = `${dest}.new`;
  const old = `${dest}.old`;
  await ops.remove(stage);
  await ops.ensureDir(dirname(dest));
  await ops.mkdir(stage, 0o755);
  for (const f of PROGRAM_FILES) {
    if (existsSync(join(p.packageRoot, f))) await ops.copy(join(p.packageRoot, f), join(stage, f));
  }
  if (p.skipNpm) {
    const src = join(p.packageRoot, 'node_modules');
    const pkgs = productionPackages(p.packageRoot);
    const absent = pkgs.filter((d) => !existsSync(join(p.packageRoot, d)));
    if (absent.length) throw new UserError('preflight', `${src} lacks ${absent.slice(0, 3).join(', ')}${absent.length > 3 ? ', ...' : ''}: run npm ci in ${p.packageRoot} first (or drop --skip-npm)`);
    if (ops.dryRun) ops.out.info(`would copy ${pkgs.length} production packages from ${src} to ${join(stage, 'node_modules')} (the ones npm ci --omit=dev installs)`);
    else {
      for (const d of pkgs) {
        const from = join(p.packageRoot, d);
        await ops.copy(from, join(stage, d), (s) => {
          const rel = relative(from, s);
          return !(rel === 'node_modules' || rel.startsWith(`node_modules${sep}`));
        });
      }
    }
  } else {
    await ops.run(npmPath(p.nodePath), ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], {
      what: 'npm ci --omit=dev',
      cwd: stage,
      timeoutMs: 15 * 60_000,
      onLine: (l) => ops.out.info(l),
    });
  }
  for (const target of Object.values(binsOf(p.packageRoot))) {
    const f = join(stage, target);
    if (!existsSync(join(p.packageRoot, target))) continue;
    if (ops.dryRun) ops.out.info(`would chmod 0755 ${f}`);
    else if (existsSync(f)) await chmod(f, 0o755);
  }
  const had = existsSync(dest);
  if (had) await ops.rename(dest, old);
  await ops.rename(stage, dest);
  if (had) await ops.remove(old);
  ops.out.ok(`${ops.dryRun ? 'would install' : had ? 'updated' : 'installed'} the program in ${dest}${p.skipNpm ? ' (dependencies copied from this checkout)' : ''}`);
}

/** /usr/local/bin/<command> -> INSTALL_DIR/<bin path>; returns the links made. */
export async function linkCommands(p: ProgramParams, ops: Ops): Promise<string[]> {
  const links: string[] = [];
  const binDir = rooted(p.layout.root, p.layout.binDir);
  for (const [name, target] of Object.entries(binsOf(p.packageRoot))) {
    const hostTarget = join(p.layout.installDir, target);
    if (!existsSync(join(p.packageRoot, target))) {
      ops.out.warn(`${name}: ${hostTarget} is not in this build; no command linked`);
      continue;
    }
    const link = join(binDir, name);
    const r = await ops.symlink(hostTarget, link);
    if (r === 'refused') {
      ops.out.warn(`${link} exists and is not a symlink: left alone (remove it and run the installer again to get ${name} there)`);
      continue;
    }
    links.push(link);
    if (!ops.dryRun) ops.out.ok(`${link} -> ${hostTarget}${r === 'unchanged' ? ' (unchanged)' : ''}`);
  }
  return links;
}
