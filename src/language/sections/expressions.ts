/**
 * Expressions (CEL) wherever a spec may write one: inside `{{ }}` of a template, as a condition
 * `{ expr: "…" }`, and as an extract's `then`. Each is parsed and type-checked here, against
 * the names the spec defines, and reported with the `file:line:col` of the expression itself.
 */
import type { ExprPlan, Ref, Template } from '../../plan/types.js';
import { checkExpression } from '../expr/index.js';
import type { PathSegment } from '../load.js';
import type { CompileScope } from './scope.js';

/**
 * Checks one expression written at `path`, starting `offset` characters into that scalar's value.
 * `extra` names local names (an extract's `value`). Returns the plan form, or undefined after
 * reporting (DF230 syntax, DF231 unknown name, DF232 wrong function/arity/types, DF233 too
 * large, DF235 not a bool where one is needed, DF236 bad regular expression).
 */
export function compileExpr(
  source: string,
  path: readonly PathSegment[],
  offset: number,
  scope: CompileScope,
  options: { extra?: readonly string[]; bool?: boolean } = {},
): ExprPlan | undefined {
  const names = [...scope.roots.keys(), ...(options.extra ?? [])];
  const { checked, problems } = checkExpression(source, names);
  for (const p of problems) scope.errorAt(p.code, path, p.message, offset + p.offset);
  if (!checked) return undefined;
  if (options.bool && checked.type !== 'bool' && checked.type !== 'dyn') {
    scope.errorAt('DF235', path, `\`${source}\` gives ${checked.type}; a condition needs true or false`, offset);
    return undefined;
  }
  // Local names (an extract's `value`) stay in `roots`: the engine declares every root it binds.
  const roots = checked.roots;
  const records = roots.filter((r) => scope.roots.get(r) === 'lookup' && !options.extra?.includes(r));
  const reads: Ref[] = checked.reads
    .filter((r) => !options.extra?.includes(r.root))
    .map((r) =>
      r.field !== undefined ? { root: r.root, path: [r.field], text: `${r.root}.${r.field}` } : { root: r.root, path: [], text: r.root },
    );
  return { source, roots, ...(records.length > 0 ? { records } : {}), reads };
}

type Parsed = ExprPlan & { offset?: number };

/**
 * Checks every expression placeholder of a parsed template (see `parseTemplate`), returning the
 * template with their plan forms, or undefined when one has a problem.
 */
export function compileTemplateExprs(t: Template, path: readonly PathSegment[], scope: CompileScope): Template | undefined {
  switch (t.kind) {
    case 'expr': {
      const e = t.expr as Parsed;
      const expr = compileExpr(e.source, path, e.offset ?? 0, scope);
      return expr ? { kind: 'expr', expr } : undefined;
    }
    case 'text': {
      const parts: (string | Ref | ExprPlan)[] = [];
      let ok = true;
      for (const p of t.parts) {
        if (typeof p === 'string' || !('source' in p)) parts.push(p);
        else {
          const e = compileExpr(p.source, path, (p as Parsed).offset ?? 0, scope);
          if (e) parts.push(e);
          else ok = false;
        }
      }
      return ok ? { kind: 'text', parts } : undefined;
    }
    case 'object': {
      const entries: (readonly [string, Template])[] = [];
      for (const [k, v] of t.entries) {
        const c = compileTemplateExprs(v, [...path, k], scope);
        if (!c) return undefined;
        entries.push([k, c]);
      }
      return { kind: 'object', entries };
    }
    case 'array': {
      const items: Template[] = [];
      for (const [i, v] of t.items.entries()) {
        const c = compileTemplateExprs(v, [...path, i], scope);
        if (!c) return undefined;
        items.push(c);
      }
      return { kind: 'array', items };
    }
    default:
      return t;
  }
}
