/**
 * Credentials never leave datafix through what it prints or stores. A DynamoDB endpoint URL is
 * the one part of a target that can carry them (`http://user:password@host`, `?token=`); these
 * functions strip them wherever a target or a message is shown or written.
 */
import type { TargetPlan } from '../plan/types.js';

/**
 * An endpoint URL without what can carry a credential: user info (`user:password@`), the query
 * string (signed URLs, `?token=`) and the fragment. Text that is not a URL is returned as it is
 * (the spec compiler accepts only http(s) URLs, so that text never reached a connection).
 */
export function redactEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return redactText(endpoint);
  }
  if (!url.username && !url.password && !url.search && !url.hash) return endpoint;
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/$/, '');
}

/**
 * The target as it may be printed or stored (journal headers, state files, saved plans, run ids):
 * the endpoint without credentials. A target with nothing to strip is returned unchanged, so its
 * JSON (and the run id hashed from it) is the same as before redaction existed.
 */
export function redactTarget(target: TargetPlan): TargetPlan {
  if (target.backend !== 'dynamodb' || target.endpoint === undefined) return target;
  const endpoint = redactEndpoint(target.endpoint);
  return endpoint === target.endpoint ? target : { ...target, endpoint };
}

/**
 * Removes credentials from free text (error messages from drivers and the SDK can quote the URL
 * they failed on): the user info, query string and fragment of every URL in it. The query and
 * fragment end only at whitespace, a quote or an angle bracket (which an http(s) URL holds only
 * percent-encoded): a `)` may be part of a token, so a closing parenthesis after a URL goes with it.
 */
export function redactText(text: string): string {
  return (
    text
      // Up to the last @ of the URL, as a URL parser reads user info: `user:p@ss@host`, `user:pw/x@h`.
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s'"`<>]*@/gi, '$1')
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s?#'"`<>]*)[?#][^\s'"`<>]*/gi, '$1')
  );
}
