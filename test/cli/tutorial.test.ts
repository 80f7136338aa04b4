/**
 * docs/tutorial.md as a reader follows it on a clean clone: every command it shows, run as
 * written and in order, in a copy of the repository's fixes/ and schemas/ with an empty home
 * directory; and the command a scaffolded test file names in its comment works where `datafix new`
 * ran.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { cleanCloneIn, fencedCommands, runLines, withoutComment } from '../helpers/doc-commands.js';
import { useTempDirs } from '../helpers/tmp.js';
import { query } from '../sqlite/fixtures.js';

const tmp = useTempDirs();

describe('docs/tutorial.md on a clean clone', () => {
  it('every command runs as written, with the exit code the page gives it', async () => {
    const lines = fencedCommands(readFileSync(join(REPO_ROOT, 'docs/tutorial.md'), 'utf8'));
    const clone = cleanCloneIn(tmp().path);
    const home = tmp();
    const results = await runLines(lines, { cwd: clone, env: { HOME: home.path, VEO3_DB_PATH: undefined } });
    const db = home.file('veo3-automation.db');
    // What the page says each command does: scaffold (step 2) and its passing cases, check, test,
    // then runs that each exit 1 for the one row whose JSON is cut short.
    expect(results.map((r) => [withoutComment(r.command), r.code])).toEqual([
      ['npx datafix new sync-video-urls --backend sqlite --dir my-fixes', 0],
      ['npx datafix test my-fixes/sync-video-urls.test.yaml', 0],
      ['npx datafix validate fixes/sync-video-urls.yaml', 0],
      ['npx datafix explain fixes/sync-video-urls.yaml', 0],
      ['npx datafix test fixes/sync-video-urls.test.yaml', 0],
      ['npx datafix demo --sample-db ~/veo3-automation.db', 0],
      ['export VEO3_DB_PATH=~/veo3-automation.db', 0],
      ['npx datafix run fixes/sync-video-urls.yaml --dry-run', 1],
      ['npx datafix run fixes/sync-video-urls.yaml', 1],
      ['npx datafix run fixes/sync-video-urls.yaml', 1],
    ]);
    for (const r of results) expect(r.output, r.command).not.toMatch(/error DF|internal error/);
    expect(results[1]?.output).toContain('2 passed, 0 failed');
    // The live run filled what the sample's JSON holds, and only where the column was NULL.
    expect(
      query(db, "SELECT id, fife_url, serving_base_uri FROM veo3_video_generations WHERE id IN ('gen-002', 'gen-004') ORDER BY id"),
    ).toEqual([
      { id: 'gen-002', fife_url: 'https://fife.example/gen-002', serving_base_uri: 'https://serve.example/gen-002' },
      { id: 'gen-004', fife_url: 'https://fife.example/gen-004', serving_base_uri: null },
    ]);
    // "again: nothing left to do".
    expect(results[9]?.output).toMatch(/^ {2}updated {3}0$/m);
  });
});

describe('datafix new: the test file says how to run it', () => {
  // The cases each scaffolded test file holds.
  const cases = { sqlite: 2, dynamodb: 3 } as const;
  for (const backend of ['sqlite', 'dynamodb'] as const) {
    it(`${backend}: the command in the scaffolded test file's comment runs its cases from where \`new\` ran`, async () => {
      const dir = tmp();
      const made = await runCli(['new', 'order-country', '--backend', backend], { cwd: dir.path });
      expect(made.code, made.stderr).toBe(0);
      const comment = readFileSync(dir.file('fixes', 'order-country.test.yaml'), 'utf8').split('\n')[1] as string;
      const command = /Run them with: (.+)$/.exec(comment)?.[1];
      expect(command).toBe('npx datafix test fixes/order-country.test.yaml');
      const [ran] = await runLines([command as string], { cwd: dir.path });
      expect(ran?.code, ran?.output).toBe(0);
      expect(ran?.output).toMatch(new RegExp(`^${cases[backend]} passed, 0 failed$`, 'm'));
    });
  }
});
