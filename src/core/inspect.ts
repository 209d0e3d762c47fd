/** The `inspect` summary of a model, from its headers alone (the CLI's --json contract). */
import { groupBlocks } from './blocks';
import type { Model } from './model';

export interface InspectSummary {
  files: string[];
  metadata: Record<string, string>;
  tensors: { name: string; dtype: string; shape: number[]; bytes: number; file: string }[];
  totalParams: number;
  totalBytes: number;
  blocks: { index: number; execIndex: number; params: number; tensors: string[] }[];
  /** Tensors in no transformer block (embeddings, final norm, lm_head). */
  other: string[];
  byDtype: Record<string, { params: number; bytes: number }>;
}

export function inspectModel(model: Model): InspectSummary {
  const byDtype: Record<string, { params: number; bytes: number }> = {};
  for (const t of model.tensors) {
    const d = (byDtype[t.dtype] ??= { params: 0, bytes: 0 });
    d.params += t.numel;
    d.bytes += t.byteLength;
  }
  const { blocks, other } = groupBlocks(model.tensors);
  return {
    files: model.files.map((f) => f.name),
    metadata: Object.assign(Object.create(null), model.metadata),
    tensors: model.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], bytes: t.byteLength, file: t.file })),
    totalParams: model.tensors.reduce((a, t) => a + t.numel, 0),
    totalBytes: model.files.reduce((a, f) => a + f.header.fileSize, 0),
    blocks: blocks.map((b) => ({ index: b.index, execIndex: b.execIndex, params: b.params, tensors: b.tensors })),
    other,
    byDtype,
  };
}
