/**
 * Loading a spec: YAML is parsed in its safest form and every refusal is reported as a
 * diagnostic with the exact line:col a person would jump to. Schema problems are reported by
 * compileSpec in the same form.
 */
import { describe, expect, it } from 'vitest';
import { DatafixError, type Diagnostic, formatDiagnostic } from '../../src/errors.js';
import { compileSpec } from '../../src/language/compile.js';
import { loadSpecFile, loadSpecText, MAX_SPEC_BYTES, MAX_SPEC_DEPTH } from '../../src/language/load.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

/** Runs `fn`, expects a DatafixError, and returns it. */
function refusal(fn: () => unknown): DatafixError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DatafixError);
    return err as DatafixError;
  }
  throw new Error('expected the spec to be refused, but it was accepted');
}

function loadDiags(text: string): readonly Diagnostic[] {
  const err = refusal(() => loadSpecText(text, 'fix.yaml'));
  expect(err.category).toBe('spec');
  expect(err.diagnostics.length).toBeGreaterThan(0);
  return err.diagnostics;
}

function compileDiags(text: string): readonly Diagnostic[] {
  const err = refusal(() => compileSpec(loadSpecText(text, 'fix.yaml'), { env: {} }));
  expect(err.category).toBe('spec');
  return err.diagnostics;
}

/** The one diagnostic with `code`, with its position. */
function only(diags: readonly Diagnostic[], code: string): Diagnostic {
  const found = diags.filter((d) => d.code === code);
  expect(found, `diagnostics: ${JSON.stringify(diags)}`).toHaveLength(1);
  return found[0] as Diagnostic;
}

// Line numbers below are counted in this text; keep it in sync with the expectations.
const VALID = [
  'name: sync-ids', // 1
  'target:', // 2
  '  sqlite:', // 3
  '    path: /tmp/does-not-matter.db', // 4
  'source:', // 5
  '  as: row', // 6
  '  table: items', // 7
  '  where: { isNull: note }', // 8
  'update:', // 9
  '  key: { id: "{{ row.id }}" }', // 10
  '  set:', // 11
  '    note: "{{ row.src }}"', // 12
  '',
].join('\n');

