/** `datafix test`: the shipped fixes pass their own cases, and a broken expectation fails with a diff. */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

function copyFix(dir: string, name: string): string {
  copyFileSync(join(REPO_ROOT, 'fixes', `${name}.yaml`), join(dir, `${name}.yaml`));
  const test = join(dir, `${name}.test.yaml`);
  copyFileSync(join(REPO_ROOT, 'fixes', `${name}.test.yaml`), test);
  return test;
}

describe('datafix test', () => {
  it('passes every case of the shipped fixes', async () => {
    const r = await runCli(['test', 'fixes']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^(\d+) passed, 0 failed$/m);
    expect(Number(/^(\d+) passed/m.exec(r.stdout)?.[1])).toBeGreaterThanOrEqual(15);
    expect(r.stdout).not.toContain('✗');
  });

  it('fails a broken expectation on SQLite with a readable diff, exit 1', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'sync-media-generation-ids');
    writeFileSync(test, readFileSync(test, 'utf8').replace('media_generation_id: MG-A1,', 'media_generation_id: MG-WRONG,'));
    const r = await runCli(['test', dir.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('✗ direct shape, top-level mediaGenerationId is copied');
    expect(r.stdout).toContain('veo3_video_generations id=a1: media_generation_id: expected "MG-WRONG", got "MG-A1"');
    expect(r.stdout).toMatch(/^\d+ passed, 1 failed$/m);
  });

  it('fails a case whose given table the fix never reads (a typo), on SQLite as on DynamoDB', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'sync-media-generation-ids');
    const text = readFileSync(test, 'utf8');
    // The first case's table misspelled: the fix would read an empty table and the case pass.
    writeFileSync(test, text.replace('    given:\n      veo3_video_generations:', '    given:\n      veo3_video_generationz:'));
    const r = await runCli(['test', dir.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'DF505 given.veo3_video_generationz: the fix reads or writes no such table (it uses veo3_video_generations)',
    );
    expect(r.stdout).toMatch(/^\d+ passed, 1 failed$/m);
  });

  it('tells NULL from absent: null expects a NULL, { $absent: true } a field that is not there', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'i2v-thumbnails');
    const text = readFileSync(test, 'utf8');
    expect(text).toContain('thumbnailUrls: { $absent: true }');
    writeFileSync(test, text.replace('thumbnailUrls: { $absent: true }', 'thumbnailUrls: null'));
    const r = await runCli(['test', dir.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('PK=MEDIA#p1 SK=METADATA: thumbnailUrls: expected null, got (absent)');
    expect(r.stdout).toMatch(/^\d+ passed, 1 failed$/m);
  });

  it('fails a broken expectation on DynamoDB, and catches a write the case did not expect', async () => {
    const dir = tmp();
    const test = copyFix(dir.path, 'i2v-thumbnails');
    // Claim the partial-fill video keeps no thumbnailUrls, and stop listing the fully copied one.
    const text = readFileSync(test, 'utf8')
      .replace(
        'thumbnailUrl: "https://own/v2.jpg", thumbnailUrls: { small: "https://cdn/i2-s.jpg" }',
        'thumbnailUrl: "https://own/v2.jpg", thumbnailUrls: null',
      )
      .replace(
        'summary: { total: 1, updated: 1, skipped: 0, failed: 0, reasons: {} }\n      records:',
        'summary: { total: 1, updated: 1, skipped: 0, failed: 0, reasons: {} }\n      unlisted:',
      );
    writeFileSync(test, text.replace('      unlisted:', '      records: {}\n      unlisted:'));
    const r = await runCli(['test', test]);
    expect(r.code, r.stdout + r.stderr).not.toBe(0);
    // `unlisted` is not a key of the test format: the file is refused with its line.
    expect(r.stderr).toMatch(/i2v-thumbnails\.test\.yaml:\d+:\d+ DF5\d\d .*unknown key `unlisted`/);

    writeFileSync(test, text.replace(/\n {6}unlisted:\n(?: {8}.*\n)+/, '\n'));
    const r2 = await runCli(['test', test]);
    expect(r2.code, r2.stdout + r2.stderr).toBe(1);
    expect(r2.stdout).toContain('target PK=MEDIA#v2 SK=METADATA: thumbnailUrls: expected null, got {"small":"https://cdn/i2-s.jpg"}');
    expect(r2.stdout).toMatch(
      /target PK=MEDIA#v1 SK=METADATA: .*thumbnailUrl: \(absent\) → "https:\/\/cdn\/i1\.jpg".*\(changed, but not listed under expect\.records\)/,
    );
  });
});
