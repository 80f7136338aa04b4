/**
 * A counting HTTP proxy in front of dynalite: counts requests by DynamoDB operation (from the
 * X-Amz-Target header), can add latency, and can inject faults below the SDK's retry layer
 * (answer instead of forwarding, rewrite the real answer, or drop the connection).
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  /** DynamoDB operation, e.g. `UpdateItem`. */
  readonly operation: string;
  /** The JSON request body. */
  readonly body: string;
  /** 1-based index of this request among requests of the same operation. */
  readonly nth: number;
  /** The request's Authorization header: its `Credential=` names the access key it was signed with. */
  readonly authorization: string;
}

export interface FakeResponse {
  readonly status: number;
  readonly body: unknown;
}

export type FaultAction =
  /** Answer without forwarding. */
  | { readonly respond: FakeResponse }
  /** Forward, then replace (or edit) the real answer: a lost acknowledgement, a partial batch. */
  | { readonly afterForward: (real: FakeResponse) => FakeResponse }
  /** Drop the connection without answering. */
  | { readonly reset: true }
  /**
   * Run `first` (e.g. another client writing to the table) and only then forward the request:
   * a concurrent writer landing exactly between what datafix read and what it writes.
   */
  | { readonly beforeForward: () => Promise<void> };

export interface ProxyOptions {
  readonly latencyMs?: number;
  readonly fault?: (request: ProxiedRequest) => FaultAction | undefined;
}

export interface CountingProxy {
  readonly endpoint: string;
  counts(): Record<string, number>;
  /** Most requests (of `operation`, e.g. `UpdateItem`, when given) in the proxy at once since the last reset. */
  peakInFlight(operation?: string): number;
  reset(): void;
  stop(): Promise<void>;
}

/** DynamoDB's throttling answer, as the SDK expects to parse it. */
export function throttled(): FakeResponse {
  return {
    status: 400,
    body: {
      __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
      message: 'The level of configured provisioned throughput for the table was exceeded.',
    },
  };
}

/** DynamoDB's internal server error answer. */
export function internalError(): FakeResponse {
  return {
    status: 500,
    body: { __type: 'com.amazon.coral.service#InternalServerError', message: 'Internal error' },
  };
}

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts the proxy on 127.0.0.1 with an OS-assigned port, forwarding to `targetEndpoint`. */
export async function startCountingProxy(targetEndpoint: string, options: ProxyOptions = {}): Promise<CountingProxy> {
  const target = new URL(targetEndpoint);
  const agent = new Agent({ keepAlive: true });
  let counts: Record<string, number> = {};
  let inFlight = 0;
  let peak = 0;
  const opInFlight = new Map<string, number>();
  let opPeak = new Map<string, number>();

  const forward = (req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const out = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
          agent,
        },
        (res) => {
          readBody(res).then((b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }), reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });

  const server = createServer((req, res) => {
    const header = req.headers['x-amz-target'];
    const operation = (Array.isArray(header) ? header[0] : header)?.split('.').pop() ?? 'Unknown';
    inFlight++;
    peak = Math.max(peak, inFlight);
    opInFlight.set(operation, (opInFlight.get(operation) ?? 0) + 1);
    opPeak.set(operation, Math.max(opPeak.get(operation) ?? 0, opInFlight.get(operation) ?? 0));
    res.on('close', () => {
      inFlight--;
      opInFlight.set(operation, (opInFlight.get(operation) ?? 1) - 1);
    });
    void (async () => {
      const body = await readBody(req);
      counts[operation] = (counts[operation] ?? 0) + 1;
      if (options.latencyMs) await delay(options.latencyMs);
      const action = options.fault?.({
        operation,
        body: body.toString('utf8'),
        nth: counts[operation] ?? 0,
        authorization: req.headers.authorization ?? '',
      });
      if (action && 'reset' in action) {
        req.socket.destroy();
        return;
      }
      const send = (status: number, payload: Buffer, headers: Record<string, string>): void => {
        res.writeHead(status, { ...headers, 'content-length': String(payload.length) });
        res.end(payload);
      };
      const json = (r: FakeResponse): void =>
        send(r.status, Buffer.from(JSON.stringify(r.body)), {
          'content-type': 'application/x-amz-json-1.0',
        });
      if (action && 'respond' in action) return json(action.respond);
      if (action && 'beforeForward' in action) await action.beforeForward();
      const real = await forward(req, body);
      if (action && 'afterForward' in action) {
        const text = real.body.toString('utf8');
        return json(action.afterForward({ status: real.status, body: text ? JSON.parse(text) : {} }));
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(real.headers)) {
        if (typeof v === 'string' && k !== 'content-length' && k !== 'connection') headers[k] = v;
      }
      send(real.status, real.body, headers);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    peakInFlight: (operation) => (operation === undefined ? peak : (opPeak.get(operation) ?? 0)),
    reset: () => {
      counts = {};
      peak = inFlight;
      opPeak = new Map(opInFlight);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
