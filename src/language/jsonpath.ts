/**
 * JSONPath is limited to navigation: `$`, `.name`, `['name']`, `[0]`, `[*]`, `..` and slices.
 * Filters `?()` and scripts `()` are refused here, and the engine runs jsonpath-plus with
 * `eval: false` as a second line of defence, so spec text can never become running code.
 */
import { JSONPath } from 'jsonpath-plus';
import { FORBIDDEN_SEGMENTS } from './refs.js';

export interface JsonPathProblem {
  readonly code: 'DF203' | 'DF204';
  readonly message: string;
}

/** One step of a JSONPath, as datafix reads it. */
export type JsonPathSegment =
  /** `quoted`: written `['…']` or `["…"]`, so read as the very text, whatever it holds. */
  | { readonly kind: 'name'; readonly name: string; readonly quoted?: boolean }
  | { readonly kind: 'index'; readonly index: number }
  | { readonly kind: 'wildcard' }
  | { readonly kind: 'descend' }
  /** A bracket datafix leaves to jsonpath-plus (a slice `1:3`, a union `0,1`) or refuses (`-1`). */
  | { readonly kind: 'other'; readonly text: string };

/**
 * The steps of a JSONPath that `checkJsonPath` accepted: `.name` (up to the next `.` or `[`),
 * `['name']` / `["name"]` (any text, taken literally: `['a,b']`, `['*']`, `['cd[x]']`), `[N]`
 * and `.N` (list positions), `.*` / `[*]`, `..`, and other brackets as written. The leading `$`
 * is not a step.
 */
export function jsonPathSegments(path: string): JsonPathSegment[] {
  const out: JsonPathSegment[] = [];
  let i = 1;
  while (i < path.length) {
    if (path.startsWith('..', i)) {
      out.push({ kind: 'descend' });
      i += 2;
      if (path[i] !== '[' && path[i] !== '*') {
        const end = nextDelimiter(path, i);
        out.push({ kind: 'name', name: path.slice(i, end) });
        i = end;
      }
    } else if (path[i] === '.') {
      const end = nextDelimiter(path, i + 1);
      const name = path.slice(i + 1, end);
      // `.0` is a list position, as jsonpath-plus reads it and as `row.list.0` is in references.
      out.push(
        name === '*' ? { kind: 'wildcard' } : /^[0-9]+$/.test(name) ? { kind: 'index', index: Number(name) } : { kind: 'name', name },
      );
      i = end;
    } else if (path[i] === '*') {
      out.push({ kind: 'wildcard' });
      i += 1;
    } else if (path[i] === '[') {
      const quote = path[i + 1];
      if (quote === "'" || quote === '"') {
        const end = path.indexOf(`${quote}]`, i + 2);
        out.push({ kind: 'name', name: path.slice(i + 2, end), quoted: true });
        i = end + 2;
      } else {
        const end = path.indexOf(']', i);
        const text = path.slice(i + 1, end);
        out.push(
          text === '*' ? { kind: 'wildcard' } : /^[0-9]+$/.test(text) ? { kind: 'index', index: Number(text) } : { kind: 'other', text },
        );
        i = end + 1;
      }
    } else {
      const end = nextDelimiter(path, i);
      out.push({ kind: 'name', name: path.slice(i, end) });
      i = end;
    }
  }
  return out;
}

function nextDelimiter(path: string, from: number): number {
  for (let j = from; j < path.length; j++) if (path[j] === '.' || path[j] === '[') return j;
  return path.length;
}

