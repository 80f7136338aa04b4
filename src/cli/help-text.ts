/**
 * `datafix`, `datafix --help` and `datafix -h` without loading the CLI: their text is rendered at
 * build time (scripts/build-help.mjs, from the very commands `main` registers) into
 * `help-text.json` beside this module, and printed from there. Loading clipanion and every
 * command module to print a fixed text was most of the CLI's start-up. Kept free of imports
 * besides node:fs, so that it is loaded in a moment.
 */
import { readFileSync } from 'node:fs';

/** The file the build writes: the package version it was made for and both renderings. */
export interface HelpTextFile {
  readonly version: string;
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
 * The prebuilt top-level help (from `path`, the build's file by default), or undefined when the
 * build made none, or made it for another version of the package: the caller then renders it
 * with clipanion, as every other usage text.
 */
export function prebuiltHelp(colored: boolean, path: URL = new URL('./help-text.json', import.meta.url)): string | undefined {
  let file: HelpTextFile;
  let version: string;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as HelpTextFile;
    version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
  if (file.version !== version) return undefined;
  return colored ? file.colored : file.plain;
}
