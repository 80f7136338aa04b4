/**
 * Shared pieces of the reliability suite: a seeded random generator (so every fault pattern is
 * reproducible), the i2v dataset and an oracle of the fix's rules written independently of the
 * engine, and table read-back.
 */
import { fileURLToPath } from 'node:url';
import type { FakeResponse } from '../helpers/proxy.js';

export { expectedFor, expectOracleState, type Item, i2vDataset, oracleCounts, scanAll } from '../helpers/i2v-oracle.js';

export const I2V_FIX = fileURLToPath(new URL('../../fixes/i2v-thumbnails.yaml', import.meta.url));

/** A small linear congruential generator: the same seed gives the same faults on every run. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** DynamoDB's 503 answer. */
export function serviceUnavailable(): FakeResponse {
  return {
    status: 503,
    body: { __type: 'com.amazonaws.dynamodb.v20120810#ServiceUnavailableException', message: 'Service unavailable' },
  };
}
