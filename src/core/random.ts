/** Deterministic pseudo-random numbers for generated checkpoints, benchmarks and tests. */

/** mulberry32: small, fast, deterministic uniform numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills `out` with normal(0, std) numbers (Box-Muller). */
export function fillNormals(out: Float32Array | Float64Array, rand: () => number, std: number): void {
  for (let i = 0; i < out.length; i += 2) {
    const r = std * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12)));
    const v = 2 * Math.PI * rand();
    out[i] = r * Math.cos(v);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(v);
  }
}
