// Just enough PromQL to check queries without a Prometheus: which metric
// names an expression reads, and which range windows its rate(), irate() and
// increase() calls use.
//
// This is a tokenizer and a walk over its tokens, not a parser: it does not
// validate syntax (promtool and Prometheus do that), it only has to find
// names and windows in expressions that are valid. It understands string
// literals, numbers, durations, label matchers in `{}`, label lists after
// by/without/on/ignoring/group_left/group_right, range and subquery brackets,
// `#` comments, and Grafana's variables (`$__rate_interval`, `${name}`,
// `[[name]]`), which may stand wherever PromQL has a value or a duration.

/** Words that are operators or modifiers, never metric names. */
const KEYWORDS = new Set([
  'and', 'or', 'unless', 'bool', 'offset', 'atan2',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
]);

/** Keywords followed by a parenthesised list of label names. */
const LABEL_LIST_KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right',
]);

/** Aggregations, which may take `by (...)` between their name and `(`. */
const AGGREGATIONS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count',
  'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio',
]);

/** The functions whose window a dashboard must take from Grafana. */
export const RATE_FUNCTIONS = new Set(['rate', 'irate', 'increase']);

const PATTERNS = [
  ['space', /^\s+/],
  ['comment', /^#[^\n]*/],
  ['string', /^"(?:[^"\\]|\\.)*"|^'(?:[^'\\]|\\.)*'|^`[^`]*`/],
  ['variable', /^\$\{[^}]*\}|^\$[A-Za-z0-9_]+|^\[\[[A-Za-z0-9_:.]+\]\]/],
  ['duration', /^(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_])/],
  ['number', /^0[xX][0-9a-fA-F]+|^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/],
  ['identifier', /^[A-Za-z_:][A-Za-z0-9_:]*/],
  ['operator', /^(?:==|!=|<=|>=|=~|!~|[-+*\/%^<>=@,])/],
  ['bracket', /^[(){}[\]]/],
];

/**
 * Splits an expression into tokens `{ kind, text, start, end }`, without
 * whitespace and comments.
 *
 * Throws on a character no PromQL token can start with.
 */
export function tokenize(expr) {
  const tokens = [];
  let at = 0;
  while (at < expr.length) {
    const rest = expr.slice(at);
    const match = PATTERNS.map(([kind, re]) => [kind, re.exec(rest)]).find(([, m]) => m);
    if (!match) {
      throw new Error(`cannot read PromQL at offset ${at}: ${rest.slice(0, 20)}`);
    }

    const [kind, [text]] = match;
    if (kind !== 'space' && kind !== 'comment') {
      tokens.push({ kind, text, start: at, end: at + text.length });
    }
    at += text.length;
  }
  return tokens;
}

/** The index of the bracket closing the one at `open`, or -1. */
function closing(tokens, open) {
  const pairs = { '(': ')', '{': '}', '[': ']' };
  const stack = [];
  for (let i = open; i < tokens.length; i++) {
    const { kind, text } = tokens[i];
    if (kind !== 'bracket') continue;
    if (pairs[text]) stack.push(pairs[text]);
    else if (stack.pop() !== text) return -1;
    if (stack.length === 0) return i;
  }
  return -1;
}

/** The value of a quoted string token, with `\"`-style escapes undone. */
function unquote(text) {
  if (text.startsWith('`')) return text.slice(1, -1);
  return text.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** Metric names in a `{...}` matcher list: only `__name__="..."` names one. */
function namesInMatchers(tokens, open, close, names) {
  for (let i = open + 1; i + 2 < close; i++) {
    const [label, op, value] = tokens.slice(i, i + 3);
    if (label.text === '__name__' && op.text === '=' && value.kind === 'string') {
      names.add(unquote(value.text));
    }
  }
}

/**
 * The metric names an expression reads, as a sorted array.
 *
 * A name is an identifier that is not a keyword, not a function or
 * aggregation (followed by `(`, or by `by`/`without`), not a number
 * (`Inf`, `NaN`), and not inside `{}`, `[]` or a label list; plus the value
 * of any `__name__="..."` matcher.
 */
export function metricNames(expr) {
  const tokens = tokenize(expr);
  const names = new Set();

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    const next = tokens[i + 1];

    // Label matchers and range or subquery windows hold no metric names,
    // except a matcher on __name__.
    if (token.text === '{' || token.text === '[') {
      const close = closing(tokens, i);
      if (close < 0) throw new Error(`unbalanced '${token.text}' in: ${expr}`);
      if (token.text === '{') namesInMatchers(tokens, i, close, names);
      i = close;
      continue;
    }
    if (token.kind !== 'identifier') continue;

    const word = token.text;
    if (LABEL_LIST_KEYWORDS.has(word) && next?.text === '(') {
      i = closing(tokens, i + 1);
      if (i < 0) throw new Error(`unbalanced '(' after ${word} in: ${expr}`);
      continue;
    }
    if (KEYWORDS.has(word) || /^(inf|nan)$/i.test(word)) continue;
    if (next?.text === '(') continue;
    if (AGGREGATIONS.has(word) && (next?.text === 'by' || next?.text === 'without')) continue;

    names.add(word);
  }
  return [...names].sort();
}

/**
 * Every call of rate(), irate() or increase() in an expression, as
 * `{ fn, window }`, where `window` is the text between the brackets of the
 * call's range or subquery selector (`"$__rate_interval"`, `"5m"`,
 * `"1h:1m"`), or null if the call has none at its own level.
 */
export function rateWindows(expr) {
  const tokens = tokenize(expr);
  const calls = [];

  for (let i = 0; i + 1 < tokens.length; i++) {
    const { kind, text } = tokens[i];
    if (kind !== 'identifier' || !RATE_FUNCTIONS.has(text) || tokens[i + 1].text !== '(') {
      continue;
    }
    const close = closing(tokens, i + 1);
    if (close < 0) throw new Error(`unbalanced '(' after ${text} in: ${expr}`);

    // The window belongs to the call's own argument, not to a call nested in
    // it, so brackets inside inner parentheses are passed over.
    let window = null;
    for (let j = i + 2; j < close && window === null; j++) {
      const t = tokens[j].text;
      if (t === '(' || t === '{') {
        j = closing(tokens, j);
      } else if (t === '[') {
        const end = closing(tokens, j);
        window = expr.slice(tokens[j].end, tokens[end].start).trim();
      }
    }
    calls.push({ fn: text, window });
  }
  return calls;
}
