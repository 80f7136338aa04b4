/**
 * `validate` refuses a comparison of the wrong shape, and a fail rule that would be confused with
 * another rule, at the file:line:col of the value at fault.
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkSpecFile } from '../../src/api.js';
import { useTempDirs } from '../helpers/tmp.js';

const tmp = useTempDirs({ scope: 'file' });

const SQLITE = 'name: t\ntarget:\n  sqlite:\n    path: /data/app.db\n';
const DYNAMO = 'name: t\ntarget:\n  dynamodb: { table: media, region: us-east-1 }\n';
const UPDATE = 'update:\n  key: { id: "{{ row.id }}" }\n  set: { note: x }\n';

function check(text: string) {
  const file = tmp().file('fix.yaml');
  writeFileSync(file, text);
  return checkSpecFile(file);
}

/** 1-based line and column of the first occurrence of `needle` in `text`. */
function at(text: string, needle: string): { line: number; col: number } {
  const i = text.indexOf(needle);
  const before = text.slice(0, i).split('\n');
  return { line: before.length, col: (before[before.length - 1] as string).length + 1 };
}

describe('validate refuses comparisons of the wrong shape, at their position', () => {
  const where = (cond: string) => `${SQLITE}source:\n  as: row\n  table: items\n  where:\n    ${cond}\n${UPDATE}`;
  it.each([
    ['between with one value', where('between: { n: [1] }'), '[1]', 'DF250', /two values/],
    ['between with low above high', where('between: { n: [5, 1] }'), '[5, 1]', 'DF250', /low ≤ high/],
    ['between of a string and a number', where('between: { n: ["a", 1] }'), '["a", 1]', 'DF250', /one type/],
    ['in with an empty list', where('in: { n: [] }'), '[]', 'DF250', /non-empty list/],
    ['a type that does not exist', where('type: { n: text }'), 'text }', 'DF251', /not a type of SQLite; use one of string, number/],
    ['a DynamoDB-only type on SQLite', where('type: { n: map }'), 'map }', 'DF251', /not a type of SQLite/],
    ['contains a number on SQLite', where('contains: { n: 5 }'), '5 }', 'DF250', /SQLite takes a string/],
  ])('%s', (_name, text, needle, code, message) => {
    const result = check(text);
    expect(result.ok).toBe(false);
    expect(result.diagnostics[0]).toMatchObject({ code, ...at(text, needle) });
    expect(result.diagnostics[0]?.message).toMatch(message);
  });

  it("YAML's bare null as a type name means the type `null`, as written quoted", () => {
    const bare = check(where('type: { n: null }'));
    expect(bare.diagnostics).toEqual([]);
    expect(bare.ok).toBe(true);
    expect(check(where('type: { n: "null" }')).ok).toBe(true);
  });

  it('beginsWith with a number fails the schema check at the number', () => {
    const text = where('beginsWith: { b: 12 }');
    const result = check(text);
    expect(result.ok).toBe(false);
    expect(result.diagnostics[0]).toMatchObject(at(text, '12 }'));
  });

  it('a DynamoDB filter naming the source alias (`item.PK`) is refused at the reference, not run to match nothing', () => {
    const text = `${DYNAMO}source:\n  as: item\n  scan:\n    filter: { all: [ { beginsWith: { item.PK: "ORDER#" } }, { exists: payload.total } ] }\n${UPDATE.replace('id: "{{ row.id }}"', 'PK: "{{ item.PK }}", SK: "{{ item.SK }}"')}`;
    const result = check(text);
    expect(result.ok).toBe(false);
    expect(result.diagnostics).toHaveLength(1);
    expect(result.diagnostics[0]).toMatchObject({ code: 'DF205', ...at(text, 'item.PK:') });
    expect(result.diagnostics[0]?.message).toMatch(/write `PK`, not `item.PK`/);
    // A nested attribute path of another name is an attribute of the item: accepted.
    expect(check(text.replace('item.PK: "ORDER#"', 'PK: "ORDER#"')).ok).toBe(true);
  });

  it('between strings above each other in byte order is refused on DynamoDB only', () => {
    const cond = 'between: { v: ["b", "A"] }';
    const dynamo = `${DYNAMO}source:\n  as: row\n  scan:\n    filter: { ${cond} }\n${UPDATE.replace('id: "{{ row.id }}"', 'PK: "{{ row.PK }}", SK: "{{ row.SK }}"')}`;
    expect(check(dynamo).diagnostics[0]).toMatchObject({ code: 'DF250', ...at(dynamo, '["b", "A"]') });
    // On SQLite a NOCASE column orders "A" after "b"; the spec cannot know, so it is accepted.
    expect(check(where(cond.replace('v:', 'b:'))).ok).toBe(true);
  });

  it('a wrong comparison in a skip rule is refused too', () => {
    const text = `${SQLITE}source: { as: row, table: items }\nskip:\n  - reason: r\n    when: { in: { row.n: [] } }\n${UPDATE}`;
    expect(check(text).diagnostics[0]).toMatchObject({ code: 'DF250', path: '/skip/0/when/in/row.n', ...at(text, '[] }') });
  });
});

describe('fail rules are checked like skip rules', () => {
  const rules = (skip: string, fail: string) => `${SQLITE}source: { as: row, table: items }\nskip:\n${skip}\nfail:\n${fail}\n${UPDATE}`;

  it('a fail reason a skip rule already uses is refused at the fail rule', () => {
    const text = rules('  - { reason: done, when: { exists: row.note } }', '  - { reason: done, when: { missing: row.src } }');
    const d = check(text).diagnostics[0];
    expect(d).toMatchObject({ code: 'DF210', path: '/fail/0/reason', line: at(text, 'fail:').line + 1 });
    expect(d?.message).toMatch(/used by a skip rule/);
  });

  it('a reserved reason is refused', () => {
    const text = rules('  - { reason: done, when: { exists: row.note } }', '  - { reason: write_failed, when: { missing: row.src } }');
    expect(check(text).diagnostics[0]).toMatchObject({ code: 'DF210', path: '/fail/0/reason' });
  });

  it('a fail rule referring to an unknown name is refused at the reference', () => {
    const text = rules('  - { reason: done, when: { exists: row.note } }', '  - { reason: bad, when: { missing: ghost.src } }');
    expect(check(text).diagnostics[0]).toMatchObject({ code: 'DF201', path: '/fail/0/when/missing', ...at(text, 'ghost.src') });
  });
});

describe('fail rules in the step order', () => {
  it('run after every skip rule, each just after the lookups it needs', () => {
    const text = `${DYNAMO}source:
  as: user
  scan: { filter: { beginsWith: { PK: "USER#" } } }
lookups:
  org: { get: { PK: "ORG#{{ user.orgId }}", SK: METADATA } }
  team: { get: { PK: "TEAM#{{ user.teamId }}", SK: METADATA } }
fail:
  - { reason: org_not_found, when: { missing: org.name } }
skip:
  - { reason: no_org_id, when: { missing: user.orgId } }
  - { reason: no_team, when: { missing: team } }
update:
  key: { PK: "{{ user.PK }}", SK: "{{ user.SK }}" }
  set: { orgName: "{{ org.name }}" }
`;
    const result = check(text);
    expect(result.diagnostics).toEqual([]);
    // Written before the skip rules, the fail rule still runs after them; each lookup comes
    // just before the first rule that needs it.
    expect(result.plan?.steps).toEqual([
      { kind: 'skip', index: 0 },
      { kind: 'lookup', name: 'team' },
      { kind: 'skip', index: 1 },
      { kind: 'lookup', name: 'org' },
      { kind: 'fail', index: 0 },
    ]);
  });
});
