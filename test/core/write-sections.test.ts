/**
 * The write sections of the fix language: `update.remove`, `delete` and `create`. A fix has
 * exactly one write section; each mistake is refused by `validate` with the spec's file:line:col.
 */
import { describe, expect, it } from 'vitest';
import { DatafixError, type Diagnostic } from '../../src/errors.js';
import { explain } from '../../src/explain.js';
import { compileSpec } from '../../src/language/compile.js';
import { loadSpecText } from '../../src/language/load.js';
import type { FixSpec } from '../../src/language/types.js';
import type { FixPlan } from '../../src/plan/types.js';

const HEAD = 'name: t\ntarget:\n  sqlite:\n    path: /data/app.db\nsource:\n  as: row\n  table: items\n';

function compile(write: string): FixPlan {
  return compileSpec(loadSpecText(`${HEAD}${write}`, 'fix.yaml'), { env: {} });
}

function refusal(write: string): Diagnostic[] {
  try {
    compile(write);
  } catch (err) {
    expect(err).toBeInstanceOf(DatafixError);
    return [...(err as DatafixError).diagnostics];
  }
  throw new Error('expected the spec to be refused');
}

/** 1-based line of the first line of the whole spec containing `needle`. */
function lineOf(write: string, needle: string): number {
  return `${HEAD}${write}`.split('\n').findIndex((l) => l.includes(needle)) + 1;
}

describe('update.remove', () => {
  it('compiles alone (no set) into the plan, in order', () => {
    const plan = compile('update:\n  key: { id: "{{ row.id }}" }\n  remove: [legacy, old_note]\n');
    expect(plan.update.remove).toEqual(['legacy', 'old_note']);
    expect(plan.update.set).toEqual([]);
    expect(plan.update.action).toBeUndefined();
  });

  it('a plan without remove has no remove key (saved plans and explain of existing fixes read as before)', () => {
    const plan = compile('update:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n');
    expect(Object.hasOwn(plan.update, 'remove')).toBe(false);
  });

  it('an update with neither set nor remove is DF260 at update', () => {
    const write = 'update:\n  key: { id: "{{ row.id }}" }\n';
    const [d] = refusal(write);
    expect(d).toMatchObject({ code: 'DF260', file: 'fix.yaml', line: lineOf(write, 'key:') });
    expect(d?.message).toContain('update needs `set` (fields to write) or `remove` (fields to remove), or both');
  });

  it('a field under both remove and set is DF213 at its place in the list', () => {
    const write = 'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n  remove:\n    - legacy\n    - note\n';
    const [d] = refusal(write);
    expect(d).toMatchObject({ code: 'DF213', line: lineOf(write, '- note') });
    expect(d?.message).toContain('`note` is under both remove and set; keep it in one');
  });

  it('a key field under remove is DF213', () => {
    const write = 'update:\n  key: { id: "{{ row.id }}" }\n  remove: [id]\n';
    expect(refusal(write)[0]).toMatchObject({ code: 'DF213', line: lineOf(write, 'remove:') });
  });

  it('`set: { x: null }` (DF215) points to update.remove', () => {
    const write = 'update:\n  key: { id: "{{ row.id }}" }\n  set:\n    legacy: null\n';
    const [d] = refusal(write);
    expect(d).toMatchObject({ code: 'DF215', line: lineOf(write, 'legacy: null') });
    expect(d?.message).toContain('To remove the field (DynamoDB REMOVE, SQLite NULL), list it under update.remove: [legacy]');
  });
});

