import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { extractTextToolCalls, splitThinking } from '../../src/llm/model-output';
import { TOOL_NAMES } from '../../src/core/tools';

const KNOWN: ReadonlySet<string> = new Set(TOOL_NAMES);
const ARGS = { pair: 'BTC/USDT:USDT', confidence_score: 60, rsi_value: 48, reason: 'range {41k-42k}, "quiet" market' };

describe('splitThinking', () => {
  test('no thinking: the answer is the trimmed content', () => {
    assert.deepEqual(splitThinking('  hello \n', []), { answer: 'hello', thinking: null });
    assert.deepEqual(splitThinking(null, [null, undefined]), { answer: '', thinking: null });
  });

  test('<think> blocks are removed from the answer and joined as thinking, fields first', () => {
    const r = splitThinking('<think>a</think>answer<THINK> b </THINK> more', ['field']);
    assert.deepEqual(r, { answer: 'answer more', thinking: 'field\n\na\n\nb' });
  });

  test('a reasoning field equal to the <think> text is not repeated', () => {
    assert.deepEqual(splitThinking('<think>same</think>x', ['same', 'same']), { answer: 'x', thinking: 'same' });
  });

  test('a closing tag without an opening tag: the text before it is thinking', () => {
    assert.deepEqual(splitThinking('reasoning here</think>\nthe call', []), {
      answer: 'the call',
      thinking: 'reasoning here',
    });
  });

  test('an opening tag that is never closed (cut off): the rest is thinking, no answer', () => {
    assert.deepEqual(splitThinking('<think>still going', []), { answer: '', thinking: 'still going' });
  });
});

describe('extractTextToolCalls', () => {
  test('plain text has no call', () => {
    assert.deepEqual(extractTextToolCalls('I would wait for a breakout {soon}.', KNOWN), []);
  });

  test('bare JSON with braces and quotes inside strings', () => {
    const text = `Decision: ${JSON.stringify({ name: 'signal_wait', arguments: ARGS })} done`;
    assert.deepEqual(extractTextToolCalls(text, KNOWN), [{ name: 'signal_wait', arguments: ARGS }]);
  });

  test('arguments as a JSON string are passed on as the string (validation decodes them)', () => {
    const inner = JSON.stringify(ARGS);
    const text = JSON.stringify({ name: 'signal_wait', arguments: inner });
    assert.deepEqual(extractTextToolCalls(text, KNOWN), [{ name: 'signal_wait', arguments: inner }]);
  });

  test('two <tool_call> tags, the last one unclosed', () => {
    const a = JSON.stringify({ name: 'signal_hold', arguments: ARGS });
    const b = JSON.stringify({ name: 'signal_exit', arguments: ARGS });
    assert.deepEqual(extractTextToolCalls(`<tool_call>${a}</tool_call>\n<tool_call>\n${b}`, KNOWN), [
      { name: 'signal_hold', arguments: ARGS },
      { name: 'signal_exit', arguments: ARGS },
    ]);
  });

  test('tags win over other JSON in the text', () => {
    const decoy = JSON.stringify({ name: 'signal_entry_long', arguments: {} });
    const real = JSON.stringify({ name: 'signal_wait', arguments: ARGS });
    assert.deepEqual(extractTextToolCalls(`example: ${decoy}\n<tool_call>${real}</tool_call>`, KNOWN), [
      { name: 'signal_wait', arguments: ARGS },
    ]);
  });

  test('a code fence', () => {
    const text = `\`\`\`json\n${JSON.stringify({ name: 'signal_wait', arguments: ARGS }, null, 2)}\n\`\`\``;
    assert.deepEqual(extractTextToolCalls(text, KNOWN), [{ name: 'signal_wait', arguments: ARGS }]);
  });

  test("OpenAI's tool_calls shape and Mistral's [TOOL_CALLS] array", () => {
    const openai = JSON.stringify({
      tool_calls: [{ type: 'function', function: { name: 'signal_wait', arguments: ARGS } }],
    });
    assert.deepEqual(extractTextToolCalls(openai, KNOWN), [{ name: 'signal_wait', arguments: ARGS }]);
    const mistral = `[TOOL_CALLS] ${JSON.stringify([{ name: 'signal_wait', arguments: ARGS }])}`;
    assert.deepEqual(extractTextToolCalls(mistral, KNOWN), [{ name: 'signal_wait', arguments: ARGS }]);
  });

  test('a flat object counts only when its name is a known tool', () => {
    assert.deepEqual(extractTextToolCalls(JSON.stringify({ name: 'signal_wait', ...ARGS, pair: undefined }), KNOWN), [
      { name: 'signal_wait', arguments: { confidence_score: 60, rsi_value: 48, reason: ARGS.reason } },
    ]);
    assert.deepEqual(extractTextToolCalls(JSON.stringify({ name: 'Bitcoin', price: 42_000 }), KNOWN), []);
  });

  test('an unknown tool name with arguments is still returned (validation names the problem)', () => {
    assert.deepEqual(extractTextToolCalls(JSON.stringify({ name: 'buy', arguments: { size: 1 } }), KNOWN), [
      { name: 'buy', arguments: { size: 1 } },
    ]);
  });
});
