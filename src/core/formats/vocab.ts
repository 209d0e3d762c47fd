/**
 * Tokenizer vocabularies for GGUF's `tokenizer.ggml.*` keys, read from the files a checkpoint ships:
 *
 * - llama2.c's `tokenizer.bin` / `tok512.bin`: u32 max_token_length, then per token an f32 score,
 *   a u32 length and the bytes. Converted as llama.cpp's `convert-llama2c-to-ggml` does: ids 0/1/2
 *   are `<unk>`/`<s>`/`</s>`, `<0xXX>` pieces are byte tokens, spaces become U+2581 (SentencePiece's
 *   word boundary, which llama2.c's export had turned back into spaces).
 * - SentencePiece's `tokenizer.model`: a protobuf ModelProto whose field 1 repeats
 *   SentencePiece {1: piece, 2: score, 3: type}; the types are llama.cpp's token types.
 *
 * Both are llama.cpp's `llama` (SPM) tokenizer model.
 */
import { WeightlensError } from '../errors';
import { TokenType } from './gguf';

export interface Vocab {
  /** tokenizer.ggml.model */
  readonly model: 'llama' | 'gpt2';
  readonly tokens: readonly string[];
  /** SentencePiece scores; empty for BPE (llama.cpp ranks BPE merges by their order). */
  readonly scores: readonly number[];
  readonly types: readonly TokenType[];
  /** Where the vocabulary came from, for the report. */
  readonly source: string;
  /** BPE only: llama.cpp's pre-tokenizer name (tokenizer.ggml.pre) and the merges, in rank order. */
  readonly pre?: string;
  readonly merges?: readonly string[];
  /** Special tokens and whether BOS is added, when the tokenizer files say (else config.json's). */
  readonly bos?: number;
  readonly eos?: number;
  readonly addBos?: boolean;
}

export function llama2cVocab(bytes: Uint8Array, vocabSize: number, file: string): Vocab {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new WeightlensError(`is not a llama2.c tokenizer for ${vocabSize} tokens (${why})`, file);
  };
  if (bytes.byteLength < 4) fail('too short');
  let at = 4; // max_token_length: unused
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: TokenType[] = [];
  const decoder = new TextDecoder('utf-8');
  for (let id = 0; id < vocabSize; id++) {
    if (at + 8 > bytes.byteLength) fail(`it ends at token ${id}`);
    const score = dv.getFloat32(at, true);
    const len = dv.getUint32(at + 4, true);
    at += 8;
    if (at + len > bytes.byteLength) fail(`token ${id} runs past the end`);
    let text = decoder.decode(bytes.subarray(at, at + len));
    at += len;
    let type = TokenType.NORMAL;
    if (id === 0) {
      text = '<unk>';
      type = TokenType.UNKNOWN;
    } else if (id === 1) {
      text = '<s>';
      type = TokenType.CONTROL;
    } else if (id === 2) {
      text = '</s>';
      type = TokenType.CONTROL;
    } else if (text === '') type = TokenType.CONTROL;
    else if (/^<0x[0-9A-Fa-f]{2}>$/.test(text)) type = TokenType.BYTE;
    tokens.push(text.replace(/ /g, '\u2581'));
    scores.push(score);
    types.push(type);
  }
  if (at !== bytes.byteLength)
    fail(`${bytes.byteLength - at} bytes are left after ${vocabSize} tokens: the model's vocab_size does not match`);
  return { model: 'llama', tokens, scores, types, source: 'llama2.c tokenizer' };
}

/** Minimal protobuf reading: varints and length-delimited fields are all ModelProto needs. */
class Proto {
  at = 0;
  constructor(
    readonly b: Uint8Array,
    readonly end = b.byteLength,
  ) {}
  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.at >= this.end) throw new Error('truncated varint');
      const byte = this.b[this.at++];
      result += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.at += 8;
    else if (wire === 2) this.at += this.varint();
    else if (wire === 5) this.at += 4;
    else throw new Error(`unsupported wire type ${wire}`);
    if (this.at > this.end) throw new Error('field runs past the end');
  }
}

export function sentencePieceVocab(bytes: Uint8Array, file: string): Vocab {
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: TokenType[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8');
  try {
    const p = new Proto(bytes);
    while (p.at < p.end) {
      const key = p.varint();
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (field !== 1 || wire !== 2) {
        p.skip(wire);
        continue;
      }
      const len = p.varint();
      const piece = new Proto(bytes, p.at + len);
      piece.at = p.at;
      p.at += len;
      let text = '';
      let score = 0;
      let type = TokenType.NORMAL;
      while (piece.at < piece.end) {
        const k = piece.varint();
        const f = Math.floor(k / 8);
        const w = k & 7;
        if (f === 1 && w === 2) {
          const n = piece.varint();
          text = decoder.decode(bytes.subarray(piece.at, piece.at + n));
          piece.at += n;
        } else if (f === 2 && w === 5) {
          score = dv.getFloat32(piece.at, true);
          piece.at += 4;
        } else if (f === 3 && w === 0) type = piece.varint() as TokenType;
        else piece.skip(w);
      }
      tokens.push(text);
      scores.push(score);
      types.push(type);
    }
  } catch (e) {
    throw new WeightlensError(`is not a SentencePiece model (${(e as Error).message})`, file);
  }
  if (tokens.length === 0) throw new WeightlensError('is not a SentencePiece model (no pieces)', file);
  return { model: 'llama', tokens, scores, types, source: 'SentencePiece tokenizer.model' };
}

/** The parts of a Hugging Face tokenizer.json (and tokenizer_config.json) a GGUF needs. */
interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  pre_tokenizer?: PreTokenizer | null;
  post_processor?: {
    type?: string;
    single?: { SpecialToken?: { id?: string } }[];
    processors?: { type?: string; single?: { SpecialToken?: { id?: string } }[] }[];
  } | null;
}
interface PreTokenizer {
  type?: string;
  pretokenizers?: PreTokenizer[];
  pattern?: { Regex?: string; String?: string };
  individual_digits?: boolean;
  use_regex?: boolean;
}
interface TokenizerConfig {
  bos_token?: string | { content?: string } | null;
  eos_token?: string | { content?: string } | null;
  add_bos_token?: boolean;
}

