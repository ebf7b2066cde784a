// Questions. One interface, three answerers: inquirer on a terminal, the defaults under --yes
// (a required value without one stops the install and names the flag), and scripted answers for
// tests, which run the same validate functions the real prompts do.
import { UserError } from '../errors.js';

export interface TextQuestion {
  name: string;
  message: string;
  default?: string;
  /** true, or the reason the answer is refused. */
  validate?: (value: string) => true | string;
  /** What an unattended install must be given instead, e.g. "--host HOST". */
  flag: string;
}

export interface ConfirmQuestion {
  name: string;
  message: string;
  default: boolean;
}

export interface Asker {
  readonly interactive: boolean;
  text(q: TextQuestion): Promise<string>;
  confirm(q: ConfirmQuestion): Promise<boolean>;
}

export function unattendedAsker(): Asker {
  return {
    interactive: false,
    async text(q) {
      if (q.default === undefined || q.default === '') {
        throw new UserError('config', `${q.name} has no value and no default; for an unattended install pass ${q.flag}`);
      }
      const ok = q.validate?.(q.default) ?? true;
      if (ok !== true) throw new UserError('config', `${q.name} '${q.default}' ${ok}; pass ${q.flag}`);
      return q.default;
    },
    async confirm(q) {
      return q.default;
    },
  };
}

export function inquirerAsker(): Asker {
  return {
    interactive: true,
    async text(q) {
      const { default: inquirer } = await import('inquirer');
      const a = await inquirer.prompt<{ v: string }>([
        { type: 'input', name: 'v', message: q.message, default: q.default, validate: (v: string) => q.validate?.(v.trim()) ?? true },
      ]);
      return a.v.trim();
    },
    async confirm(q) {
      const { default: inquirer } = await import('inquirer');
      const a = await inquirer.prompt<{ v: boolean }>([{ type: 'confirm', name: 'v', message: q.message, default: q.default }]);
      return a.v;
    },
  };
}

/** For tests: answers by question name; an unscripted question takes its default. */
export function scriptedAsker(answers: Record<string, string | boolean>, asked: string[] = []): Asker {
  return {
    interactive: true,
    async text(q) {
      asked.push(q.name);
      const a = answers[q.name];
      const v = typeof a === 'string' ? a : q.default ?? '';
      const ok = q.validate?.(v) ?? true;
      if (ok !== true) throw new Error(`scripted answer for ${q.name} refused: ${ok}`);
      return v;
    },
    async confirm(q) {
      asked.push(q.name);
      const a = answers[q.name];
      return typeof a === 'boolean' ? a : q.default;
    },
  };
}
