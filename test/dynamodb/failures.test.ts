/**
 * What each failure DynamoDB or the network can give does to a write or a read of the DynamoDB
 * adapter, run in the test process against the in-process server (dynalite). A failure that is
 * about one record fails that record; one worth another try later (throttling, a 5xx, a broken
 * connection) hands the write back to be retried; one about the environment (credentials,
 * permissions, an endpoint that cannot be reached, the table gone) stops the run with its DF code
 * and a message naming where and what to do. Answers dynalite never gives (throttling, refused
 * credentials, denied access) come from a loopback proxy in front of it; socket errors Node raises
 * (EPIPE, ENOTFOUND…) from the SDK's own HTTP handler, switched to fail.
 */

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoAdapter, RequestCutOff } from '../../src/adapters/dynamodb/index.js';
import type { Adapter, FieldWrite, WriteRequest } from '../../src/adapters/types.js';
import { stoppedWhileWaiting } from '../../src/engine/run.js';
import { DatafixError } from '../../src/errors.js';
import { createMediaTable, getRawItem, mediaItem, type RunningDynalite, rawClient, seedItems, startDynalite } from '../helpers/dynalite.js';
import { type CountingProxy, type FaultAction, type ProxiedRequest, startCountingProxy } from '../helpers/proxy.js';
import { useTempDirs } from '../helpers/tmp.js';
import { target } from './fixtures.js';

const TABLE = 'failures';
const tmp = useTempDirs();

let db: RunningDynalite;
let proxy: CountingProxy;
let adapter: Adapter;
/** How the proxy answers the current test's requests (undefined: forwarded to dynalite). */
let answer: ((r: ProxiedRequest) => FaultAction | undefined) | undefined;
/** The socket error the SDK's HTTP handler fails the next requests with (undefined: sent). */
let socketError: Error | undefined;
/** "DynamoDB endpoint http://127.0.0.1:… (region us-east-1)", as datafix names the proxy. */
let where: string;

const key = (id: string) => ({ PK: `MEDIA#${id}`, SK: 'METADATA' });
const fill = (id: string, value: unknown = 'https://cdn/new.jpg'): WriteRequest => ({
  key: key(id),
  fields: [{ name: 'thumbnailUrl', value, guard: 'absent' } satisfies FieldWrite],
});
const rawItem = (id: string) => getRawItem(db.endpoint, TABLE, { PK: { S: `MEDIA#${id}` }, SK: { S: 'METADATA' } });

/** DynamoDB's JSON error answer to every UpdateItem while the test runs. */
function refuseUpdates(status: number, type: string, message: string): void {
  answer = (r) => (r.operation === 'UpdateItem' ? { respond: { status, body: { __type: type, message } } } : undefined);
}

/** An error as Node's socket layer raises it: `write EPIPE`, code `EPIPE`. */
function systemError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * The SDK's own Node HTTP handler (as a client builds it), failing each request with
 * `socketError` while one is set, the way Node fails a request whose socket broke.
 */
function switchableHandler(): NonNullable<Parameters<typeof createDynamoAdapter>[1]>['requestHandler'] {
  const real = new DynamoDBClient({ region: 'us-east-1' }).config.requestHandler as unknown as {
    handle(request: unknown, options?: unknown): Promise<unknown>;
    destroy(): void;
  };
  return {
    handle: (request: unknown, options?: unknown) => (socketError ? Promise.reject(socketError) : real.handle(request, options)),
    destroy: () => real.destroy(),
  } as never;
}

async function seed(ids: readonly string[]): Promise<void> {
  await seedItems(
    db.endpoint,
    TABLE,
    ids.map((id) => mediaItem(id, '2024-01-01T00:00:00Z')),
  );
}

/** The DatafixError `p` rejects with (fails the test when it resolves or throws anything else). */
async function refusal(p: Promise<unknown>): Promise<DatafixError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatafixError);
  return err as DatafixError;
}