describe('a valid spec', () => {
  it('loads into plain data with a checksum of its bytes and compiles', () => {
    const spec = loadSpecText(VALID, 'fix.yaml');
    expect(spec.data).toMatchObject({ name: 'sync-ids', source: { as: 'row', table: 'items' } });
    expect(spec.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(loadSpecText(`${VALID}\n`, 'fix.yaml').checksum).not.toBe(spec.checksum);
    const plan = compileSpec(spec, { env: {} });
    expect(plan.fix).toBe('sync-ids');
  });
});

describe('YAML refusals, with line:col', () => {
  it('a syntax error (tab indentation) points at the offending line', () => {
    const d = only(loadDiags('name: t\nsource:\n\tas: row\n'), 'DF001');
    expect(d).toMatchObject({ file: 'fix.yaml', line: 3, col: 1 });
    expect(d.message).toMatch(/tab/i);
  });

  it('a syntax error (unterminated quote) is an error, not a silently truncated value', () => {
    const diags = loadDiags('name: t\ndescription: "never closed\nsource:\n  as: row\n');
    expect(diags.every((d) => d.code === 'DF001')).toBe(true);
    expect(diags[0]?.message).toMatch(/quote/i);
  });

  it('a duplicate key is reported at the second occurrence', () => {
    const d = only(loadDiags('name: first\ndescription: x\nname: second\n'), 'DF001');
    expect(d).toMatchObject({ line: 3, col: 1 });
    expect(d.message).toMatch(/unique/i);
  });

  it('a duplicate key nested in a map is reported at its own line and column', () => {
    const d = only(loadDiags('update:\n  set:\n    a: 1\n    a: 2\n'), 'DF001');
    expect(d).toMatchObject({ line: 4, col: 5 });
  });

  it('an unknown tag such as !js/function is an error at the tag', () => {
    const d = only(loadDiags('name: t\ndescription: !js/function "function () { return 1 }"\n'), 'DF002');
    expect(d).toMatchObject({ line: 2, col: 14 });
    expect(d.message).toContain('!js/function');
  });

  it('the %YAML 1.1 directive is refused', () => {
    const d = only(loadDiags('%YAML 1.1\n---\nname: t\n'), 'DF005');
    expect(d).toMatchObject({ line: 1, col: 1 });
    expect(d.message).toContain('1.1');
  });

  it.each([
    ['zip: 01234', '01234 is read as the number 1234; quote it ("01234") if it is text, or write 1234'],
    ['version: 1.10', '1.10 is read as the number 1.1'],
    ['code: 0x1F', '0x1F is read as the number 31'],
    ['n: 1e3', '1e3 is read as the number 1000'],
    ['flag: TRUE', 'TRUE is read as the boolean true'],
    ['note: ~', '~ is read as null'],
    ['note: NULL', 'NULL is read as null'],
    ['list: [a, 007]', '007 is read as the number 7'],
  ])('a plain scalar YAML reads as something else than its text (%s) is DF009 at its position', (line, message) => {
    const d = only(loadDiags(`name: t\n${line}\n`), 'DF009');
    expect(d.message).toContain(message);
    expect(d.line).toBe(2);
  });

  it('plain scalars that read as written, and quoted ones, are fine', () => {
    expect(loadSpecText('name: t\na: 10\nb: 1.5\nc: true\nd: null\ne: "01234"\nf: -3\n', 'fix.yaml').data).toMatchObject({
      a: 10,
      e: '01234',
    });
  });

  it('the %YAML 1.2 directive is accepted', () => {
    expect(loadSpecText('%YAML 1.2\n---\nname: t\n', 'fix.yaml').data).toEqual({ name: 't' });
  });

  it('an alias *x is refused where it is used', () => {
    const d = only(loadDiags('description: &x hello\nname: *x\n'), 'DF003');
    expect(d).toMatchObject({ line: 2, col: 7 });
    expect(d.message).toContain('*x');
  });

  it('a merge key << is refused at the key, in block and flow style', () => {
    expect(only(loadDiags('base: { a: 1 }\nother:\n  <<: { b: 2 }\n'), 'DF004')).toMatchObject({ line: 3, col: 3 });
    expect(only(loadDiags('base: { a: 1 }\nother: { <<: { b: 2 } }\n'), 'DF004')).toMatchObject({ line: 2, col: 10 });
  });

  it.each([
    ['__proto__', 'name: t\n__proto__: { polluted: true }\n', 2, 1],
    ['constructor', 'name: t\nupdate:\n  set:\n    constructor: 1\n', 4, 5],
    ['prototype', 'name: t\nskip:\n  - prototype: 1\n', 3, 5],
    ['quoted "__proto__"', 'name: t\nlookups:\n  "__proto__": {}\n', 3, 3],
  ])('the key %s is refused at its position', (key, text, line, col) => {
    const d = only(loadDiags(text), 'DF004');
    expect(d).toMatchObject({ line, col });
    expect(d.message).toContain(key.replace(/^quoted "|"$/g, ''));
    // And nothing was polluted while trying.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it(`nesting of ${MAX_SPEC_DEPTH} levels loads; one more level is refused at the deepest node`, () => {
    const nest = (n: number) => `a: ${'['.repeat(n)}${']'.repeat(n)}\n`;
    expect(() => loadSpecText(nest(MAX_SPEC_DEPTH), 'fix.yaml')).not.toThrow();
    const d = only(loadDiags(nest(MAX_SPEC_DEPTH + 1)), 'DF006');
    // `a: ` is 3 columns; the 65th `[` is at column 3 + 65.
    expect(d).toMatchObject({ line: 1, col: 3 + MAX_SPEC_DEPTH + 1 });
    expect(d.message).toContain(String(MAX_SPEC_DEPTH));
  });

  it('nesting deep enough to overflow the parser is refused as a spec error, not a crash', () => {
    const err = refusal(() => loadSpecText(`a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, 'fix.yaml'));
    expect(err.category).toBe('spec');
    expect(err.diagnostics.map((d) => [d.code, d.message])).toEqual([['DF006', `spec is nested more than ${MAX_SPEC_DEPTH} levels deep`]]);
  });

  it(`a spec over ${MAX_SPEC_BYTES} bytes (1 MiB) is refused before parsing; exactly 1 MiB is read`, () => {
    const head = 'description: "';
    const exact = `${head}${'x'.repeat(MAX_SPEC_BYTES - head.length - 2)}"\n`;
    expect(Buffer.byteLength(exact)).toBe(1024 * 1024);
    expect(() => loadSpecText(exact, 'fix.yaml')).not.toThrow();
    const over = `${exact}#\n`;
    const d = only(loadDiags(over), 'DF006');
    expect(d).toMatchObject({ line: 1, col: 1 });
    expect(d.message).toContain(String(MAX_SPEC_BYTES));
  });

  it('the size limit counts bytes, not characters, when read from a file', () => {
    const dir = tmp();
    // 400k three-byte characters: 1.2 MB in UTF-8 but only 400k characters.
    const file = dir.write('big.yaml', `description: "${'€'.repeat(400_000)}"\n`);
    const err = refusal(() => loadSpecFile(file));
    expect(err.diagnostics[0]?.code).toBe('DF006');
  });

  it('a missing spec file is a usage error naming the file', () => {
    const dir = tmp();
    const err = refusal(() => loadSpecFile(dir.file('nope.yaml')));
    expect(err.category).toBe('usage');
    expect(err.code).toBe('DF007');
    expect(err.message).toContain('nope.yaml');
    expect(err.message).toContain('no such file');
  });

  it('every diagnostic prints as file:line:col CODE message', () => {
    const d = only(loadDiags('name: first\nname: second\n'), 'DF001');
    expect(formatDiagnostic(d)).toMatch(/^fix\.yaml:2:1 DF001 /);
  });

  // Specs are plain YAML 1.2 (docs/spec.md, "Refused for safety"): the YAML 1.1 tags would turn
  // values into Date/Set/Buffer/Map objects that templates treat as plain objects.
  it.each([
    ['!!timestamp', 'description: !!timestamp 2020-01-01\n'],
    ['!!set', 'description: !!set { a, b }\n'],
    ['!!binary', 'description: !!binary aGVsbG8=\n'],
    ['!!omap', 'description: !!omap [ a: 1 ]\n'],
  ])('the YAML 1.1 tag %s is refused like any other non-core tag', (_tag, text) => {
    loadDiags(text);
  });
});

describe('schema errors through compileSpec, with line:col', () => {
  it('an unknown key appended at the end is reported as `unknown key` at its line, column 1', () => {
    const text = `${VALID}bogusKey: 1\n`;
    const d = only(compileDiags(text), 'DF101');
    expect(d.message).toContain('unknown key `bogusKey`');
    expect(d).toMatchObject({ file: 'fix.yaml', line: 13, col: 1, path: '/bogusKey' });
  });

  it('an unknown nested key is reported at the key, with the keys that are allowed there', () => {
    const text = VALID.replace('  table: items\n', '  table: items\n  tabel: other\n');
    const d = only(compileDiags(text), 'DF101');
    expect(d.message).toContain('unknown key `tabel`');
    expect(d.message).toContain('table');
    expect(d).toMatchObject({ line: 8, col: 3 });
  });

  it('a wrong type (name: 5) says "expected a string" at the value', () => {
    const d = only(compileDiags(VALID.replace('name: sync-ids', 'name: 5')), 'DF102');
    expect(d.message).toContain('expected a string');
    expect(d).toMatchObject({ line: 1, col: 7, path: '/name' });
  });

  it('a missing required key (update) is named', () => {
    const text = VALID.split('update:')[0] as string;
    const d = only(compileDiags(text), 'DF103');
    expect(d.message).toContain('missing required key `update`');
  });

  it('a condition with two operators is refused at the condition', () => {
    const text = VALID.replace('where: { isNull: note }', 'where: { isNull: note, notNull: src }');
    const d = only(compileDiags(text), 'DF106');
    expect(d.message).toMatch(/exactly one of: .*exists.*missing/);
    expect(d.message).toContain('found 2');
    expect(d).toMatchObject({ line: 8, col: 10 });
  });

  it('a skip reason that is not snake_case is refused', () => {
    const text = `${VALID}skip:\n  - reason: Not-Snake\n    when: { exists: row.x }\n`;
    const diags = compileDiags(text);
    expect(diags.some((d) => d.line === 14 && d.path?.startsWith('/skip/0/reason'))).toBe(true);
  });

  it('diagnostics come sorted by position, all of them at once', () => {
    const text = `${VALID.replace('name: sync-ids', 'name: 5')}bogusKey: 1\n`;
    const diags = compileDiags(text);
    expect(diags.map((d) => d.code)).toEqual(['DF102', 'DF101']);
    expect(diags.map((d) => d.line)).toEqual([1, 13]);
  });
});
