/**
 * `datafix`, `datafix --help` and `datafix -h` without loading the CLI: their text is rendered at
 * build time (scripts/build-help.mjs, from the very commands `main` registers) into
 * `help-text.json` beside this module, and printed from there. Loading clipanion and every
 * command module to print a fixed text was most of the CLI's start-up. Kept free of imports
 * besides node built-ins, so that it is loaded in a moment.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** The file the build writes: a digest of what the text was rendered from, and both renderings. */
export interface HelpTextFile {
  /** `helpSourcesDigest` of the build the text was rendered from. */
  readonly sources: string;
  readonly plain: string;
  readonly colored: string;
}

/** Whether the top-level help goes to stdout in colour: a terminal, not CI, no NO_COLOR. */
export function helpInColor(): boolean {
  return Boolean(process.stdout.isTTY) && !process.env.CI && !process.env.NO_COLOR;
}

/** Whether `argv` asks only for the top-level help (nothing, `--help` or `-h`). */
export function asksForHelpOnly(argv: readonly string[]): boolean {
  return argv.length === 0 || (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h'));
}

/**
 * SHA-256 (hex) of everything the top-level help is rendered from, as built beside `cliDir`
 * (the URL of the directory holding main.js): the CLI's entry, its usage formatting, every
 * command module, the package's version and clipanion's. A rebuild that changed any of them
 * (`tsc` alone, without the script that renders the text) makes the text stale.
 * @throws the file system's error when one of them cannot be read.
 */
export function helpSourcesDigest(cliDir: URL): string {
  const hash = createHash('sha256');
  const version = (file: URL | string) => (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  hash.update(`datafix ${version(new URL('../../package.json', cliDir))}\n`);
  // Wherever the installation put clipanion (beside datafix or hoisted above it).
  hash.update(`clipanion ${version(createRequire(new URL('main.js', cliDir)).resolve('clipanion/package.json'))}\n`);
  const commands = readdirSync(new URL('commands/', cliDir))
    .filter((f) => f.endsWith('.js'))
    .sort()
    .map((f) => `commands/${f}`);
  for (const name of ['main.js', 'usage.js', ...commands]) {
    hash.update(`${name}\n`);
    hash.update(readFileSync(new URL(name, cliDir)));
  }
  return hash.digest('hex');
}

/**
 * The prebuilt top-level help (from `path`, the build's file by default), or undefined when the
 * build made none, or made it from other sources than those built beside `cliDir` now: the
 * caller then renders it with clipanion, as every other usage text.
 */
export function prebuiltHelp(
  colored: boolean,
  path: URL = new URL('./help-text.json', import.meta.url),
  cliDir: URL = new URL('./', import.meta.url),
): string | undefined {
  try {
    const file = JSON.parse(readFileSync(path, 'utf8')) as HelpTextFile;
    if (file.sources !== helpSourcesDigest(cliDir)) return undefined;
    return colored ? file.colored : file.plain;
  } catch {
    return undefined;
  }
}
