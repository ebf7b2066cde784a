// The main job end to end on the built-in sandbox: a loopback Storage Box, a stand-in mailcow
// with fixture mail, two backups with a day of mail change between them, then `list`.
// Run it with scripts/demo.sh (which installs what it needs first).
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mutateMaildir } from '../src/sandbox/maildir-fixture.js';
import { mutateDatabases } from '../src/sandbox/mailcow-standin.js';
import { createSandbox } from '../src/sandbox/sandbox.js';

const root = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const cli = join(root, 'dist/src/cli/backup-to-hetzner.js');
const dir = resolve(process.env.SANDBOX_DIR ?? join(root, 'sandbox'));
const mailMiB = Number(process.env.SANDBOX_MAIL_MIB ?? 20);

function run(args: string[], env: Record<string, string>): Promise<number> {
  console.log(`\n$ backup-to-hetzner ${args.join(' ')}`);
  return new Promise((res) => {
    const p = spawn(process.execPath, [cli, ...args], { stdio: 'inherit', env: { ...process.env, ...env } });
    p.on('exit', (code) => res(code ?? 1));
  });
}

async function main() {
  await rm(dir, { recursive: true, force: true });
  console.log(`building the sandbox in ${dir}: loopback Storage Box, stand-in mailcow, ${mailMiB} MiB of fixture mail...`);
  const sb = await createSandbox({ dir, mailBytes: mailMiB * 1024 * 1024, seed: 42 });
  let failed = 0;
  try {
    const cfg = ['--config', sb.configPath];
    failed += (await run(['check', ...cfg], sb.env)) === 0 ? 0 : 1;
    failed += (await run(['run', ...cfg], sb.env)) === 0 ? 0 : 1;
    const change = await mutateMaildir(sb.mailcow.volume('vmail'), { seed: 7, newFraction: 0.01, deleteFraction: 0.002, renameFraction: 0.005 });
    await mutateDatabases(sb.mailcow, 7);
    console.log(`\na day of mail: ${change.newFiles} new messages (${change.newBytes} bytes), ${change.deleted} deleted, ${change.renamed} flag renames; databases rewritten in place`);
    await new Promise((r) => setTimeout(r, 1100)); // backup names have one-second resolution
    failed += (await run(['run', ...cfg], sb.env)) === 0 ? 0 : 1;
    failed += (await run(['list', ...cfg], sb.env)) === 0 ? 0 : 1;
    console.log(`\nthe box's files are under ${sb.box.root}/${sb.remotePath}; the log is ${join(dir, 'log', 'mailcow-backup.log')}`);
  } finally {
    await sb.stop();
  }
  if (failed) {
    console.error(`\n${failed} step(s) failed`);
    process.exitCode = 1;
  } else console.log('\nsandbox demo finished: two verified backups on the loopback Storage Box');
}

main().catch((e) => {
  console.error(`sandbox demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