/**
 * llama.cpp's name for a BPE pre-tokenizer. Its converter hashes the tokens of a test text
 * (`get_vocab_base_pre`), which needs the HF tokenizer running; here the pre-tokenizer's own
 * definition is read instead, for the families GGUF output supports: Llama 3 (digits in threes),
 * Qwen2 (single digits), SmolLM (individual digits, then GPT-2's byte level), GPT-2.
 */
export function bpePreTokenizer(t: TokenizerJson): string | undefined {
  const all: PreTokenizer[] = [];
  const walk = (p: PreTokenizer | null | undefined) => {
    if (!p) return;
    all.push(p);
    p.pretokenizers?.forEach(walk);
  };
  walk(t.pre_tokenizer);
  const regex = all.map((p) => p.pattern?.Regex).find((r) => r !== undefined);
  if (regex !== undefined) {
    if (regex.includes('\\p{N}{1,3}')) return 'llama-bpe';
    if (/\|\\p\{N\}\|/.test(regex)) return 'qwen2';
    return undefined;
  }
  const digits = all.some((p) => p.type === 'Digits' && p.individual_digits);
  const byteLevel = all.some((p) => p.type === 'ByteLevel' && p.use_regex !== false);
  if (digits && byteLevel) return 'smollm';
  if (byteLevel && all.length === 1) return 'gpt-2';
  return undefined;
}

/**
 * A BPE tokenizer.json as llama.cpp's `gpt2` tokenizer model, as its converter writes it
 * (`get_vocab_base`, `SpecialVocab`): ids 0..vocabSize-1, missing ids `[PADn]` UNUSED, added special
 * tokens CONTROL, other added tokens USER_DEFINED; merges as "a b" (spaces inside a pair's parts
 * shifted to U+0120 + ... as llama.cpp encodes them).
 */
export function bpeVocab(json: TokenizerJson, config: TokenizerConfig | undefined, vocabSize: number, file: string): Vocab {
  const m = json.model;
  if (!m || m.type !== 'BPE' || !m.vocab)
    throw new WeightlensError(`has a ${m?.type ?? 'missing'} model; GGUF output reads BPE tokenizer.json files`, file);
  const pre = bpePreTokenizer(json);
  if (!pre)
    throw new WeightlensError(
      "has a pre-tokenizer Weightlens cannot name for llama.cpp yet (it knows Llama 3's, Qwen2's, SmolLM's and GPT-2's)",
      file,
    );
  const tokens: string[] = Array.from({ length: vocabSize }, (_, i) => `[PAD${i}]`);
  const types: TokenType[] = new Array(vocabSize).fill(TokenType.UNUSED);
  const place = (id: number, text: string, type: TokenType) => {
    if (!Number.isInteger(id) || id < 0) throw new WeightlensError(`token ${JSON.stringify(text)} has the id ${id}`, file);
    if (id >= vocabSize)
      throw new WeightlensError(`token ${JSON.stringify(text)} has the id ${id}, beyond the model's ${vocabSize} embeddings`, file);
    tokens[id] = text;
    types[id] = type;
  };
  for (const [text, id] of Object.entries(m.vocab)) place(id, text, TokenType.NORMAL);
  const ids = new Map<string, number>(Object.entries(m.vocab));
  for (const a of json.added_tokens ?? []) {
    place(a.id, a.content, a.special ? TokenType.CONTROL : TokenType.USER_DEFINED);
    ids.set(a.content, a.id);
  }
  const merges = (m.merges ?? []).map((x) =>
    typeof x === 'string' ? x : x.map((part) => part.replace(/ /g, String.fromCharCode(0x20 + 256))).join(' '),
  );
  const special = (t: TokenizerConfig['bos_token']) => {
    const text = typeof t === 'string' ? t : t?.content;
    return text === undefined ? undefined : ids.get(text);
  };
  const processors = json.post_processor ? (json.post_processor.processors ?? [json.post_processor]) : [];
  const template = processors.find((p) => p.type === 'TemplateProcessing');
  const leading = template?.single?.[0]?.SpecialToken?.id;
  const addBos = typeof config?.add_bos_token === 'boolean' ? config.add_bos_token : leading !== undefined;
  return {
    model: 'gpt2',
    tokens,
    scores: [],
    types,
    source: `BPE tokenizer.json (pre-tokenizer ${pre})`,
    pre,
    merges,
    bos: special(config?.bos_token) ?? (leading !== undefined ? ids.get(leading) : undefined),
    eos: special(config?.eos_token),
    addBos,
  };
}
