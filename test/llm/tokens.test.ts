import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { O200K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';
import { countTextTokens, countTokensByPiece, memoCount, preTokenEnd } from '../../src/llm/tokens';

const PLAIN = { disallowedSpecial: new Set<string>() };
const libraryCount = (text: string) => countTokens(text, PLAIN);

/** The library's pre-token ends of `text`, in order. */
function regexEnds(text: string): number[] {
  const regex = new RegExp(O200K_TOKEN_SPLIT_REGEX.source, 'uy');
  const ends: number[] = [];
  for (let start = 0; start < text.length; start = regex.lastIndex) {
    regex.lastIndex = start;
    assert.ok(regex.test(text), `no pre-token at ${start} of ${JSON.stringify(text)}`);
    ends.push(regex.lastIndex);
  }
  return ends;
}

/** Checks the scanner against the regex at every pre-token start of `text` (-1, "ask the regex", is always allowed). */
function assertScannerAgrees(text: string): void {
  let start = 0;
  for (const end of regexEnds(text)) {
    const scanned = preTokenEnd(text, start);
    assert.ok(scanned === -1 || scanned === end, `${JSON.stringify(text)} at ${start}: ${scanned}, regex ${end}`);
    start = end;
  }
}

/** Characters of every class the regex tells apart, contraction letters and the characters alternative 4 takes. */
const ASCII_ALPHABET = [...'aZbYc\'sStTlLvVeErRdDmM0123456789 \t\n\r\v\f/.,-"#:;()%+<|>_\x00\x1f\x7f'];
/** Non-ASCII letters, marks, digits, spaces, a line separator, a long s, an emoji (a surrogate pair). */
const NON_ASCII = ['é', '中', '\u0301', '٣', '\u00a0', '\u2028', 'ſ', '😀'];
const textFrom = (alphabet: string[], maxLength: number) =>
  fc.array(fc.constantFrom(...alphabet), { maxLength }).map((a) => a.join(''));

describe('the scanner finds the regex pre-tokens', () => {
  test('every string of up to 4 characters of a class-covering alphabet', () => {
    const alphabet = [...'aA\'sl0 \t\n\r/,"', 'é', '٣', '\u00a0'];
    const strings = [''];
    for (let length = 1; length <= 4; length++) {
      for (const prefix of strings.filter((s) => s.length === length - 1)) {
        for (const c of alphabet) strings.push(prefix + c);
      }
    }
    for (const text of strings) assertScannerAgrees(text);
  });

  test('random ASCII text: the scanner decides every pre-token itself', () => {
    fc.assert(
      fc.property(textFrom(ASCII_ALPHABET, 80), (text) => {
        assertScannerAgrees(text);
        for (let start = 0; start < text.length; start = preTokenEnd(text, start)) {
          assert.notEqual(preTokenEnd(text, start), -1, JSON.stringify(text));
        }
      }),
      { numRuns: 20_000 },
    );
  });

  test('random text with non-ASCII characters and any UTF-16 code units', () => {
    fc.assert(fc.property(textFrom([...ASCII_ALPHABET, ...NON_ASCII], 60), assertScannerAgrees), { numRuns: 10_000 });
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 40 }), assertScannerAgrees), { numRuns: 5_000 });
  });
});

describe('the fast count is the library count', () => {
  test('the vocabulary facts it relies on: each ASCII character and each 1-3 digit string is one token', () => {
    for (let code = 0; code < 128; code++) assert.equal(libraryCount(String.fromCharCode(code)), 1, `code ${code}`);
    for (let length = 1; length <= 3; length++) {
      for (let value = 0; value < 10 ** length; value++) {
        const digits = String(value).padStart(length, '0');
        assert.equal(libraryCount(digits), 1, digits);
      }
    }
  });

  test('random text, special-token text counted as plain text', () => {
    const pieces = [...ASCII_ALPHABET, ...NON_ASCII, "'ll", "'re", ' the', 'Hello', '<|endoftext|>', '<|im_start|>'];
    fc.assert(
      fc.property(textFrom(pieces, 80), (text) => {
        assert.equal(countTokensByPiece(text), libraryCount(text), JSON.stringify(text));
        assert.equal(countTextTokens(text), libraryCount(text));
      }),
      { numRuns: 10_000 },
    );
  });

  test('long pre-tokens, counted without the memo', () => {
    for (const text of [
      'x'.repeat(300),
      `a${'b'.repeat(70)}C`,
      ' '.repeat(200),
      `${' '.repeat(100)}\n${' '.repeat(100)}`,
      '-'.repeat(150),
      `.${'\n'.repeat(80)}/`,
      '9'.repeat(100),
      'é'.repeat(90),
    ]) {
      assert.equal(countTokensByPiece(text), libraryCount(text), JSON.stringify(text.slice(0, 20)));
    }
  });

  test('the memo never answers for another text: same-length neighbours, then more pieces than it holds', () => {
    // every one-letter change of a few words, counted one after the other (same length, often the same hash slot)
    for (const word of [' Mississippi', ' unbelievable', 'Tokenization', ' EMA20crossed']) {
      for (let k = 0; k < word.length; k++) {
        for (const c of 'aeqzXQ\'"') {
          const text = word.slice(0, k) + c + word.slice(k + 1);
          assert.equal(countTokensByPiece(text), libraryCount(text), JSON.stringify(text));
        }
      }
    }
    // 40k distinct words: the memo starts over on the way; counts stay exact before and after
    const word = (n: number) => {
      let w = ' ';
      for (let m = n + 1; m > 0; m = Math.floor(m / 26)) w += String.fromCharCode(97 + (m % 26));
      return w;
    };
    const words = Array.from({ length: 40_000 }, (_, n) => word(n));
    assert.equal(new Set(words).size, words.length);
    for (const w of words) assert.equal(countTokensByPiece(w), libraryCount(w), JSON.stringify(w));
    for (const w of words.slice(0, 2_000)) assert.equal(countTokensByPiece(w), libraryCount(w), JSON.stringify(w));
  });

  test('memoCount: the count of each text, also after other texts', () => {
    const texts = ['## Funding\nlatest rate +0.0100%\n', 'You trade one pair.', '## Funding\nlatest rate -0.0100%\n'];
    for (let round = 0; round < 2; round++) {
      for (const text of texts) assert.equal(memoCount(text), libraryCount(text));
    }
  });
});
