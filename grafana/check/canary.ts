/**
 * Mistakes the type check must catch. Each `@ts-expect-error` line fails the
 * compilation if the statement under it type-checks, so a change that loosens
 * the types (an `any` creeping in, an enum no longer mapped) breaks the check
 * instead of silently letting every dashboard pass. The first statement is the
 * opposite: enum values as JSON writes them must be accepted.
 */
import type { DashboardJson, PanelOptions } from './types';

export const enumValuesAreAccepted = {
  schemaVersion: 42,
  graphTooltip: 1,
  panels: [
    {
      type: 'timeseries',
      fieldConfig: {
        defaults: {
          color: { mode: 'palette-classic' },
          thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }] },
          mappings: [{ type: 'special', options: { match: 'null', result: { text: 'none' } } }],
        },
        overrides: [],
      },
    },
  ],
} satisfies DashboardJson;

// @ts-expect-error: a key the schema does not know.
export const unknownKey = { schemaVersion: 42, titel: 'x' } satisfies DashboardJson;

// @ts-expect-error: schemaVersion is required.
export const noSchemaVersion = { title: 'x' } satisfies DashboardJson;

// @ts-expect-error: schemaVersion is a number, not a string.
export const schemaVersionAsString = { schemaVersion: '42' } satisfies DashboardJson;

// @ts-expect-error: 7 is not a value of the numeric enum DashboardCursorSync.
export const badNumericEnum = { schemaVersion: 42, graphTooltip: 7 } satisfies DashboardJson;

export const badStringEnum = {
  schemaVersion: 42,
  panels: [
    {
      type: 'stat',
      // @ts-expect-error: 'rainbow' is not a value of FieldColorModeId.
      fieldConfig: { defaults: { color: { mode: 'rainbow' } }, overrides: [] },
    },
  ],
} satisfies DashboardJson;

export const optionTypo = {
  // @ts-expect-error: a misspelt legend option.
  legend: { showLegend: true, placment: 'bottom' },
} satisfies PanelOptions<'timeseries'>;

export const optionBadEnum = {
  // @ts-expect-error: 'fancy' is not a bar gauge display mode.
  displayMode: 'fancy',
} satisfies PanelOptions<'bargauge'>;

// @ts-expect-error: the deprecated graph panel has no option types here.
export const deprecatedPanel = {} satisfies PanelOptions<'graph'>;
