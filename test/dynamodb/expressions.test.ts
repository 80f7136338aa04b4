import { describe, expect, it } from 'vitest';
import { ExpressionBuilder, filterExpression, keyConditionExpression } from '../../src/adapters/dynamodb/expressions.js';
import { all, any, equals, exists, isNull, missing, not, ref } from './fixtures.js';

describe('expression compilation', () => {
  it('puts every name and value behind a placeholder', () => {
    const b = new ExpressionBuilder();
    const expr = filterExpression(all(equals([ref('status'), 'ready']), exists(ref('thumbnailUrls', 'a.b')), isNull(ref('x-y'))), b);
    expect(expr).toBe(
      '(#n0 = :v0 AND (attribute_exists(#n1.#n2) AND NOT attribute_type(#n1.#n2, :null_t) AND NOT (#n1.#n2 = :empty)) AND (attribute_not_exists(#n3) OR attribute_type(#n3, :null_t)))',
    );
    expect(b.attributeNames).toEqual({ '#n0': 'status', '#n1': 'thumbnailUrls', '#n2': 'a.b', '#n3': 'x-y' });
    expect(b.attributeValues).toEqual({ ':v0': 'ready', ':null_t': 'NULL', ':empty': '' });
  });

  it('reuses one placeholder per distinct name', () => {
    const b = new ExpressionBuilder();
    filterExpression(any(missing(ref('name')), not(equals([ref('name'), 'x']))), b);
    expect(b.attributeNames).toEqual({ '#n0': 'name' });
  });

  it('folds constant conditions', () => {
    expect(filterExpression(all(), new ExpressionBuilder())).toBeUndefined();
    expect(filterExpression(not(any()), new ExpressionBuilder())).toBeUndefined();
    expect(filterExpression(any(all(), equals([ref('a'), 1])), new ExpressionBuilder())).toBeUndefined();
    const b = new ExpressionBuilder();
    expect(filterExpression(any(), b)).toMatch(/attribute_exists\(#n0\) AND attribute_not_exists\(#n0\)/);
  });

  it('treats equals null as isNull', () => {
    const b = new ExpressionBuilder();
    expect(filterExpression(equals([ref('data'), null]), b)).toBe('(attribute_not_exists(#n0) OR attribute_type(#n0, :null_t))');
  });

  it('builds key conditions for each sort-key operator', () => {
    const pk = { name: 'GSI8PK', value: 'P' };
    const cases = [
      ['equals', ['a'], '#n1 = :v1'],
      ['beginsWith', ['video#'], 'begins_with(#n1, :v1)'],
      ['between', ['a', 'b'], '#n1 BETWEEN :v1 AND :v2'],
      ['lt', ['a'], '#n1 < :v1'],
      ['lte', ['a'], '#n1 <= :v1'],
      ['gt', ['a'], '#n1 > :v1'],
      ['gte', ['a'], '#n1 >= :v1'],
    ] as const;
    for (const [op, values, sk] of cases) {
      const b = new ExpressionBuilder();
      expect(keyConditionExpression(pk, { name: 'GSI8SK', op, values }, b)).toBe(`#n0 = :v0 AND ${sk}`);
    }
    expect(() => keyConditionExpression(pk, { name: 'SK', op: 'between', values: ['a'] }, new ExpressionBuilder())).toThrow(/between/);
  });
});
