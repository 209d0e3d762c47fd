/** The host <-> WGSL contract: each uniform layout matches its struct in the .wgsl file, field by field. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { GPU_MAX_BINS } from '../../src/compute/backend';
import { UNIFORM_LAYOUTS, UniformLayout } from '../../src/compute/webgpu/uniforms';

const SHADERS = path.resolve(__dirname, '../../../shaders');

/** The fields of `struct NAME { ... }` in WGSL source, comments dropped. */
function structFields(source: string, name: string): [string, string][] {
  const code = source.replace(/\/\/.*$/gm, '');
  const m = new RegExp(`struct\\s+${name}\\s*\\{([^}]*)\\}`).exec(code);
  assert.ok(m, `struct ${name} not found`);
  return m[1]
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean)
    .map((f) => f.split(':').map((x) => x.trim()) as [string, string]);
}

for (const [file, layout] of Object.entries(UNIFORM_LAYOUTS)) {
  test(`${file}: ${layout.struct} has the host's fields, in its order and types`, () => {
    const source = readFileSync(path.join(SHADERS, file), 'utf8');
    assert.deepEqual(
      structFields(source, layout.struct),
      layout.fields.map(([n, t]) => [n, t]),
    );
    assert.match(source, new RegExp(`var<uniform>\\s+P:\\s*${layout.struct};`), `${file} binds ${layout.struct} as its uniform`);
  });
}

test('every kernel uses the shared preamble instead of its own copies', () => {
  const preamble = readFileSync(path.join(SHADERS, 'common.wgsl'), 'utf8');
  const shared = [...preamble.matchAll(/^(?:fn|override|const|var<workgroup>)\s+(\w+)/gm)].map((m) => m[1]);
  assert.ok(shared.includes('workgroupReduce') && shared.includes('WG'), shared.join(', '));
  // The histogram's size is the host's limit for the GPU path.
  assert.match(preamble, new RegExp(`const MAX_BINS: u32 = ${GPU_MAX_BINS}u;`));
  for (const file of Object.keys(UNIFORM_LAYOUTS)) {
    const source = readFileSync(path.join(SHADERS, file), 'utf8');
    for (const name of shared)
      assert.doesNotMatch(source, new RegExp(`^(?:fn|override|const|var<workgroup>)\\s+${name}\\b`, 'm'), `${file} redeclares ${name}`);
    // Workgroup arrays other than the histogram are sized from WG (the preamble's), not a literal.
    assert.doesNotMatch(source, /var<workgroup>\s+\w+:\s*array<f32,\s*\d+>/, `${file} sizes a reduction array with a literal`);
  }
});

test('pack writes each field at its offset, f32 and u32 by name; a missing field is an error', () => {
  const l = new UniformLayout('T', [
    ['a', 'u32'],
    ['b', 'f32'],
    ['c', 'u32'],
    ['d', 'f32'],
    ['e', 'u32'],
  ] as const);
  assert.equal(l.byteSize, 32);
  const buf = l.pack({ a: 7, b: 0.5, c: 2 ** 32 - 1, d: -3, e: 1 });
  assert.deepEqual(
    [...new Uint32Array(buf, 0, 1), new Float32Array(buf, 4, 1)[0], new Uint32Array(buf, 8, 1)[0], new Float32Array(buf, 12, 1)[0]],
    [7, 0.5, 2 ** 32 - 1, -3],
  );
  assert.throws(() => l.pack({ a: 1, b: 2, c: 3, d: 4 } as never), /T\.e is not set/);
});
