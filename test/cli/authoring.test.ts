/** Authoring and review commands as a fix author and a reviewer use them. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();
const fixes = join(REPO_ROOT, 'fixes');

describe('datafix explain', () => {
  it('names the index, every skip reason and every written field, deterministically', async () => {
    const a = await runCli(['explain', 'fixes/i2v-thumbnails.yaml']);
    expect(a.code, a.stderr).toBe(0);
    for (const needle of [
      'index `GSI8`',
      '`GSI8PK` = `MEDIA_BY_TYPE_AND_CREATOR`',
      '`GSI8SK` begins with `video#`',
      'newest first',
      '`already_has_thumbnails`',
      '`no_i2v_job_found`',
      '`source_media_not_found`',
      '`source_has_no_thumbnails`',
      '`thumbnailUrl` ← `{{ source.thumbnailUrl }}` (fill-only',
      '`thumbnailUrls` ← `{{ source.thumbnailUrls }}` (fill-only',
      '`updatedAt` ← `{{ now }}` (touch',
      '`job`: the record with `PK` = `I2VJOB#{{ video.id }}`',
      'concurrency 10 (`${I2V_BACKFILL_CONCURRENCY:-10}`)',
    ]) {
      expect(a.stdout).toContain(needle);
    }
    const b = await runCli(['explain', 'fixes/i2v-thumbnails.yaml']);
    expect(b.stdout).toBe(a.stdout);
    const text = await runCli(['explain', 'fixes/sync-media-generation-ids.yaml', '--format', 'text']);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('no_media_generation_id when mediaGenerationId is missing');
    expect(text.stdout).not.toContain('`');
  });
});

describe('datafix validate', () => {
  it('every shipped fix validates and starts with the yaml-language-server line', async () => {
    const specs = readdirSync(fixes).filter((f) => f.endsWith('.yaml'));
    expect(specs.length).toBeGreaterThanOrEqual(6);
    for (const f of specs) {
      expect(readFileSync(join(fixes, f), 'utf8').split('\n')[0], f).toMatch(
        /^# yaml-language-server: \$schema=\.\.\/schemas\/fix(-test)?\.schema\.json$/,
      );
    }
    const r = await runCli(['validate', 'fixes']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('reports broken YAML and schema errors as file:line:col, also as GitHub annotations', async () => {
    const dir = tmp();
    const broken = dir.write('broken.yaml', 'name: x\ntarget:\n  sqlite: { path: a.db\nsource: []\n');
    const schemaErr = dir.write(
      'schema.yaml',
      'name: x\ntarget: { sqlite: { path: a.db } }\nsource: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { c: 5 }\n  bogus: true\n',
    );
    const r = await runCli(['validate', broken, schemaErr]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+ DF001 YAML syntax error`));
    expect(r.stderr).toContain(`${schemaErr}:7:3 DF101 /update/bogus: unknown key \`bogus\``);
    const gh = await runCli(['validate', broken, schemaErr, '--format', 'github']);
    expect(gh.code).toBe(2);
    expect(gh.stdout).toMatch(/^::error file=.*broken\.yaml,line=\d+,col=\d+,title=datafix DF001::YAML syntax error/m);
    expect(gh.stdout).toContain(`::error file=${schemaErr},line=7,col=3,title=datafix DF101::/update/bogus: unknown key \`bogus\``);
  });

  it('checks fix test files as test files, with their own schema and the fix they name, by name or in a directory', async () => {
    const dir = tmp();
    const spec = dir.write('fix.yaml', readFileSync(join(fixes, 'sync-video-urls.yaml'), 'utf8'));
    const good = dir.write('fix.test.yaml', readFileSync(join(fixes, 'sync-video-urls.test.yaml'), 'utf8'));
    const bad = dir.write('bad.test.yaml', 'fix: fix.yaml\ncases:\n  - name: one\n    given: {}\n    expect: {}\n    bogus: 1\n');
    const orphan = dir.write('orphan.test.yaml', 'cases:\n  - name: one\n    given: {}\n    expect: {}\n');
    const named = await runCli(['validate', spec, good]);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toBe(`ok ${spec}\nok ${good}\n`);
    const all = await runCli(['validate', dir.path]);
    expect(all.code).toBe(2);
    expect(all.stdout).toBe(`ok ${good}\nok ${spec}\n`);
    expect(all.stderr).toContain(`${bad}:6:5 DF501 /cases/0/bogus: unknown key \`bogus\``);
    // A test file is never read as a spec: no "missing required key `target`".
    expect(all.stderr).not.toContain('DF103');
    expect(all.stderr).toContain(`${dir.file('orphan.yaml')}:1:1 DF007 cannot read spec`);
    expect(all.stderr).toContain('2 of 4 file(s) invalid');
    expect(orphan).toBe(dir.file('orphan.test.yaml'));
  });
});

describe('datafix new', () => {
  // The cases each scaffolded test file holds.
  const cases = { sqlite: 2, dynamodb: 3 } as const;
  for (const backend of ['sqlite', 'dynamodb'] as const) {
    it(`scaffolds a ${backend} fix and test that validate and pass`, async () => {
      const dir = tmp();
      const made = await runCli(['new', `my-${backend}-fix`, '--backend', backend, '--dir', dir.path]);
      expect(made.code, made.stderr).toBe(0);
      const spec = readFileSync(join(dir.path, `my-${backend}-fix.yaml`), 'utf8');
      expect(spec.split('\n')[0]).toMatch(/^# yaml-language-server: \$schema=.*schemas\/fix\.schema\.json$/);
      expect((await runCli(['validate', dir.path])).code).toBe(0);
      const tested = await runCli(['test', dir.path]);
      expect(tested.code, tested.stdout + tested.stderr).toBe(0);
      expect(tested.stdout).toMatch(new RegExp(`^${cases[backend]} passed, 0 failed$`, 'm'));
      const again = await runCli(['new', `my-${backend}-fix`, '--backend', backend, '--dir', dir.path]);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain('already exists');
    });
  }
});

describe('datafix schema', () => {
  it('prints the JSON Schema that validates specs', async () => {
    const r = await runCli(['schema']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/fix.schema.json'), 'utf8')));
  });
});

describe('fix test file schema', () => {
  const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'schemas/fix-test.schema.json'), 'utf8'));
  const doc = readFileSync(join(REPO_ROOT, 'docs/testing.md'), 'utf8');
  const props: [string, Record<string, unknown>][] = [];
  const walk = (node: unknown, path: string): void => {
    if (!node || typeof node !== 'object') return;
    const n = node as Record<string, unknown>;
    for (const [name, sub] of Object.entries((n.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      props.push([`${path}/${name}`, sub]);
      walk(sub, `${path}/${name}`);
    }
    for (const key of ['items', 'additionalProperties', '$defs']) {
      const v = n[key];
      if (key === '$defs' && v) for (const [k, d] of Object.entries(v)) walk(d, `${path}/$defs/${k}`);
      else walk(v, `${path}/${key}`);
    }
  };
  walk(schema, '');

  it('describes every property, and docs/testing.md documents each', () => {
    expect(props.length).toBeGreaterThan(10);
    const undocumented = props.filter(([, s]) => typeof s.description !== 'string' || s.description === '').map(([p]) => p);
    expect(undocumented).toEqual([]);
    const missing = [...new Set(props.map(([p]) => p.split('/').pop() as string))].filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('a broken test file is refused with file:line:col', async () => {
    const dir = tmp();
    writeFileSync(join(dir.path, 'x.yaml'), readFileSync(join(fixes, 'sync-video-urls.yaml')));
    dir.write('x.test.yaml', 'cases:\n  - name: a\n    given: {}\n    expect: { summary: { updated: many } }\n');
    const r = await runCli(['test', dir.path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/x\.test\.yaml:4:\d+ DF502 .*updated: expected an integer/);
  });
});
