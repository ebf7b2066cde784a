// The WAN link in front of the loopback Storage Box. Preferred: the whole benchmark runs in its
// own network namespace (entered with nsenter, so /sys and the cgroup mounts stay as they are),
// where lo gets a WAN-like MTU and an htb qdisc limits the traffic to and from the box's port
// to the chosen rate, each direction on its own; the class counters give the bytes on the wire
// per direction. Fallback where namespaces are not allowed: the tool's own BWLIMIT_KBPS
// (rsync --bwlimit, which limits rsync's data only, not ssh commands) and no wire counters.
import { spawn } from 'node:child_process';
import { run } from './exec.js';

export interface Link {
  method: 'netns+tc' | 'rsync --bwlimit' | 'none';
  mbit: number;
  /** Cumulative bytes on the wire (IP packets incl. headers) to and from the box; undefined: not measurable. */
  counters(): Promise<{ up: number; down: number } | undefined>;
}

export const NETNS_ENV = 'MCBENCH_NETNS';

/**
 * Outside the namespace: creates one and runs this same script inside it (returns its exit code),
 * or returns undefined when namespaces cannot be used here (then the caller goes on directly).
 */
export async function reexecInNetns(argv: string[]): Promise<number | undefined> {
  if (process.env[NETNS_ENV] || process.getuid?.() !== 0 || process.env.MCBENCH_SHAPING === 'bwlimit') return undefined;
  const name = `mcbench-${process.pid}`;
  try {
    await run('ip', ['netns', 'add', name]);
  } catch {
    return undefined;
  }
  try {
    const ok = await run('nsenter', [`--net=/run/netns/${name}`, 'ip', 'link', 'set', 'lo', 'mtu', '1500', 'up'], { allowFail: true });
    if (ok.code !== 0) return undefined;
    const tc = await run('nsenter', [`--net=/run/netns/${name}`, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '30'], { allowFail: true });
    if (tc.code !== 0) return undefined;
    return await new Promise<number>((resolve) => {
      const p = spawn('nsenter', [`--net=/run/netns/${name}`, process.execPath, ...argv], { stdio: 'inherit', env: { ...process.env, [NETNS_ENV]: name } });
      const fwd = (sig: NodeJS.Signals) => () => p.kill(sig);
      process.on('SIGINT', fwd('SIGINT'));
      process.on('SIGTERM', fwd('SIGTERM'));
      p.on('exit', (code, sig) => resolve(code ?? (sig ? 128 + 15 : 1)));
    });
  } finally {
    await run('ip', ['netns', 'del', name], { allowFail: true });
  }
}

/** Inside the namespace: shape the box's port. Outside: the rsync fallback (caller sets BWLIMIT_KBPS). */
export async function shapeLink(port: number, mbit: number): Promise<Link> {
  if (mbit <= 0) return { method: 'none', mbit: 0, counters: async () => undefined };
  if (!process.env[NETNS_ENV]) return { method: 'rsync --bwlimit', mbit, counters: async () => undefined };
  const tc = (...a: string[]) => run('tc', a);
  const rate = `${mbit}mbit`;
  await tc('class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '20gbit');
  await tc('class', 'add', 'dev', 'lo', 'parent', '1:1', 'classid', '1:10', 'htb', 'rate', rate, 'ceil', rate);
  await tc('class', 'add', 'dev', 'lo', 'parent', '1:1', 'classid', '1:20', 'htb', 'rate', rate, 'ceil', rate);
  await tc('class', 'add', 'dev', 'lo', 'parent', '1:1', 'classid', '1:30', 'htb', 'rate', '10gbit');
  // Short queues (fq_codel) instead of 1000-packet fifos: no seconds of bufferbloat on the link.
  for (const h of ['10', '20']) await tc('qdisc', 'add', 'dev', 'lo', 'parent', `1:${h}`, 'handle', `${h}:`, 'fq_codel');
  for (const [dir, cls] of [['dport', '1:10'], ['sport', '1:20']] as const) {
    await tc('filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', dir, String(port), '0xffff', 'flowid', cls);
  }
  return {
    method: 'netns+tc',
    mbit,
    async counters() {
      const r = await run('tc', ['-s', 'class', 'show', 'dev', 'lo'], { allowFail: true });
      if (r.code !== 0) return undefined;
      // "class htb 1:10 ... \n Sent 1234 bytes 5 pkt ..." (iproute2 6.1 prints no JSON for htb classes)
      const get = (h: string) => Number(new RegExp(`class htb ${h} [^\\n]*\\n\\s*Sent (\\d+) bytes`).exec(r.stdout)?.[1] ?? 0);
      return { up: get('1:10'), down: get('1:20') };
    },
  };
}
