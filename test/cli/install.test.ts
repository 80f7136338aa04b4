/**
 * The README's way to use datafix outside its own repository: `npm link` in a clone (after
 * `npm ci`) puts `datafix` on the PATH, and the commands it shows then work from another
 * directory. The clone is a copy of this checkout as `npm ci` leaves it (built, with its
 * node_modules), and npm's global prefix is a temp directory, so the machine's own global
 * packages are never touched.
 */
import { cpSync, existsSync, readFileSync, symlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { runLines } from '../helpers/doc-commands.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

/** The ```sh blocks of the README section `heading`, each as its lines. */
function blocksOf(heading: string): string[][] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`## ${heading}\n`);
  expect(start, `README section "${heading}"`).toBeGreaterThanOrEqual(0);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => (m[1] as string).trim().split('\n'));
}

/** A clone as `npm ci` leaves it: tracked files, the build (timestamps kept, so it is up to date) and node_modules. */
function builtClone(): string {
  const clone = tmp().file('datafix');
  for (const entry of [
    'package.json',
    'package-lock.json',
    'bin',
    'dist',
    '.tsbuild',
    'schemas',
    'fixes',
    'src',
    'scripts',
    'tsconfig.json',
    'tsconfig.build.json',
  ]) {
    cpSync(join(REPO_ROOT, entry), join(clone, entry), { recursive: true, preserveTimestamps: true });
  }
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(clone, 'node_modules'));
  return clone;
}

describe('README: using datafix in another repository', () => {
  it('`npm link` in a built clone puts `datafix` on the PATH; the commands shown then work in another directory, and it is removed as the README says', async () => {
    const [link, use] = blocksOf('Using datafix in another repository');
    expect(link).toEqual(['npm link']);
    expect(use?.length).toBe(3);
    const clone = builtClone();
    const global = tmp();
    const other = tmp();
    const env = {
      npm_config_prefix: global.path,
      npm_config_update_notifier: 'false',
      PATH: `${join(global.path, 'bin')}${delimiter}${process.env.PATH ?? ''}`,
    };
    // `npx` here is npm's own: the helper's stand-in applies only to `npx datafix`, which the
    // README's commands do not use.
    const linked = await runLines(link as string[], { cwd: clone, env });
    expect(linked[0]?.code, linked[0]?.output).toBe(0);
    expect(existsSync(join(global.path, 'bin', 'datafix'))).toBe(true);

    const used = await runLines(use as string[], { cwd: other.path, env });
    expect(used.map((r) => [r.command, r.code])).toEqual([
      ['datafix --version', 0],
      ['datafix new backfill-order-country --backend sqlite', 0],
      ['datafix test fixes', 0],
    ]);
    const version = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version as string;
    expect(used[0]?.output.trim()).toBe(version);
    expect(existsSync(other.file('fixes', 'backfill-order-country.yaml'))).toBe(true);
    expect(used[2]?.output).toMatch(/^2 passed, 0 failed$/m);

    const removed = await runLines(['npm rm --global datafix'], { cwd: other.path, env });
    expect(removed[0]?.code, removed[0]?.output).toBe(0);
    expect(existsSync(join(global.path, 'bin', 'datafix'))).toBe(false);
  });
});
