/**
 * docs/ci.md's GitHub Actions workflow, step by step as the runner would run it: each `run:` in
 * bash with `-e`, in a clean clone's fixes/ and schemas/, with `GITHUB_STEP_SUMMARY` pointing at a
 * file. What the job summary holds afterwards is checked against the specs themselves.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/cli.js';
import { cleanCloneIn, runLines } from '../helpers/doc-commands.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs();

interface Step {
  readonly name?: string;
  readonly run?: string;
  readonly uses?: string;
}

/** The workflow's steps, from the ```yaml block of docs/ci.md. */
function workflowSteps(): Step[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/ci.md'), 'utf8');
  const block = /^```yaml\n([\s\S]*?)^```$/m.exec(doc)?.[1];
  expect(block, 'a ```yaml block in docs/ci.md').toBeDefined();
  const workflow = parse(block as string) as { jobs: Record<string, { steps: Step[] }> };
  const jobs = Object.values(workflow.jobs);
  expect(jobs).toHaveLength(1);
  return (jobs[0] as { steps: Step[] }).steps;
}

/**
 * The `run:` steps after `npm ci` (this checkout is what `npm ci` leaves), each as GitHub's
 * default shell runs it: `bash -e`, so the first failing command fails the step.
 */
function runSteps(): string[] {
  const runs = workflowSteps()
    .map((s) => s.run)
    .filter((r): r is string => r !== undefined);
  expect(runs[0]).toBe('npm ci');
  return runs.slice(1).map((r) => `( set -e\n${r.trimEnd()}\n)`);
}

/** The `name:` of every fix spec in `dir`, in the order the shell glob `fixes/*.yaml` lists them. */
function fixNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && !f.endsWith('.test.yaml'))
    .sort()
    .map((f) => (parse(readFileSync(join(dir, f), 'utf8')) as { name: string }).name);
}

describe('docs/ci.md: the GitHub Actions workflow', () => {
  it('validate (annotations), test, and explain into $GITHUB_STEP_SUMMARY: each step passes and the summary explains every fix', async () => {
    const clone = cleanCloneIn(tmp().path);
    const summary = join(clone, 'step-summary.md');
    // What an earlier step wrote: appended to, never replaced.
    writeFileSync(summary, 'earlier step\n');
    const results = await runLines(runSteps(), { cwd: clone, env: { GITHUB_STEP_SUMMARY: summary } });
    expect(results.map((r) => r.code)).toEqual([0, 0, 0]);
    const [validate, test] = results;
    expect(validate?.output).toBe('');
    expect(test?.output).toMatch(/^\d+ passed, 0 failed$/m);

    const text = readFileSync(summary, 'utf8');
    expect(text.startsWith('earlier step\n')).toBe(true);
    const names = fixNames(join(clone, 'fixes'));
    expect(names.length).toBe(3);
    expect([...text.matchAll(/^# Fix `([^`]+)`$/gm)].map((m) => m[1])).toEqual(names);
    // Each fix with its path drawn, and nothing resolved from the environment.
    expect(text.match(/^```mermaid$/gm)).toHaveLength(names.length);
    expect(text).toContain('`${DYNAMODB_TABLE}`');
    expect(text).not.toContain('internal error');
  });

  it('a spec with a mistake fails the validate step with an annotation on its line', async () => {
    const clone = cleanCloneIn(tmp().path);
    writeFileSync(
      join(clone, 'fixes', 'broken.yaml'),
      'name: broken\ntarget: { sqlite: { path: a.db } }\nsource: { as: row, table: t }\nupdate:\n  key: { id: "{{ row.id }}" }\n  set: { c: "{{ row.c }}" }\n  bogus: true\n',
    );
    const [validate] = await runLines(runSteps().slice(0, 1), { cwd: clone, env: { GITHUB_STEP_SUMMARY: join(clone, 'summary.md') } });
    expect(validate?.code).toBe(2);
    expect(validate?.output).toContain(
      '::error file=fixes/broken.yaml,line=7,col=3,title=datafix DF101::/update/bogus: unknown key `bogus`',
    );
  });
});
