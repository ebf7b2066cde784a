// The main job end to end on the built-in sandbox: a loopback Storage Box, a stand-in mailcow
// with fixture mail, two backups with a day of mail change between them, `list`, then a lost
// mailbox brought back by an unattended mailbox restore, its files' hashes compared.
// Run it with scripts/demo.sh (which installs what it needs first). With --keep (or
// SANDBOX_KEEP=1) the sandbox stays up afterwards for trying the restore wizard by hand.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { mutateDatabases } from '../src/sandbox/mailcow-standin.js';
import { createSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { sq } from '../src/sandbox/storage-box.js';
import { treeDigest, treeHashes } from '../src/sandbox/tree-hashes.js';

const root = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const CLI = { 'backup-to-hetzner': join(root, 'dist/src/cli/backup-to-hetzner.js'), 'restore-from-hetzner': join(root, 'dist/src/cli/restore-from-hetzner.js') };
const dir = resolve(process.env.SANDBOX_DIR ?? join(root, 'sandbox'));
const mailMiB = Number(process.env.SANDBOX_MAIL_MIB ?? 20);
const keep = process.argv.includes('--keep') || ['1', 'yes', 'true'].includes(process.env.SANDBOX_KEEP ?? '');
/** The mailbox the demo loses and restores. */
const LOST = { address: 'alice@example.com', dir: 'example.com/alice' };

function run(cmd: keyof typeof CLI, args: string[], env: Record<string, string>): Promise<number> {
  console.log(`\n$ ${cmd} ${args.join(' ')}`);
  return new Promise((res) => {
    const p = spawn(process.execPath, [CLI[cmd], ...args], { stdio: 'inherit', env: { ...process.env, ...env } });
    p.on('exit', (code) => res(code ?? 1));
  });
}

/** Loses a mailbox (its folder in the vmail volume), restores it unattended, compares the hashes. */
async function loseAndRestore(sb: Sandbox, env: Record<string, string>): Promise<boolean> {
  const folder = join(sb.mailcow.volume('vmail'), LOST.dir);
  if (!existsSync(folder)) {
    console.error(`the fixture has no mailbox ${LOST.address}`);
    return false;
  }
  const before = await treeHashes(folder);
  console.log(`\n${LOST.address} as the second backup holds it: ${before.size} files, tree SHA-256 ${treeDigest(before)}`);
  await rm(folder, { recursive: true, force: true });
  console.log(`lost: ${folder} deleted`);
  if ((await run('restore-from-hetzner', ['--backup', 'latest', '--mailbox', LOST.address, '--mode', 'replace', '--yes', '--config', sb.configPath], env)) !== 0) return false;
  const after = existsSync(folder) ? await treeHashes(folder) : new Map<string, string>();
  const same = treeDigest(after) === treeDigest(before);
  console.log(`\n${LOST.address} after the restore:           ${after.size} files, tree SHA-256 ${treeDigest(after)}`);
  console.log(same ? 'the mail is back: every file has the hash it had in the backup' : 'MISMATCH: the restored mailbox differs from the backup');
  return same;
}

/** Until Ctrl-C / SIGTERM: the box (sshd) lives as long as this process. */
async function stayUp(sb: Sandbox, env: Record<string, string>): Promise<void> {
  const envWords = `PATH=${sq(env.PATH!.split(':')[0]!)}:"$PATH" STANDIN_MAILCOW_PATH=${sq(env.STANDIN_MAILCOW_PATH!)} STANDIN_PROMPTS=tty`;
  const cmd = (c: keyof typeof CLI, args: string) => `env ${envWords} ${sq(process.execPath)} ${sq(CLI[c])} ${args}`;
  console.log(`\nthe sandbox stays up (Storage Box on 127.0.0.1:${sb.box.port}). In another terminal, as the same user, try:`);
  console.log(`\n  # the restore wizard (pick a backup, then "one or more mailboxes", or components)`);
  console.log(`  ${cmd('restore-from-hetzner', `--config ${sq(sb.configPath)}`)}`);
  console.log(`\n  # the backups on the box`);
  console.log(`  ${cmd('backup-to-hetzner', `list --config ${sq(sb.configPath)}`)}`);
  console.log(`\nto stop it: press Ctrl-C here (or kill ${process.pid}); its files stay in ${dir}`);
  await new Promise<void>((res) => {
    process.once('SIGINT', res);
    process.once('SIGTERM', res);
  });
  console.log('\nstopping the sandbox');
}

async function main() {
  await rm(dir, { recursive: true, force: true });
  console.log(`building the sandbox in ${dir}: loopback Storage Box, stand-in mailcow, ${mailMiB} MiB of fixture mail...`);
  const sb = await createSandbox({ dir, mailBytes: mailMiB * 1024 * 1024, seed: 42 });
  // For the restore: the stand-in's script answers as the real one does on a terminal.
  const env = { ...sb.env, STANDIN_PROMPTS: 'tty' };
  let failed = 0;
  try {
    const cfg = ['--config', sb.configPath];
    failed += (await run('backup-to-hetzner', ['check', ...cfg], sb.env)) === 0 ? 0 : 1;
    failed += (await run('backup-to-hetzner', ['run', ...cfg], sb.env)) === 0 ? 0 : 1;
    const change = await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 7, newFraction: 0.01, deleteFraction: 0.002, renameFraction: 0.005 });
    await mutateDatabases(sb.mailcow, 7);
    console.log(`\na day of mail: ${change.newFiles} new messages (${change.newBytes} bytes), ${change.deleted} deleted, ${change.renamed} flag renames; databases rewritten in place`);
    await new Promise((r) => setTimeout(r, 1100)); // backup names have one-second resolution
    failed += (await run('backup-to-hetzner', ['run', ...cfg], sb.env)) === 0 ? 0 : 1;
    failed += (await run('backup-to-hetzner', ['list', ...cfg], sb.env)) === 0 ? 0 : 1;
    failed += (await loseAndRestore(sb, env)) ? 0 : 1;
    console.log(`\nthe box's files are under ${sb.box.root}/${sb.remotePath}; the log is ${join(dir, 'log', 'mailcow-backup.log')}`);
    if (failed) console.error(`\n${failed} step(s) failed`);
    else console.log('\nsandbox demo finished: two verified backups on the loopback Storage Box, a lost mailbox restored from them');
    if (keep) await stayUp(sb, env);
  } finally {
    await sb.stop();
  }
  if (failed) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`sandbox demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
