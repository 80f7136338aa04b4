/**
 * Classifies AWS SDK errors. Decisions are made on the error's name, HTTP status and network code,
 * never on its message, except for DynamoDB's item-size ValidationException, which has no name of
 * its own. Messages that reach the user are scrubbed of anything that looks like an access key.
 */
import { DatafixError } from '../../errors.js';
import { redactEndpoint, redactText } from '../redact.js';

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  cause?: unknown;
}

function shape(err: unknown): SdkErrorShape {
  return err !== null && typeof err === 'object' ? (err as SdkErrorShape) : {};
}

export function errorName(err: unknown): string {
  const name = shape(err).name;
  return typeof name === 'string' ? name : '';
}

function httpStatus(err: unknown): number | undefined {
  return shape(err).$metadata?.httpStatusCode;
}

/** Network-level error code, also when the SDK wraps the socket error. */
function networkCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = shape(e).cause, depth++) {
    const code = shape(e).code;
    if (typeof code === 'string') return code;
  }
  return '';
}

const THROTTLE_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'Throttling',
  'TooManyRequestsException',
]);

const CREDENTIAL_NAMES = new Set([
  'CredentialsProviderError',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
]);

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL']);

export function isThrottle(err: unknown): boolean {
  return THROTTLE_NAMES.has(errorName(err)) || httpStatus(err) === 429;
}

/** A 5xx from the service (InternalServerError, ServiceUnavailable...). */
export function isServerError(err: unknown): boolean {
  const status = httpStatus(err);
  return (status !== undefined && status >= 500) || errorName(err) === 'InternalServerError';
}

/** A dropped or timed-out connection to an endpoint that was reachable: worth another try. */
export function isTransientNetwork(err: unknown): boolean {
  return (
    TRANSIENT_CODES.has(networkCode(err)) || errorName(err) === 'TimeoutError' || /socket hang up/i.test(String(shape(err).message ?? ''))
  );
}

/** Worth retrying later: throttled, a server error, or a connection that broke mid-request. */
export function isRetryable(err: unknown): boolean {
  return isThrottle(err) || isServerError(err) || isTransientNetwork(err);
}

export function isAbort(err: unknown): boolean {
  return errorName(err) === 'AbortError';
}

export function isConditionalFailure(err: unknown): boolean {
  return errorName(err) === 'ConditionalCheckFailedException';
}

export function isValidation(err: unknown): boolean {
  return errorName(err) === 'ValidationException';
}

export function isItemTooLarge(err: unknown): boolean {
  return isValidation(err) && /item size (to update )?has exceeded/i.test(messageOf(err));
}

export function isResourceNotFound(err: unknown): boolean {
  return errorName(err) === 'ResourceNotFoundException';
}

function isUnreachable(err: unknown): boolean {
  return httpStatus(err) === undefined && UNREACHABLE_CODES.has(networkCode(err));
}

/**
 * The error's message with access key ids (signature errors can echo the credential scope) and
 * URL credentials (network errors quote the URL) removed.
 */
export function messageOf(err: unknown): string {
  const raw = shape(err).message;
  const text = typeof raw === 'string' ? raw : String(err);
  return redactText(text).replace(/\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b/g, '<access-key-id>');
}

/** "endpoint http://… (region …)" or "region …", for messages. */
export function describeWhere(target: { region: string; endpoint?: string }): string {
  if (!target.endpoint) return `DynamoDB in region ${target.region}`;
  // An endpoint URL could carry user:password or a token; it never reaches a message.
  return `DynamoDB endpoint ${redactEndpoint(target.endpoint)} (region ${target.region})`;
}

/**
 * Turns an environment failure (unreachable endpoint, credentials, permissions) into a
 * DatafixError; returns undefined for anything else so the caller can decide.
 */
export function environmentError(err: unknown, where: string, action: string): DatafixError | undefined {
  if (err instanceof DatafixError) return err;
  const name = errorName(err);
  if (CREDENTIAL_NAMES.has(name)) {
    // The SDK's text is not repeated: some of these messages quote the signing scope.
    return new DatafixError(
      'connection',
      'DF414',
      name === 'CredentialsProviderError'
        ? `no AWS credentials found for ${where} while trying to ${action}; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or log in with \`aws sso login\``
        : `${where} rejected the AWS credentials (${name}) while trying to ${action}; check that the credentials are valid, not expired, and meant for this account and region`,
    );
  }
  if (name === 'AccessDeniedException') {
    return new DatafixError(
      'config',
      'DF408',
      `${where} denied access while trying to ${action}: ${messageOf(err)}; grant the caller that permission or use another role`,
    );
  }
  if (isUnreachable(err) || (isTransientNetwork(err) && httpStatus(err) === undefined)) {
    return new DatafixError(
      'connection',
      'DF410',
      `cannot connect to ${where} while trying to ${action} (${networkCode(err) || name || 'network error'}: ${messageOf(err)}); check the endpoint/region and the network, then retry`,
    );
  }
  return undefined;
}
