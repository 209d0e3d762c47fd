/**
 * One typed message channel for every boundary Weightlens has: extension host <-> webview,
 * webview <-> web workers, extension host / CLI <-> worker threads.
 *
 * A side sends events (one way) and requests (a promise, answered by exactly one reply). On the
 * wire every message is an envelope `{id, kind, type, body}`; a reply is `{id, inReplyTo, body}` or
 * `{id, inReplyTo, error}`, and an error reply rejects the request's promise with the same error
 * type. ArrayBuffers listed as transferables are handed to the port as they are (moved, not copied,
 * where the port can). A message that fails `validate` (input from a less trusted side) is dropped,
 * and a request gets an error reply, before any handler sees it.
 */
import { WeightlensError } from '../core/errors';

/** What one side sends: its events and its requests with their replies. */
export interface Protocol {
  events: Record<string, unknown>;
  requests: Record<string, { body: unknown; reply: unknown }>;
}

export type Envelope =
  | { id: number; kind: 'event' | 'request'; type: string; body: unknown }
  | { id: number; kind: 'reply'; inReplyTo: number; body: unknown }
  | { id: number; kind: 'reply'; inReplyTo: number; error: SerializedError };

/** Where envelopes go: a webview, a Worker, a MessagePort. A false result means the other side is gone. */
export interface Port {
  post(message: Envelope, transfer: Transferable[]): void | boolean | PromiseLike<boolean>;
}

/** A body with the buffers to transfer along with it (the reply of a handler, or a request's). */
export class Transfer<T> {
  constructor(
    readonly body: T,
    readonly transfer: Transferable[],
  ) {}
}

type Events<P extends Protocol> = P['events'];
type Requests<P extends Protocol> = P['requests'];
type MaybeTransfer<T> = T | Transfer<T>;

/** The receiving side's handlers: one per event type it cares about, one per request type. */
export interface Handlers<In extends Protocol> {
  events: { [K in keyof Events<In>]?: (body: Events<In>[K]) => void };
  requests: {
    [K in keyof Requests<In>]: (
      body: Requests<In>[K]['body'],
    ) => MaybeTransfer<Requests<In>[K]['reply']> | Promise<MaybeTransfer<Requests<In>[K]['reply']>>;
  };
}

/** Checks an incoming body; returns it (or a cleaned copy), or a one-line reason to drop it. */
export type Validate = (kind: 'event' | 'request', type: string, body: unknown) => { ok: true; body: unknown } | { ok: false; why: string };

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/** The error type comes back (WeightlensError stays one: the CLI prints those without a stack). */
export function deserializeError(s: SerializedError): Error {
  if (s.name === 'WeightlensError') return new WeightlensError(s.message);
  const e = new Error(s.message);
  e.name = s.name;
  if (s.stack) e.stack = s.stack;
  return e;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The channel of one side: `Out` is what it sends, `In` what it receives. */
export class Channel<Out extends Protocol, In extends Protocol> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private closed: Error | undefined;

  constructor(
    private readonly port: Port,
    private readonly handlers: Handlers<In>,
    private readonly options: { validate?: Validate; onDropped?: (why: string) => void } = {},
  ) {}

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  notify<K extends keyof Events<Out> & string>(type: K, body: Events<Out>[K], transfer: Transferable[] = []): void {
    if (this.closed) return;
    void this.port.post({ id: this.nextId++, kind: 'event', type, body }, transfer);
  }

  request<K extends keyof Requests<Out> & string>(
    type: K,
    body: Requests<Out>[K]['body'],
    transfer: Transferable[] = [],
  ): Promise<Requests<Out>[K]['reply']> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const gone = () => this.settle(id, undefined, new Error('the other side of the channel is gone'));
      try {
        const sent = this.port.post({ id, kind: 'request', type, body }, transfer);
        if (sent === false) gone();
        else if (sent && typeof (sent as PromiseLike<boolean>).then === 'function')
          (sent as PromiseLike<boolean>).then((ok) => ok || gone(), gone);
      } catch (e) {
        this.settle(id, undefined, e instanceof Error ? e : new Error(String(e)));
      }
    });
  }

  /** Feeds one message from the port (its onmessage / 'message' listener calls this). */
  receive(raw: unknown): void {
    if (!isRecord(raw) || !isId(raw.id)) return this.drop('a message without an envelope');
    if (raw.kind === 'reply') {
      if (!isId(raw.inReplyTo)) return this.drop('a reply without inReplyTo');
      const error = raw.error;
      if (error !== undefined) {
        const e =
          isRecord(error) && typeof error.message === 'string'
            ? deserializeError(error as unknown as SerializedError)
            : new Error('malformed error');
        this.settle(raw.inReplyTo, undefined, e);
      } else this.settle(raw.inReplyTo, raw.body);
      return;
    }
    if ((raw.kind !== 'event' && raw.kind !== 'request') || typeof raw.type !== 'string') return this.drop('an unknown kind of message');
    const kind = raw.kind;
    const type = raw.type;
    let body = raw.body;
    if (this.options.validate) {
      const v = this.options.validate(kind, type, body);
      if (!v.ok) {
        this.drop(`${kind} ${type}: ${v.why}`);
        if (kind === 'request') this.replyError(raw.id, new Error(`invalid ${type} request: ${v.why}`));
        return;
      }
      body = v.body;
    }
    if (kind === 'event') {
      const handler = (this.handlers.events as Record<string, ((b: unknown) => void) | undefined>)[type];
      if (handler) handler(body);
      return;
    }
    const handler = (this.handlers.requests as Record<string, ((b: unknown) => unknown) | undefined>)[type];
    if (!handler) return this.replyError(raw.id, new Error(`no handler for ${type}`));
    const id = raw.id;
    Promise.resolve()
      .then(() => handler(body))
      .then(
        (reply) => {
          const [b, transfer] = reply instanceof Transfer ? [reply.body, reply.transfer] : [reply, []];
          if (!this.closed) void this.port.post({ id: this.nextId++, kind: 'reply', inReplyTo: id, body: b }, transfer);
        },
        (e: unknown) => this.replyError(id, e),
      );
  }

  /** Rejects every request in flight with `reason`; later sends reject at once. */
  dispose(reason = new Error('the channel was closed')): void {
    this.closed = reason;
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, reason);
  }

  /** Rejects the requests in flight (the other side died) but keeps the channel usable. */
  failPending(reason: Error): void {
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, reason);
  }

  private settle(id: number, value: unknown, error?: Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (error) p.reject(error);
    else p.resolve(value);
  }

  private replyError(inReplyTo: number, e: unknown): void {
    if (!this.closed) void this.port.post({ id: this.nextId++, kind: 'reply', inReplyTo, error: serializeError(e) }, []);
  }

  private drop(why: string): void {
    this.options.onDropped?.(why);
  }
}
