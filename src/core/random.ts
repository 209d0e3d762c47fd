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

/**
 * mulberry32 with its state in view: the state only counts up by a constant, so `skip` jumps over
 * any number of draws at once — a generated tensor's outlier rows, drawn after its normals, are
 * known before the normals are made, and a tensor can be written in pieces.
 */
export class Mulberry32 {
  private a: number;

  constructor(seed: number) {
    this.a = seed >>> 0;
  }

  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** As if next() had been called `draws` times. */
  skip(draws: number): void {
    this.a = Number((BigInt(this.a) + BigInt(draws) * 0x6d2b79f5n) % 0x100000000n);
  }

  /** The counter: `new Mulberry32(g.state)` draws what g would draw next. */
  get state(): number {
    return this.a;
  }

  clone(): Mulberry32 {
    return new Mulberry32(this.a);
  }
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
