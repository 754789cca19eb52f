/**
 * Every list of the console is this AG Grid (Community, Quartz theme through its theming
 * API, so no CSS file): themed to follow the light/dark mode, real grid semantics for
 * screen readers (DOM order kept), and the empty state inside the grid.
 *
 * @module
 */
import { useColorScheme } from "@mui/material/styles";
import Box from "@mui/material/Box";
import {
  CellStyleModule,
  ClientSideRowModelModule,
  type ColDef,
  colorSchemeDark,
  colorSchemeLight,
  ColumnApiModule,
  EventApiModule,
  type GridOptions,
  InfiniteRowModelModule,
  ModuleRegistry,
  QuickFilterModule,
  RenderApiModule,
  RowApiModule,
  RowSelectionModule,
  RowStyleModule,
  ScrollApiModule,
  TextEditorModule,
  TextFilterModule,
  themeQuartz,
  TooltipModule,
} from "ag-grid-community";
import { AgGridReact, type AgGridReactProps } from "ag-grid-react";
import { type Ref, useMemo } from "react";

// Only what the console uses (AllCommunityModule would add about a third to the bundle).
ModuleRegistry.registerModules([
  ClientSideRowModelModule,
  InfiniteRowModelModule,
  TextFilterModule,
  QuickFilterModule,
  TextEditorModule,
  RowSelectionModule,
  RowStyleModule,
  CellStyleModule,
  TooltipModule,
  ColumnApiModule,
  RowApiModule,
  RenderApiModule,
  ScrollApiModule,
  EventApiModule,
]);

const base = themeQuartz.withParams({
  fontFamily: "inherit",
  fontSize: 13,
  headerFontWeight: 600,
  spacing: 6,
  wrapperBorderRadius: 4,
});
const LIGHT = base.withPart(colorSchemeLight).withParams({ accentColor: "#0b5cad" });
const DARK = base.withPart(colorSchemeDark).withParams({
  accentColor: "#7cc4ff",
  backgroundColor: "#1e1e1e",
  headerBackgroundColor: "#262626",
});

/** The grid theme for the current colour mode. */
export function useGridTheme() {
  const { mode, systemMode } = useColorScheme();
  const resolved = mode === "system" ? systemMode : mode;
  return resolved === "dark" ? DARK : LIGHT;
}

/** Defaults every grid shares. */
export const gridDefaults: GridOptions = {
  ensureDomOrder: true,
  suppressCellFocus: false,
  enableCellTextSelection: true,
  animateRows: false,
  rowHeight: 40,
  headerHeight: 40,
  defaultColDef: { sortable: true, resizable: true, minWidth: 80 },
  // The checkbox column needs a header name for screen readers (and axe).
  selectionColumnDef: {
    headerName: "Select",
    width: 80,
    minWidth: 80,
    resizable: false,
    sortable: false,
  },
};

/** Props of {@link DataGrid}. */
export type DataGridProps<T> = AgGridReactProps<T> & {
  /** Accessible name of the grid (announced by screen readers). */
  label: string;
  /** Text of the empty state. */
  emptyText?: string;
  height?: number | string;
  gridRef?: Ref<AgGridReact<T>>;
};

/** An AG Grid with the console's theme, semantics and empty state. */
export function DataGrid<T>(
  { label, emptyText = "Nothing to show", height = "100%", gridRef, ...props }: DataGridProps<T>,
) {
  const theme = useGridTheme();
  // Stable references: AG Grid re-applies any option whose object changes identity.
  const defaultColDef = useMemo(
    () => ({ ...gridDefaults.defaultColDef, ...props.defaultColDef } as ColDef<T>),
    [props.defaultColDef],
  );
  const overlay = useMemo(
    () => `<span class="ag-overlay-no-rows-center" role="status">${escapeHtml(emptyText)}</span>`,
    [emptyText],
  );
  return (
    <Box sx={{ height, width: "100%" }} role="region" aria-label={label}>
      <AgGridReact<T>
        ref={gridRef}
        theme={theme}
        overlayNoRowsTemplate={overlay}
        {...gridDefaults}
        {...props}
        defaultColDef={defaultColDef}
      />
    </Box>
  );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
