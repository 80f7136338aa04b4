/** Whole writes to a file descriptor, for the journal, lock files and saved plans. */
import { writeSync } from 'node:fs';

/**
 * Writes all of `bytes` to `fd`, continuing short writes (a filling disk first writes less than
 * asked). `position` is the file offset of the first byte, or undefined for the current offset.
 * `write` is `fs.writeSync` unless a caller injects faults (the journal's test seam).
 * @throws the write's own error (ENOSPC, EDQUOT, EIO, EFBIG…); an `EIO` error when a write makes
 *   no progress, which would otherwise loop forever.
 */
export function writeFully(fd: number, bytes: Uint8Array, position?: number, write: typeof writeSync = writeSync): void {
  for (let off = 0; off < bytes.length; ) {
    const n = write(fd, bytes, off, bytes.length - off, position === undefined ? null : position + off);
    if (n <= 0) throw Object.assign(new Error('the write made no progress'), { code: 'EIO' });
    off += n;
  }
}
