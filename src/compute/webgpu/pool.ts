/** GPU buffers reused by size class and usage, so a stream of blocks does not allocate per block. */
export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  constructor(private readonly device: GPUDevice) {}
  acquire(size: number, usage: number): GPUBuffer {
    const rounded = Math.max(256, 2 ** Math.ceil(Math.log2(size)));
    const key = `${rounded}:${usage}`;
    return this.free.get(key)?.pop() ?? this.device.createBuffer({ size: rounded, usage });
  }
  release(b: GPUBuffer): void {
    const key = `${b.size}:${b.usage}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    list.push(b);
  }
  destroy(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
  }
}
