// Cases for promql.mjs; run with `node --test` (check.sh does).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { metricNames, rateWindows } from './promql.mjs';

const NAMES = [
  ['a bare name', 'up', ['up']],
  ['a name with matchers', 'up{job="api", instance=~"a.*"}', ['up']],
  [
    'label names in by () and matchers are not names',
    'sum by (http_route, le) (rate(x_bucket{job="api"}[$__rate_interval]))',
    ['x_bucket'],
  ],
  ['by after the aggregation', 'sum(rate(x_total[5m])) by (path)', ['x_total']],
  [
    'on, ignoring and group_left lists',
    'a * on (instance) group_left (version) b / ignoring (code) c',
    ['a', 'b', 'c'],
  ],
  ['functions, numbers and Inf are not names', 'clamp_min(vector(0) + Inf, 1e3)', []],
  ['keywords are not names', 'a and b or c unless d > bool 0', ['a', 'b', 'c', 'd']],
  ['offset and its duration', 'a offset 1h30m - a offset -5m', ['a']],
  [
    'string literals are not names',
    'label_replace(up, "dst", "$1", "src", "(my_metric)")',
    ['up'],
  ],
  ['a __name__ matcher names a metric', '{__name__="x_total", job="api"}', ['x_total']],
  ['subquery windows', 'max_over_time(rate(a[1m])[1h:5m])', ['a']],
  ['Grafana variables', 'a[$__range] / $__range_s + b[${__rate_interval}]', ['a', 'b']],
  ['recording rule names with colons', 'job:a:rate5m > 0', ['job:a:rate5m']],
  ['comments', 'a # b is a comment\n+ c', ['a', 'c']],
  ['time() and @ modifiers', 'time() - a @ end()', ['a']],
];

for (const [description, expr, expected] of NAMES) {
  test(`metric names: ${description}`, () => {
    assert.deepEqual(metricNames(expr), expected, expr);
  });
}

const WINDOWS = [
  ['one rate', 'rate(a[$__rate_interval])', [['rate', '$__rate_interval']]],
  [
    'every function, in nesting order',
    'increase(a[5m]) / irate(b{c="]"}[1m])',
    [['increase', '5m'], ['irate', '1m']],
  ],
  ['a subquery', 'rate(sum(a)[1h:])', [['rate', '1h:']]],
  ['a window inside an inner call is not the outer one', 'rate(abs(a[5m]))', [['rate', null]]],
  ['functions that only end in rate', 'xrate(a[5m]) + rate_x(b[1m])', []],
];

for (const [description, expr, expected] of WINDOWS) {
  test(`rate windows: ${description}`, () => {
    const found = rateWindows(expr).map(({ fn, window }) => [fn, window]);
    assert.deepEqual(found, expected, expr);
  });
}

test('an unreadable expression is an error, not an empty answer', () => {
  assert.throws(() => metricNames('sum(a) ; b'), /cannot read PromQL/);
  assert.throws(() => metricNames('sum(a{b="c")'), /unbalanced/);
});
