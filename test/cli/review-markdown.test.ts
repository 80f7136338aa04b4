/**
 * Review in a pull request: `datafix plan --format markdown` prints a comment a reviewer can judge
 * the plan by (target without credentials, counts per outcome and reason, a bounded sample of
 * diffs per reason, the spec's checksum, how to apply), and `explain --format markdown` draws the
 * fix's path as a Mermaid flowchart. `explain` shows only the run settings of the fix's backend.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVeo3Database, type SampleRow } from '../../src/demo/sqlite-sample.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { createMediaTable, type RunningDynalite, seedItems, startDynalite } from '../helpers/dynalite.js';
import { i2vDataset, oracleCounts } from '../helpers/i2v-oracle.js';
import { useTempDirs } from '../helpers/tmp.js';
import { dynamoEnv, show } from '../safety/support.js';
import { query } from '../sqlite/fixtures.js';

const tmp = useTempDirs();
const SYNC_FIX = join(REPO_ROOT, 'fixes/sync-media-generation-ids.yaml');
const I2V_FIX = join(REPO_ROOT, 'fixes/i2v-thumbnails.yaml');

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** The lines of the fenced block that follows `heading` in `md`. */
function blockAfter(md: string, heading: string): string[] {
  const at = md.indexOf(`${heading}\n`);
  expect(at, `${heading} in\n${md}`).toBeGreaterThanOrEqual(0);
  const m = /```[a-z]*\n([\s\S]*?)\n```/.exec(md.slice(at));
  return (m?.[1] ?? '').split('\n');
}