beforeAll(async () => {
  db = await startDynalite();
  await createMediaTable(db.endpoint, TABLE);
  await seed(['warm']);
  proxy = await startCountingProxy(db.endpoint, { fault: (r) => answer?.(r) });
  where = `DynamoDB endpoint ${proxy.endpoint} (region us-east-1)`;
  adapter = await createDynamoAdapter(target(proxy.endpoint, TABLE), {
    maxAttempts: 1,
    retryBaseMs: 1,
    readRetries: 2,
    requestHandler: switchableHandler(),
  });
  // The table's key schema is read once per adapter; read it before any fault is switched on.
  expect(await adapter.write([fill('warm')], { concurrency: 1 })).toEqual([{ status: 'applied' }]);
});

afterEach(() => {
  answer = undefined;
  socketError = undefined;
});

afterAll(async () => {
  await adapter?.close();
  await proxy?.stop();
  await db?.stop();
});

describe('a write DynamoDB could not take now is handed back to be retried later; the item is unchanged', () => {
  const throttles = [
    'ProvisionedThroughputExceededException',
    'ThrottlingException',
    'RequestLimitExceeded',
    'Throttling',
    'TooManyRequestsException',
  ];
  it.each(throttles)('throttled as %s (HTTP 400): `retry` with DynamoDB’s message', async (name) => {
    const id = `throttled-${name}`;
    await seed([id]);
    refuseUpdates(400, `com.amazonaws.dynamodb.v20120810#${name}`, `slow down (${name})`);
    expect(await adapter.write([fill(id)], { concurrency: 1 })).toEqual([{ status: 'retry', message: `slow down (${name})` }]);
    expect((await rawItem(id))?.thumbnailUrl).toBeUndefined();
  });

  it('throttled as HTTP 429 under a name DynamoDB does not use (a gateway in front of it): `retry`', async () => {
    await seed(['throttled-429']);
    refuseUpdates(429, 'SlowDown', 'rate exceeded');
    expect(await adapter.write([fill('throttled-429')], { concurrency: 1 })).toEqual([{ status: 'retry', message: 'rate exceeded' }]);
    expect((await rawItem('throttled-429'))?.thumbnailUrl).toBeUndefined();
  });

  it.each([
    [500, 'com.amazon.coral.service#InternalServerError', 'Internal server error'],
    [503, 'com.amazon.coral.availability#ServiceUnavailableException', 'Service unavailable'],
    [500, 'SomethingBroke', 'a 500 under a name DynamoDB does not use'],
  ])('a server error (HTTP %i %s): `retry`', async (status, type, message) => {
    const id = `server-${status}-${type}`;
    await seed([id]);
    refuseUpdates(status, type, message);
    expect(await adapter.write([fill(id)], { concurrency: 1 })).toEqual([{ status: 'retry', message }]);
    expect((await rawItem(id))?.thumbnailUrl).toBeUndefined();
  });

  it('a connection the endpoint dropped mid-request: `retry`', async () => {
    await seed(['dropped']);
    answer = (r) => (r.operation === 'UpdateItem' ? { reset: true } : undefined);
    const [result] = await adapter.write([fill('dropped')], { concurrency: 1 });
    expect(result).toEqual({ status: 'retry', message: 'socket hang up' });
    expect((await rawItem('dropped'))?.thumbnailUrl).toBeUndefined();
  });

  it.each([
    ['read ECONNRESET', 'ECONNRESET'],
    ['read ETIMEDOUT', 'ETIMEDOUT'],
    ['write EPIPE', 'EPIPE'],
    ['write ECONNABORTED', 'ECONNABORTED'],
  ])('a socket error Node raises mid-request (%s): `retry`', async (message, code) => {
    const id = `socket-${code}`;
    await seed([id]);
    socketError = systemError(message, code);
    expect(await adapter.write([fill(id)], { concurrency: 1 })).toEqual([{ status: 'retry', message }]);
    socketError = undefined;
    expect((await rawItem(id))?.thumbnailUrl).toBeUndefined();
  });

  it('a socket error wrapped by the layer that met it (its code on `cause`): `retry`', async () => {
    await seed(['wrapped']);
    socketError = new Error('request failed', { cause: systemError('write EPIPE', 'EPIPE') });
    expect(await adapter.write([fill('wrapped')], { concurrency: 1 })).toEqual([{ status: 'retry', message: 'request failed' }]);
    socketError = undefined;
    expect((await rawItem('wrapped'))?.thumbnailUrl).toBeUndefined();
  });

  it('the SDK’s own request timeout (TimeoutError, no socket code): `retry`', async () => {
    await seed(['timed-out']);
    const message = 'a request has exceeded the configured 60000 ms requestTimeout.';
    socketError = Object.assign(new Error(message), { name: 'TimeoutError' });
    expect(await adapter.write([fill('timed-out')], { concurrency: 1 })).toEqual([{ status: 'retry', message }]);
    socketError = undefined;
    expect((await rawItem('timed-out'))?.thumbnailUrl).toBeUndefined();
  });

  it('the consistent re-read after a failed guard is throttled: `retry`, and the other writer’s value stays', async () => {
    await seedItems(db.endpoint, TABLE, [mediaItem('reread', '2024-01-01T00:00:00Z', { thumbnailUrl: 'theirs' })]);
    answer = (r) =>
      r.operation === 'GetItem'
        ? {
            respond: { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'reread throttled' } },
          }
        : undefined;
    expect(await adapter.write([fill('reread')], { concurrency: 1 })).toEqual([{ status: 'retry', message: 'reread throttled' }]);
    expect((await rawItem('reread'))?.thumbnailUrl).toEqual({ S: 'theirs' });
  });
});

