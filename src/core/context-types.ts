/**
 * The input of the `decide` step: what the context builder produces and every decision provider consumes.
 * Type-only and pure, so workflow code may import it.
 */
import type { MarketSnapshot, PositionState, ToolName } from './types';
import type { OpenAIToolDefinition } from './tools';

/** One prompt message. The context builder emits a system message followed by a user message. */
export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

/** Everything a provider needs to decide for one pair at one candle close. */
export interface DecisionContext {
  /** ccxt perpetual symbol, e.g. "BTC/USDT:USDT" */
  pair: string;
  /** decision time, Unix ms: the close time of the last closed main-timeframe candle */
  asOf: number;
  /** whether the pair has an open position (decides the allowed tools and the fallback decision) */
  hasPosition: boolean;
  /** the tools the model may call in this state, in the order offered */
  allowedTools: ToolName[];
  /** the prompt: system message first, then the user message with the market context */
  messages: ChatMessage[];
  /** strict OpenAI function-tool definitions of `allowedTools` */
  tools: OpenAIToolDefinition[];
  /** measured prompt size (messages + tools) in tokens; null when it was not counted */
  tokens: number | null;
  snapshot: MarketSnapshot;
  position: PositionState | null;
}
