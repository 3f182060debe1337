/**
 * SQLite persistence of the paper account (better-sqlite3, WAL): the {@link PaperLedger} state as plain tables, so a
 * reopened database continues exactly where it was, and so the account can be read with any SQLite client.
 *
 * How: every mutation runs inside one transaction that also writes what the ledger reports as changed
 * ({@link PaperLedger.takeChanges}): the account row, the cursor and position rows of the touched pairs, the created or
 * changed orders, and the new fills, funding settlements and liquidations. So an order row, its fill and the
 * account and position they produce are committed together or not at all. Opening the database reads every table
 * back into {@link PaperLedger.restore}; figures are stored as SQLite REAL (IEEE doubles) and come back bit for bit.
 *
 * Several processes (workers of one task queue on one machine) may share the file: every mutation runs in an
 * IMMEDIATE transaction (the write lock first), and the in-memory ledger is reloaded whenever another connection has
 * committed since this one last looked (`PRAGMA data_version`), before a read and inside the write transaction, so a
 * process never writes from a stale copy of the account.
 *
 * Durability: `synchronous = FULL` by default. In WAL mode, NORMAL can lose the last commits on a power failure (not
 * on a process crash); a paper fill that a Temporal activity already reported as done must not disappear, and fills
 * are rare (a few per candle), so the fsync per commit is cheap where it matters. NORMAL is offered for bulk tests.
 *
 * The ledger's rules (fees, slippage, maintenance margin) are stored with the account when it is created; opening it
 * with other figures is refused, because past fills were made under the stored ones.
 *
 * Schema (times Unix ms, money USDT)
 * - `meta(key, value)`: `schema_version`, `config` (JSON of {@link PaperLedgerConfig}).
 * - `account`: one row: cash, cumulative fees / funding / realised PnL / liquidation losses / bankruptcy cover, and the
 *   next event sequence number.
 * - `pairs(pair, synced_to, last_price, last_price_time)`: candle cursor per pair.
 * - `positions(pair, side, quantity, entry_price, leverage, margin, margin_deficit, opened_at, fees, funding,
 *   realized_pnl)`: open positions only.
 * - `orders(seq, client_order_id UNIQUE, ...)`, `fills(seq, client_order_id, ...)`, `funding(seq, ...)`,
 *   `liquidations(seq, ...)`: `seq` is the ledger's event sequence number.
 * - `leverage_settings(pair, leverage)`: the leverage set with `setLeverage` (not ledger state).
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Side } from '../core/types';
import {
  PaperLedger,
  type FillEffect,
  type FundingCharge,
  type LedgerChanges,
  type LedgerFill,
  type LedgerOrder,
  type LedgerPosition,
  type LedgerState,
  type LiquidationRecord,
  type PairCursor,
  type PaperLedgerConfig,
} from './paper-ledger';
import type { OrderSide, OrderStatus } from './port';

export const PAPER_SCHEMA_VERSION = 1;

export interface PaperStoreOptions {
  /** SQLite `synchronous` pragma (WAL mode); default FULL, see the file comment */
  synchronous?: 'FULL' | 'NORMAL';
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS account (
  id                 INTEGER PRIMARY KEY CHECK (id = 1),
  cash               REAL    NOT NULL,
  fees               REAL    NOT NULL,
  funding            REAL    NOT NULL,
  realized_pnl       REAL    NOT NULL,
  liquidation_losses REAL    NOT NULL,
  bankruptcy_cover   REAL    NOT NULL,
  next_seq           INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
  pair            TEXT PRIMARY KEY,
  synced_to       INTEGER,
  last_price      REAL,
  last_price_time INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS positions (
  pair           TEXT    PRIMARY KEY,
  side           TEXT    NOT NULL CHECK (side IN ('long', 'short')),
  quantity       REAL    NOT NULL,
  entry_price    REAL    NOT NULL,
  leverage       REAL    NOT NULL,
  margin         REAL    NOT NULL,
  margin_deficit REAL    NOT NULL,
  opened_at      INTEGER NOT NULL,
  fees           REAL    NOT NULL,
  funding        REAL    NOT NULL,
  realized_pnl   REAL    NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
  seq                INTEGER PRIMARY KEY,
  client_order_id    TEXT    NOT NULL UNIQUE,
  exchange_order_id  TEXT    NOT NULL,
  pair               TEXT    NOT NULL,
  kind               TEXT    NOT NULL CHECK (kind IN ('market', 'stop')),
  side               TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
  reduce_only        INTEGER NOT NULL,
  requested_quantity REAL    NOT NULL,
  quantity           REAL    NOT NULL,
  reference_price    REAL,
  stop_price         REAL,
  status             TEXT    NOT NULL CHECK (status IN ('open', 'filled', 'canceled', 'rejected')),
  time               INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  filled_quantity    REAL    NOT NULL,
  fee                REAL    NOT NULL,
  average_price      REAL,
  cancel_reason      TEXT
);
CREATE TABLE IF NOT EXISTS fills (
  seq              INTEGER PRIMARY KEY,
  client_order_id  TEXT    NOT NULL REFERENCES orders (client_order_id),
  pair             TEXT    NOT NULL,
  side             TEXT    NOT NULL,
  price            REAL    NOT NULL,
  quantity         REAL    NOT NULL,
  fee              REAL    NOT NULL,
  time             INTEGER NOT NULL,
  reduce_only      INTEGER NOT NULL,
  order_kind       TEXT    NOT NULL,
  effect           TEXT    NOT NULL,
  realized_pnl     REAL    NOT NULL,
  margin_change    REAL    NOT NULL,
  bankruptcy_cover REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_by_order ON fills (client_order_id);
CREATE TABLE IF NOT EXISTS funding (
  seq         INTEGER PRIMARY KEY,
  pair        TEXT    NOT NULL,
  time        INTEGER NOT NULL,
  rate        REAL    NOT NULL,
  mark_price  REAL    NOT NULL,
  side        TEXT    NOT NULL,
  quantity    REAL    NOT NULL,
  amount      REAL    NOT NULL,
  from_margin REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS liquidations (
  seq         INTEGER PRIMARY KEY,
  pair        TEXT    NOT NULL,
  time        INTEGER NOT NULL,
  side        TEXT    NOT NULL,
  quantity    REAL    NOT NULL,
  entry_price REAL    NOT NULL,
  price       REAL    NOT NULL,
  margin_lost REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS leverage_settings (
  pair     TEXT    PRIMARY KEY,
  leverage INTEGER NOT NULL
) WITHOUT ROWID;
`;

interface AccountRow {
  cash: number;
  fees: number;
  funding: number;
  realized_pnl: number;
  liquidation_losses: number;
  bankruptcy_cover: number;
  next_seq: number;
}

interface PairRow {
  pair: string;
  synced_to: number | null;
  last_price: number | null;
  last_price_time: number | null;
}

interface PositionRow {
  pair: string;
  side: Side;
  quantity: number;
  entry_price: number;
  leverage: number;
  margin: number;
  margin_deficit: number;
  opened_at: number;
  fees: number;
  funding: number;
  realized_pnl: number;
}

interface OrderRow {
  seq: number;
  client_order_id: string;
  exchange_order_id: string;
  pair: string;
  kind: 'market' | 'stop';
  side: OrderSide;
  reduce_only: number;
  requested_quantity: number;
  quantity: number;
  reference_price: number | null;
  stop_price: number | null;
  status: OrderStatus;
  time: number;
  updated_at: number;
  filled_quantity: number;
  fee: number;
  average_price: number | null;
  cancel_reason: string | null;
}

interface FillRow {
  seq: number;
  client_order_id: string;
  pair: string;
  side: OrderSide;
  price: number;
  quantity: number;
  fee: number;
  time: number;
  reduce_only: number;
  order_kind: 'market' | 'stop';
  effect: FillEffect;
  realized_pnl: number;
  margin_change: number;
  bankruptcy_cover: number;
}

interface FundingRow {
  seq: number;
  pair: string;
  time: number;
  rate: number;
  mark_price: number;
  side: Side;
  quantity: number;
  amount: number;
  from_margin: number;
}

interface LiquidationRow {
  seq: number;
  pair: string;
  time: number;
  side: Side;
  quantity: number;
  entry_price: number;
  price: number;
  margin_lost: number;
}

const CONFIG_KEYS = ['starting_balance', 'taker_fee', 'slippage', 'maintenance_margin_rate'] as const;

/**
 * The paper account in a SQLite file. Synchronous (better-sqlite3); one instance per file and process.
 * Read figures from {@link ledger}; change them only through {@link mutate}.
 */
export class PaperAccountStore {
  /** absolute path of the database file */
  readonly file: string;
  private readonly db: Database.Database;
  private current: PaperLedger;
  /** `PRAGMA data_version` when {@link current} was last known to match the file */
  private dataVersion = -1;
  private readonly config: PaperLedgerConfig;
  private readonly stmt: ReturnType<typeof prepare>;

  /**
   * Opens the account in `file`, creating the file (and its folder) with a fresh account of
   * `config.starting_balance` when it does not exist yet.
   * @throws Error naming the file when it cannot be opened, is not a paper account of this schema version, or was
   *   created with other fee / slippage / maintenance figures than `config`.
   */
  constructor(file: string, config: PaperLedgerConfig, options: PaperStoreOptions = {}) {
    this.file = resolve(file);
    this.config = { ...config };
    const synchronous = options.synchronous ?? 'FULL';
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      this.db = new Database(this.file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${synchronous}`);
      this.db.pragma('foreign_keys = ON');
      this.db.exec(SCHEMA);
    } catch (err) {
      throw new Error(`paper account ${this.file}: cannot open the database: ${String(err)}`, { cause: err });
    }
    this.stmt = prepare(this.db);
    try {
      this.current = this.db
        .transaction(() => {
          this.dataVersion = this.readDataVersion();
          return this.openAccount();
        })
        .immediate();
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  /**
   * The in-memory ledger holding the account's figures, reloaded first when another process changed the file. Do
   * not call its mutating methods directly: use {@link mutate}.
   */
  get ledger(): PaperLedger {
    this.refresh();
    return this.current;
  }

  private readDataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  /**
   * Reloads the ledger when another connection committed since this one last read or wrote the file. The version
   * check is one pragma (every read of the ledger makes it); the reload reads the tables in one read transaction.
   */
  private refresh(): void {
    if (this.readDataVersion() === this.dataVersion) return;
    const reload = (): void => {
      this.current = this.loadLedger();
      this.dataVersion = this.readDataVersion();
    };
    if (this.db.inTransaction) reload();
    else this.db.transaction(reload)();
  }

  /**
   * Runs `fn` (which calls the ledger's mutating methods) and persists everything it changed, in ONE transaction.
   * When `fn` throws, nothing is written; if it had already changed the ledger (or the write failed), the ledger is
   * reloaded from the database so memory and file agree again. Returns what `fn` returns.
   */
  mutate<T>(fn: (ledger: PaperLedger) => T): T {
    let writing = false;
    try {
      return this.db
        .transaction(() => {
          // the write lock is held: the file cannot change until the commit; start from what it holds
          this.refresh();
          const result = fn(this.current);
          writing = true;
          this.write(this.current.takeChanges());
          return result;
        })
        .immediate();
    } catch (err) {
      // the transaction rolled back: bring memory back to what is committed
      if (writing || this.current.hasChanges()) {
        this.current = this.db.transaction(() => this.loadLedger())();
        this.dataVersion = this.readDataVersion();
      }
      throw err;
    }
  }

  /** The leverage last set for `pair` with {@link setLeverage}; null when never set. */
  leverage(pair: string): number | null {
    return this.stmt.getLeverage.get(pair)?.leverage ?? null;
  }

  /** Remembers the leverage of `pair` for its next entries. */
  setLeverage(pair: string, leverage: number): void {
    this.stmt.setLeverage.run(pair, leverage);
  }

  /** Closes the database. The store cannot be used afterwards. */
  close(): void {
    if (this.db.open) this.db.close();
  }

  // ------------------------------------------------------------------------------------------------------------

  private openAccount(): PaperLedger {
    const version = this.stmt.getMeta.get('schema_version')?.value;
    if (version === undefined) {
      const ledger = new PaperLedger(this.config, { recordChanges: true });
      this.stmt.setMeta.run('schema_version', String(PAPER_SCHEMA_VERSION));
      this.stmt.setMeta.run('config', JSON.stringify(pick(this.config)));
      this.writeAccount(ledger);
      ledger.takeChanges();
      return ledger;
    }
    if (version !== String(PAPER_SCHEMA_VERSION)) {
      throw new Error(
        `paper account ${this.file}: schema version ${version}, this program reads version ${PAPER_SCHEMA_VERSION}; ` +
          'use a matching llm-trader version or a new paper account file',
      );
    }
    const stored = JSON.parse(this.stmt.getMeta.get('config')?.value ?? '{}') as Partial<PaperLedgerConfig>;
    const differences = CONFIG_KEYS.filter((k) => stored[k] !== this.config[k]).map(
      (k) => `paper.${k} is ${this.config[k]} in the config but ${stored[k]} in the account`,
    );
    if (differences.length > 0) {
      throw new Error(
        `paper account ${this.file} was created with other rules: ${differences.join('; ')}. Past fills were made ` +
          'under the stored figures: restore them in the config, or start a new account with a new file.',
      );
    }
    return this.loadLedger();
  }

  private loadLedger(): PaperLedger {
    const account = this.stmt.getAccount.get();
    if (!account) throw new Error(`paper account ${this.file}: the account row is missing; the file is damaged`);
    const fillsByOrder = new Map<string, LedgerFill[]>();
    for (const row of this.stmt.allFills.all()) {
      const fill = fillFromRow(row);
      const list = fillsByOrder.get(fill.clientOrderId);
      if (list) list.push(fill);
      else fillsByOrder.set(fill.clientOrderId, [fill]);
    }
    const state: LedgerState = {
      cash: account.cash,
      totals: {
        fees: account.fees,
        funding: account.funding,
        realizedPnl: account.realized_pnl,
        liquidationLosses: account.liquidation_losses,
        bankruptcyCover: account.bankruptcy_cover,
      },
      nextSeq: account.next_seq,
      positions: this.stmt.allPositions.all().map(positionFromRow),
      pairs: this.stmt.allPairs.all().map((r): PairCursor => ({
        pair: r.pair,
        syncedTo: r.synced_to,
        lastPrice: r.last_price,
        lastPriceTime: r.last_price_time,
      })),
      orders: this.stmt.allOrders.all().map((r) => orderFromRow(r, fillsByOrder.get(r.client_order_id) ?? [])),
      funding: this.stmt.allFunding.all().map(fundingFromRow),
      liquidations: this.stmt.allLiquidations.all().map(liquidationFromRow),
    };
    try {
      return PaperLedger.restore(this.config, state, { recordChanges: true });
    } catch (err) {
      throw new Error(`paper account ${this.file}: inconsistent data: ${String(err)}`, { cause: err });
    }
  }

  private writeAccount(ledger: PaperLedger): void {
    const t = ledger.totals();
    this.stmt.putAccount.run(
      ledger.cash,
      t.fees,
      t.funding,
      t.realizedPnl,
      t.liquidationLosses,
      t.bankruptcyCover,
      ledger.nextSequence,
    );
  }

  private write(changes: LedgerChanges): void {
    const ledger = this.current;
    if (changes.account) this.writeAccount(ledger);
    for (const pair of changes.pairs) {
      const c = ledger.cursor(pair);
      if (c) this.stmt.putPair.run(pair, c.syncedTo, c.lastPrice, c.lastPriceTime);
      const p = ledger.position(pair);
      if (p) {
        this.stmt.putPosition.run(
          p.pair,
          p.side,
          p.quantity,
          p.entryPrice,
          p.leverage,
          p.margin,
          p.marginDeficit,
          p.openedAt,
          p.fees,
          p.funding,
          p.realizedPnl,
        );
      } else {
        this.stmt.deletePosition.run(pair);
      }
    }
    for (const o of changes.orders) {
      this.stmt.putOrder.run(
        o.seq,
        o.clientOrderId,
        o.exchangeOrderId,
        o.pair,
        o.kind,
        o.side,
        o.reduceOnly ? 1 : 0,
        o.requestedQuantity,
        o.quantity,
        o.referencePrice,
        o.stopPrice,
        o.status,
        o.time,
        o.updatedAt,
        o.filledQuantity,
        o.fee,
        o.averagePrice,
        o.cancelReason,
      );
    }
    for (const f of changes.fills) {
      this.stmt.insertFill.run(
        f.seq,
        f.clientOrderId,
        f.pair,
        f.side,
        f.price,
        f.quantity,
        f.fee,
        f.time,
        f.reduceOnly ? 1 : 0,
        f.orderKind,
        f.effect,
        f.realizedPnl,
        f.marginChange,
        f.bankruptcyCover,
      );
    }
    for (const f of changes.funding) {
      this.stmt.insertFunding.run(
        f.seq,
        f.pair,
        f.time,
        f.rate,
        f.markPrice,
        f.side,
        f.quantity,
        f.amount,
        f.fromMargin,
      );
    }
    for (const l of changes.liquidations) {
      this.stmt.insertLiquidation.run(l.seq, l.pair, l.time, l.side, l.quantity, l.entryPrice, l.price, l.marginLost);
    }
  }
}

function pick(config: PaperLedgerConfig): PaperLedgerConfig {
  return {
    starting_balance: config.starting_balance,
    taker_fee: config.taker_fee,
    slippage: config.slippage,
    maintenance_margin_rate: config.maintenance_margin_rate,
  };
}

function prepare(db: Database.Database) {
  return {
    getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare<[string, string]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    getAccount: db.prepare<[], AccountRow>('SELECT * FROM account WHERE id = 1'),
    putAccount: db.prepare<[number, number, number, number, number, number, number]>(
      `INSERT INTO account (id, cash, fees, funding, realized_pnl, liquidation_losses, bankruptcy_cover, next_seq)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET cash = excluded.cash, fees = excluded.fees, funding = excluded.funding,
         realized_pnl = excluded.realized_pnl, liquidation_losses = excluded.liquidation_losses,
         bankruptcy_cover = excluded.bankruptcy_cover, next_seq = excluded.next_seq`,
    ),
    allPairs: db.prepare<[], PairRow>('SELECT * FROM pairs ORDER BY pair'),
    putPair: db.prepare<[string, number | null, number | null, number | null]>(
      `INSERT INTO pairs (pair, synced_to, last_price, last_price_time) VALUES (?, ?, ?, ?)
       ON CONFLICT (pair) DO UPDATE SET synced_to = excluded.synced_to, last_price = excluded.last_price,
         last_price_time = excluded.last_price_time`,
    ),
    allPositions: db.prepare<[], PositionRow>('SELECT * FROM positions ORDER BY pair'),
    putPosition: db.prepare<[string, Side, number, number, number, number, number, number, number, number, number]>(
      `INSERT OR REPLACE INTO positions (pair, side, quantity, entry_price, leverage, margin, margin_deficit, opened_at,
         fees, funding, realized_pnl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    deletePosition: db.prepare<[string]>('DELETE FROM positions WHERE pair = ?'),
    allOrders: db.prepare<[], OrderRow>('SELECT * FROM orders ORDER BY seq'),
    putOrder: db.prepare<
      [
        number,
        string,
        string,
        string,
        string,
        string,
        number,
        number,
        number,
        number | null,
        number | null,
        string,
        number,
        number,
        number,
        number,
        number | null,
        string | null,
      ]
    >(
      `INSERT INTO orders (seq, client_order_id, exchange_order_id, pair, kind, side, reduce_only, requested_quantity,
         quantity, reference_price, stop_price, status, time, updated_at, filled_quantity, fee, average_price,
         cancel_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (seq) DO UPDATE SET quantity = excluded.quantity, status = excluded.status,
         updated_at = excluded.updated_at, filled_quantity = excluded.filled_quantity, fee = excluded.fee,
         average_price = excluded.average_price, cancel_reason = excluded.cancel_reason`,
    ),
    allFills: db.prepare<[], FillRow>('SELECT * FROM fills ORDER BY seq'),
    insertFill: db.prepare<
      [number, string, string, string, number, number, number, number, number, string, string, number, number, number]
    >(
      `INSERT INTO fills (seq, client_order_id, pair, side, price, quantity, fee, time, reduce_only, order_kind, effect,
         realized_pnl, margin_change, bankruptcy_cover) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    allFunding: db.prepare<[], FundingRow>('SELECT * FROM funding ORDER BY seq'),
    insertFunding: db.prepare<[number, string, number, number, number, string, number, number, number]>(
      `INSERT INTO funding (seq, pair, time, rate, mark_price, side, quantity, amount, from_margin)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    allLiquidations: db.prepare<[], LiquidationRow>('SELECT * FROM liquidations ORDER BY seq'),
    insertLiquidation: db.prepare<[number, string, number, string, number, number, number, number]>(
      `INSERT INTO liquidations (seq, pair, time, side, quantity, entry_price, price, margin_lost)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    getLeverage: db.prepare<[string], { leverage: number }>('SELECT leverage FROM leverage_settings WHERE pair = ?'),
    setLeverage: db.prepare<[string, number]>(
      `INSERT INTO leverage_settings (pair, leverage) VALUES (?, ?)
       ON CONFLICT (pair) DO UPDATE SET leverage = excluded.leverage`,
    ),
  };
}

function positionFromRow(r: PositionRow): LedgerPosition {
  return {
    pair: r.pair,
    side: r.side,
    quantity: r.quantity,
    entryPrice: r.entry_price,
    leverage: r.leverage,
    margin: r.margin,
    marginDeficit: r.margin_deficit,
    openedAt: r.opened_at,
    fees: r.fees,
    funding: r.funding,
    realizedPnl: r.realized_pnl,
    // derived; PaperLedger.restore recomputes it
    liquidationPrice: 0,
  };
}

function orderFromRow(r: OrderRow, fills: LedgerFill[]): LedgerOrder {
  return {
    seq: r.seq,
    clientOrderId: r.client_order_id,
    exchangeOrderId: r.exchange_order_id,
    pair: r.pair,
    kind: r.kind,
    side: r.side,
    reduceOnly: r.reduce_only === 1,
    requestedQuantity: r.requested_quantity,
    quantity: r.quantity,
    referencePrice: r.reference_price,
    stopPrice: r.stop_price,
    status: r.status,
    time: r.time,
    updatedAt: r.updated_at,
    filledQuantity: r.filled_quantity,
    fee: r.fee,
    averagePrice: r.average_price,
    cancelReason: r.cancel_reason,
    fills,
  };
}

function fillFromRow(r: FillRow): LedgerFill {
  return {
    seq: r.seq,
    clientOrderId: r.client_order_id,
    pair: r.pair,
    side: r.side,
    price: r.price,
    quantity: r.quantity,
    fee: r.fee,
    time: r.time,
    reduceOnly: r.reduce_only === 1,
    orderKind: r.order_kind,
    effect: r.effect,
    realizedPnl: r.realized_pnl,
    marginChange: r.margin_change,
    bankruptcyCover: r.bankruptcy_cover,
  };
}

function fundingFromRow(r: FundingRow): FundingCharge {
  return {
    seq: r.seq,
    pair: r.pair,
    time: r.time,
    rate: r.rate,
    markPrice: r.mark_price,
    side: r.side,
    quantity: r.quantity,
    amount: r.amount,
    fromMargin: r.from_margin,
  };
}

function liquidationFromRow(r: LiquidationRow): LiquidationRecord {
  return {
    seq: r.seq,
    pair: r.pair,
    time: r.time,
    side: r.side,
    quantity: r.quantity,
    entryPrice: r.entry_price,
    price: r.price,
    marginLost: r.margin_lost,
  };
}
