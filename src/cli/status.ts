// `status`, for both commands (`backup-to-hetzner status`, and `restore-from-hetzner status` on a
// standby host): the status file, the newest backup on the box, what the scrubs found.
import type { RunContext } from '../backup/context.js';
import { EXIT } from './exit-codes.js';

export async function runStatus(ctx: RunContext, json: boolean): Promise<number> {
  const [{ statusReport }, { listBackups }, { loadScrubState }] = await Promise.all([import('../notify/status-command.js'), import('../backup/list.js'), import('../backup/scrub.js')]);
  const r = await statusReport({
    config: ctx.config,
    now: ctx.now,
    scrubState: () => loadScrubState(ctx.config.STATE_DIR),
    newestOnBox: async () => {
      await ctx.box.connect();
      try {
        const l = await listBackups(ctx, { sizes: false, records: 'newest' });
        return l[0] && { name: l[0].name, date: l[0].date, verification: l[0], encryption: l[0].encryption, dump: l[0].dump };
      } finally {
        await ctx.box.close();
      }
    },
  });
  process.stdout.write(json ? JSON.stringify(r.json, null, 2) + '\n' : r.lines.join('\n') + '\n');
  return r.healthy ? EXIT.ok : EXIT.unhealthy;
}
