/**
 * The top-level help is printed from a text rendered at build time: it must be exactly what the
 * CLI itself renders, for this version, and a missing or stale text must fall back to rendering.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { asksForHelpOnly, type HelpTextFile, prebuiltHelp } from '../../src/cli/help-text.js';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();
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

  it('the build’s text is the CLI’s own rendering, plain and in colour, for this version', () => {
    const file = JSON.parse(readFileSync(new URL('../../dist/cli/help-text.json', import.meta.url), 'utf8')) as HelpTextFile;
    expect(file.version).toBe(version);
    expect(file.plain).toBe(renderHelp(false));
    expect(file.colored).toBe(renderHelp(true));
    expect(file.colored).not.toBe(file.plain);
  });

  it('a text made for another version, or none, or one that is not JSON, is not used', () => {
    const dir = tmp();
    const at = (name: string, text?: string) => {
      const path = dir.file(name);
      if (text !== undefined) writeFileSync(path, text);
      return pathToFileURL(path);
    };
    const file = (v: string) => JSON.stringify({ version: v, plain: 'PLAIN', colored: 'COLORED' });
    expect(prebuiltHelp(false, at('same.json', file(version)))).toBe('PLAIN');
    expect(prebuiltHelp(true, at('same.json', file(version)))).toBe('COLORED');
    expect(prebuiltHelp(false, at('other.json', file(`${version}-other`)))).toBeUndefined();
    expect(prebuiltHelp(false, at('missing.json'))).toBeUndefined();
    expect(prebuiltHelp(false, at('torn.json', file(version).slice(0, 20)))).toBeUndefined();
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
