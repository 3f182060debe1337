/**
 * `llm-trader trades [pair] [--run <run|all>]`: the latest closed trades from the journal (`<data_dir>/journal.sqlite`)
 * with their review (grade, reward), and the win/loss summary of the run. The first line names the run shown (default:
 * the current run, the one of the latest record) and how to see others. `--json` prints the trades as a JSON array.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { JournaledTrade, WinLossBreakdown } from '../../store/journal';
import {
  addConfigOption,
  checkPair,
  formatDuration,
  formatNumber,
  formatSigned,
  formatTable,
  formatTime,
  positiveInt,
  readConfig,
  runHeader,
  runName,
  type ConfigOptions,
} from './shared';

interface TradesOptions extends ConfigOptions {
  limit: string;
  json?: boolean;
  run?: string;
}

/** Adds the `trades` command to `program`. */
export function registerTrades(program: Command): void {
  const command = program
    .command('trades')
    .description('show the latest closed trades from the journal (PnL, exit reason, grade, reward) and a summary')
    .argument('[pair]', 'one pair, e.g. BTC/USDT:USDT (default: all pairs)')
    .option('-n, --limit <n>', 'how many of the latest trades to show', '20')
    .option('-r, --run <run>', 'the run to show: paper, live, replay-<id>, or all (default: the current run)')
    .option('--json', 'print the trades (with their lessons) as a JSON array');
  addConfigOption(command);
  command.action(async (pairArg: string | undefined, opts: TradesOptions, cmd: Command) => {
    const pair = pairArg !== undefined ? checkPair(cmd, pairArg) : null;
    const limit = positiveInt(cmd, '--limit', opts.limit);
    const config = await readConfig(opts);
    const { Journal, journalPaths } = await import('../../store/journal');
    const database = journalPaths(config.data_dir).database;
    if (!existsSync(database)) {
      if (opts.json) console.log('[]');
      else console.log(`no trades yet: ${database} does not exist (the worker creates it)`);
      return;
    }
    const journal = Journal.fromConfig(config);
    try {
      const current = journal.currentRun();
      const run = opts.run === 'all' ? null : (opts.run ?? current);
      const trades = journal.recentTrades(pair, limit, { run });
      if (opts.json) {
        console.log(JSON.stringify(trades, null, 2));
        return;
      }
      console.log(runHeader(run, current, journal.runs()));
      if (trades.length === 0) {
        const where = run !== null ? ` in run ${runName(run)}` : '';
        console.log(`no closed trades${pair ? ` for ${pair}` : ''}${where} in ${database} yet`);
        return;
      }
      console.log(tradesTable(trades));
      console.log(`\n${summaryLine(journal.winLossBreakdown(pair, { run }))}`);
    } finally {
      journal.close();
    }
  });
}

/**
 * One row per trade, oldest first: exit time, pair, side, entry and exit price, leverage, held time, net PnL in USDT
 * and in % of margin (leveraged), exit reason, grade, reward.
 */
export function tradesTable(trades: readonly JournaledTrade[]): string {
  return formatTable(
    ['closed', 'pair', 'side', 'entry', 'exit', 'lev', 'held', 'PnL USDT', 'PnL %', 'exit reason', 'grade', 'reward'],
    trades.map(({ trade: t, grade, reward }) => [
      formatTime(t.exitTime),
      t.pair,
      t.side,
      formatNumber(t.entryPrice),
      formatNumber(t.exitPrice),
      `x${t.leverage}`,
      formatDuration(t.exitTime - t.entryTime),
      formatSigned(t.pnl),
      formatSigned(t.pnlPct),
      t.exitReason,
      grade ?? '-',
      reward === null ? '-' : formatSigned(reward, 3),
    ]),
    [3, 4, 5, 6, 7, 8, 11],
  );
}

/** `all pairs: 12 trades, 7 wins, 5 losses (58.3 % won), net +123.45 USDT, mean +4.20 % per trade`. */
export function summaryLine(b: WinLossBreakdown): string {
  const rate = b.winRate === null ? '-' : `${(b.winRate * 100).toFixed(1)} % won`;
  return (
    `${b.pair ?? 'all pairs'}: ${b.count} trades, ${b.wins} wins, ${b.losses} losses (${rate}), ` +
    `net ${formatSigned(b.totalPnl)} USDT, mean ${formatSigned(b.avgPnlPct)} % per trade`
  );
}
