// A big maildir folder's manifest part, split by hash prefix (issues 16 and 19). A part's lines
// are sorted by hash, so bucket k of 2^bits holds the lines whose hash starts with the bits k:
// a new message or a flag change (same hash, new name) rewrites one bucket, and the folder's other
// buckets stay byte-identical and are hard-linked on the box. The buckets, in order, are exactly
// the unsplit part's lines. A folder below SPLIT_AT lines keeps one part under its old name.

/**
 * Lines a bucket holds on average at least (and fewer than twice that): a changed bucket is ~12 KiB
 * gzip'ed. Measured on the bench's hour (docs/performance.md, "Hourly runs"): 256 stored 0.89 MiB
 * of parts, 128 0.64, 64 0.47, while each part costs every run a line of checksums.sha256, a name
 * in the backup's manifest/ folder and one in rsync's file list (~3,900 parts at 1M messages
 * with 256, ~15,600 with 64).
 */
export const BUCKET_LINES = 128;
/** 2^16 buckets is 16M messages in one folder; past that buckets just grow. */
const MAX_BITS = 16;

/** How many bits of the hash choose a part's bucket (0: one part) for a folder of `lines` lines. */
export function bucketBits(lines: number): number {
  let bits = 0;
  while (bits < MAX_BITS && lines >= BUCKET_LINES << (bits + 1)) bits++;
  return bits;
}

/** The bucket of a hash whose first four bytes, big-endian, are `top32`. */
export function bucketOf(top32: number, bits: number): number {
  return bits ? top32 >>> (32 - bits) : 0;
}

/**
 * The bucket of a line coreutils escapes (a backslash first): `sort` puts '\' between '9' and
 * 'a', so such a line goes last in the bucket of hash 9fff…, where the unsplit part has it.
 */
export function escapedBucket(bits: number): number {
  return bucketOf(0x9fffffff, bits);
}

/** The bucket of a checksum line (sha256sum's format). */
export function bucketOfLine(line: string, bits: number): number {
  return line.startsWith('\\') ? escapedBucket(bits) : bucketOf(parseInt(line.slice(0, 8), 16), bits);
}

/**
 * The name of bucket k of `part` (manifestPartOf's name): the count is in it, so a folder that
 * grows into more buckets never writes a name its older layout used; k is padded so that `ls`
 * lists the buckets in order.
 */
export function bucketPartName(part: string, k: number, bits: number): string {
  if (!bits) return part;
  const count = 2 ** bits;
  return part.replace(/\.sha256\.gz$/, `.${String(k).padStart(String(count - 1).length, '0')}-of-${count}.sha256.gz`);
}
