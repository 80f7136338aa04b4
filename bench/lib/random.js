/** A small seeded PRNG, so every run of the benchmark generates exactly the same data. */

/** mulberry32: fast, 32-bit state, good enough for test data. Returns floats in [0, 1). */
export function createRandom(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const HEX = '0123456789abcdef';
  const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const chars = (alphabet, n) => {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[(next() * alphabet.length) | 0];
    return s;
  };
  return {
    next,
    int: (n) => (next() * n) | 0,
    pick: (list) => list[(next() * list.length) | 0],
    hex: (n) => chars(HEX, n),
    alnum: (n) => chars(ALNUM, n),
    /** A v4-shaped UUID. */
    uuid() {
      const h = chars(HEX, 32);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[(next() * 4) | 0]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    },
  };
}
