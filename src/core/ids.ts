/**
 * Deterministic identifiers. Pure: used by workflows, the backtester and activities alike.
 */

/** 53-bit FNV-1a style hash of a string (two 32-bit lanes), as 12 hex characters. Not cryptographic. */
export function shortHash(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return (h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0')).slice(0, 12);
}

/**
 * Client order id for the `index`-th order of the cycle that decided at candle close `closeTime`, owned by `ownerId`
 * (the pair workflow id, or the backtest run id). The same inputs always give the same id, so a retried or replayed
 * activity finds the order it already placed instead of placing a second one.
 *
 * Format `lt<hash12><closeTime base36><index base36>`: at most 24 characters of [0-9a-z], inside every major
 * exchange's limit (Binance: 36, [.A-Z:/a-z0-9_-]).
 */
export function clientOrderId(ownerId: string, closeTime: number, index: number): string {
  if (!Number.isSafeInteger(closeTime) || closeTime < 0)
    throw new Error(`clientOrderId: closeTime must be a Unix ms integer, got ${closeTime}`);
  if (!Number.isInteger(index) || index < 0 || index > 35)
    throw new Error(`clientOrderId: index must be 0..35, got ${index}`);
  return `lt${shortHash(ownerId)}${closeTime.toString(36)}${index.toString(36)}`;
}

/** The client order id of the protective stop placed with a trade's entry (`tradeId` = the entry's client order id). */
export function stopOrderId(tradeId: string): string {
  return `${tradeId}s`;
}

/**
 * The id of one decision: the one `owner` (the pair workflow id, or the backtest run id) takes on `pair` at candle
 * close `time` (Unix ms). The journal keys decisions and their prompts by it, so an activity that stores the prompt
 * and the one that journals the decision name the same record without passing the prompt through workflow history.
 *
 * Format `d<hash12 of "owner|pair"><time base36>`: [0-9a-z], 21 characters for times between 2001 and 2059.
 */
export function decisionId(owner: string, pair: string, time: number): string {
  return decisionIdAt(decisionIdPrefix(owner, pair), time);
}

/**
 * The part of {@link decisionId} that depends on the owner and the pair only (`d<hash12>`), for a caller that names
 * many decisions of one owner and pair (a backtest's decision log): `decisionIdAt(prefix, time)` completes it.
 */
export function decisionIdPrefix(owner: string, pair: string): string {
  return `d${shortHash(`${owner}|${pair}`)}`;
}

/** {@link decisionId} from its {@link decisionIdPrefix}. */
export function decisionIdAt(prefix: string, time: number): string {
  if (!Number.isSafeInteger(time) || time < 0)
    throw new Error(`decisionId: time must be the candle close in Unix ms (an integer >= 0), got ${time}`);
  return `${prefix}${time.toString(36)}`;
}