describe('datafix plan --format markdown', () => {
  // Eight rows to fill (more than the sample shows), two with nothing to copy, one broken.
  const rows: SampleRow[] = [
    ...Array.from({ length: 8 }, (_, i) => ({
      id: `g${i}`,
      raw_response: JSON.stringify({ operations: [{ mediaGenerationId: `M${i}` }] }),
    })),
    { id: 's1', raw_response: JSON.stringify({ operations: [] }) },
    { id: 's2', raw_response: JSON.stringify({ operations: [{ status: 'FAILED' }] }) },
    { id: 'x1', raw_response: '{"operations": [' },
  ];

  it('SQLite: counts per outcome and reason, the first 5 diffs, every skipped and failed key, the checksum, and apply commands that work', async () => {
    const dir = tmp();
    const db = dir.file('app.db');
    createVeo3Database(db, rows);
    const out = 'review.plan.jsonl';
    const r = await runCli(['plan', SYNC_FIX, '--out', out, '--format', 'markdown'], { cwd: dir.path, env: { VEO3_DB_PATH: db } });
    // As its dry run: a record failed, so 1; the plan holds the rest.
    expect(r.code, show(r)).toBe(1);
    expect(existsSync(dir.file(out))).toBe(true);
    const md = r.stdout;
    expect(md.split('\n').slice(0, 16)).toEqual([
      '### datafix plan: `sync-media-generation-ids`',
      '',
      '| | |',
      '| --- | --- |',
      `| target | \`sqlite ${db}\` |`,
      `| spec | \`${SYNC_FIX}\`, sha256 \`${sha256(SYNC_FIX)}\` |`,
      `| plan file | \`${out}\` |`,
      '| records read | 11 |',
      '',
      '| outcome | reason | records |',
      '| --- | --- | ---: |',
      '| would update |  | 8 |',
      '| skipped | `no_media_generation_id` | 2 |',
      '| failed | `invalid_json` | 1 |',
      '',
      '#### would update — 8 records (first 5)',
    ]);
    const diff = blockAfter(md, '#### would update — 8 records (first 5)');
    expect(diff.filter((l) => l.startsWith('@@'))).toEqual(['@@ id=g0 @@', '@@ id=g1 @@', '@@ id=g2 @@', '@@ id=g3 @@', '@@ id=g4 @@']);
    expect(diff.slice(0, 4)).toEqual([
      '@@ id=g0 @@',
      '- media_generation_id: null',
      '+ media_generation_id: "M0"',
      '- updated_at: "2025-06-01T10:00:00.000Z"',
    ]);
    expect(diff[4]).toMatch(/^\+ updated_at: "20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z" \(touch\)$/);
    expect(blockAfter(md, '#### skipped: `no_media_generation_id` — 2 records')).toEqual(['id=s1', 'id=s2']);
    expect(blockAfter(md, '#### failed: `invalid_json` — 1 record')).toEqual(['id=x1: row.raw_response is not valid JSON']);
    const apply = blockAfter(md, '#### How to apply');
    expect(apply).toEqual([`datafix apply ${out} --dry-run`, `datafix apply ${out}`]);

    // The commands it gives work as written, and write what the plan showed.
    for (const line of apply) {
      const ran = await runCli(line.split(' ').slice(1), { cwd: dir.path, env: { VEO3_DB_PATH: db } });
      expect(ran.code, show(ran)).toBe(0);
    }
    expect(query(db, "SELECT id, media_generation_id FROM veo3_video_generations WHERE id LIKE 'g%' ORDER BY id")).toEqual(
      Array.from({ length: 8 }, (_, i) => ({ id: `g${i}`, media_generation_id: `M${i}` })),
    );
    // The text summary still goes to a person, on stderr.
    expect(r.stderr).toContain(`plan written to ${out}: 8 change(s). Apply with: datafix apply ${out}`);
  });

  it('--json together with --format markdown is a usage error (DF735): both would print on stdout', async () => {
    const dir = tmp();
    const db = dir.file('app.db');
    createVeo3Database(db, rows);
    const r = await runCli(['plan', SYNC_FIX, '--out', 'p.jsonl', '--format', 'markdown', '--json'], {
      cwd: dir.path,
      env: { VEO3_DB_PATH: db },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error DF735: --json and --format markdown both print on stdout; choose one');
    expect(existsSync(dir.file('p.jsonl'))).toBe(false);
  });

  describe('DynamoDB', () => {
    let dynamo: RunningDynalite;
    beforeAll(async () => {
      dynamo = await startDynalite();
    });
    afterAll(async () => {
      await dynamo?.stop();
    });

    it('names the target without the credentials in its endpoint URL, and counts what the oracle expects', async () => {
      const items = i2vDataset(40);
      const expected = oracleCounts(items);
      await createMediaTable(dynamo.endpoint, 'review');
      await seedItems(dynamo.endpoint, 'review', items);
      const url = new URL(dynamo.endpoint);
      url.username = 'ops-USER';
      url.password = 'pa55-SECRET';
      url.search = '?token=tok-SECRET';
      const dir = tmp();
      const r = await runCli(['plan', I2V_FIX, '--out', 'i2v.plan.jsonl', '--format', 'markdown'], {
        cwd: dir.path,
        env: dynamoEnv('review', url.toString()),
      });
      expect(r.code, show(r)).toBe(0);
      for (const secret of ['ops-USER', 'pa55-SECRET', 'tok-SECRET']) expect(r.stdout + r.stderr).not.toContain(secret);
      expect(r.stdout).toContain(`| target | \`dynamodb review (${dynamo.endpoint})\` |`);
      expect(r.stdout).toContain(`| records read | ${expected.total} |`);
      expect(r.stdout).toContain(`| would update |  | ${expected.updated} |`);
      const reasonRows = [...r.stdout.matchAll(/^\| skipped \| `([a-z0-9_]+)` \| (\d+) \|$/gm)].map((m) => [m[1], Number(m[2])]);
      expect(Object.fromEntries(reasonRows)).toEqual(expected.reasons);
      // At most five records are shown per reason, however many there are.
      for (const [reason, n] of Object.entries(expected.reasons)) {
        const shown = blockAfter(r.stdout, `#### skipped: \`${reason}\` — ${n} record${n === 1 ? '' : 's'}${n > 5 ? ' (first 5)' : ''}`);
        expect(shown).toHaveLength(Math.min(n, 5));
      }
    });
  });
});

describe('datafix explain --format markdown: the path as a Mermaid flowchart', () => {
  it('i2v-thumbnails: source, then each lookup and skip rule in the order the engine runs them, then the write', async () => {
    const r = await runCli(['explain', 'fixes/i2v-thumbnails.yaml']);
    expect(r.code, r.stderr).toBe(0);
    const mermaid = /^## Path\n\n```mermaid\n([\s\S]*?)\n```$/m.exec(r.stdout)?.[1]?.split('\n');
    // Written out from the spec: the first rule reads only the video, so it runs before any lookup.
    expect(mermaid).toEqual([
      'flowchart TD',
      '  source[/"Query index GSI8 where GSI8PK = MEDIA_BY_TYPE_AND_CREATOR, as video"/]',
      '  step1{"already_has_thumbnails?"}',
      '  step1skip(["skipped: already_has_thumbnails"])',
      '  step2["Lookup job: PK = I2VJOB#35;{{ video.id }}, SK = METADATA"]',
      '  step3{"no_i2v_job_found?"}',
      '  step3skip(["skipped: no_i2v_job_found"])',
      '  step4["Lookup source: PK = MEDIA#35;{{ job.mediaId }}, SK = METADATA"]',
      '  step5{"source_media_not_found?"}',
      '  step5skip(["skipped: source_media_not_found"])',
      '  step6{"source_has_no_thumbnails?"}',
      '  step6skip(["skipped: source_has_no_thumbnails"])',
      '  write[["Conditional update of the target table: fill thumbnailUrl, thumbnailUrls; touch updatedAt"]]',
      '  source --> step1',
      '  step1 -- yes --> step1skip',
      '  step1 -- no --> step2',
      '  step2 --> step3',
      '  step3 -- yes --> step3skip',
      '  step3 -- no --> step4',
      '  step4 --> step5',
      '  step5 -- yes --> step5skip',
      '  step5 -- no --> step6',
      '  step6 -- yes --> step6skip',
      '  step6 -- no --> write',
    ]);
    const text = await runCli(['explain', 'fixes/i2v-thumbnails.yaml', '--format', 'text']);
    expect(text.stdout).not.toContain('mermaid');
  });

  it('a label holding Mermaid or HTML syntax is written as entity codes, so it cannot end the label', async () => {
    const dir = tmp();
    const spec = dir.write(
      'weird.yaml',
      [
        'name: weird',
        'target: { sqlite: { path: /nonexistent/x.db } }',
        'source: { as: row, table: items }',
        'lookups:',
        `  other: { table: others, get: { id: 'a"]<b>&#1;\`{{ row.ref }}' } }`,
        'skip:',
        '  - reason: no_other',
        '    when: { missing: other }',
        'update:',
        '  key: { id: "{{ row.id }}" }',
        '  set: { note: "{{ other.note }}" }',
        '',
      ].join('\n'),
    );
    const r = await runCli(['explain', spec]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('  step1["Lookup other: id = a#quot;]#lt;b#gt;#38;#35;1;#96;{{ row.ref }} in others"]\n');
  });
});

describe('datafix explain shows only the run settings of its backend', () => {
  it('SQLite: batchSize and pageSize, no concurrency; DynamoDB: concurrency and pageSize, no batchSize', async () => {
    for (const format of ['markdown', 'text']) {
      const sqlite = await runCli(['explain', 'fixes/sync-media-generation-ids.yaml', '--format', format]);
      const settings = sqlite.stdout.slice(sqlite.stdout.indexOf('Run settings'));
      expect(settings).toContain('batchSize 1000 rows per transaction');
      expect(settings).toContain('pageSize');
      expect(sqlite.stdout).not.toContain('concurrency');
      const dynamo = await runCli(['explain', 'fixes/i2v-thumbnails.yaml', '--format', format]);
      expect(dynamo.stdout).toContain('concurrency 10 (');
      expect(dynamo.stdout).toContain('writes in flight at once');
      expect(dynamo.stdout).not.toContain('batchSize');
    }
  });
});

describe('datafix explain never prints credentials', () => {
  it('a literal endpoint holding a user, a password and a token is shown without them, in text and markdown', async () => {
    const dir = tmp();
    const spec = dir.write(
      'creds.yaml',
      readFileSync(join(REPO_ROOT, 'fixes/i2v-thumbnails.yaml'), 'utf8').replace(
        'endpoint: ${LOCAL_AWS_ENDPOINT:-}',
        'endpoint: "http://admin:hunter2secret@127.0.0.1:8765/?token=tok3nSECRET"',
      ),
    );
    for (const format of ['markdown', 'text']) {
      const r = await runCli(['explain', spec, '--format', format]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('127.0.0.1:8765');
      expect(r.stdout).not.toMatch(/hunter2|tok3n|admin/);
      // A literal endpoint is never empty: no note about the AWS default.
      expect(r.stdout).not.toContain('when empty');
    }
  });
});
