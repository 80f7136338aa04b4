/**
 * An in-process dynalite behind a loopback "proxy" that adds a fixed latency to every request
 * and counts requests by DynamoDB operation (from the X-Amz-Target header). Both sides of the
 * DynamoDB comparison talk to DynamoDB only through it, so their request counts are measured the
 * same way, outside either process.
 *
 * The proxy does not make a second HTTP hop: after the delay it hands the request to dynalite's
 * own request handler in the same process. dynalite is single-threaded JavaScript and is the
 * bottleneck of this harness long before the client is; an extra hop would only add to that.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';

/** Starts dynalite (in memory) behind the counting, delaying listener on 127.0.0.1. */
export async function startDynamoWithLatency({ latencyMs = 0 } = {}) {
  const require = createRequire(import.meta.url);
  const dynalite = require('dynalite');
  // Not listening: dynalite's 'request' handler is driven by the proxy below.
  const dyn = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  let latency = latencyMs;
  let counts = {};
  let inFlight = 0;
  let peak = 0;

  const server = createServer((req, res) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    res.on('close', () => {
      inFlight--;
    });
    const header = req.headers['x-amz-target'];
    const operation = (Array.isArray(header) ? header[0] : header)?.split('.').pop() ?? 'Unknown';
    counts[operation] = (counts[operation] ?? 0) + 1;
    const handOver = () => dyn.emit('request', req, res);
    if (latency > 0) setTimeout(handOver, latency);
    else handOver();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    setLatency: (ms) => {
      latency = ms;
    },
    counts: () => ({ ...counts }),
    peakInFlight: () => peak,
    reset: () => {
      counts = {};
      peak = inFlight;
    },
    stop: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        dyn.close?.(() => undefined);
      }),
  };
}
