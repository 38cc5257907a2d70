/**
 * JSON.parse with an error a sender can act on: the line and column of the first syntax
 * error. V8's own messages name no position for some errors and quote the text around it for
 * others, which would put patient data into stored outcomes and logs.
 */
import { MappingError } from '../types';

export function parseJson(text: string): unknown {
  // A byte order mark, as Windows tools write it, is not JSON but is no error of the data either.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch {
    const { offset, reason } = firstSyntaxError(body);
    const before = body.slice(0, offset);
    const line = before.split('\n').length;
    const column = offset - before.lastIndexOf('\n');
    throw new MappingError(`not valid JSON: ${reason} at line ${line}, column ${column}`, { line }, 'structure');
  }
}

class Stop extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** Only run once JSON.parse has failed: a recursive-descent reading that stops at the first error. */
function firstSyntaxError(text: string): { offset: number; reason: string } {
  let i = 0;
  const fail = (reason: string): never => {
    throw new Stop(i >= text.length ? 'unexpected end of input' : reason);
  };
  const space = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const expect = (c: string, what: string): void => {
    space();
    if (text[i] !== c) fail(`expected ${what}`);
    i++;
  };
  const string = (): void => {
    i++; // the opening quote
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in a string (a line break must be written \\n)');
      if (c === 0x5c) {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('bad \\u escape');
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? '')) {
          fail('bad escape in a string');
        }
      }
      i++;
    }
    i++;
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      space();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        space();
        if (text[i] !== '"') fail('expected a property name in double quotes');
        string();
        expect(':', "':' after a property name");
        value();
        space();
        if (text[i] === '}') break;
        if (text[i] !== ',') fail("expected ',' or '}'");
        i++;
      }
      i++;
    } else if (c === '[') {
      i++;
      space();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        space();
        if (text[i] === ']') break;
        if (text[i] !== ',') fail("expected ',' or ']'");
        i++;
      }
      i++;
    } else if (c === '"') {
      string();
    } else {
      const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
      i += m ? m[0].length : fail('expected a value');
    }
  };
  try {
    value();
    space();
    if (i < text.length) fail('unexpected text after the JSON value');
  } catch (err) {
    if (err instanceof Stop) return { offset: Math.min(i, text.length), reason: err.reason };
    throw err;
  }
  // JSON.parse refused what this reading accepts: nothing to point at but the start.
  return { offset: 0, reason: 'not JSON' };
}
