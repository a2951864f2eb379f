// Cross-checks what the type check cannot see: the dashboards against the
// provisioned datasources, against house style, and against the metrics the
// service really exports; and the expressions of Prometheus rule files
// against those same metrics.
//
// Usage:
//   node crosscheck.mjs --exposition FILE [--dashboards DIR --provisioning DIR]
//                       [--grafana-version X.Y.Z] [--rules PATH]...
//   node crosscheck.mjs --exposition FILE --rules PATH...   (rule files only)
//
// FILE is a Prometheus text exposition (what /metrics answers); the names of
// its samples are the exported metrics. A --rules PATH is a rule file or a
// folder searched for *.yml and *.yaml rule files; the names of the
// recording rules they define are known to the rules' expressions, but not
// to dashboards, which must read only what the service exports.
// Prints one line per check; exits 1 if any fails, 2 on bad usage.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

import { defaultDashboard } from '@grafana/schema';
import YAML from 'yaml';

import { metricNames, rateWindows } from './promql.mjs';

/**
 * Series Prometheus itself adds for every target it scrapes, and the alert
 * state series it writes; they are never on /metrics, yet exist for queries.
 */
const PROMETHEUS_SERIES = [
  'up',
  'scrape_duration_seconds',
  'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling',
  'scrape_series_added',
  'ALERTS',
  'ALERTS_FOR_STATE',
];

/** Why a rule's metric is unknown. */
const NOT_RECORDED = 'the service does not export and no rule records';

/** Rows of the RED overview, in this order, for a dashboard tagged `red`. */
const RED_ROWS = ['Rate', 'Errors', 'Duration', 'Saturation'];

/** Width of Grafana's dashboard grid. */
const GRID_COLUMNS = 24;

const { values: args } = parseArgs({
  options: {
    exposition: { type: 'string' },
    dashboards: { type: 'string' },
    provisioning: { type: 'string' },
    'grafana-version': { type: 'string' },
    rules: { type: 'string', multiple: true, default: [] },
  },
});
// Dashboards are checked against a provisioning folder; without dashboards,
// there must be rules to check.
const something = args.dashboards ? args.provisioning : args.rules.length > 0;
if (!args.exposition || !something) {
  console.error(
    'usage: node crosscheck.mjs --exposition FILE [--dashboards DIR --provisioning DIR]' +
      ' [--grafana-version X.Y.Z] [--rules PATH]...',
  );
  process.exit(2);
}

let failures = 0;

/** Records a failed check and prints it. */
function fail(where, message) {
  failures += 1;
  console.log(`  FAIL ${where}: ${message}`);
}

/** Prints a passed check. */
function ok(message) {
  console.log(`  ok   ${message}`);
}

const exported = readExposition(args.exposition);
const known = new Set([...exported, ...PROMETHEUS_SERIES]);
ok(`${args.exposition}: ${exported.size} exported metric names`);

if (args.dashboards) {
  const datasources = readDatasources(join(args.provisioning, 'datasources'));
  checkProviders(join(args.provisioning, 'dashboards'));
  checkDashboards(args.dashboards, datasources);
}
if (args.rules.length > 0) checkRules(args.rules);

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('all cross-checks passed');

// ---------------------------------------------------------------------------
// Inputs

/**
 * The sample names of a text exposition (0.0.4 or OpenMetrics). A histogram
 * contributes its `_bucket`, `_sum` and `_count` series, which are what a
 * query can read; its family name alone is not a series.
 */
function readExposition(file) {
  const names = new Set();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)[{\s]/.exec(line);
    if (match) names.add(match[1]);
  }
  if (names.size === 0) {
    console.error(`${file} holds no samples: is it a Prometheus exposition?`);
    process.exit(2);
  }
  return names;
}

/** YAML files directly in a folder, sorted. */
function yamlFiles(dir) {
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(dir, name));
}

/** A map from uid to plugin type of every provisioned datasource. */
function readDatasources(dir) {
  const datasources = new Map();
  for (const file of yamlFiles(dir)) {
    for (const ds of YAML.parse(readFileSync(file, 'utf8'))?.datasources ?? []) {
      if (!ds.uid) fail(file, `datasource "${ds.name}" has no fixed uid`);
      else datasources.set(ds.uid, ds.type);
    }
  }
  if (datasources.size === 0) fail(dir, 'no datasource is provisioned');
  else ok(`provisioned datasources: ${[...datasources].map(([u, t]) => `${u} (${t})`).join(', ')}`);
  return datasources;
}

