/**
 * The frame around every signed-in page: side navigation built from the page registry,
 * the header with global device search, operator presence, the socket's state and the
 * account menu, the vault-locked banner, and toasts for what the operator socket reports.
 *
 * @module
 */
import AccountCircleIcon from "@mui/icons-material/AccountCircle";
import DarkModeIcon from "@mui/icons-material/DarkMode";
import LightModeIcon from "@mui/icons-material/LightMode";
import Alert from "@mui/material/Alert";
import AppBar from "@mui/material/AppBar";
import Autocomplete from "@mui/material/Autocomplete";
import Avatar from "@mui/material/Avatar";
import AvatarGroup from "@mui/material/AvatarGroup";
import Box from "@mui/material/Box";
import Button from "@mui/material/Button";
import Chip from "@mui/material/Chip";
import Drawer from "@mui/material/Drawer";
import IconButton from "@mui/material/IconButton";
import List from "@mui/material/List";
import ListItem from "@mui/material/ListItem";
import ListItemButton from "@mui/material/ListItemButton";
import ListItemIcon from "@mui/material/ListItemIcon";
import ListItemText from "@mui/material/ListItemText";
import ListSubheader from "@mui/material/ListSubheader";
import { useColorScheme } from "@mui/material/styles";
import TextField from "@mui/material/TextField";
import Toolbar from "@mui/material/Toolbar";
import Tooltip from "@mui/material/Tooltip";
import Typography from "@mui/material/Typography";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { Suspense, useEffect, useRef, useState } from "react";
import { Link as RouterLink, Outlet, useLocation, useNavigate } from "react-router";
import { AccountMenu } from "../account/account_menu.tsx";
import { api, query } from "../api/client.ts";
import { useSocketEvent, useSocketState } from "../api/socket.ts";
import type { Presence } from "../api/types.ts";
import { PAGES, SECTIONS } from "./pages.tsx";
import { useBootstrap, useMe } from "./session.tsx";
import { useToasts } from "./toasts.tsx";
import { Loading } from "../components/states.tsx";

const DRAWER = 240;

interface SearchHit {
  agent_guid: string;
  hostname: string;
  site_name: string | null;
}

/** Hostname type-ahead: pick a device to open its page. */
function DeviceSearch() {
  const [input, setInput] = useState("");
  const [term, setTerm] = useState("");
  const navigate = useNavigate();
  useEffect(() => {
    const t = setTimeout(() => setTerm(input.trim()), 200);
    return () => clearTimeout(t);
  }, [input]);
  const hits = useQuery({
    queryKey: ["device-search", term],
    queryFn: ({ signal }) =>
      api<{ devices: SearchHit[] }>(`/api/devices/search${query({ hostname: term })}`, { signal }),
    enabled: term.length > 0,
    staleTime: 10_000,
  });
  return (
    <Autocomplete<SearchHit, false, false, false>
      sx={{ width: 320 }}
      size="small"
      options={term ? hits.data?.devices.slice(0, 20) ?? [] : []}
      filterOptions={(x) => x}
      getOptionLabel={(o) => o.hostname}
      isOptionEqualToValue={(a, b) => a.agent_guid === b.agent_guid}
      loading={hits.isFetching}
      noOptionsText={term ? "No device matches" : "Type a hostname"}
      inputValue={input}
      onInputChange={(_, v) => setInput(v)}
      value={null}
      onChange={(_, hit) => {
        if (!hit) return;
        setInput("");
        navigate(`/devices/${hit.agent_guid}`);
      }}
      renderOption={(props, o) => {
        const { key, ...rest } = props as typeof props & { key: string };
        return (
          <li key={key} {...rest}>
            <Box>
              <Typography variant="body2">{o.hostname}</Typography>
              <Typography variant="caption" color="text.secondary">
                {o.site_name ?? "No site"}
              </Typography>
            </Box>
          </li>
        );
      }}
      renderInput={(params) => (
        <TextField
          {...params}
          placeholder="Find a device by hostname"
          slotProps={{
            ...params.slotProps,
            htmlInput: { ...params.slotProps.htmlInput, "aria-label": "Find a device by hostname" },
          }}
          sx={{
            "& .MuiOutlinedInput-root": { bgcolor: "background.paper", color: "text.primary" },
          }}
        />
      )}
    />
  );
}

