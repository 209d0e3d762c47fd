// Bundles with esbuild: the CLI and its worker thread (dist/), dev scripts, and the test suites
// (out/test/), each test file bundled with the sources it imports.
import { build } from 'esbuild';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
  define: { WEIGHTLENS_VERSION: JSON.stringify(pkg.version) },
};

rmSync(path.join(root, 'out'), { recursive: true, force: true });
const suites = ['unit'];
const testEntries = suites.flatMap((s) => {
  const dir = path.join(root, 'test', s);
  return readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => path.join(dir, f));
});

await Promise.all([
  build({ ...node, entryPoints: { cli: 'src/cli/index.ts', worker: 'src/node/worker.ts', generate: 'scripts/generate.ts', bench: 'scripts/bench.ts' }, outdir: 'dist', absWorkingDir: root }),
  build({ ...node, entryPoints: testEntries, outdir: 'out/test', outbase: 'test', packages: 'external', absWorkingDir: root }),
]);
