/**
 * Portfolio admission (src/core/admission.ts): whatever the interleaving of the pairs' requests, retries and
 * releases, the book never admits more open trades than `max_open_trades` nor more notional than
 * `max_total_exposure_pct` of equity; a release always frees its slot; a retried request never takes a second one.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  admit,
  emptyBook,
  openSlots,
  settle,
  slotAfterAdmission,
  slotAfterCycle,
  type AdmissionRequest,
} from '../../src/core/admission';

const PAIRS = ['BTC', 'ETH', 'SOL', 'DOGE', 'XRP', 'ADA', 'LINK', 'BNB', 'AVAX', 'DOT'];
const MARKET = { qtyStep: 0.001, minQty: 0.001, minNotional: 5 };

function request(over: Partial<AdmissionRequest> & { pair: string; requestId: string }): AdmissionRequest {
  return {
    holder: `pair:${over.pair}`,
    kind: 'open',
    quantity: 1,
    price: 100,
    equity: 10_000,
    positions: [],
    limits: { maxOpenTrades: 3, maxTotalExposurePct: 300, clampToRoom: false },
    market: MARKET,
    at: 0,
    ...over,
  };
}

type Op =
  | { op: 'open'; pair: number; notional: number; id: number }
  | { op: 'increase'; pair: number; notional: number; id: number }
  | { op: 'retry'; index: number }
  | { op: 'exit'; pair: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('open' as const),
    pair: fc.nat(PAIRS.length - 1),
    notional: fc.integer({ min: 10, max: 20_000 }),
    id: fc.nat(1_000_000),
  }),
  fc.record({
    op: fc.constant('increase' as const),
    pair: fc.nat(PAIRS.length - 1),
    notional: fc.integer({ min: 10, max: 10_000 }),
    id: fc.nat(1_000_000),
  }),
  fc.record({ op: fc.constant('retry' as const), index: fc.nat(200) }),
  fc.record({ op: fc.constant('exit' as const), pair: fc.nat(PAIRS.length - 1) }),
);

describe('portfolio admission', () => {
  test('any interleaving of concurrent entries, increases, retries and exits keeps both limits', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 50, max: 500 }),
        fc.boolean(),
        (ops, maxOpenTrades, maxTotalExposurePct, clampToRoom) => {
          const book = emptyBook();
          const equity = 10_000;
          const cap = (maxTotalExposurePct / 100) * equity;
          const sent: AdmissionRequest[] = [];
          const grantedIds = new Set<string>();
          for (const op of ops) {
            if (op.op === 'exit') {
              const pair = PAIRS[op.pair]!;
              const slot = book.slots[pair];
              // an exit never asks admission; its release always frees the slot
              if (slot) {
                settle(book, { pair, holder: slot.holder, requestId: slot.requestId, notional: 0 });
                assert.equal(book.slots[pair], undefined, 'a release frees the slot');
              }
              continue;
            }
            let req: AdmissionRequest;
            if (op.op === 'retry') {
              if (sent.length === 0) continue;
              req = sent[op.index % sent.length]!;
            } else {
              const pair = PAIRS[op.pair]!;
              req = request({
                pair,
                requestId: `${pair}-${op.id}`,
                kind: op.op,
                quantity: op.notional / 100,
                equity,
                limits: { maxOpenTrades, maxTotalExposurePct, clampToRoom },
              });
              sent.push(req);
            }
            const before = structuredClone(book.slots);
            const decision = admit(book, req);
            if (op.op === 'retry') {
              // a retry gets the first answer and changes nothing
              assert.deepEqual(book.slots, before, 'a retried request changes nothing');
              assert.equal(decision.status === 'granted', grantedIds.has(req.requestId));
            }
            if (decision.status === 'granted') grantedIds.add(req.requestId);
            const slots = openSlots(book);
            assert.ok(slots.length <= maxOpenTrades, `${slots.length} slots > max_open_trades ${maxOpenTrades}`);
            const total = slots.reduce((s, x) => s + x.notional, 0);
            assert.ok(total <= cap + 1e-6, `total notional ${total} > cap ${cap}`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  test('positions the account shows open count against the limits even without a slot', () => {
    const book = emptyBook();
    const positions = [
      { pair: 'BTC', notional: 1_000 },
      { pair: 'ETH', notional: 1_000 },
    ];
    const first = admit(book, request({ pair: 'SOL', requestId: 's1', positions }));
    assert.equal(first.status, 'granted');
    const second = admit(book, request({ pair: 'DOGE', requestId: 'd1', positions }));
    assert.equal(second.status, 'refused');
    assert.match(second.status === 'refused' ? second.reason : '', /3 trades are open or admitted \(BTC, ETH, SOL\)/);
  });

  test('an entry above the exposure room is cut to it when model freedom allows, refused otherwise', () => {
    const limits = { maxOpenTrades: 5, maxTotalExposurePct: 100, clampToRoom: true };
    const book = emptyBook();
    assert.equal(admit(book, request({ pair: 'BTC', requestId: 'b', quantity: 80, limits })).status, 'granted');
    // 8,000 of 10,000 used: a 5,000 entry is cut to 2,000 (20 at price 100)
    const cut = admit(book, request({ pair: 'ETH', requestId: 'e', quantity: 50, limits }));
    assert.equal(cut.status, 'granted');
    assert.equal(cut.status === 'granted' ? cut.quantity : 0, 20);
    assert.match(cut.status === 'granted' ? (cut.clamped ?? '') : '', /cut to 20/);
    const strict = emptyBook();
    admit(strict, request({ pair: 'BTC', requestId: 'b', quantity: 80, limits: { ...limits, clampToRoom: false } }));
    const refused = admit(
      strict,
      request({ pair: 'ETH', requestId: 'e', quantity: 50, limits: { ...limits, clampToRoom: false } }),
    );
    assert.equal(refused.status, 'refused');
    assert.match(refused.status === 'refused' ? refused.reason : '', /max_total_exposure_pct 100%/);
  });

  test('a late release of an abandoned request does not free the slot of the entry that followed it', () => {
    const book = emptyBook();
    admit(book, request({ pair: 'BTC', requestId: 'first' }));
    settle(book, { pair: 'BTC', holder: 'pair:BTC', requestId: 'first', notional: 0 });
    admit(book, request({ pair: 'BTC', requestId: 'second' }));
    assert.equal(settle(book, { pair: 'BTC', holder: 'pair:BTC', requestId: 'first', notional: 0 }), false);
    assert.equal(book.slots['BTC']?.requestId, 'second');
    // another holder cannot release it either
    assert.equal(settle(book, { pair: 'BTC', holder: 'pair:other', notional: 0 }), false);
  });

  test("the pair's driver releases its slot when flat and re-sizes it when the position shrank", () => {
    const req = request({ pair: 'BTC', requestId: 'e1', quantity: 10, price: 100 });
    const book = emptyBook();
    const decision = admit(book, req);
    let held = slotAfterAdmission(null, req, decision);
    assert.deepEqual(held, { requestId: 'e1', notional: 1_000, uncertain: false });
    // filled at a slightly different price: nothing to settle
    let after = slotAfterCycle(held, { pair: 'BTC', quantity: 10, entryPrice: 100.2 }, 'BTC', 'pair:BTC');
    assert.equal(after.settlement, null);
    // reduced by half: the slot shrinks
    after = slotAfterCycle(held, { pair: 'BTC', quantity: 5, entryPrice: 100 }, 'BTC', 'pair:BTC');
    assert.deepEqual(after.settlement, { pair: 'BTC', holder: 'pair:BTC', requestId: 'e1', notional: 500 });
    settle(book, after.settlement!);
    assert.equal(book.slots['BTC']?.notional, 500);
    held = after.held;
    // closed: released
    after = slotAfterCycle(held, null, 'BTC', 'pair:BTC');
    assert.equal(after.settlement?.notional, 0);
    settle(book, after.settlement!);
    assert.equal(openSlots(book).length, 0);
    assert.equal(after.held, null);
  });
});
