/**
 * Portfolio admission: the account-wide rule that every order adding exposure (an entry, an increase) passes before
 * it is sent, so that `risk.max_open_trades` and `risk.max_total_exposure_pct` hold across pairs whatever the
 * interleaving of their cycles.
 *
 * The per-pair risk gate (./risk.ts) checks the same limits, but against the account as the pair last READ it: every
 * pair's candle closes at the same instant, so N pairs that each see 2 of 3 trades open all approve an entry. The
 * admission book is the one place that sees the grants already given and not yet visible on the exchange; admitting
 * is one synchronous step on it (a function of the book and the request), so whoever owns the book serialises the
 * requests: the `account` workflow (src/workflows/account.ts) for paper, live and replay trading, an in-process book
 * for the backtester. Pure: no I/O, no clock (time comes in the request); safe in workflow code.
 *
 * - A slot per pair: the pair holds it from its admitted entry until its position is gone (the pair releases it).
 * - Open trades = pairs holding a slot ∪ pairs the requester's account snapshot shows open (a position opened
 *   outside the book, or before a lost book was rebuilt, still counts). Exposure = per pair, the larger of the slot's
 *   notional and the snapshot's.
 * - Idempotent per request id (the order's client order id): a retried request gets the first answer, never a
 *   second grant.
 * - Reductions and exits never come here: they only remove risk and must never wait.
 */

/** The limits a request is admitted under (the requester's `risk` section). */
export interface AdmissionLimits {
  maxOpenTrades: number;
  /** percent of equity (300 = 3x equity in notional) */
  maxTotalExposurePct: number;
  /** `risk.allow_model_freedom`: true = an order above the exposure room is cut down to it (when still tradable) */
  clampToRoom: boolean;
}

/** The order minimums a clamped quantity must still meet (the exchange's, as the risk gate uses them). */
export interface AdmissionMarket {
  qtyStep: number;
  minQty: number;
  minNotional: number;
}

/** A position the requester's account snapshot shows open (any pair of the account). */
export interface OpenPositionView {
  pair: string;
  notional: number;
}

export interface AdmissionRequest {
  /** the order's client order id: a retry of the same order carries the same id */
  requestId: string;
  pair: string;
  /** who holds the slot: the pair workflow id (or the backtest's order owner); releases must come from it */
  holder: string;
  kind: 'open' | 'increase';
  /** the order as the risk gate approved it */
  quantity: number;
  price: number;
  /** the account's equity as the requester read it, USDT */
  equity: number;
  /** every open position of the account as the requester read it */
  positions: OpenPositionView[];
  limits: AdmissionLimits;
  market: AdmissionMarket;
  /** request time, Unix ms (recorded on the slot) */
  at: number;
}

export type AdmissionDecision =
  | {
      status: 'granted';
      requestId: string;
      /** the quantity admitted: the request's, or less when clamped to the exposure room */
      quantity: number;
      /** why the quantity was cut, null when it was not */
      clamped: string | null;
    }
  | { status: 'refused'; requestId: string; reason: string };

export interface Slot {
  pair: string;
  holder: string;
  /** the request that took the slot (the entry's client order id) */
  requestId: string;
  /** notional admitted and not yet released, USDT */
  notional: number;
  since: number;
}

export interface AdmissionBook {
  /** by pair */
  slots: Record<string, Slot>;
  /** recent answers by request id, for idempotent retries (oldest first in `answered`) */
  answers: Record<string, AdmissionDecision>;
  answered: string[];
}

/** Answers remembered for retries. A retry comes within minutes of its request; this covers thousands of requests. */
export const REMEMBERED_ANSWERS = 2_000;

export function emptyBook(): AdmissionBook {
  return { slots: {}, answers: {}, answered: [] };
}

const usdt = (v: number): string => `${v.toFixed(2)} USDT`;

/**
 * Admit or refuse one request, updating the book in place (a grant takes or grows the pair's slot). A request id
 * answered before gets that answer again, with no change to the book.
 */
export function admit(book: AdmissionBook, req: AdmissionRequest): AdmissionDecision {
  const earlier = book.answers[req.requestId];
  if (earlier !== undefined) return earlier;
  const decision = decideAdmission(book, req);
  if (decision.status === 'granted') {
    const notional = decision.quantity * req.price;
    const slot = book.slots[req.pair];
    if (slot !== undefined && slot.holder === req.holder && req.kind === 'increase') {
      slot.notional += notional;
    } else {
      book.slots[req.pair] = { pair: req.pair, holder: req.holder, requestId: req.requestId, notional, since: req.at };
    }
  }
  remember(book, decision);
  return decision;
}

