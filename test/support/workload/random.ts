/** The seeded randomness of every workload (tests, benchmarks, the fault run). */

/** mulberry32: a small, fast PRNG, reproducible from a 32-bit seed (workloads, benchmarks, fault runs). */
export function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = x;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Draws over one PRNG: each helper takes exactly the draws it names, in that order. */
export interface Draw {
  rand: () => number;
  /** An integer in [lo, hi], both included (one draw). */
  int(lo: number, hi: number): number;
  /** One element, uniformly (one draw). */
  pick<T>(xs: readonly T[]): T;
}

export function draws(rand: () => number): Draw {
  return {
    rand,
    int: (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(rand() * xs.length)],
  };
}

/** A weight with a heavy tail (one draw): a few Spaces get most of the traffic. */
export function heavyTailWeight(d: Draw): number {
  return 1 / Math.pow(d.rand() + 0.02, 1.2);
}

/** Picks an index by weight (one draw). */
export function pickWeighted(d: Draw, weights: readonly number[], total = weights.reduce((a, b) => a + b, 0)): number {
  let x = d.rand() * total;
  let i = 0;
  while (x > weights[i] && i < weights.length - 1) x -= weights[i++];
  return i;
}
