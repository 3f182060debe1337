/**
 * The local Binance USDⓈ-M exchange as a standalone process, to rehearse live mode without keys or money:
 *
 *   npx tsx test/local-exchange/main.ts [--port 8900] [--data ../shared/data/binanceusdm] [--start 2025-06-12]
 *                                       [--balance 10000] [--api-key <key> --api-secret <secret>]
 *
 * The recorded market of `--start` (a day of the data) is served as if it were today: every time on the wire is the
 * recorded time shifted by whole days, and the market clock runs with the wall clock, so a candle closes every 30
 * minutes and `llm-trader dev --mode live -c config/live.json` trades on it as on Binance. Keys are made up at start
 * unless given, and printed as the EXCHANGE_API_KEY / EXCHANGE_API_SECRET exports the worker reads. The books live in
 * memory (a restart starts a new account); `GET /local/books` shows them. Ctrl-C stops it.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalExchange } from './server';

const DAY_MS = 86_400_000;

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8900' },
    data: { type: 'string' },
    start: { type: 'string', default: '2025-06-12' },
    balance: { type: 'string', default: '10000' },
    'api-key': { type: 'string' },
    'api-secret': { type: 'string' },
  },
});

const recordedDay = Date.parse(`${values.start}T00:00:00Z`);
if (!Number.isFinite(recordedDay)) {
  console.error(`--start ${values.start} is not a date: give a day of the recorded data, e.g. 2025-06-12`);
  process.exit(2);
}
const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
const shiftMs = today - recordedDay;
const apiKey = values['api-key'] ?? `local-${randomBytes(16).toString('hex')}`;
const apiSecret = values['api-secret'] ?? randomBytes(32).toString('hex');
const balance = Number(values.balance);

const exchange = await LocalExchange.start({
  apiKey,
  apiSecret,
  clock: () => Date.now() - shiftMs,
  shiftMs,
  port: Number(values.port),
  engine: { startingBalance: balance },
  ...(values.data ? { dataDir: resolve(values.data) } : {}),
});
const span = exchange.market.span();
const servedUntil = new Date(span.end + shiftMs).toISOString();
console.log(
  [
    `local Binance USDⓈ-M exchange on ${exchange.url} (symbols ${exchange.market.symbols.join(', ')})`,
    `  market: the recording of ${values.start} onwards (${exchange.market.dir}), served as today; ` +
      `it ends at ${servedUntil}`,
    `  account: ${balance} USDT, one-way mode; books: ${exchange.url}/local/books`,
    '  for the worker:',
    `    export EXCHANGE_API_KEY=${apiKey}`,
    `    export EXCHANGE_API_SECRET=${apiSecret}`,
    `  and exchange.api_url = "${exchange.url}" in the config (config/live.json has it)`,
  ].join('\n'),
);

const stop = (): void => {
  void exchange.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
