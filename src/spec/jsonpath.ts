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
  // And as jsonpath-plus itself reads it: whatever it would evaluate as code is refused.
  if (JSONPath.toPathArray(path).some((seg) => /^\??\(/.test(seg))) return filter;
  for (const seg of JSONPath.toPathArray(path).slice(1)) {
    if (FORBIDDEN_SEGMENTS.has(seg)) return { code: 'DF203', message: `JSONPath \`${path}\`: \`${seg}\` is not allowed` };
    if (/^[~^@$]|^@/.test(seg) || seg.includes('`')) {
      return { code: 'DF203', message: `JSONPath \`${path}\`: \`${seg}\` is not supported; use names, [n], [*] and ..` };
    }
  }
  return undefined;
}
