/**
 * The page registry: every page of the console with its route, navigation entry and
 * role. The shell builds the router and the side navigation from this table, so adding
 * a page (part 2: assemblies, jobs, filters, watchdogs, alerts, users, credentials,
 * audit, directory) is one entry here and one file under pages/.
 *
 * @module
 */
import DevicesIcon from "@mui/icons-material/Devices";
import HowToRegIcon from "@mui/icons-material/HowToReg";
import LocationCityIcon from "@mui/icons-material/LocationCity";
import type { ComponentType, ReactNode } from "react";
import { ApprovalsPage } from "../pages/approvals.tsx";
import { DevicePage } from "../pages/device.tsx";
import { DevicesPage } from "../pages/devices.tsx";
import { SitesPage } from "../pages/sites.tsx";

/** One page of the console. */
export interface PageDef {
  /** react-router path (relative to the shell). */
  path: string;
  /** Shown in the navigation and as the document title. */
  title: string;
  component: ComponentType;
  /** Listed in the side navigation under this section (omit for detail pages). */
  section?: string;
  icon?: ReactNode;
  /** Only admins see the entry (the API refuses others anyway). */
  adminOnly?: boolean;
}

/** Navigation sections, in order. */
export const SECTIONS = ["Inventory"] as const;

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
];

/** Where "/" goes. */
export const HOME = "/devices";
