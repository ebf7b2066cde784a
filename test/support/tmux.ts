// The restore wizard in a real pseudo-terminal: tmux runs it, the test reads the screen and
// presses keys as a person would.
import { execFileSync } from 'node:child_process';

export const sh = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });

export interface Terminal {
  /** The screen once it matches `re`; throws with the last screen after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  /** Everything the terminal showed so far, scrolled-off lines included. */
  history(): string;
  keys(...keys: string[]): void;
  /** Types text literally (no key names). */
  type(text: string): void;
  close(): void;
}

/** Runs `cli` with node in a new tmux session; the screen ends with WIZARD-EXIT=<exit code>. */
export function startWizard(session: string, cli: string, args: string[], env: Record<string, string>, width = 200): Terminal {
  const envs = Object.entries(env).map(([k, v]) => `${k}=${sh(v)}`).join(' ');
  tmux('new-session', '-d', '-s', session, '-x', String(width), '-y', '50', `env ${envs} ${sh(process.execPath)} ${sh(cli)} ${args.map(sh).join(' ')}; echo "WIZARD-EXIT=$?"; sleep 60`);
  return {
    async waitFor(re, ms = 40_000) {
      const end = Date.now() + ms;
      let screen = '';
      while (Date.now() < end) {
        screen = tmux('capture-pane', '-p', '-t', session);
        if (re.test(screen)) return screen;
        await new Promise((r) => setTimeout(r, 150));
      }
      throw new Error(`timed out waiting for ${re} on the screen:\n${screen}`);
    },
    history: () => tmux('capture-pane', '-p', '-S', '-', '-t', session),
    keys: (...keys) => void tmux('send-keys', '-t', session, ...keys),
    type: (text) => void tmux('send-keys', '-t', session, '-l', text),
    close() {
      try {
        tmux('kill-session', '-t', session);
      } catch {
        /* already gone */
      }
    },
  };
}

/** From the wizard's first question to its component checklist: the latest backup, "chosen components". */
export async function openComponentList(t: Terminal): Promise<void> {
  await t.waitFor(/Which backup\?/);
  t.keys('Enter');
  await t.waitFor(/What should be restored\?/);
  t.keys('Down');
  await t.waitFor(/❯ chosen components|> chosen components/);
  t.keys('Enter');
  await t.waitFor(/Components/);
}
