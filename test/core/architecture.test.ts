/**
 * The import rules that keep the engine generic: the fix language and the engine know no backend and no UI;
 * adapters know no engine, language or CLI; listr2 is drawn by one module only; Ctrl-C is handled by
 * the commands alone.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every module a file imports, statically or with import(). */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
}

function offending(dir: string, forbidden: RegExp): string[] {
  return files(join(SRC, dir)).flatMap((f) =>
    imports(f)
      .filter((i) => forbidden.test(i))
      .map((i) => `${relative(SRC, f)} imports ${i}`),
  );
}

describe('architecture', () => {
  const backendOrUi = /^(better-sqlite3|@aws-sdk\/|dynalite|listr2|clipanion|typanion)|adapters\/(sqlite|dynamodb)|\/cli\//;

  it('language, plan and engine import no backend, CLI or terminal-UI package', () => {
    expect(files(join(SRC, 'engine')).length).toBeGreaterThan(2);
    expect([...offending('language', backendOrUi), ...offending('plan', backendOrUi), ...offending('engine', backendOrUi)]).toEqual([]);
  });

  it('adapters import no engine, language or CLI module', () => {
    expect(offending('adapters', /\/(engine|language|cli)\//)).toEqual([]);
  });

  it('listr2 is imported by the task-list module only', () => {
    const users = files(SRC).filter((f) => imports(f).some((i) => i === 'listr2'));
    expect(users.map((f) => relative(SRC, f))).toEqual(['cli/task-list.ts']);
  });

  // listr2's own SIGINT handler exits 127 at once: on by default, it is off for every list.
  it("every listr2 task list is made without listr2's SIGINT handler", () => {
    const text = readFileSync(join(SRC, 'cli/task-list.ts'), 'utf8');
    const lists = text.match(/new Listr\(/g) ?? [];
    expect(lists.length).toBeGreaterThan(0);
    expect(text.match(/registerSignalListeners: false,/g) ?? []).toHaveLength(lists.length);
  });

  // A second SIGINT listener (a terminal UI library's own, exiting 127) once made Ctrl-C in a
  // terminal skip the checkpoint, the summary and the lock's release.
  it('only CLI commands listen for SIGINT; no library, display or engine module does', () => {
    // A file that adds a process listener and names SIGINT, or the stop signals (SIGINT, SIGTERM,
    // SIGHUP) by their shared list; readline's own 'SIGINT' event at a prompt is Ctrl-C read as a key.
    const listeners = files(SRC).filter((f) => {
      const text = readFileSync(f, 'utf8');
      return /['"]SIGINT['"]|STOP_SIGNALS/.test(text) && /process\.(on|once|addListener|prependListener)\(/.test(text);
    });
    // cli/exit.ts and cli/stop.ts: the commands' shared ways to stop on a signal; cli/early-stop.ts:
    // the entry's handler from the first moment, until a command takes over.
    const shared = ['cli/exit.ts', 'cli/stop.ts', 'cli/early-stop.ts'];
    expect(listeners.map((f) => relative(SRC, f)).filter((f) => !f.startsWith('cli/commands/') && !shared.includes(f))).toEqual([]);
    expect(listeners.map((f) => relative(SRC, f))).toEqual(
      expect.arrayContaining(['cli/commands/run.ts', 'cli/stop.ts', 'cli/early-stop.ts']),
    );
  });
});
