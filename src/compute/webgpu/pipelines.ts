import preamble from '../../../shaders/common.wgsl';

/** Lines of the preamble, so compilation errors name the line of the kernel's own file. */
const PREAMBLE_LINES = preamble.split('\n').length;

/** A kernel's module source: the shared preamble (shaders/common.wgsl), then the kernel. */
export function kernelSource(source: string): string {
  return `${preamble}\n${source}`;
}

/**
 * A pipeline cache for one WGSL file: its module (the shared preamble, then the file) compiled once
 * (compilation errors reported with the file's line and column), one compute pipeline per entry
 * point, shared by concurrent callers.
 */
export class PipelineCache<Entry extends string> {
  private module: Promise<GPUShaderModule> | undefined;
  private readonly pipelines = new Map<Entry, Promise<GPUComputePipeline>>();

  constructor(
    private readonly device: GPUDevice,
    private readonly source: string,
    /** The file's name, for errors and GPU debug labels. */
    private readonly label: string,
    private readonly constants: Record<string, number>,
  ) {}

  get(entry: Entry): Promise<GPUComputePipeline> {
    let p = this.pipelines.get(entry);
    if (!p) {
      p = this.compile(entry);
      this.pipelines.set(entry, p);
    }
    return p;
  }

  private async compile(entry: Entry): Promise<GPUComputePipeline> {
    this.module ??= (async () => {
      const module = this.device.createShaderModule({ code: kernelSource(this.source), label: this.label });
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
      const where = (line: number) => (line > PREAMBLE_LINES ? `${line - PREAMBLE_LINES}` : `common.wgsl:${line}`);
      if (errors.length)
        throw new Error(`${this.label} does not compile: ${errors.map((m) => `${where(m.lineNum)}:${m.linePos} ${m.message}`).join('; ')}`);
      return module;
    })();
    const module = await this.module;
    return this.device.createComputePipeline({
      layout: 'auto',
      compute: { module, entryPoint: entry, constants: this.constants },
      label: `${this.label}:${entry}`,
    });
  }
}

/**
 * A command encoder holding one compute pass: `pipeline` with `entries` as bind group 0, over
 * nx x ny workgroups. The caller adds its copies and submits.
 */
export function encodeDispatch(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  entries: GPUBindGroupEntry[],
  nx: number,
  ny: number,
): GPUCommandEncoder {
  const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(nx, ny);
  pass.end();
  return enc;
}