describe('a write DynamoDB refuses for this record alone fails that record; the others are written', () => {
  it('an update that would grow the item past 400 KB (“Item size to update has exceeded”): `item_too_large`', async () => {
    await seed(['grown', 'beside-grown']);
    const message = 'Item size to update has exceeded the maximum allowed size';
    answer = (r) =>
      r.operation === 'UpdateItem' && r.body.includes('MEDIA#grown')
        ? { respond: { status: 400, body: { __type: 'com.amazon.coral.validate#ValidationException', message } } }
        : undefined;
    expect(await adapter.write([fill('grown'), fill('beside-grown')], { concurrency: 1 })).toEqual([
      { status: 'failed', reason: 'item_too_large', message },
      { status: 'applied' },
    ]);
    expect((await rawItem('grown'))?.thumbnailUrl).toBeUndefined();
    expect((await rawItem('beside-grown'))?.thumbnailUrl).toEqual({ S: 'https://cdn/new.jpg' });
  });

  it('a create of an item over 400 KB (“Item size has exceeded”, as DynamoDB answers a PutItem): `item_too_large`; no item', async () => {
    const fields = [
      { name: 'PK', value: 'MEDIA#huge', guard: 'absent' as const },
      { name: 'SK', value: 'METADATA', guard: 'absent' as const },
      { name: 'blob', value: 'x'.repeat(410 * 1024), guard: 'absent' as const },
    ];
    expect(await adapter.write([{ action: 'create', key: key('huge'), fields }], { concurrency: 1 })).toEqual([
      { status: 'failed', reason: 'item_too_large', message: 'Item size has exceeded the maximum allowed size' },
    ]);
    expect(await rawItem('huge')).toBeUndefined();
  });

  it('an error DynamoDB gives for one item that is none of the above (an item collection over 10 GB): `write_failed` with its message', async () => {
    await seed(['collection', 'beside-collection']);
    const message = 'Item collection size limit exceeded';
    answer = (r) =>
      r.operation === 'UpdateItem' && r.body.includes('MEDIA#collection')
        ? {
            respond: {
              status: 400,
              body: { __type: 'com.amazonaws.dynamodb.v20120810#ItemCollectionSizeLimitExceededException', message },
            },
          }
        : undefined;
    expect(await adapter.write([fill('collection'), fill('beside-collection')], { concurrency: 1 })).toEqual([
      { status: 'failed', reason: 'write_failed', message },
      { status: 'applied' },
    ]);
    expect((await rawItem('collection'))?.thumbnailUrl).toBeUndefined();
  });
});

