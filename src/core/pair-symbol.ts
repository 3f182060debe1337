/** ccxt unified symbol of a USDT-margined perpetual, e.g. BTC/USDT:USDT */
export const PAIR_RE = /^[A-Z0-9]+\/[A-Z0-9]+:[A-Z0-9]+$/;
