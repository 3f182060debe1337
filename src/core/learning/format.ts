/**
 * Number and duration formatting shared by the learning texts (lessons, summaries, warnings). These strings go
 * into prompts, so they are short and unambiguous: signed percentages, fixed decimals, compact durations.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/**
 * A signed percentage with a fixed number of decimals, e.g. `+6.2%`, `-0.8%`, `0.0%`.
 * A value that rounds to zero is printed without a sign (never `-0.0%`). Non-finite input prints `n/a`.
 */
export function formatSignedPct(value: number, decimals = 1): string {
  if (!Number.isFinite(value)) return 'n/a';
  const text = Math.abs(value).toFixed(decimals);
  if (Number(text) === 0) return `${text}%`;
  return `${value > 0 ? '+' : '-'}${text}%`;
}

/** A signed USDT amount with 2 decimals, e.g. `+12.50 USDT`, `-3.07 USDT`; zero prints `0.00 USDT`. */
export function formatUsdt(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const text = Math.abs(value).toFixed(2);
  if (Number(text) === 0) return `${text} USDT`;
  return `${value > 0 ? '+' : '-'}${text} USDT`;
}

/**
 * A duration in milliseconds as the two largest units: `45m`, `5h 30m`, `2d 4h`. Rounded down to whole minutes;
 * under one minute prints `0m`. Negative or non-finite input prints `n/a` (a trade cannot end before it starts).
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'n/a';
  const days = Math.floor(ms / DAY_MS);
  const hours = Math.floor((ms % DAY_MS) / HOUR_MS);
  const minutes = Math.floor((ms % HOUR_MS) / MINUTE_MS);
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  return `${minutes}m`;
}
