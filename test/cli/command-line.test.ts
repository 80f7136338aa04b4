/**
 * The command line as a person types it: help that names every option's value and shows what is
 * required, mistakes answered with what is wrong and what would work (one suggestion per
 * candidate), and `--json` answering every outcome with exactly one JSON object on stdout.
 */
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';
import { SYNC_FIX } from '../safety/support.js';

const tmp = useTempDirs();

/** Every command the overview lists (`datafix run …` lines), in order. */
async function commands(): Promise<string[]> {
  const r = await runCli(['--help']);
  expect(r.code, r.stderr).toBe(0);
  return [...r.stdout.matchAll(/^ {2}datafix ([a-z]+(?: [a-z]+)*)(?= |$)/gm)].map((m) => m[1] as string);
}

/** The one JSON object stdout must hold, parsed; fails when stdout is anything else. */
function onlyJson(stdout: string): Record<string, unknown> {
  const lines = stdout.split('\n').filter((l) => l !== '');
  expect(lines, stdout).toHaveLength(1);
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

describe('usage text', () => {
  it('names every option value (no #0), in the overview and in each command help', async () => {
    const overview = await runCli(['--help']);
    expect(overview.stdout).not.toContain('#0');
    expect(overview.stdout).toContain('datafix plan <--out PATH> [--env NAME] [--limit N] [--json] [--format FORMAT] <SPEC>');
    // Every option that takes a value names it; none falls back to the option's own name.
    expect(overview.stdout).toContain('[--diff-file PATH]');
    expect(overview.stdout).toContain('[--segment I] [--total-segments N]');
    // A list of paths is named as one, not clipanion's bare `...`.
    expect(overview.stdout).toContain('  datafix test [PATH ...]\n');
    expect(overview.stdout).toContain('  datafix validate [--format FORMAT] [PATH ...]\n');
    expect(overview.stdout).not.toMatch(/ \.\.\.$/m);
    const names = await commands();
    expect(names).toEqual(expect.arrayContaining(['apply', 'new', 'plan', 'run', 'undo', 'unlock', 'validate']));
    for (const name of names) {
      const help = await runCli([...name.split(' '), '--help']);
      expect(help.code, name).toBe(0);
      expect(help.stdout, name).not.toContain('#0');
      expect(help.stdout, name).not.toMatch(/ \.\.\.$/m);
    }
  });

  it('plan shows its required --out on the usage line and marks it in the option list', async () => {
    const r = await runCli(['plan', '--help']);
    expect(r.stdout).toContain('$ datafix plan --out PATH <SPEC>');
    expect(r.stdout).toMatch(/^ {2}--out PATH +\(required\) The plan file to write$/m);
    // The option list stays aligned: every description starts in one column.
    const columns = [...r.stdout.matchAll(/^ {2}(--\S+(?: [A-Z_]+)? +)\S/gm)].map((m) => (m[1] as string).length);
    expect(new Set(columns).size).toBe(1);
  });
});

describe('mistakes on the command line: exit 2, one line saying what is wrong and what works', () => {
  it('new NAME without --backend names the missing option and its values, and writes nothing', async () => {
    const dir = tmp();
    const r = await runCli(['new', 'orders-fix'], { cwd: dir.path });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error DF022: datafix new needs --backend BACKEND (sqlite or dynamodb). See datafix new --help\n');
    expect(r.stdout).toBe('');
    expect(readdirSync(dir.path)).toEqual([]);
  });

  it('plan without --out, and run without SPEC, name what is missing', async () => {
    const plan = await runCli(['plan', SYNC_FIX]);
    expect(plan.code).toBe(2);
    expect(plan.stderr).toBe('error DF022: datafix plan needs --out PATH (the plan file to write). See datafix plan --help\n');
    const run = await runCli(['run']);
    expect(run.stderr).toBe('error DF022: datafix run needs SPEC. See datafix run --help\n');
  });

  it('an unknown subcommand suggests the close ones, each once', async () => {
    const r = await runCli(['rn', 'fix.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error DF020: unknown command "rn"; did you mean datafix run? See datafix --help\n');
    const far = await runCli(['frobnicate']);
    expect(far.stderr).toBe('error DF020: unknown command "frobnicate". See datafix --help\n');
  });

  it('an unknown flag suggests the close options of its command, each once', async () => {
    const r = await runCli(['run', SYNC_FIX, '--limt', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error DF021: unknown option --limt for datafix run; did you mean --limit? See datafix run --help\n');
    // Before any command: clipanion listed -h and -v twice each here.
    const bare = await runCli(['--foo']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toBe('error DF021: unknown option --foo. See datafix --help\n');
    // After a path of a command that takes any number of them (validate, test).
    const afterPath = await runCli(['validate', 'fixes', '--formt', 'github']);
    expect(afterPath.code).toBe(2);
    expect(afterPath.stderr).toBe(
      'error DF021: unknown option --formt for datafix validate; did you mean --format? See datafix validate --help\n',
    );
    const test = await runCli(['test', 'fixes', '--limit', '3']);
    expect(test.stderr).toBe('error DF021: unknown option --limit for datafix test. See datafix test --help\n');
  });

  it('--limit -1 (and every other number option below its minimum) says the value must be ≥ its minimum', async () => {
    const cases: [string[], string][] = [
      [['run', SYNC_FIX, '--limit', '-1'], 'error DF023: --limit must be ≥ 1 (got -1). See datafix run --help\n'],
      [['run', SYNC_FIX, '--limit', '0'], 'error DF023: --limit must be ≥ 1 (got 0). See datafix run --help\n'],
      [['run', SYNC_FIX, '--concurrency', '-5'], 'error DF023: --concurrency must be ≥ 1 (got -5). See datafix run --help\n'],
      [
        ['run', SYNC_FIX, '--segment', '-1', '--total-segments', '2'],
        'error DF023: --segment must be ≥ 0 (got -1). See datafix run --help\n',
      ],
      [['plan', SYNC_FIX, '--out', 'p.jsonl', '--limit', '-2'], 'error DF023: --limit must be ≥ 1 (got -2). See datafix plan --help\n'],
      [['run', SYNC_FIX, '--limit', 'ten'], 'error DF023: --limit must be a number (got "ten"). See datafix run --help\n'],
      [['run', SYNC_FIX, '--limit'], 'error DF022: --limit needs a value: --limit N. See datafix run --help\n'],
    ];
    for (const [args, stderr] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toBe(stderr);
    }
  });

  it('an argument too many is named', async () => {
    const r = await runCli(['run', SYNC_FIX, 'extra.yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error DF024: datafix run takes SPEC; unexpected "extra.yaml". See datafix run --help\n');
  });
});

describe('--json: exactly one JSON object on stdout, whatever happens', () => {
  const noPlace = { file: null, line: null, col: null };

  it('a command-line mistake', async () => {
    const r = await runCli(['run', SYNC_FIX, '--json', '--limit', '0']);
    expect(r.code).toBe(2);
    expect(onlyJson(r.stdout)).toEqual({
      error: { code: 'DF023', message: '--limit must be ≥ 1 (got 0). See datafix run --help', ...noPlace },
    });
    // The person reading stderr still gets the line.
    expect(r.stderr).toBe('error DF023: --limit must be ≥ 1 (got 0). See datafix run --help\n');
  });

  it('a spec that does not exist, and one that is invalid, with the file, line and column', async () => {
    const dir = tmp();
    const missing = dir.file('missing.yaml');
    const r = await runCli(['run', missing, '--dry-run', '--json'], { cwd: dir.path });
    expect(r.code).toBe(2);
    expect(onlyJson(r.stdout)).toEqual({
      error: { code: 'DF007', message: 'cannot read spec: no such file; check the path', file: missing, line: 1, col: 1 },
    });
    const bad = dir.write('bad.yaml', 'name: x\ntarget:\n  sqlite: { path: a.db }\nsource: { as: row, table: t }\nupdate: 5\n');
    const invalid = await runCli(['run', bad, '--dry-run', '--json'], { cwd: dir.path });
    expect(invalid.code).toBe(2);
    const { error } = onlyJson(invalid.stdout) as { error: Record<string, unknown> };
    expect(error).toMatchObject({ file: bad, line: 5, col: 9 });
    expect(error.code).toMatch(/^DF1\d\d$/);
  });

  it('plan, apply and undo report their errors as one object too', async () => {
    const dir = tmp();
    const plan = await runCli(['plan', dir.file('nope.yaml'), '--out', dir.file('p.jsonl'), '--json'], { cwd: dir.path });
    expect(plan.code).toBe(2);
    expect(onlyJson(plan.stdout)).toMatchObject({ error: { code: 'DF007', file: dir.file('nope.yaml'), line: 1, col: 1 } });
    const notAPlan = dir.write('not-a-plan.jsonl', 'hello\n');
    const apply = await runCli(['apply', notAPlan, '--json'], { cwd: dir.path });
    expect(apply.code).toBe(2);
    expect(onlyJson(apply.stdout)).toMatchObject({ error: { code: expect.stringMatching(/^DF7\d\d$/), ...noPlace } });
    const undo = await runCli(['undo', notAPlan, '--json'], { cwd: dir.path });
    expect(undo.code).toBe(2);
    expect(onlyJson(undo.stdout)).toMatchObject({ error: { code: 'DF703', ...noPlace } });
    expect(existsSync(dir.file('.datafix'))).toBe(false);
  });
});
