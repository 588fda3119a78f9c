// A strict JSON parser for untrusted headers (safetensors). JSON.parse cannot be used there: it keeps
// the last of duplicate keys silently, loses whether a number was written as an integer, and gives
// no bound on nesting. This one reports duplicates, keeps each number's integer-ness, caps depth,
// and fails only with JsonSyntaxError (never a RangeError from deep recursion).

export class JsonSyntaxError extends Error {
  /**
   * position: character index of the problem; keyPath: the keys leading to the innermost object
   * being read (for a duplicate key, the object holding it), so callers can name what was wrong.
   */
  constructor(
    message: string,
    readonly position: number,
    readonly keyPath: readonly string[] = [],
    readonly duplicateKey?: string,
  ) {
    super(`${message} at character ${position}`);
    this.name = 'JsonSyntaxError';
  }
}

/** A number with its literal and whether that was a plain integer (no fraction, no exponent). */
export class JsonNumber {
  constructor(
    readonly value: number,
    readonly integral: boolean,
    readonly text: string,
  ) {}
}

/** Objects are Maps so that keys like "__proto__" are plain data and insertion order is kept. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;
export type JsonObject = Map<string, JsonValue>;

export interface StrictJsonOptions {
  /** Deepest nesting of arrays/objects accepted (default 64). */
  maxDepth?: number;
}

const LITERALS: [string, JsonValue][] = [
  ['true', true],
  ['false', false],
  ['null', null],
];
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;

export function parseStrictJson(text: string, options: StrictJsonOptions = {}): JsonValue {
  const maxDepth = options.maxDepth ?? 64;
  let i = 0;
  const keyPath: string[] = [];

  const fail = (message: string, at = i, duplicateKey?: string): never => {
    throw new JsonSyntaxError(message, at, keyPath.slice(), duplicateKey);
  };
  const skipWs = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  const expect = (ch: string): void => {
    if (text[i] !== ch) fail(i >= text.length ? `unexpected end, expected '${ch}'` : `expected '${ch}'`);
    i++;
  };

  const parseString = (): string => {
    expect('"');
    let out = '';
    let runStart = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(runStart, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in string');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(runStart, i);
      const esc = text[i + 1];
      i += 2;
      switch (esc) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          const u = hex4(i);
          i += 4;
          // Lone surrogates are rejected (as serde_json does): the string could not be UTF-8.
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[i] !== '\\' || text[i + 1] !== 'u') fail('lone leading surrogate in \\u escape');
            const lo = hex4(i + 2);
            if (lo < 0xdc00 || lo > 0xdfff) fail('invalid trailing surrogate in \\u escape');
            i += 6;
            out += String.fromCharCode(u, lo);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail('lone trailing surrogate in \\u escape');
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          fail('invalid escape in string', i - 1);
      }
      runStart = i;
    }
  };
  const hex4 = (at: number): number => {
    const h = text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('invalid \\u escape', at);
    return parseInt(h, 16);
  };

  const parseValue = (depth: number): JsonValue => {
    skipWs();
    const c = text[i];
    if (c === '{') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      i++;
      const obj: JsonObject = new Map();
      skipWs();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        skipWs();
        const keyAt = i;
        const key = parseString();
        if (obj.has(key)) fail(`duplicate key ${JSON.stringify(key)}`, keyAt, key);
        skipWs();
        expect(':');
        keyPath.push(key);
        obj.set(key, parseValue(depth + 1));
        keyPath.pop();
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect('}');
        return obj;
      }
    }
    if (c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      i++;
      const arr: JsonValue[] = [];
      skipWs();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(parseValue(depth + 1));
        skipWs();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect(']');
        return arr;
      }
    }
    if (c === '"') return parseString();
    for (const [word, v] of LITERALS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail(i >= text.length ? 'unexpected end' : 'unexpected character');
    i += m[0].length;
    return new JsonNumber(Number(m[0]), m[1] === undefined && m[2] === undefined, m[0]);
  };

  const value = parseValue(0);
  skipWs();
  if (i !== text.length) fail('unexpected text after the value');
  return value;
}