/** Every dashboard provider reads files from a path. */
function checkProviders(dir) {
  for (const file of yamlFiles(dir)) {
    for (const provider of YAML.parse(readFileSync(file, 'utf8'))?.providers ?? []) {
      if (provider.type !== 'file' || !provider.options?.path) {
        fail(file, `provider "${provider.name}" is not a file provider with a path`);
      } else {
        ok(`${basename(file)}: provider "${provider.name}" loads ${provider.options.path}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Dashboards

/** Runs every dashboard check on every *.json file of a folder. */
function checkDashboards(dir, datasources) {
  const uids = new Map();
  const titles = new Map();
  const files = readdirSync(dir).filter((name) => name.endsWith('.json')).sort();
  if (files.length === 0) fail(dir, 'no dashboards');

  for (const name of files) {
    let dashboard;
    try {
      dashboard = JSON.parse(readFileSync(join(dir, name), 'utf8'));
    } catch (error) {
      fail(name, `not JSON: ${error.message}`);
      continue;
    }
    checkDashboard(name, dashboard, datasources);

    // Provisioning refuses two dashboards with one uid, or one title twice in
    // a folder; all files here go to the same folder.
    for (const [seen, key] of [[uids, dashboard.uid], [titles, dashboard.title]]) {
      if (seen.has(key)) fail(name, `"${key}" is also used by ${seen.get(key)}`);
      seen.set(key, name);
    }
  }
}

/** The checks of one dashboard, from its header down to each query. */
function checkDashboard(name, dashboard, datasources) {
  const before = failures;
  checkHeader(name, dashboard);
  checkDatasourceRefs(name, dashboard, datasources);

  const panels = flatPanels(dashboard);
  checkLayout(name, dashboard, panels);
  const queries = panels
    .filter((panel) => panel.type !== 'row')
    .reduce((count, panel) => count + checkPanel(name, panel), 0);
  checkOtherQueries(name, dashboard);

  if (failures === before) {
    ok(`${name} (uid ${dashboard.uid}): header, datasources, layout, ` +
      `${panels.length} panels and ${queries} queries`);
  }
}

/** The dashboard's own fields. */
function checkHeader(name, dashboard) {
  const uid = dashboard.uid;
  if (typeof uid !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(uid)) {
    fail(name, `uid ${JSON.stringify(uid)} is not 1 to 40 letters, digits, - or _`);
  }
  if (typeof dashboard.id === 'number') {
    fail(name, 'has a numeric id; provisioning assigns one, dashboards are found by uid');
  }
  for (const field of ['title', 'description']) {
    if (!nonEmpty(dashboard[field])) fail(name, `no ${field}`);
  }
  if (!Array.isArray(dashboard.tags) || dashboard.tags.length === 0) fail(name, 'no tags');

  // The schema version Grafana writes is the one the pinned schema package
  // defaults to; an older one would be migrated at every load.
  if (dashboard.schemaVersion !== defaultDashboard.schemaVersion) {
    fail(name, `schemaVersion ${dashboard.schemaVersion}, but @grafana/schema says ` +
      `${defaultDashboard.schemaVersion}`);
  }

  // Exported dashboards carry import placeholders; provisioned ones must not.
  if (dashboard.__inputs || dashboard.__requires || /\$\{DS_/.test(JSON.stringify(dashboard))) {
    fail(name, 'has import placeholders (__inputs, __requires or ${DS_...})');
  }
}

/**
 * Every `datasource` anywhere in the dashboard (panels, targets, variables,
 * annotations) is a `{type, uid}` reference to a provisioned datasource.
 */
function checkDatasourceRefs(name, dashboard, datasources) {
  walk(dashboard, '', (path, key, value) => {
    if (key !== 'datasource') return;
    if (typeof value !== 'object' || value === null) {
      fail(name, `${path}: datasource ${JSON.stringify(value)} is not a {type, uid} reference`);
    } else if (!datasources.has(value.uid)) {
      fail(name, `${path}: datasource uid "${value.uid}" is not provisioned`);
    } else if (value.type !== datasources.get(value.uid)) {
      fail(name, `${path}: datasource "${value.uid}" has type "${value.type}", ` +
        `provisioned as "${datasources.get(value.uid)}"`);
    }
  });
}

/** Panel ids, grid positions, and the RED row order. */
function checkLayout(name, dashboard, panels) {
  const ids = new Set();
  for (const panel of panels) {
    const where = `panel "${panel.title}"`;
    if (!Number.isInteger(panel.id)) fail(name, `${where} has no id`);
    else if (ids.has(panel.id)) fail(name, `${where} repeats id ${panel.id}`);
    ids.add(panel.id);

    const { x, y, w, h } = panel.gridPos ?? {};
    if (![x, y, w, h].every(Number.isInteger) || x < 0 || y < 0 || w < 1 || h < 1) {
      fail(name, `${where} has no valid gridPos`);
    } else if (x + w > GRID_COLUMNS) {
      fail(name, `${where} is wider than the grid (x ${x} + w ${w} > ${GRID_COLUMNS})`);
    }
  }

  // Overlapping panels are silently pushed down by Grafana.
  for (const [i, a] of panels.entries()) {
    for (const b of panels.slice(i + 1)) {
      if (a.gridPos && b.gridPos && overlap(a.gridPos, b.gridPos)) {
        fail(name, `panels "${a.title}" and "${b.title}" overlap`);
      }
    }
  }

  if (dashboard.tags?.includes('red')) {
    const rows = panels.filter((p) => p.type === 'row').map((p) => p.title);
    if (rows.join() !== RED_ROWS.join()) {
      fail(name, `rows are [${rows.join(', ')}], expected [${RED_ROWS.join(', ')}]`);
    }
  }
}

/**
 * A panel's title, description, unit, plugin version and datasource, then
 * each of its queries. Returns the number of queries.
 */
function checkPanel(name, panel) {
  const where = `panel "${panel.title ?? panel.id}"`;
  if (!nonEmpty(panel.title)) fail(name, `${where} has no title`);
  if (!nonEmpty(panel.description)) fail(name, `${where} has no description`);
  if (!nonEmpty(panel.fieldConfig?.defaults?.unit)) {
    fail(name, `${where} has no unit (fieldConfig.defaults.unit)`);
  }
  if (args['grafana-version'] && panel.pluginVersion !== args['grafana-version']) {
    fail(name, `${where} has pluginVersion ${JSON.stringify(panel.pluginVersion)}, ` +
      `the pinned Grafana is ${args['grafana-version']}`);
  }

  // Without a datasource of its own, a panel or query falls back to whatever
  // is the default; checkDatasourceRefs checks the ones that are there.
  if (!panel.datasource) fail(name, `${where} names no datasource`);

  const targets = panel.targets ?? [];
  if (targets.length === 0) fail(name, `${where} has no queries`);
  for (const target of targets) {
    const query = `${where} query ${target.refId}`;
    if (!nonEmpty(target.refId)) fail(name, `${where} has a query without refId`);
    if (!target.datasource) fail(name, `${query} names no datasource`);
    if (!nonEmpty(target.legendFormat)) fail(name, `${query} has no legendFormat`);
    if (!nonEmpty(target.expr)) {
      fail(name, `${query} has no expr`);
      continue;
    }
    checkExpr(name, query, target.expr, {
      names: known,
      instant: target.instant === true && target.range !== true,
    });
  }
  return targets.length;
}

/**
 * Queries outside panels: annotation queries, and the queries of template
 * variables, whose `label_values(metric, label)` and `query_result(expr)`
 * forms are unwrapped first.
 */
function checkOtherQueries(name, dashboard) {
  for (const annotation of dashboard.annotations?.list ?? []) {
    const expr = annotation.target?.expr ?? annotation.expr;
    const where = `annotation "${annotation.name}"`;
    if (nonEmpty(expr)) checkExpr(name, where, expr, { names: known, instant: false });
  }

  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    const where = `variable "${variable.name}"`;
    const values = /^\s*label_values\((.*),\s*\w+\s*\)\s*$/s.exec(query ?? '');
    const result = /^\s*query_result\((.*)\)\s*$/s.exec(query ?? '');
    const expr = values?.[1] ?? result?.[1];
    if (expr) checkExpr(name, where, expr, { names: known, instant: true });
  }
}

// ---------------------------------------------------------------------------
// Queries

/**
 * One PromQL expression: every metric it reads is in `names` (`unknown`
 * says why one is not), and in a dashboard (`instant` is defined) every
 * rate(), irate() and increase() takes its window from Grafana.
 *
 * `$__rate_interval` is required: it is never shorter than four scrape
 * intervals, so a rate always has two samples to work from, and it widens as
 * the graph zooms out. `$__range` is accepted in instant queries only, for
 * panels that sum up the whole time range (counts over the range, the error
 * budget over its 30-day window); in a range query it would make every
 * point of the graph cover the whole range.
 */
function checkExpr(file, where, expr, { names, instant, unknown = 'the service does not export' }) {
  let used;
  let windows;
  try {
    used = metricNames(expr);
    windows = rateWindows(expr);
  } catch (error) {
    fail(file, `${where}: ${error.message}`);
    return;
  }

  for (const metric of used) {
    if (!names.has(metric)) fail(file, `${where} reads "${metric}", which ${unknown}`);
  }
  if (instant === undefined) return;

  const allowed = instant ? ['$__rate_interval', '$__range'] : ['$__rate_interval'];
  for (const { fn, window } of windows) {
    const bare = window?.replace(/^\$\{(\w+)\}$/, '$$$1');
    if (!allowed.includes(bare)) {
      fail(file, `${where}: ${fn}() over [${window ?? 'no range'}], expected ` +
        `${allowed.map((w) => `[${w}]`).join(' or ')}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Prometheus rule files

/**
 * The `expr` of every rule in the given files and folders reads only
 * exported metrics, Prometheus' own series, or a recording rule defined in
 * one of the files.
 */
function checkRules(paths) {
  const files = [];
  for (const path of paths) {
    if (!existsSync(path)) fail(path, 'no such file or folder');
    else if (statSync(path).isDirectory()) files.push(...yamlFiles(path));
    else files.push(path);
  }

  // Promtool test files (with `tests:`) may sit beside the rules; they hold
  // made-up input series and are not rules.
  const groups = [];
  for (const file of files) {
    let doc;
    try {
      doc = YAML.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      fail(file, `not YAML: ${error.message}`);
      continue;
    }
    if (Array.isArray(doc?.groups)) groups.push(...doc.groups.map((g) => [file, g]));
    else if (doc?.tests) ok(`${basename(file)}: a promtool test file, skipped`);
    else fail(file, 'neither a rule file (groups:) nor a promtool test file (tests:)');
  }

  const recorded = new Set(
    groups.flatMap(([, group]) => (group.rules ?? []).map((r) => r.record).filter(Boolean)),
  );
  const names = new Set([...known, ...recorded]);

  const counts = new Map();
  for (const [file, group] of groups) {
    const before = failures;
    for (const rule of group.rules ?? []) {
      const where = `group "${group.name}" ${rule.record ? 'record' : 'alert'} ` +
        `"${rule.record ?? rule.alert}"`;
      if (!nonEmpty(rule.expr)) fail(file, `${where} has no expr`);
      else checkExpr(file, where, String(rule.expr), { names, unknown: NOT_RECORDED });
    }
    const count = counts.get(file) ?? { rules: 0, clean: true };
    count.rules += (group.rules ?? []).length;
    count.clean &&= failures === before;
    counts.set(file, count);
  }
  for (const [file, { rules, clean }] of counts) {
    if (clean) ok(`${basename(file)}: ${rules} rule expressions read known metrics`);
  }
  if (files.length === 0) ok(`${paths.join(', ')}: no rule files yet`);
}

// ---------------------------------------------------------------------------
// Helpers

/** A string with something in it. */
function nonEmpty(value) {
  return typeof value === 'string' && value.trim() !== '';
}

/** Top-level panels, then the panels inside collapsed rows. */
function flatPanels(dashboard) {
  return (dashboard.panels ?? []).flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

/** Whether two grid rectangles share any cell. */
function overlap(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** Calls `visit(path, key, value)` for every property in a JSON value. */
function walk(value, path, visit) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => walk(item, `${path}[${i}]`, visit));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const child = path ? `${path}.${key}` : key;
      visit(child, key, item);
      walk(item, child, visit);
    }
  }
}
