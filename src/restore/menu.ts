// Pure: reading the menus mailcow's backup_and_restore.sh prints during `restore`, and choosing
// by label. The script numbers its datasets in directory order (`ls -f`), which differs between
// hosts and runs, so a number is only ever taken from the menu just printed.
import type { Component } from '../config/schema.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
export const stripAnsi = (s: string) => s.replace(ANSI, '');

/** `[ 3 ] - Redis DB` or `[ NaN ] - Rspamd data (incompatible Arch, cannot restore it)` */
export interface MenuItem {
  /** undefined for `[ NaN ]` lines: listed but not selectable. */
  number?: number;
  label: string;
}

export function parseMenuLine(raw: string): MenuItem | undefined {
  const m = /^\s*\[\s*(\d+|NaN)\s*\]\s*-\s*(.*?)\s*$/.exec(stripAnsi(raw));
  if (!m) return undefined;
  return { number: m[1] === 'NaN' ? undefined : Number(m[1]), label: m[2]! };
}

/** Which menu a block of item lines is: the dataset menu starts with `[ 0 ] - all`. */
export function menuKind(items: MenuItem[]): 'restore-point' | 'dataset' {
  return items[0]?.number === 0 && items[0].label === 'all' ? 'dataset' : 'restore-point';
}

/** The label mailcow prints for each dataset (the text before any parenthesised remark counts). */
export const DATASET_LABEL: Record<Component, RegExp> = {
  vmail: /^Mail directory\b/,
  crypt: /^Crypt data\b/,
  redis: /^Redis DB\b/,
  rspamd: /^Rspamd data\b/,
  postfix: /^Postfix data\b/,
  mysql: /^SQL DB\b/,
};

export type Pick = { ok: true; number: number; label: string } | { ok: false; reason: string };

export function pickDataset(items: MenuItem[], component: Component): Pick {
  const found = items.filter((i) => DATASET_LABEL[component].test(i.label));
  if (found.length === 0) return { ok: false, reason: `mailcow's restore menu offers no "${DATASET_LABEL[component].source.slice(1, -2)}" entry (menu: ${items.map((i) => i.label).join(' | ')})` };
  if (found.length > 1) return { ok: false, reason: `mailcow's restore menu lists ${component} ${found.length} times; refusing to guess` };
  const f = found[0]!;
  if (f.number === undefined) return { ok: false, reason: `mailcow's script will not restore ${component}: ${f.label}` };
  return { ok: true, number: f.number, label: f.label };
}

/** The restore point must be exactly the folder the tool downloaded, and the only one offered. */
export function pickRestorePoint(items: MenuItem[], folder: string): Pick {
  const norm = (p: string) => p.replace(/\/+$/, '');
  if (items.length !== 1) return { ok: false, reason: `mailcow's script offers ${items.length} restore points (${items.map((i) => i.label).join(', ')}); expected only ${folder}` };
  const it = items[0]!;
  if (it.number === undefined || norm(it.label) !== norm(folder)) return { ok: false, reason: `mailcow's script offers ${it.label} instead of ${folder}` };
  return { ok: true, number: it.number, label: it.label };
}

/**
 * Answers to the questions the script asks after a dataset is chosen, queued right after the
 * choice: the real script's `read -p` prints no prompt when stdin is not a terminal, so they are
 * not waited for. mysql: "mailcow will be stopped ... proceed? [Y|n]"; vmail: "Force a resync
 * now? [y|N]" (the tool runs its own resync, so the script's is declined).
 */
export function followUpAnswers(component: Component): string[] {
  if (component === 'mysql') return ['y'];
  if (component === 'vmail') return ['n'];
  return [];
}

/** Known prompt texts, for the log (and to notice a question the contract does not know). */
export const KNOWN_PROMPTS: RegExp[] = [/Select a restore point:/, /Select a dataset to restore:/, /Force a resync now\?/, /do you want to proceed\? \[Y\|n\]/];
export const UNKNOWN_PROMPT = /\?\s*\[[^\]]*\]\s*$|:\s*$/;