describe('delete and create', () => {
  it('delete compiles to a delete of the source record itself (its before-image is the record read)', () => {
    const plan = compile('delete:\n  key: { id: "{{ row.id }}" }\n');
    expect(plan.update).toMatchObject({ action: 'delete', table: 'items', set: [], touch: [], before: { kind: 'context', root: 'row' } });
  });

  it('create always fetches the target by key (it writes only where none exists)', () => {
    const plan = compile('create:\n  table: archive\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.note }}" }\n');
    expect(plan.update).toMatchObject({ action: 'create', table: 'archive', before: { kind: 'fetch' } });
    expect(plan.update.set.map((f) => [f.field, f.overwrite])).toEqual([['note', false]]);
    expect(plan.steps).toEqual([{ kind: 'fetchTarget' }]);
  });

  it('two write sections are DF261 at the second', () => {
    const write = 'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\ndelete:\n  key: { id: "{{ row.id }}" }\n';
    const [d] = refusal(write);
    expect(d).toMatchObject({ code: 'DF261', file: 'fix.yaml', line: lineOf(write, 'delete:'), col: 1 });
    expect(d?.message).toContain('a fix has exactly one of update, delete and create; this one has update and delete');
  });

  it('no write section is DF103, a missing required key', () => {
    const [d] = refusal('');
    expect(d?.code).toBe('DF103');
    expect(d?.message).toContain('missing required key `update` (a fix needs exactly one of `update`, `delete` and `create`');
  });

  it('delete takes no set (schema, DF1xx at the key)', () => {
    const write = 'delete:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n';
    const [d] = refusal(write);
    expect(d?.code).toMatch(/^DF1/);
    expect(d?.line).toBe(lineOf(write, 'set:'));
  });

  it('a DynamoDB delete of items read from an index fetches each whole item first (an index projects only some attributes)', () => {
    const text =
      'name: t\ntarget:\n  dynamodb:\n    table: media\n    region: us-east-1\nsource:\n  as: item\n  scan: { index: GSI8 }\ndelete:\n  key: { PK: "{{ item.PK }}", SK: "{{ item.SK }}" }\n';
    const plan = compileSpec(loadSpecText(text, 'fix.yaml'), { env: {} });
    expect(plan.update.before).toEqual({ kind: 'fetch' });
    expect(plan.steps).toEqual([{ kind: 'fetchTarget' }]);
    const fromTable = compileSpec(loadSpecText(text.replace('scan: { index: GSI8 }', 'scan: {}'), 'fix.yaml'), { env: {} });
    expect(fromTable.update.before).toEqual({ kind: 'context', root: 'item' });
  });

  it('a DynamoDB delete with a table is DF205', () => {
    const text =
      'name: t\ntarget:\n  dynamodb:\n    table: media\n    region: us-east-1\nsource:\n  as: item\n  scan: {}\ndelete:\n  table: other\n  key: { PK: "{{ item.PK }}" }\n';
    try {
      compileSpec(loadSpecText(text, 'fix.yaml'), { env: {} });
      throw new Error('expected a refusal');
    } catch (err) {
      expect((err as DatafixError).diagnostics[0]).toMatchObject({ code: 'DF205', line: 10 });
      expect((err as DatafixError).diagnostics[0]?.message).toContain('a DynamoDB delete always writes the target table');
    }
  });
});

describe('explain renders the new writes for a review', () => {
  const explained = (write: string) => {
    const loaded = loadSpecText(`${HEAD}${write}`, 'fix.yaml');
    return explain(loaded.data as FixSpec, compileSpec(loaded, { env: {} }), 'text');
  };

  it('remove: each field, how it is removed on this backend, and its guard', () => {
    expect(explained('update:\n  key: { id: "{{ row.id }}" }\n  remove: [legacy]\n')).toContain(
      '- legacy removed (set NULL), only if it still holds the value read; already absent: no change',
    );
  });

  it('delete: the whole-record guard and how undo brings it back', () => {
    expect(explained('delete:\n  key: { id: "{{ row.id }}" }\n')).toContain(
      'One conditional delete per record, in table items, of the record with id = {{ row.id }}: it is deleted only if every field read still holds the value read (every column is compared)',
    );
  });

  it('create: the fields of the new record, and that it never replaces one', () => {
    const text = explained('create:\n  table: archive\n  key: { id: "{{ row.id }}" }\n  set: { note: "{{ row.note }}" }\n');
    expect(text).toContain(
      'One record created per record, in table archive, with id = {{ row.id }}, only where no record has that key (never a replace):',
    );
    expect(text).toContain('- note ← {{ row.note }}');
    expect(text).toContain('A key that already names a record is skipped (exists)');
  });

  it('the Mermaid path names the read and the write of a create', () => {
    const loaded = loadSpecText(`${HEAD}create:\n  table: archive\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n`, 'fix.yaml');
    const md = explain(loaded.data as FixSpec, compileSpec(loaded, { env: {} }), 'markdown');
    expect(md).toContain('Read whether the record exists');
    expect(md).toContain('Create in archive where absent: note');
  });
});