function decideAdmission(book: AdmissionBook, req: AdmissionRequest): AdmissionDecision {
  const refuse = (reason: string): AdmissionDecision => ({ status: 'refused', requestId: req.requestId, reason });
  const { limits } = req;
  const own = book.slots[req.pair];
  if (own !== undefined && own.holder !== req.holder) {
    return refuse(`${req.pair} is held by ${own.holder} (since its request ${own.requestId}); one trader per pair.`);
  }

  // open trades: the book's slots and the snapshot's positions, by pair
  const exposure = new Map<string, number>();
  for (const slot of Object.values(book.slots)) exposure.set(slot.pair, slot.notional);
  for (const p of req.positions) {
    const n = Math.abs(p.notional);
    exposure.set(p.pair, Math.max(exposure.get(p.pair) ?? 0, Number.isFinite(n) ? n : Number.POSITIVE_INFINITY));
  }
  if (req.kind === 'open') {
    // an entry replaces whatever this pair held (its earlier trade is gone, or the gate would not have approved)
    exposure.delete(req.pair);
    if (exposure.size >= limits.maxOpenTrades) {
      const holders = [...exposure.keys()].sort().join(', ');
      return refuse(
        `${exposure.size} trades are open or admitted (${holders}), at risk.max_open_trades ${limits.maxOpenTrades}.`,
      );
    }
  } else if (!exposure.has(req.pair)) {
    return refuse(`an increase of ${req.pair}, which has no open trade or slot in the account.`);
  }

  let existing = 0;
  for (const n of exposure.values()) existing += n;
  const cap = (limits.maxTotalExposurePct / 100) * req.equity;
  const room = cap - existing;
  const notional = req.quantity * req.price;
  const limitText = `risk.max_total_exposure_pct ${limits.maxTotalExposurePct}% of equity ${usdt(req.equity)} (${usdt(cap)})`;
  if (!Number.isFinite(existing)) return refuse('an open position reports a non-numeric notional; exposure unknown.');
  if (notional <= room) return { status: 'granted', requestId: req.requestId, quantity: req.quantity, clamped: null };
  const over = `${usdt(existing)} open or admitted + ${usdt(notional)} new is above ${limitText}`;
  if (!limits.clampToRoom || !(room > 0)) return refuse(`${over}.`);
  const quantity = floorTo(room / req.price, req.market.qtyStep);
  if (!(quantity > 0) || quantity < req.market.minQty || quantity * req.price < req.market.minNotional) {
    return refuse(`${over}, and the ${usdt(room)} of room left is below the order minimums.`);
  }
  return {
    status: 'granted',
    requestId: req.requestId,
    quantity,
    clamped: `quantity ${req.quantity} cut to ${quantity} at admission: ${over}.`,
  };
}

/** `value` rounded down to a multiple of `step` (any value when step is 0), with a tolerance for float error. */
function floorTo(value: number, step: number): number {
  if (!(step > 0)) return value;
  const n = Math.floor(value / step + 1e-9);
  return Number((n * step).toFixed(12));
}

function remember(book: AdmissionBook, decision: AdmissionDecision): void {
  book.answers[decision.requestId] = decision;
  book.answered.push(decision.requestId);
  while (book.answered.length > REMEMBERED_ANSWERS) {
    const old = book.answered.shift()!;
    delete book.answers[old];
  }
}

/**
 * The holder's pair is flat, or smaller: set its slot's notional (0 releases the slot). Only the slot's holder can
 * change it; a release of a slot taken by a later request (`requestId` given and different) is ignored, so that a
 * late release of an abandoned request cannot free the slot of the entry that followed it. Returns whether the book
 * changed.
 */
export function settle(
  book: AdmissionBook,
  s: { pair: string; holder: string; notional: number; requestId?: string | null },
): boolean {
  const slot = book.slots[s.pair];
  if (slot === undefined || slot.holder !== s.holder) return false;
  if (s.requestId != null && s.requestId !== slot.requestId) return false;
  if (!(s.notional > 0)) {
    delete book.slots[s.pair];
    return true;
  }
  if (slot.notional === s.notional) return false;
  slot.notional = s.notional;
  return true;
}

/** Open slots, by pair (for status and tests). */
export function openSlots(book: AdmissionBook): Slot[] {
  return Object.values(book.slots).sort((a, b) => (a.pair < b.pair ? -1 : a.pair > b.pair ? 1 : 0));
}

/**
 * What a pair's driver (its workflow, or the backtester for the pair) believes its slot holds: it keeps the book in
 * step with the pair's real position after every cycle (see {@link slotAfterCycle}).
 */
export interface HeldSlot {
  /** the request that took the slot (the entry's client order id) */
  requestId: string;
  notional: number;
  /** the book may hold more than `notional` (an answer that came after its request was given up) */
  uncertain: boolean;
}

/** The pair's slot after an admission answer of one of its cycles. */
export function slotAfterAdmission(
  held: HeldSlot | null,
  request: AdmissionRequest,
  decision: AdmissionDecision,
): HeldSlot | null {
  if (decision.status !== 'granted') return held;
  const notional = decision.quantity * request.price;
  if (request.kind === 'open' || held === null) {
    return { requestId: request.requestId, notional, uncertain: false };
  }
  return { requestId: held.requestId, notional: held.notional + notional, uncertain: held.uncertain };
}

/** A settlement to send to the book: the pair's slot now holds `notional` (0 = release it). */
export interface Settlement {
  pair: string;
  holder: string;
  requestId: string;
  notional: number;
}

/** Relative difference of notional below which a slot is not re-settled (fill prices differ from decision prices). */
const SETTLE_TOLERANCE = 0.01;

/**
 * After a cycle: release the slot of a pair that is flat (its trade closed, or its admitted entry was not filled),
 * re-size the slot of a position that shrank or whose increase did not fill. Returns the settlement to send (null:
 * the book is right) and the slot the driver holds once it is applied.
 */
export function slotAfterCycle(
  held: HeldSlot | null,
  position: { pair: string; quantity: number; entryPrice: number } | null,
  pair: string,
  holder: string,
): { settlement: Settlement | null; held: HeldSlot | null } {
  if (held === null) return { settlement: null, held: null };
  if (position === null) {
    return { settlement: { pair, holder, requestId: held.requestId, notional: 0 }, held: null };
  }
  const notional = Math.abs(position.quantity * position.entryPrice);
  const off = Math.abs(notional - held.notional) > SETTLE_TOLERANCE * Math.max(notional, held.notional);
  if (!off && !held.uncertain) return { settlement: null, held };
  return {
    settlement: { pair, holder, requestId: held.requestId, notional },
    held: { requestId: held.requestId, notional, uncertain: false },
  };
}