/** Who else is signed in to the console, and where. */
function PresenceAvatars() {
  const qc = useQueryClient();
  const me = useMe();
  const presence = useQuery({
    queryKey: ["presence"],
    queryFn: ({ signal }) => api<{ operators: Presence[] }>("/api/presence", { signal }),
    refetchInterval: 60_000,
  });
  useSocketEvent("presence", () => void qc.invalidateQueries({ queryKey: ["presence"] }));
  const others = new Map<string, Presence>();
  for (const p of presence.data?.operators ?? []) {
    if (p.username !== me.username) others.set(p.username, p);
  }
  if (!others.size) return null;
  return (
    <AvatarGroup max={4} sx={{ mr: 1 }} aria-label="Other operators online">
      {[...others.values()].map((p) => (
        <Tooltip key={p.username} title={`${p.username} is on ${p.current_page}`}>
          <Avatar sx={{ width: 30, height: 30, fontSize: 14 }} alt={p.username}>
            {p.username.slice(0, 1).toUpperCase()}
          </Avatar>
        </Tooltip>
      ))}
    </AvatarGroup>
  );
}

function ThemeToggle() {
  const { mode, systemMode, setMode } = useColorScheme();
  const dark = (mode === "system" ? systemMode : mode) === "dark";
  return (
    <Tooltip title={dark ? "Light theme" : "Dark theme"}>
      <IconButton
        color="inherit"
        aria-label={dark ? "Switch to the light theme" : "Switch to the dark theme"}
        onClick={() => setMode(dark ? "light" : "dark")}
      >
        {dark ? <LightModeIcon /> : <DarkModeIcon />}
      </IconButton>
    </Tooltip>
  );
}

/** Toasts and cache refreshes for what the operator socket reports, on every page. */
function SocketEffects() {
  const { notify, announce } = useToasts();
  const qc = useQueryClient();
  const navigate = useNavigate();
  const location = useLocation();
  const refreshSites = useRef<ReturnType<typeof setTimeout>>(undefined);
  useSocketEvent("notifications", (e) => {
    const d = e.data as { title?: string; message?: string; variant?: string };
    notify({
      title: d.title,
      message: d.message ?? "",
      severity: (["info", "success", "warning", "error"].includes(String(d.variant))
        ? d.variant
        : "info") as "info",
    });
  });
  useSocketEvent("approvals", (e) => {
    void qc.invalidateQueries({ queryKey: ["approvals"] });
    const d = e.data as { hostname?: string; status?: string };
    if (e.type === "device_approval_pending") {
      announce(`New device waiting for approval: ${d.hostname}`);
      // On the approvals page the row itself appears; elsewhere a toast points there.
      if (location.pathname !== "/approvals") {
        notify({
          message: `${d.hostname} asks to enroll`,
          severity: "info",
          action: { label: "Review", onClick: () => navigate("/approvals") },
        });
      }
    }
    if (d.status === "completed") void qc.invalidateQueries({ queryKey: ["devices"] });
  });
  useSocketEvent("device_status", () => {
    // Site counts follow device states; many changes at once refresh them once.
    clearTimeout(refreshSites.current);
    refreshSites.current = setTimeout(
      () => void qc.invalidateQueries({ queryKey: ["sites"] }),
      1000,
    );
  });
  return null;
}