describe('a write the environment refuses stops the run with a DF code naming where and what to do', () => {
  const rejected = [
    'UnrecognizedClientException',
    'InvalidSignatureException',
    'ExpiredTokenException',
    'InvalidClientTokenId',
    'MissingAuthenticationTokenException',
    'IncompleteSignatureException',
  ];
  it.each(rejected)('credentials refused (%s): DF414 without DynamoDB’s text (it can quote the signing scope)', async (name) => {
    const id = `creds-${name}`;
    await seed([id]);
    refuseUpdates(400, `com.amazon.coral.service#${name}`, 'Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/dynamodb/aws4_request');
    const err = await refusal(adapter.write([fill(id)], { concurrency: 1 }));
    expect(err.code).toBe('DF414');
    expect(err.category).toBe('connection');
    expect(err.message).toBe(
      `${where} rejected the AWS credentials (${name}) while trying to write to table \`${TABLE}\`; check that the credentials are valid, not expired, and meant for this account and region`,
    );
    expect((await rawItem(id))?.thumbnailUrl).toBeUndefined();
  });

  it('access denied: DF408 with DynamoDB’s reason and what to do', async () => {
    await seed(['denied']);
    const reason = 'User: arn:aws:sts::123456789012:assumed-role/reader/s is not authorized to perform: dynamodb:UpdateItem';
    refuseUpdates(400, 'com.amazon.coral.service#AccessDeniedException', reason);
    const err = await refusal(adapter.write([fill('denied')], { concurrency: 1 }));
    expect(err.code).toBe('DF408');
    expect(err.category).toBe('config');
    expect(err.message).toBe(
      `${where} denied access while trying to write to table \`${TABLE}\`: ${reason}; grant the caller that permission or use another role`,
    );
    expect((await rawItem('denied'))?.thumbnailUrl).toBeUndefined();
  });

  it.each([
    ['AKIAIOSFODNN7EXAMPLE', 'an access key id'],
    ['ASIAQWERTYUIOPASDFGH', 'a temporary access key id'],
    ['AIDAJQABLZS4A3QDU576Q', 'a user id'],
    ['AROADBQP57FF2AEXAMPLE', 'a role id'],
  ])('DynamoDB’s reason quoting %s (%s) reaches the message without it', async (secret) => {
    await seed(['scrubbed']);
    refuseUpdates(
      400,
      'com.amazon.coral.service#AccessDeniedException',
      `key ${secret} may not write; see https://user:pw@iam.example/p?token=abc`,
    );
    const err = await refusal(adapter.write([fill('scrubbed')], { concurrency: 1 }));
    expect(err.code).toBe('DF408');
    expect(err.message).toContain(': key <access-key-id> may not write; see https://iam.example/p;');
    expect(err.message).not.toContain(secret);
  });

  it('the table was deleted after the run started: DF401 naming it', async () => {
    const table = 'deleted-mid-run';
    await createMediaTable(db.endpoint, table);
    await seedItems(db.endpoint, table, [mediaItem('x', '2024-01-01T00:00:00Z')]);
    const gone = await createDynamoAdapter(target(db.endpoint, table), { maxAttempts: 1 });
    try {
      // The first write reads the table's key schema; then the table is deleted.
      expect(await gone.write([fill('x')], { concurrency: 1 })).toEqual([{ status: 'applied' }]);
      const client = rawClient(db.endpoint);
      await client.send(new DeleteTableCommand({ TableName: table }));
      client.destroy();
      const err = await refusal(gone.write([fill('x', 'again')], { concurrency: 1 }));
      expect(err.code).toBe('DF401');
      expect(err.category).toBe('config');
      // dynalite's text for a missing table is DynamoDB's: "Requested resource not found".
      expect(err.message).toBe(
        `table \`${table}\` was not found at DynamoDB endpoint ${db.endpoint} (region us-east-1) while writing: Requested resource not found; check the table name`,
      );
    } finally {
      await gone.close();
    }
  });

  it('the endpoint stopped accepting connections after the run started: DF410 naming it, with the socket’s code', async () => {
    await seedItems(db.endpoint, TABLE, [mediaItem('vanished', '2024-01-01T00:00:00Z')]);
    const front = await startCountingProxy(db.endpoint);
    const gone = await createDynamoAdapter(target(front.endpoint, TABLE), { maxAttempts: 1 });
    try {
      expect(await gone.write([fill('vanished', 'first')], { concurrency: 1 })).toEqual([{ status: 'applied' }]);
      await front.stop();
      // Let the client see its kept-alive connection closed (a write sent on it would meet a
      // dropped connection and be handed back for retry, as tested above).
      await new Promise((resolve) => setTimeout(resolve, 100));
      const port = new URL(front.endpoint).port;
      const err = await refusal(gone.write([fill('vanished', 'second')], { concurrency: 1 }));
      expect(err.code).toBe('DF410');
      expect(err.category).toBe('connection');
      expect(err.message).toBe(
        `cannot connect to DynamoDB endpoint ${front.endpoint} (region us-east-1) while trying to write to table \`${TABLE}\` (ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port}); check the endpoint/region and the network, then retry`,
      );
    } finally {
      await gone.close();
    }
  });

  it.each([
    ['getaddrinfo ENOTFOUND dynamodb.nowhere.invalid', 'ENOTFOUND'],
    ['getaddrinfo EAI_AGAIN dynamodb.nowhere.invalid', 'EAI_AGAIN'],
    ['connect EHOSTUNREACH 10.0.0.1:443', 'EHOSTUNREACH'],
    ['connect ENETUNREACH 10.0.0.1:443', 'ENETUNREACH'],
    ['Invalid URL', 'ERR_INVALID_URL'],
  ])('an endpoint that cannot be reached (%s): DF410, never a per-record failure', async (message, code) => {
    await seed(['unreachable']);
    socketError = systemError(message, code);
    const err = await refusal(adapter.write([fill('unreachable')], { concurrency: 1 }));
    expect(err.code).toBe('DF410');
    expect(err.message).toBe(
      `cannot connect to ${where} while trying to write to table \`${TABLE}\` (${code}: ${message}); check the endpoint/region and the network, then retry`,
    );
  });
});

