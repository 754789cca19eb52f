/**
 * The page registry: every page of the console with its route, navigation entry and
 * role. The shell builds the router and the side navigation from this table, so adding
 * a page is one entry here and one file under pages/. Pages are loaded lazily: the
 * bundler makes each its own chunk, so the first visit downloads the shell and the page
 * it opens, not the code editor, every grid and every form.
 *
 * @module
 */
import CodeIcon from "@mui/icons-material/Code";
import DevicesIcon from "@mui/icons-material/Devices";
import HowToRegIcon from "@mui/icons-material/HowToReg";
import LocationCityIcon from "@mui/icons-material/LocationCity";
import { type ComponentType, lazy, type ReactNode } from "react";

/** One page of the console. */
export interface PageDef {
  /** react-router path (relative to the shell). */
  path: string;
  /** Shown in the navigation and as the document title. */
  title: string;
  component: ComponentType;
  /** Listed in the side navigation under this section (omit for detail pages). */
  section?: Section;
  icon?: ReactNode;
  /** Only admins see the entry (the API refuses others anyway). */
  adminOnly?: boolean;
  /** A live count shown beside the entry. */
  badge?: ComponentType;
}

/** Navigation sections, in order. */
export const SECTIONS = ["Inventory", "Automation", "Alerting", "Administration"] as const;
/** A navigation section. */
export type Section = typeof SECTIONS[number];

/** A page module loaded when first shown. */
function page<M extends Record<string, unknown>>(load: () => Promise<M>, name: keyof M) {
  return lazy(async () => ({ default: (await load())[name] as ComponentType }));
}

const SitesPage = page(() => import("../pages/sites.tsx"), "SitesPage");
const ApprovalsPage = page(() => import("../pages/approvals.tsx"), "ApprovalsPage");
const DevicesPage = page(() => import("../pages/devices.tsx"), "DevicesPage");
const DevicePage = page(() => import("../pages/device.tsx"), "DevicePage");
const AssembliesPage = page(() => import("../pages/assemblies.tsx"), "AssembliesPage");
const AssemblyEditorPage = page(
  () => import("../pages/assembly_editor.tsx"),
  "AssemblyEditorPage",
);

/** Every page behind sign-in. */
export const PAGES: PageDef[] = [
  {
    path: "sites",
    title: "Sites",
    component: SitesPage,
    section: "Inventory",
    icon: <LocationCityIcon />,
  },
  {
    path: "approvals",
    title: "Device approvals",
    component: ApprovalsPage,
    section: "Inventory",
    icon: <HowToRegIcon />,
  },
  {
    path: "devices",
    title: "Devices",
    component: DevicesPage,
    section: "Inventory",
    icon: <DevicesIcon />,
  },
  { path: "devices/:guid", title: "Device", component: DevicePage },
  {
    path: "assemblies",
    title: "Assemblies",
    component: AssembliesPage,
    section: "Automation",
    icon: <CodeIcon />,
  },
  { path: "assemblies/:guid", title: "Assembly", component: AssemblyEditorPage },
];

/** Where "/" goes. */
export const HOME = "/devices";