/** The signed-in layout. */
export function Shell() {
  const me = useMe();
  const boot = useBootstrap();
  const location = useLocation();
  const socketState = useSocketState();
  const locked = boot.data?.aegis.state === "locked";
  const visible = PAGES.filter((p) => p.section && (!p.adminOnly || me.role === "Admin"));
  return (
    <Box sx={{ display: "flex", height: "100vh" }}>
      <a href="#main" className="skip-link">Skip to content</a>
      <AppBar position="fixed" sx={{ zIndex: (t) => t.zIndex.drawer + 1 }} elevation={1}>
        <Toolbar variant="dense" sx={{ gap: 2, minHeight: 56 }}>
          <Typography
            variant="h6"
            component={RouterLink}
            to="/"
            sx={{ color: "inherit", textDecoration: "none", width: DRAWER - 24, flexShrink: 0 }}
          >
            Borealis
          </Typography>
          <DeviceSearch />
          <Box sx={{ flexGrow: 1 }} />
          <PresenceAvatars />
          <Chip
            size="small"
            label={socketState === "open"
              ? "Live"
              : socketState === "connecting"
              ? "Connecting"
              : "Offline"}
            color={socketState === "open" ? "success" : "default"}
            variant="outlined"
            sx={{ color: "inherit", borderColor: "currentColor" }}
            title="Live updates from the engine"
          />
          <ThemeToggle />
          <AccountMenu icon={<AccountCircleIcon />} />
        </Toolbar>
      </AppBar>
      <Drawer
        variant="permanent"
        sx={{
          width: DRAWER,
          flexShrink: 0,
          "& .MuiDrawer-paper": { width: DRAWER, boxSizing: "border-box" },
        }}
      >
        <Toolbar sx={{ minHeight: 56 }} />
        <Box
          component="nav"
          aria-label="Main"
          sx={{ display: "flex", flexDirection: "column", flexGrow: 1, "& > p": { mt: "auto" } }}
        >
          {SECTIONS.filter((section) => visible.some((p) => p.section === section)).map((
            section,
          ) => (
            <List
              key={section}
              dense
              disablePadding
              subheader={
                <ListSubheader sx={{ lineHeight: "30px", mt: 0.5 }}>{section}</ListSubheader>
              }
            >
              {visible.filter((p) => p.section === section).map((p) => {
                const to = `/${p.path}`;
                const active = location.pathname === to || location.pathname.startsWith(`${to}/`);
                return (
                  <ListItem key={p.path} disablePadding>
                    <ListItemButton
                      component={RouterLink}
                      to={to}
                      selected={active}
                      aria-current={active ? "page" : undefined}
                      sx={{ py: 0.25 }}
                    >
                      <ListItemIcon sx={{ minWidth: 36 }}>{p.icon}</ListItemIcon>
                      <ListItemText primary={p.title} />
                      {p.badge && <p.badge />}
                    </ListItemButton>
                  </ListItem>
                );
              })}
            </List>
          ))}
          <Typography variant="caption" color="text.secondary" component="p" sx={{ p: 2 }}>
            Signed in as {me.username} ({me.role})
          </Typography>
        </Box>
      </Drawer>
      <Box
        component="main"
        id="main"
        tabIndex={-1}
        sx={{ flexGrow: 1, display: "flex", flexDirection: "column", minWidth: 0, outline: "none" }}
      >
        <Toolbar sx={{ minHeight: 56 }} />
        {locked && (
          <Alert
            severity="warning"
            sx={{ borderRadius: 0 }}
            action={me.role === "Admin"
              ? <Button color="inherit" component={RouterLink} to="/setup">Unlock</Button>
              : undefined}
          >
            The vault is locked: enrollment codes, credentials and new TOTP setups are unavailable
            until {me.role === "Admin" ? "you unlock it" : "an admin unlocks it"}.
          </Alert>
        )}
        <Box sx={{ flexGrow: 1, minHeight: 0, display: "flex", flexDirection: "column" }}>
          <Suspense fallback={<Loading label="Loading the page" />}>
            <Outlet />
          </Suspense>
        </Box>
      </Box>
      <SocketEffects />
    </Box>
  );
}
