/**
 * The types the dashboards are checked against: `Dashboard` from
 * `@grafana/schema`, and the option types of each panel plugin we use,
 * rewritten to describe JSON rather than TypeScript values.
 *
 * The schema declares string enums (`FieldColorModeId.PaletteClassic`) where
 * the JSON holds their values (`"palette-classic"`); `JsonOf` replaces every
 * string enum, however deep, with the union of its values, and leaves every
 * other type as the schema states it. Rewriting the types, rather than the
 * JSON into enum member names, keeps the generated modules a verbatim copy
 * of the files Grafana reads. Numeric enums need nothing: TypeScript already
 * accepts a number literal that is one of their values.
 */
import type { Dashboard } from '@grafana/schema';
// `panelcfg/<plugin>` is mapped in tsconfig.json to the plugin's generated
// option types inside the package.
import type * as BarGauge from 'panelcfg/bargauge';
import type * as Gauge from 'panelcfg/gauge';
import type * as Heatmap from 'panelcfg/heatmap';
import type * as Stat from 'panelcfg/stat';
import type * as TimeSeries from 'panelcfg/timeseries';

/** True for `any`, which would otherwise spread through the conditionals. */
type IsAny<T> = 0 extends 1 & T ? true : false;

/** `T` as it is written in JSON: string enums become their values. */
export type JsonOf<T> =
  IsAny<T> extends true
    ? T
    : T extends string
      ? `${T}`
      : T extends number | boolean | bigint | null | undefined
        ? T
        : T extends ReadonlyArray<infer U>
          ? Array<JsonOf<U>>
          : T extends object
            ? { [K in keyof T]: JsonOf<T[K]> }
            : T;

/**
 * `T` with every property optional at every depth. Grafana merges a panel's
 * options and field config over the plugin's defaults, so a dashboard states
 * only what it changes; misspelt or mistyped keys are still rejected.
 */
export type DeepPartial<T> =
  T extends ReadonlyArray<infer U>
    ? Array<DeepPartial<U>>
    : T extends object
      ? { [K in keyof T]?: DeepPartial<T[K]> }
      : T;

/** A whole dashboard file. */
export type DashboardJson = JsonOf<Dashboard>;

/** No keys at all: for plugins that have no custom field config. */
type NoCustomFieldConfig = Record<string, never>;

/**
 * Options and custom field config of every panel type the dashboards may
 * use. A panel of any other type fails the type check, which is also how a
 * deprecated type (`graph`, `singlestat`) is kept out.
 */
export interface PanelTypes {
  bargauge: { options: BarGauge.Options; custom: NoCustomFieldConfig };
  gauge: { options: Gauge.Options; custom: NoCustomFieldConfig };
  heatmap: { options: Heatmap.Options; custom: Heatmap.FieldConfig };
  stat: { options: Stat.Options; custom: NoCustomFieldConfig };
  timeseries: { options: TimeSeries.Options; custom: TimeSeries.FieldConfig };
}

/** The `options` object of a panel of type `P`, as JSON. */
export type PanelOptions<P extends keyof PanelTypes> = DeepPartial<
  JsonOf<PanelTypes[P]['options']>
>;

/** The `fieldConfig.defaults.custom` object of a panel of type `P`. */
export type PanelCustom<P extends keyof PanelTypes> = DeepPartial<
  JsonOf<PanelTypes[P]['custom']>
>;
