/**
 * References (`job.mediaId`, `item["a.b"]`, `row.list[0]`) and `{{ ref }}` templates, parsed
 * once at compile time into the plan's data form. Resolution happens in the engine, on own
 * properties only.
 */
import type { ExprPlan, Ref, Template } from '../plan/types.js';

export const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

export class RefSyntaxError extends Error {}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Parses `root.seg["quoted seg"][0]`. Throws RefSyntaxError with a plain reason. */
export function parseRef(text: string): Ref {
  const src = text.trim();
  const rootMatch = IDENT.exec(src);
  if (!rootMatch) throw new RefSyntaxError(`\`${src}\` is not a reference; expected a name such as row.column`);
  const segments: string[] = [rootMatch[0]];
  const indexes: number[] = [];
  let i = rootMatch[0].length;
  while (i < src.length) {
    const rest = src.slice(i);
    if (rest.startsWith('.')) {
      const name = IDENT.exec(rest.slice(1));
      const m = name ?? /^[0-9]+/.exec(rest.slice(1));
      if (!m) throw new RefSyntaxError(`\`${src}\`: expected a name after "." (use ["..."] for other characters)`);
      // `.0` is a list position, as `[0]` is; a map key made of digits is written `["0"]`.
      if (!name) indexes.push(segments.length - 1);
      segments.push(m[0]);
      i += 1 + m[0].length;
    } else if (rest.startsWith('["') || rest.startsWith("['")) {
      const quote = rest[1] as string;
      const end = rest.indexOf(`${quote}]`, 2);
      if (end < 0) throw new RefSyntaxError(`\`${src}\`: unclosed [${quote}`);
      segments.push(rest.slice(2, end));
      i += end + 2;
    } else if (/^\[[0-9]+\]/.test(rest)) {
      const end = rest.indexOf(']');
      // Its position in `path` (segments minus the root).
      indexes.push(segments.length - 1);
      segments.push(rest.slice(1, end));
      i += end + 1;
    } else {
      throw new RefSyntaxError(`\`${src}\`: unexpected \`${rest[0]}\``);
    }
  }
  for (const seg of segments) {
    if (FORBIDDEN_SEGMENTS.has(seg)) throw new RefSyntaxError(`\`${src}\`: \`${seg}\` is not allowed in a reference`);
  }
  const [root, ...path] = segments as [string, ...string[]];
  return { root, path, text: src, ...(indexes.length > 0 ? { indexes } : {}) };
}

const PLACEHOLDER = /\{\{([\s\S]*?)\}\}/g;

/**
 * What today's reference grammar accepts: a name, then `.name`, `.0`, `[0]` or `["…"]` steps.
 * Such a placeholder keeps its plain-reference meaning (and fast path); anything else inside
 * `{{ }}` is an expression (CEL), checked by the compiler.
 */
const PLAIN_REF = /^\s*[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[[0-9]+\]|\["[^"]*"\]|\['[^']*'\])*\s*$/;

/** An expression placeholder before the compiler checks it: its text and offset in the value. */
function exprPart(inner: string, at: number): ExprPlan & { offset: number } {
  const lead = inner.length - inner.trimStart().length;
  return { source: inner.trim(), roots: [], offset: at + lead };
}

function placeholder(inner: string, at: number): Ref | (ExprPlan & { offset: number }) {
  return PLAIN_REF.test(inner) ? parseRef(inner) : exprPart(inner, at);
}

/**
 * A string `"{{ ref }}"` alone keeps the value's type; text around references interpolates;
 * objects and arrays are walked; anything else is a literal. A placeholder that is not a plain
 * reference is an expression: `{ kind: 'expr' }` alone, or a part of `{ kind: 'text' }`; its
 * `roots` are filled in (and `offset`, its position in the value, dropped) by the compiler.
 */
export function parseTemplate(value: unknown): Template {
  if (typeof value === 'string') {
    if (!value.includes('{{')) return { kind: 'literal', value };
    const whole = /^\{\{([\s\S]*?)\}\}$/.exec(value);
    if (whole && !whole[1]?.includes('{{')) {
      const p = placeholder(whole[1] ?? '', 2);
      return 'source' in p ? { kind: 'expr', expr: p } : { kind: 'ref', ref: p };
    }
    const parts: (string | Ref | ExprPlan)[] = [];
    let last = 0;
    for (const m of value.matchAll(PLACEHOLDER)) {
      if (m.index > last) parts.push(value.slice(last, m.index));
      parts.push(placeholder(m[1] ?? '', m.index + 2));
      last = m.index + m[0].length;
    }
    if (last < value.length) parts.push(value.slice(last));
    if (parts.some((p) => typeof p === 'string' && (p.includes('{{') || p.includes('}}')))) {
      throw new RefSyntaxError(`\`${value}\`: unbalanced {{ }}`);
    }
    if (parts.some((p) => typeof p !== 'string' && 'source' in p)) return { kind: 'text', parts };
    return { kind: 'string', parts: parts as (string | Ref)[] };
  }
  if (Array.isArray(value)) return { kind: 'array', items: value.map(parseTemplate) };
  if (value !== null && typeof value === 'object') {
    return {
      kind: 'object',
      entries: Object.entries(value).map(([k, v]) => [k, parseTemplate(v)] as const),
    };
  }
  return { kind: 'literal', value };
}

/** The references a context name stands for when an expression reads it (for step order). */
export function exprRefs(e: ExprPlan): Ref[] {
  return e.reads ? [...e.reads] : e.roots.map((root) => ({ root, path: [], text: root }));
}

/** Every reference a template uses. */
export function templateRefs(t: Template): Ref[] {
  switch (t.kind) {
    case 'literal':
      return [];
    case 'ref':
      return [t.ref];
    case 'string':
      return t.parts.filter((p): p is Ref => typeof p !== 'string');
    case 'expr':
      return exprRefs(t.expr);
    case 'text':
      return t.parts.flatMap((p) => (typeof p === 'string' ? [] : 'source' in p ? exprRefs(p) : [p]));
    case 'object':
      return t.entries.flatMap(([, v]) => templateRefs(v));
    case 'array':
      return t.items.flatMap(templateRefs);
  }
}
