/**
 * References (`job.mediaId`, `item["a.b"]`, `row.list[0]`) and `{{ ref }}` templates, parsed
 * once at compile time into the plan's data form. Resolution happens in the engine, on own
 * properties only.
 */
import type { Ref, Template } from '../plan/types.js';

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

const PLACEHOLDER = /\{\{(.*?)\}\}/g;

/**
 * A string `"{{ ref }}"` alone keeps the value's type; text around references interpolates;
 * objects and arrays are walked; anything else is a literal.
 */
export function parseTemplate(value: unknown): Template {
  if (typeof value === 'string') {
    if (!value.includes('{{')) return { kind: 'literal', value };
    const whole = /^\{\{(.*?)\}\}$/.exec(value);
    if (whole && !whole[1]?.includes('{{')) return { kind: 'ref', ref: parseRef(whole[1] ?? '') };
    const parts: (string | Ref)[] = [];
    let last = 0;
    for (const m of value.matchAll(PLACEHOLDER)) {
      if (m.index > last) parts.push(value.slice(last, m.index));
      parts.push(parseRef(m[1] ?? ''));
      last = m.index + m[0].length;
    }
    if (last < value.length) parts.push(value.slice(last));
    if (parts.some((p) => typeof p === 'string' && (p.includes('{{') || p.includes('}}')))) {
      throw new RefSyntaxError(`\`${value}\`: unbalanced {{ }}`);
    }
    return { kind: 'string', parts };
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

/** Every reference a template uses. */
export function templateRefs(t: Template): Ref[] {
  switch (t.kind) {
    case 'literal':
      return [];
    case 'ref':
      return [t.ref];
    case 'string':
      return t.parts.filter((p): p is Ref => typeof p !== 'string');
    case 'object':
      return t.entries.flatMap(([, v]) => templateRefs(v));
    case 'array':
      return t.items.flatMap(templateRefs);
  }
}
