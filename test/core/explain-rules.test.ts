/** `explain` shows comparisons in words and fail rules in their own section and in the flowchart. */
import { describe, expect, it } from 'vitest';
import { explain } from '../../src/explain.js';
import { compileSpec } from '../../src/language/compile.js';
import { loadSpecText } from '../../src/language/load.js';
import type { FixSpec } from '../../src/language/types.js';

const TEXT = `name: t
target:
  sqlite:
    path: /data/app.db
source:
  as: row
  table: items
  where: { all: [ { between: { n: [1, 9] } }, { in: { status: [new, retry] } } ] }
skip:
  - { reason: done, when: { beginsWith: { row.note: "ok:" } } }
fail:
  - { reason: not_numeric, when: { not: { type: { row.price: number } } } }
update:
  key: { id: "{{ row.id }}" }
  set: { note: x }
`;

describe('explain', () => {
  it('describes comparisons and fail rules', () => {
    const spec = loadSpecText(TEXT, 'fix.yaml');
    const out = explain(spec.data as FixSpec, compileSpec(spec, { env: {} }));
    expect(out).toContain('where (`n` is between `1` and `9` (inclusive)) and (`status` is one of `"new"`, `"retry"`)');
    expect(out).toContain('1. `done` when `row.note` begins with `"ok:"`');
    expect(out).toContain('## Fail rules (after the skip rules; the first that matches fails the record, and the run exits 1)');
    expect(out).toContain('1. `not_numeric` when not (`row.price` is of type `number`)');
    expect(out).toContain('step2skip(["failed: not_numeric"])');
  });
});