describe('reads the environment refuses', () => {
  it('no AWS credentials anywhere: DF414 naming the region and how to provide them, before any request', async () => {
    const dir = tmp();
    const saved = { ...process.env };
    for (const name of Object.keys(process.env)) if (name.startsWith('AWS_')) delete process.env[name];
    Object.assign(process.env, {
      AWS_CONFIG_FILE: dir.file('no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: dir.file('no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    });
    const keyless = await createDynamoAdapter({ backend: 'dynamodb', table: 'media', region: 'eu-west-1' }, { maxAttempts: 1 });
    try {
      const err = await refusal(keyless.write([fill('any')], { concurrency: 1 }));
      expect(err.code).toBe('DF414');
      expect(err.message).toBe(
        'no AWS credentials found for DynamoDB in region eu-west-1 while trying to describe table `media`; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or log in with `aws sso login`',
      );
    } finally {
      await keyless.close();
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  it('an endpoint whose URL carries credentials and cannot be reached: DF410 naming it without them', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const a = await createDynamoAdapter(target(`http://user:s3cret@127.0.0.1:${port}/?token=t0ken`, 'media'), { maxAttempts: 1 });
    try {
      const err = await refusal(a.lookup([{ key: key('x'), consistentRead: true }]));
      expect(err.code).toBe('DF410');
      expect(err.message).toMatch(
        new RegExp(
          `^cannot connect to DynamoDB endpoint http://127\\.0\\.0\\.1:${port} \\(region us-east-1\\) while trying to describe table \`media\``,
        ),
      );
      expect(err.message).not.toMatch(/s3cret|t0ken|user/);
    } finally {
      await a.close();
    }
  });

  it('a lookup still throttled after its retries: DF412 saying how many and what to do', async () => {
    answer = (r) =>
      r.operation === 'BatchGetItem'
        ? { respond: { status: 400, body: { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'slow down' } } }
        : undefined;
    const err = await refusal(adapter.lookup([{ key: key('warm'), consistentRead: true }]));
    expect(err.code).toBe('DF412');
    expect(err.message).toContain(`was still throttled after 2 extra retries at ${where}`);
  });

  it.each([
    [500, 'com.amazon.coral.service#InternalServerError', 'Internal server error', 'InternalServerError'],
    [503, 'com.amazon.coral.availability#ServiceUnavailableException', 'Service unavailable', 'ServiceUnavailableException'],
  ])(
    'a lookup still answered HTTP %i after its retries: DF412 naming the error and what to do, not a raw SDK error',
    async (status, type, message, name) => {
      answer = (r) => (r.operation === 'BatchGetItem' ? { respond: { status, body: { __type: type, message } } } : undefined);
      const err = await refusal(adapter.lookup([{ key: key('warm'), consistentRead: true }]));
      expect(err.code).toBe('DF412');
      expect(err.category).toBe('connection');
      expect(err.message).toBe(
        `BatchGetItem on table \`${TABLE}\` still failed with a server error after 2 extra retries at ${where} (${name}: ${message}); DynamoDB or the endpoint is failing for now: retry later, then resume`,
      );
    },
  );

  it('a lookup whose connection keeps breaking: DF410 after its retries, naming the endpoint', async () => {
    socketError = systemError('read ECONNRESET', 'ECONNRESET');
    const err = await refusal(adapter.lookup([{ key: key('warm'), consistentRead: true }]));
    expect(err.code).toBe('DF410');
    expect(err.message).toBe(
      `cannot connect to ${where} while trying to BatchGetItem (ECONNRESET: read ECONNRESET); check the endpoint/region and the network, then retry`,
    );
  });

  it('a lookup that keeps timing out (the SDK’s TimeoutError, no socket code): DF410 naming the timeout', async () => {
    const message = 'a request has exceeded the configured 60000 ms requestTimeout.';
    socketError = Object.assign(new Error(message), { name: 'TimeoutError' });
    const err = await refusal(adapter.lookup([{ key: key('warm'), consistentRead: true }]));
    expect(err.code).toBe('DF410');
    expect(err.message).toBe(
      `cannot connect to ${where} while trying to BatchGetItem (TimeoutError: ${message}); check the endpoint/region and the network, then retry`,
    );
  });
});

describe('a request cut off by the stop signal (Ctrl-C) is an interruption, never an unreachable endpoint', () => {
  /** A loopback server that accepts requests and never answers them. */
  async function silentServer(): Promise<{ endpoint: string; stop(): Promise<void> }> {
    const server = createServer(() => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      stop: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }

  it('the table description still unanswered: the call rejects as an abort, which the run reports as interrupted', async () => {
    const silent = await silentServer();
    const stop = new AbortController();
    const a = await createDynamoAdapter(target(silent.endpoint, TABLE), { maxAttempts: 1, stopSignal: stop.signal, stopGraceMs: 20 });
    try {
      const pending = a.lookup([{ key: key('warm'), consistentRead: true }]).then(
        () => undefined,
        (e: unknown) => e,
      );
      stop.abort();
      const err = await pending;
      expect(err).not.toBeInstanceOf(DatafixError);
      expect((err as Error).name).toBe('AbortError');
      expect(await stoppedWhileWaiting(err, stop.signal)).toBe(true);
    } finally {
      await a.close();
      await silent.stop();
    }
  });

  it('a write still unanswered: the call rejects as cut off (its outcome unknown, left to undo to check), not DF410', async () => {
    await seed(['cut-off']);
    const stop = new AbortController();
    const hanging = await startCountingProxy(db.endpoint, {
      fault: (r) => (r.operation === 'UpdateItem' ? { beforeForward: () => new Promise<void>(() => undefined) } : undefined),
    });
    const a = await createDynamoAdapter(target(hanging.endpoint, TABLE), { maxAttempts: 1, stopSignal: stop.signal, stopGraceMs: 20 });
    try {
      expect(await a.lookup([{ key: key('cut-off'), consistentRead: true }])).toHaveLength(1);
      stop.abort();
      const err = await a.write([fill('cut-off')], { concurrency: 1 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RequestCutOff);
      expect((err as Error).message).toBe(
        'the request got no answer before the interrupt and was cut off; whether it reached DynamoDB is unknown',
      );
      expect(await stoppedWhileWaiting(err, stop.signal)).toBe(true);
      expect((await rawItem('cut-off'))?.thumbnailUrl).toBeUndefined();
    } finally {
      await a.close();
      await hanging.stop();
    }
  });
});
