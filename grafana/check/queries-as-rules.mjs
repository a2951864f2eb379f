// Writes every query of the given dashboards as a Prometheus recording rule,
// so that `promtool check rules` can check their syntax: the PromQL reader of
// promql.mjs finds names, it does not validate.
//
// Usage: node queries-as-rules.mjs DASHBOARD.json... > queries.yml
//
// Grafana's variables are replaced by durations of the same role first; the
// rules are only parsed, never evaluated.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

import YAML from 'yaml';

/** Stand-ins for the Grafana variables the dashboards may use. */
const STAND_INS = [
  [/\$\{?__rate_interval\}?/g, '1m'],
  [/\$\{?__interval\}?/g, '15s'],
  [/\$\{?__range\}?/g, '1h'],
];

const groups = process.argv.slice(2).map((file) => {
  const dashboard = JSON.parse(readFileSync(file, 'utf8'));
  // Rule names are unique across all groups, and panel ids only per dashboard.
  const prefix = basename(file, '.json').replace(/[^A-Za-z0-9_]/g, '_');
  const panels = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  const rules = panels.flatMap((panel) =>
    (panel.targets ?? [])
      .filter((target) => typeof target.expr === 'string')
      .map((target) => ({
        record: `${prefix}:panel${panel.id}:${target.refId}`,
        expr: STAND_INS.reduce((expr, [re, value]) => expr.replace(re, value), target.expr),
      })),
  );
  return { name: basename(file), rules };
});

process.stdout.write(YAML.stringify({ groups }));
