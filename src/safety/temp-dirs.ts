/**
 * Temporary directories datafix makes for itself (a fix test's database, the demo's sample data),
 * remembered so that a command stopped by a signal can remove them before it exits: a process
 * ended by Ctrl-C runs no `finally`, and they would stay in the system's temporary directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const live = new Set<string>();

/** Makes a new directory under the system's temporary directory, named `prefix` + random. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  live.add(dir);
  return dir;
}

/** Removes one directory made by `makeTempDir`, with everything in it. */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  live.delete(dir);
}

/** Removes every directory made by `makeTempDir` and not removed yet (a command being stopped). */
export function removeTempDirs(): void {
  for (const dir of live) removeTempDir(dir);
}
