/** The one message channel: requests and replies, errors as rejections, validation, transfers, closing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { WeightlensError } from '../../src/core/errors';
import { Channel, Transfer, type Envelope, type Validate } from '../../src/shared/channel';

interface A {
  events: { hello: { name: string } };
  requests: { add: { body: { a: number; b: number }; reply: number }; fail: { body: { weightlens: boolean }; reply: never } };
}
interface B {
  events: { log: { line: string } };
  requests: { sum: { body: { values: Float32Array }; reply: number } };
}

/** Two channels wired back to back through in-memory ports that record what crosses. */
function pair(validate?: Validate) {
  const wire: Envelope[] = [];
  const heard: string[] = [];
  const dropped: string[] = [];
  // Delivered on a later turn, as real ports do.
  const toB = (m: Envelope) => void setImmediate(() => b.receive(m));
  const toA = (m: Envelope) => void setImmediate(() => a.receive(m));
  const a: Channel<A, B> = new Channel<A, B>(
    { post: (m) => (wire.push(m), toB(m)) },
    { events: { log: ({ line }) => void heard.push(`log ${line}`) }, requests: { sum: ({ values }) => values.reduce((x, y) => x + y, 0) } },
  );
  const b: Channel<B, A> = new Channel<B, A>(
    { post: (m) => (wire.push(m), toA(m)) },
    {
      events: { hello: ({ name }) => void heard.push(`hello ${name}`) },
      requests: {
        add: async ({ a: x, b: y }) => x + y,
        fail: ({ weightlens }) => {
          throw weightlens ? new WeightlensError('bad tensor', 'm.safetensors', 'w') : new RangeError('out of range');
        },
      },
    },
    { validate, onDropped: (why) => void dropped.push(why) },
  );
  return { a, b, wire, heard, dropped };
}

test('a request gets exactly one reply, carried as {id, inReplyTo, body}', async () => {
  const { a, wire } = pair();
  assert.equal(await a.request('add', { a: 2, b: 3 }), 5);
  const [req, reply] = wire;
  assert.equal(req.kind, 'request');
  assert.deepEqual(
    { kind: reply.kind, inReplyTo: (reply as { inReplyTo: number }).inReplyTo, body: (reply as { body: unknown }).body },
    { kind: 'reply', inReplyTo: req.id, body: 5 },
  );
  assert.equal(a.inFlight, 0);
});

test('concurrent requests are matched by id, whatever order the replies come in', async () => {
  const { a } = pair();
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => a.request('add', { a: i, b: 100 })));
  assert.deepEqual(
    results,
    Array.from({ length: 20 }, (_, i) => i + 100),
  );
});

test('a thrown error rejects the request, with its type and message', async () => {
  const { a } = pair();
  await assert.rejects(a.request('fail', { weightlens: false }), (e: Error) => e.name === 'RangeError' && e.message === 'out of range');
  await assert.rejects(a.request('fail', { weightlens: true }), (e: Error) => e instanceof WeightlensError && /bad tensor/.test(e.message));
});

test('events reach their handler; unknown requests are answered with an error', async () => {
  const { a, b, heard } = pair();
  a.notify('hello', { name: 'panel' });
  b.notify('log', { line: 'x' });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(heard.sort(), ['hello panel', 'log x']);
  await assert.rejects(
    (a as unknown as Channel<{ events: never; requests: { nope: { body: object; reply: 1 } } }, B>).request('nope', {}),
    /no handler for nope/,
  );
});

test('validation runs before any handler: a bad event is dropped, a bad request rejected', async () => {
  const validate: Validate = (_kind, type, body) =>
    type === 'add' && typeof (body as { a: unknown }).a !== 'number' ? { ok: false, why: 'a is not a number' } : { ok: true, body };
  const { a, dropped } = pair(validate);
  await assert.rejects(a.request('add', { a: 'x' as unknown as number, b: 1 }), /invalid add request: a is not a number/);
  assert.deepEqual(dropped, ['request add: a is not a number']);
  assert.equal(await a.request('add', { a: 1, b: 1 }), 2);
  const { b, dropped: d2 } = pair();
  b.receive({ nonsense: true });
  b.receive({ id: 1, kind: 'shout', type: 'x' });
  assert.equal(d2.length, 2);
});

test('closing rejects what is in flight and every later request; a port that says "gone" rejects too', async () => {
  const silent = new Channel<A, B>({ post: () => undefined }, { events: {}, requests: { sum: () => 0 } });
  const pending = silent.request('add', { a: 1, b: 2 });
  silent.dispose(new Error('the panel was closed'));
  await assert.rejects(pending, /the panel was closed/);
  await assert.rejects(silent.request('add', { a: 1, b: 2 }), /the panel was closed/);
  const gone = new Channel<A, B>({ post: () => Promise.resolve(false) }, { events: {}, requests: { sum: () => 0 } });
  await assert.rejects(gone.request('add', { a: 1, b: 2 }), /the other side of the channel is gone/);
});

test('transferables pass through: a request body and a Transfer reply move their buffers', async () => {
  const { port1, port2 } = new MessageChannel();
  const a = new Channel<A, B>({ post: (m, t) => port1.postMessage(m, t as never) }, { events: {}, requests: { sum: () => 0 } });
  const b = new Channel<B, A>(
    { post: (m, t) => port2.postMessage(m, t as never) },
    {
      events: {},
      requests: {
        add: ({ a: x, b: y }) => {
          const out = new Float32Array([x + y]);
          return new Transfer(out[0], [out.buffer]);
        },
        fail: () => 0 as never,
      },
    },
  );
  port1.on('message', (m) => a.receive(m));
  port2.on('message', (m) => b.receive(m));
  const values = new Float32Array(1024);
  // The sender's buffer is detached once moved.
  const reply = a.request('add', { a: 1, b: 2 }, [values.buffer]);
  assert.equal(values.byteLength, 0);
  assert.equal(await reply, 3);
  port1.close();
});
