/**
 * Uniform buffers by name: each kernel's parameter struct is declared once here, as an ordered
 * list of 4-byte scalars, and packed by name. test/gpu/uniforms.test.ts checks every layout against
 * the struct of the same name in its .wgsl file, so the host and the shader cannot drift apart.
 */
export type UniformScalar = 'u32' | 'f32';

export class UniformLayout<Name extends string> {
  /** Bytes of the buffer: the fields, rounded up to 16 (a uniform struct's alignment). */
  readonly byteSize: number;

  constructor(
    /** The WGSL struct this layout mirrors. */
    readonly struct: string,
    readonly fields: readonly (readonly [Name, UniformScalar])[],
  ) {
    this.byteSize = Math.ceil((fields.length * 4) / 16) * 16;
  }

  /** The struct's bytes; every field must be given (a forgotten field is an error, not a zero). */
  pack(values: Readonly<Record<Name, number>>): ArrayBuffer {
    const buf = new ArrayBuffer(this.byteSize);
    const u = new Uint32Array(buf);
    const f = new Float32Array(buf);
    this.fields.forEach(([name, type], i) => {
      const v = values[name];
      if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${this.struct}.${name} is not set`);
      if (type === 'u32') u[i] = v;
      else f[i] = v;
    });
    return buf;
  }
}

export type FieldsOf<L> = L extends UniformLayout<infer N> ? Record<N, number> : never;

/** shaders/dareq_search.wgsl. */
export const SEARCH_PARAMS = new UniformLayout('SearchParams', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['group', 'u32'],
  ['groupsPerRow', 'u32'],
  ['grid', 'u32'],
  ['bins', 'u32'],
  ['nx', 'u32'],
  ['qmin', 'f32'],
  ['qmax', 'f32'],
  ['lw', 'f32'],
  ['lh', 'f32'],
  ['alpha', 'f32'],
  ['flags', 'u32'],
  ['totalGroups', 'u32'],
] as const);

/** Bits of SearchParams.flags. */
export const SEARCH_FLAGS = { clipRange: 1, halfEven: 2, density: 4, normalize: 8, signAware: 16 } as const;

/** shaders/quantize_apply.wgsl (every entry point reads the fields it needs). */
export const APPLY_PARAMS = new UniformLayout('ApplyParams', [
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['group', 'u32'],
  ['groupsPerRow', 'u32'],
  ['bins', 'u32'],
  ['dtype', 'u32'],
  ['flags', 'u32'],
  ['nx', 'u32'],
  ['qmin', 'f32'],
  ['qmax', 'f32'],
  ['tileRows', 'u32'],
  ['tileCols', 'u32'],
  ['rowStep', 'u32'],
  ['colStep', 'u32'],
  ['rowBase', 'u32'],
  ['bits', 'u32'],
] as const);

/** shaders/ewq_entropy.wgsl. */
export const ENTROPY_PARAMS = new UniformLayout('EntropyParams', [
  ['n', 'u32'],
  ['per', 'u32'],
  ['nx', 'u32'],
  ['max', 'f32'],
  ['sumExp', 'f32'],
  ['eps', 'f32'],
] as const);

export const UNIFORM_LAYOUTS = {
  'dareq_search.wgsl': SEARCH_PARAMS,
  'quantize_apply.wgsl': APPLY_PARAMS,
  'ewq_entropy.wgsl': ENTROPY_PARAMS,
};
