/**
 * Temporary directories for tests: each one is created under the OS temp dir and removed after
 * the test (or the file) that made it, so no test leaves databases or specs behind.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach } from 'vitest';

export interface TempDir {
  /** Absolute path of the directory. */
  readonly path: string;
  /** Absolute path of a file (or subpath) inside the directory. */
  file(...parts: string[]): string;
  /** Writes a text file inside the directory and returns its absolute path. */
  write(name: string, text: string): string;
  /** Removes the directory and everything in it. Safe to call twice. */
  cleanup(): void;
}

/** Creates a temp dir. The caller cleans it up; prefer `useTempDirs` inside test files. */
export function makeTempDir(prefix = 'datafix-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    file: (...parts) => join(path, ...parts),
    write(name, text) {
      const file = join(path, name);
      writeFileSync(file, text);
      return file;
    },
    cleanup: () => rmSync(path, { recursive: true, force: true }),
  };
}

/**
 * Returns a factory for temp dirs that are removed automatically: after each test by default, or
 * after the whole file with `{ scope: 'file' }` (for dirs made in `beforeAll`). Call it at the
 * top level of a test file or inside a `describe`.
 */
export function useTempDirs(options: { scope?: 'test' | 'file'; prefix?: string } = {}): () => TempDir {
  const made: TempDir[] = [];
  const clean = () => {
    for (const d of made.splice(0)) d.cleanup();
  };
  if (options.scope === 'file') afterAll(clean);
  else afterEach(clean);
  return () => {
    const d = makeTempDir(options.prefix);
    made.push(d);
    return d;
  };
}

/** sha256 of a file's bytes: "byte-identical afterwards" in one comparison. */
export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}
