// What a whole-tree upload put on the box, set against the manifest made just before it. Mail
// keeps moving between the hashing and rsync's walk: a message delivered meanwhile was sent but
// is not in the manifest yet (it is hashed and verified after the upload); one deleted meanwhile
// is in the manifest but not on the box (it leaves the manifest, unless it was hard-linked on the
// box before rsync ran). Memory: one reference per expected path, no copy of the strings.

export class UploadTally {
  private readonly unseen: Set<string>;
  private readonly extra: string[] = [];

  constructor(expected: Iterable<string>) {
    this.unseen = new Set(expected);
  }

  /** A file rsync reported (sent, linked to the basis, or already there). */
  seen(path: string): void {
    if (!this.unseen.delete(path)) this.extra.push(path);
  }

  /**
   * `onBoxAnyway`: files placed in the staging folder before rsync ran (renames linked over
   * SFTP), which stay there when their source is gone.
   */
  result(onBoxAnyway: ReadonlySet<string>): { missing: string[]; extra: string[] } {
    return { missing: [...this.unseen].filter((p) => !onBoxAnyway.has(p)), extra: this.extra };
  }
}
