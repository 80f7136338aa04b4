/**
 * The top-level help is printed from a text rendered at build time: it must be exactly what the
 * CLI itself renders, for this version, and a missing or stale text must fall back to rendering.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { asksForHelpOnly, type HelpTextFile, helpSourcesDigest, prebuiltHelp } from '../../src/cli/help-text.js';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();
/** The built CLI's directory (dist/cli/), as the entry script loads it. */
const BUILT_CLI = new URL('../../dist/cli/', import.meta.url);
/**
 * The help as the built CLI renders it with clipanion, in a process of its own (clipanion's ESM
 * build does not load under vitest).
 */
function renderHelp(colors: boolean): string {
  const main = new URL('../../dist/cli/main.js', import.meta.url).href;
  return execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `process.stdout.write((await import(${JSON.stringify(main)})).renderHelp(${colors}))`],
    {
      encoding: 'utf8',
    },
  );
}
const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('the top-level help', () => {
  it.each([[[]], [['--help']], [['-h']]])('datafix %j prints the help the CLI renders, and exits 0', async (args) => {
    const r = await runCli(args);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(renderHelp(false));
    expect(r.stdout).toContain(`datafix - ${version}`);
    expect(r.stderr).toBe('');
  });

  it('the build’s text is the CLI’s own rendering, plain and in colour, of the CLI built now', () => {
    const file = JSON.parse(readFileSync(new URL('help-text.json', BUILT_CLI), 'utf8')) as HelpTextFile;
    expect(file.sources).toBe(helpSourcesDigest(BUILT_CLI));
    expect(file.plain).toBe(renderHelp(false));
    expect(file.colored).toBe(renderHelp(true));
    expect(file.colored).not.toBe(file.plain);
  });

  it('a text rendered from other sources (a command changed, another version), or none, or not JSON, is not used', () => {
    // A copy of the built CLI's sources, with the package.json and node_modules it resolves.
    const dir = tmp();
    const cli = join(dir.path, 'dist', 'cli');
    mkdirSync(join(cli, 'commands'), { recursive: true });
    for (const f of ['main.js', 'usage.js', ...readdirSync(new URL('commands/', BUILT_CLI)).map((c) => `commands/${c}`)]) {
      copyFileSync(new URL(f, BUILT_CLI), join(cli, f));
    }
    copyFileSync(new URL('../../package.json', BUILT_CLI), join(dir.path, 'package.json'));
    symlinkSync(fileURLToPath(new URL('../../node_modules', BUILT_CLI)), join(dir.path, 'node_modules'));
    const cliDir = pathToFileURL(`${cli}/`);
    const built = new URL('help-text.json', BUILT_CLI);
    const at = (name: string, text?: string) => {
      const path = dir.file(name);
      if (text !== undefined) writeFileSync(path, text);
      return pathToFileURL(path);
    };
    // The same sources: the build's text is used.
    expect(prebuiltHelp(false, built, cliDir)).toBe(renderHelp(false));
    expect(prebuiltHelp(true, built, cliDir)).toBe(renderHelp(true));
    // A command rebuilt with another description (tsc alone, without the script): rendered instead.
    appendFileSync(join(cli, 'commands', 'run.js'), '\n// another description\n');
    expect(prebuiltHelp(false, built, cliDir)).toBeUndefined();
    // A text for these sources is used; another version of the package makes it stale again.
    const file = { sources: helpSourcesDigest(cliDir), plain: 'PLAIN', colored: 'COLORED' };
    expect(prebuiltHelp(false, at('same.json', JSON.stringify(file)), cliDir)).toBe('PLAIN');
    expect(prebuiltHelp(true, at('same.json', JSON.stringify(file)), cliDir)).toBe('COLORED');
    const pkg = JSON.parse(readFileSync(join(dir.path, 'package.json'), 'utf8')) as { version: string };
    writeFileSync(join(dir.path, 'package.json'), JSON.stringify({ ...pkg, version: `${version}-next` }));
    expect(prebuiltHelp(false, at('same.json', JSON.stringify(file)), cliDir)).toBeUndefined();
    expect(prebuiltHelp(false, at('missing.json'), cliDir)).toBeUndefined();
    expect(prebuiltHelp(false, at('torn.json', JSON.stringify(file).slice(0, 20)), cliDir)).toBeUndefined();
  });

  it('only the help alone takes the prebuilt text: a command’s help, or help with anything else, is rendered', async () => {
    expect(asksForHelpOnly([])).toBe(true);
    expect(asksForHelpOnly(['--help'])).toBe(true);
    expect(asksForHelpOnly(['-h'])).toBe(true);
    expect(asksForHelpOnly(['run', '--help'])).toBe(false);
    expect(asksForHelpOnly(['--help', '--json'])).toBe(false);
    expect(asksForHelpOnly(['--version'])).toBe(false);
    const run = await runCli(['run', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('$ datafix run');
    expect(run.stdout).not.toBe(renderHelp(false));
  });
});
