// Crash-safe file writes shared by the checkpoint writers (safetensors, .pth).
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 1 << 30));
}

/** Makes the rename itself durable; some platforms cannot open or sync a directory, and then we can't. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort: the file's own data was already synced
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `pieces` to `${path}.tmp-${pid}`, fsyncs, and renames it over `path`, so a crash leaves
 * either the old file or the complete new one, never a torn one. The pieces are written as given
 * (no whole-file copy in memory).
 */
export function writeFileAtomic(path: string, pieces: Iterable<Uint8Array>): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      for (const piece of pieces) writeAll(fd, piece);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to clean up
    }
    throw e;
  }
  syncDirectory(dirname(path));
}
