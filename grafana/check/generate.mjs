// Turns each dashboard JSON file into a TypeScript module for `tsc` to check.
//
// Usage: node generate.mjs OUT_DIR DASHBOARD.json...
//
// Each module repeats the file verbatim as an object literal that `satisfies`
// the schema's Dashboard type (see types.ts), then repeats every panel's
// `options` and `fieldConfig.defaults.custom` as literals that satisfy the
// option types of the panel's plugin, which the Dashboard type leaves open.
// Object literals, because TypeScript rejects unknown keys only in a literal.
// OUT_DIR is emptied first, so a deleted dashboard leaves no module behind.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, relative } from 'node:path';

const [outDir, ...files] = process.argv.slice(2);
if (!outDir || files.length === 0) {
  console.error('usage: node generate.mjs OUT_DIR DASHBOARD.json...');
  process.exit(2);
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

for (const file of files) {
  const dashboard = JSON.parse(readFileSync(file, 'utf8'));
  const name = basename(file, '.json').replace(/[^A-Za-z0-9_]/g, '_');
  writeFileSync(`${outDir}/${name}.ts`, moduleFor(file, dashboard));
  console.log(`  ${file} -> ${relative(process.cwd(), outDir)}/${name}.ts`);
}

/** The module text for one dashboard. */
function moduleFor(file, dashboard) {
  const lines = [
    `// Generated from ${basename(file)} by generate.mjs; edit the JSON instead.`,
    "import type { DashboardJson, PanelCustom, PanelOptions } from '../types';",
    '',
    `export const dashboard = ${literal(dashboard)} satisfies DashboardJson;`,
  ];

  // Rows carry no options; their panels (when collapsed) are checked too.
  panelsOf(dashboard).forEach((panel, index) => {
    const type = JSON.stringify(panel.type ?? '');
    lines.push('', `// Panel ${index}: ${JSON.stringify(panel.title ?? '')}`);
    lines.push(
      `export const options${index} = ${literal(panel.options ?? {})}` +
        ` satisfies PanelOptions<${type}>;`,
    );
    const custom = panel.fieldConfig?.defaults?.custom ?? {};
    lines.push(
      `export const custom${index} = ${literal(custom)} satisfies PanelCustom<${type}>;`,
    );
  });

  return lines.join('\n') + '\n';
}

/** Every panel that is not a row, including those inside collapsed rows. */
function panelsOf(dashboard) {
  const all = [];
  for (const panel of dashboard.panels ?? []) {
    if (panel.type === 'row') all.push(...(panel.panels ?? []));
    else all.push(panel);
  }
  return all;
}

/** A JSON value as a TypeScript expression: JSON is one already. */
function literal(value) {
  return JSON.stringify(value, null, 2);
}
