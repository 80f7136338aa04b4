/** Expands the PATH arguments of validate/test: files as given, directories to their specs. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SPEC = /\.ya?ml$/;
const TEST = /\.test\.ya?ml$/;

export function findSpecFiles(paths: readonly string[], kind: 'spec' | 'test' = 'spec'): { files: string[]; missing: string[] } {
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
      .filter((n) => SPEC.test(n) && TEST.test(n) === (kind === 'test'))
      .sort();
    files.push(...names.map((n) => join(p, n)));
  }
  return { files, missing };
}
