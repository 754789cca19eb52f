/**
 * Every list of the console is this AG Grid (Community, Quartz theme through its theming
 * API, so no CSS file): themed to follow the light/dark mode, real grid semantics for
 * screen readers (DOM order kept), and the empty state inside the grid.
 *
 * @module
 */
import { useColorScheme } from "@mui/material/styles";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Stack from "@mui/material/Stack";
import {
  CellApiModule,
  CellStyleModule,
  ClientSideRowModelApiModule,
  ClientSideRowModelModule,
  type ColDef,
  colorSchemeDark,
  colorSchemeLight,
  ColumnApiModule,
  EventApiModule,
  type GridApi,
  type GridOptions,
  InfiniteRowModelModule,
  ModuleRegistry,
  QuickFilterModule,
  RenderApiModule,
  RowApiModule,
  RowAutoHeightModule,
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
import { toCsv } from "../lib/csv.ts";

// Only what the console uses (AllCommunityModule would add about a third to the bundle).
ModuleRegistry.registerModules([
  ClientSideRowModelModule,
  ClientSideRowModelApiModule,
  CellApiModule,
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
  // Columns whose text wraps grow their rows (jobs, maintenance windows).
  RowAutoHeightModule,
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

/**
 * The cell style of a column with `wrapText` and `autoHeight`: the grid's one-line
 * line-height replaced by a reading one, with the row's padding rhythm kept.
 */
export const WRAPPED_CELL = { lineHeight: "1.4", paddingTop: "10px", paddingBottom: "10px" };

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
  // The row actions stay in view however many columns there are (pinned right).
  const columnDefs = useMemo(
    () =>
      props.columnDefs?.map((c) =>
        "colId" in c && c.colId === "actions" && !("pinned" in c)
          ? { ...c, pinned: "right" as const }
          : c
      ),
    [props.columnDefs],
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
        columnDefs={columnDefs}
        defaultColDef={defaultColDef}
      />
    </Box>
  );
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/**
 * The rows a client-side grid shows (after its filters and sort), with the columns it
 * shows (not the selection or action columns), as a CSV file download named
 * `<name>-<date>.csv`. Cells are the grid's own formatted values. Returns the row count.
 */
export function exportGridCsv<T>(api: GridApi<T> | null | undefined, name: string): number {
  if (!api) return 0;
  const columns = api.getAllDisplayedColumns().filter((c) => {
    const def = c.getColDef();
    return c.getColId() !== "ag-Grid-SelectionColumn" && !def.cellRendererParams?.noExport &&
      c.getColId() !== "actions";
  });
  const rows: unknown[][] = [];
  api.forEachNodeAfterFilterAndSort((node) => {
    if (!node.data) return;
    rows.push(columns.map((c) => {
      const def = c.getColDef();
      const raw = api.getCellValue({ rowNode: node, colKey: c });
      if (def.valueFormatter) {
        return api.getCellValue({ rowNode: node, colKey: c, useFormatter: true }) ?? "";
      }
      return raw === null || raw === undefined
        ? ""
        : typeof raw === "object"
        ? JSON.stringify(raw)
        : raw;
    }));
  });
  downloadCsv(toCsv(columns.map((c) => c.getColDef().headerName ?? c.getColId()), rows), name);
  return rows.length;
}

/** Downloads CSV text as `<name>-<date>.csv`. */
export function downloadCsv(csv: string, name: string): void {
  const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `${name}-${new Date().toISOString().slice(0, 10)}.csv`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * The Actions column of an admin list: Edit and Delete side by side, each labelled with the
 * row's name for screen readers, wide enough that neither is cut.
 */
export function editDeleteColumn<T extends { name: string }>(
  onEdit: (row: T) => void,
  onDelete: (row: T) => void,
  width = 160,
): ColDef<T> {
  return {
    headerName: "Actions",
    colId: "actions",
    width,
    sortable: false,
    cellRenderer: (p: { data?: T }) =>
      p.data && (
        <Stack direction="row" spacing={0.5} sx={{ alignItems: "center", height: "100%" }}>
          <Button size="small" onClick={() => onEdit(p.data!)} aria-label={`Edit ${p.data.name}`}>
            Edit
          </Button>
          <Button
            size="small"
            color="error"
            onClick={() => onDelete(p.data!)}
            aria-label={`Delete ${p.data.name}`}
          >
            Delete
          </Button>
        </Stack>
      ),
  };
}
