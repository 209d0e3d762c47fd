// Bundles with esbuild: the CLI and its worker thread, the extension host bundle, the inspector
// webview bundle (with the codicon font it uses), dev scripts (dist/), and the test suites
// (out/test/), each test file bundled with the sources it imports.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const production = process.argv.includes('--production');
const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  logLevel: 'warning',
  absWorkingDir: root,
  define: { WEIGHTLENS_VERSION: JSON.stringify(pkg.version) },
  loader: { '.wgsl': 'text' },
  // Native modules, loaded from node_modules at run time, never bundled: Dawn for Node, llama.cpp
  // (node-llama-cpp, an optional dependency loaded only to evaluate) and koffi (the benchmark's FFI).
  external: ['webgpu', 'node-llama-cpp', 'koffi'],
};

rmSync(path.join(root, 'out'), { recursive: true, force: true });
rmSync(path.join(root, 'dist'), { recursive: true, force: true });
const suites = ['unit', 'gpu'];
const testEntries = suites.flatMap((s) => {
  const dir = path.join(root, 'test', s);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join(dir, f));
});

mkdirSync(path.join(root, 'dist', 'webview'), { recursive: true });
for (const f of ['codicon.css', 'codicon.ttf']) {
  copyFileSync(path.join(root, 'node_modules', '@vscode', 'codicons', 'dist', f), path.join(root, 'dist', 'webview', f));
}

await Promise.all([
  build({
    ...node,
    entryPoints: {
      cli: 'src/cli/index.ts',
      worker: 'src/node/worker.ts',
      'generate-worker': 'src/node/generate-worker.ts',
      generate: 'scripts/generate.ts',
      bench: 'scripts/bench.ts',
      'llama-quantize': 'scripts/llama-quantize.ts',
    },
    outdir: 'dist',
  }),
  build({
    ...node,
    entryPoints: { extension: 'src/extension/extension.ts' },
    outdir: 'dist',
    external: ['vscode', 'webgpu', 'node-llama-cpp'],
  }),
  build({
    bundle: true,
    platform: 'browser',
    target: 'chrome120',
    format: 'iife',
    sourcemap: !production,
    minify: production,
    logLevel: 'warning',
    absWorkingDir: root,
    loader: { '.wgsl': 'text' },
    entryPoints: { inspector: 'webview/inspector/main.ts', 'scales-worker': 'webview/inspector/scales-worker.ts' },
    outdir: 'dist/webview',
  }),
  build({
    ...node,
    entryPoints: testEntries,
    outdir: 'out/test',
    outbase: 'test',
    packages: 'external',
    external: ['vscode', 'webgpu', 'node-llama-cpp', 'koffi'],
  }),
]);