export function checkJsonPath(path: string): JsonPathProblem | undefined {
  if (!path.startsWith('$')) return { code: 'DF203', message: `JSONPath \`${path}\` must start with $` };
  const filter = {
    code: 'DF204' as const,
    message: `JSONPath \`${path}\` uses a filter or script expression; these are refused because they run code. Use plain paths and skip conditions instead`,
  };
  // Scan as the path's reader would: quoted names only inside brackets, with matching quotes.
  let inBracket = false;
  for (let i = 0; i < path.length; i++) {
    const ch = path[i] as string;
    if (!inBracket) {
      if (ch === '[') inBracket = true;
      else if (ch === ']') return { code: 'DF203', message: `JSONPath \`${path}\` has an unmatched ]` };
      else if (ch === '(' || ch === '?') return filter;
    } else if (ch === "'" || ch === '"') {
      const end = path.indexOf(ch, i + 1);
      if (end < 0 || path[end + 1] !== ']') return { code: 'DF203', message: `JSONPath \`${path}\` has an unclosed or misplaced quote` };
      i = end;
    } else if (ch === ']') inBracket = false;
    else if (ch === '(' || ch === '?' || ch === '[')
      return ch === '[' ? { code: 'DF203', message: `JSONPath \`${path}\` nests brackets` } : filter;
  }
  if (inBracket) return { code: 'DF203', message: `JSONPath \`${path}\` has an unclosed [` };
  const segments = jsonPathSegments(path);
  const negative = segments.find((seg) => seg.kind === 'other' && /^-[0-9]+$/.test(seg.text));
  if (negative) {
    return {
      code: 'DF203',
      message: `JSONPath \`${path}\`: [${negative.kind === 'other' ? negative.text : ''}] counts from the end, which is not supported; for the last element write [-1:]`,
    };
  }
  // Paths with `..`, slices or unions go to jsonpath-plus, which splits a quoted name at
  // brackets, commas, quotes and stars: such a name would not be read as written.
  const navigatesOnly = segments.every((seg) => seg.kind !== 'descend' && seg.kind !== 'other');
  const oddName = segments.find((seg) => seg.kind === 'name' && !/^[A-Za-z0-9_-]*$/.test(seg.name));
  if (!navigatesOnly && oddName && oddName.kind === 'name') {
    return {
      code: 'DF203',
      message: `JSONPath \`${path}\`: the name \`${oddName.name}\` can be read as written only in a path of names, [n] and [*] (without .. or slices); read its parent with one such path, then extract from that`,
    };
  }
  for (const seg of segments) {
    if (seg.kind !== 'name') continue;
    if (FORBIDDEN_SEGMENTS.has(seg.name)) return { code: 'DF203', message: `JSONPath \`${path}\`: \`${seg.name}\` is not allowed` };
    // A quoted name holding `][` reads like more path (mismatched quotes hiding a filter): what a
    // reviewer sees is not what would be read, so it is refused.
    if (seg.quoted && seg.name.includes('][')) {
      if (/[?(]/.test(seg.name)) return filter;
      return { code: 'DF203', message: `JSONPath \`${path}\`: the name \`${seg.name}\` reads like more path; check the quotes` };
    }
    // Unquoted, these characters are JSONPath syntax (jsonpath-plus: @ and $ variables, ~ names,
    // ^ parents); quoted, a name is only text (`$['@type']`, `$['$oid']`).
    if (!seg.quoted && (/^[~^@$]/.test(seg.name) || seg.name.includes('`'))) {
      return {
        code: 'DF203',
        message: `JSONPath \`${path}\`: \`${seg.name}\` is not supported unquoted; write ['${seg.name}'] for a key of that name`,
      };
    }
  }
  // Paths that go to jsonpath-plus (with .. or slices) are also checked as it reads them:
  // whatever it would evaluate as code is refused.
  if (!navigatesOnly) {
    if (JSONPath.toPathArray(path).some((seg) => /^\??\(/.test(seg))) return filter;
    for (const seg of JSONPath.toPathArray(path).slice(1)) {
      if (FORBIDDEN_SEGMENTS.has(seg)) return { code: 'DF203', message: `JSONPath \`${path}\`: \`${seg}\` is not allowed` };
      if (/^[~^@$]/.test(seg) || seg.includes('`')) {
        return { code: 'DF203', message: `JSONPath \`${path}\`: \`${seg}\` is not supported; use names, [n], [*] and ..` };
      }
    }
  }
  return undefined;
}
