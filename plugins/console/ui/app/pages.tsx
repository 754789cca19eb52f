/**
 * The page registry: every page of the console with its route, navigation entry and
 * role. The shell builds the router and the side navigation from this table, so adding
 * a page is one entry here and one file under pages/. Pages are loaded lazily: the
 * bundler makes each its own chunk, so the first visit downloads the shell and the page
 * it opens, not the code editor, every grid and every form.
 *
 * @module
 */
import AccountTreeIcon from "@mui/icons-material/AccountTree";
import CodeIcon from "@mui/icons-material/Code";
import DevicesIcon from "@mui/icons-material/Devices";
import FilterAltIcon from "@mui/icons-material/FilterAlt";
import HistoryEduIcon from "@mui/icons-material/HistoryEdu";
import HowToRegIcon from "@mui/icons-material/HowToReg";
import KeyIcon from "@mui/icons-material/Key";
import LocationCityIcon from "@mui/icons-material/LocationCity";
import NotificationsActiveIcon from "@mui/icons-material/NotificationsActive";
import PeopleIcon from "@mui/icons-material/People";
import ScheduleIcon from "@mui/icons-material/Schedule";
import SendIcon from "@mui/icons-material/Send";
import VisibilityIcon from "@mui/icons-material/Visibility";
import WeekendIcon from "@mui/icons-material/Weekend";
import { type ComponentType, lazy, type ReactNode } from "react";
import { AlertCountBadge } from "../components/nav_counts.tsx";

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
const FiltersPage = page(() => import("../pages/filters.tsx"), "FiltersPage");
const FilterEditorPage = page(() => import("../pages/filter_editor.tsx"), "FilterEditorPage");
const AssembliesPage = page(() => import("../pages/assemblies.tsx"), "AssembliesPage");
const AssemblyEditorPage = page(
  () => import("../pages/assembly_editor.tsx"),
  "AssemblyEditorPage",
);
const JobsPage = page(() => import("../pages/jobs.tsx"), "JobsPage");
const JobEditorPage = page(() => import("../pages/job_editor.tsx"), "JobEditorPage");
const WatchdogsPage = page(() => import("../pages/watchdogs.tsx"), "WatchdogsPage");
const WatchdogEditorPage = page(
  () => import("../pages/watchdog_editor.tsx"),
  "WatchdogEditorPage",
);
const WindowsPage = page(() => import("../pages/maintenance.tsx"), "MaintenancePage");
const AlertsPage = page(() => import("../pages/alerts.tsx"), "AlertsPage");
const ChannelsPage = page(() => import("../pages/alert_channels.tsx"), "AlertChannelsPage");
const UsersPage = page(() => import("../pages/users.tsx"), "UsersPage");
const CredentialsPage = page(() => import("../pages/credentials.tsx"), "CredentialsPage");
const DirectoryPage = page(() => import("../pages/directory.tsx"), "DirectoryPage");
const AuditPage = page(() => import("../pages/audit.tsx"), "AuditPage");

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
    path: "filters",
    title: "Filters",
    component: FiltersPage,
    section: "Inventory",
    icon: <FilterAltIcon />,
  },
  { path: "filters/:id", title: "Filter", component: FilterEditorPage },
  {
    path: "assemblies",
    title: "Assemblies",
    component: AssembliesPage,
    section: "Automation",
    icon: <CodeIcon />,
  },
  { path: "assemblies/:guid", title: "Assembly", component: AssemblyEditorPage },
  {
    path: "jobs",
    title: "Scheduled jobs",
    component: JobsPage,
    section: "Automation",
    icon: <ScheduleIcon />,
  },
  { path: "jobs/:id", title: "Scheduled job", component: JobEditorPage },
  {
    path: "watchdogs",
    title: "Watchdogs",
    component: WatchdogsPage,
    section: "Automation",
    icon: <VisibilityIcon />,
  },
  { path: "watchdogs/:id", title: "Watchdog", component: WatchdogEditorPage },
  {
    path: "maintenance",
    title: "Maintenance windows",
    component: WindowsPage,
    section: "Automation",
    icon: <WeekendIcon />,
  },
  {
    path: "alerts",
    title: "Alerts",
    component: AlertsPage,
    section: "Alerting",
    icon: <NotificationsActiveIcon />,
    badge: AlertCountBadge,
  },
  {
    path: "notifications",
    title: "Notification channels",
    component: ChannelsPage,
    section: "Alerting",
    icon: <SendIcon />,
    adminOnly: true,
  },
  {
    path: "users",
    title: "Users",
    component: UsersPage,
    section: "Administration",
    icon: <PeopleIcon />,
    adminOnly: true,
  },
  {
    path: "credentials",
    title: "Credentials and vault",
    component: CredentialsPage,
    section: "Administration",
    icon: <KeyIcon />,
    adminOnly: true,
  },
  {
    path: "directory",
    title: "Directory services",
    component: DirectoryPage,
    section: "Administration",
    icon: <AccountTreeIcon />,
    adminOnly: true,
  },
  {
    path: "audit",
    title: "Audit log",
    component: AuditPage,
    section: "Administration",
    icon: <HistoryEduIcon />,
    adminOnly: true,
  },
];

/** Where "/" goes. */
export const HOME = "/devices";
