/** Expands the PATH arguments of validate/test: files as given, directories to their specs. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SPEC = /\.ya?ml$/;
const TEST = /\.test\.ya?ml$/;

/** Whether a file name is a fix test file (`*.test.yaml`, `*.test.yml`) rather than a fix spec. */
export function isTestFile(file: string): boolean {
  return TEST.test(file);
}

/**
 * Files as given; each directory read for its specs (`spec`), its test files (`test`), or both
 * (`any`), sorted. Paths that do not exist are returned in `missing`.
 */
export function findSpecFiles(paths: readonly string[], kind: 'spec' | 'test' | 'any' = 'spec'): { files: string[]; missing: string[] } {
  const files: string[] = [];
  const missing: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      missing.push(p);
      continue;
    }
    if (!isDir) {
      files.push(p);
      continue;
    }
    const names = readdirSync(p)
      .filter((n) => SPEC.test(n) && (kind === 'any' || TEST.test(n) === (kind === 'test')))
      .sort();
    files.push(...names.map((n) => join(p, n)));
  }
  return { files, missing };
}
