// Typed errors, each mapped to one documented exit code in cli/exit-codes.ts. A UserError is
// something the admin can fix: it is printed as one line with no stack.

export type ErrorKind =
  | 'config' // bad configuration or command line
  | 'locked' // another run holds the lock
  | 'dump-busy' // mailcow's dump container exists and is not ours (mailcow's script run by hand)
  | 'preflight' // something the run needs is missing: disk, mailcow, the box, the host key
  | 'failed' // a step of the run failed; nothing was published
  | 'verify' // data on the box does not match the manifest; nothing was published
  | 'partial' // the backup was published, a later step (retention, cleanup) failed
  | 'interrupted'; // SIGINT or SIGTERM

export class UserError extends Error {
  readonly kind: ErrorKind;
  /** Extra lines (every config problem, the tail of a failed command's output). */
  readonly details: string[];
  /** The step of the run that failed, for the report. */
  phase?: string;
  constructor(kind: ErrorKind, message: string, details: string[] = []) {
    super(message);
    this.name = 'UserError';
    this.kind = kind;
    this.details = details;
  }
}

export const isUserError = (e: unknown): e is UserError => e instanceof UserError;

export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
