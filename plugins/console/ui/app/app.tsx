/**
 * The app: query cache, theme (light and dark from the component library), toasts, and
 * the router — public pages (first start, sign-in), then every registered page inside
 * the session gate and the shell.
 *
 * @module
 */
import CssBaseline from "@mui/material/CssBaseline";
import GlobalStyles from "@mui/material/GlobalStyles";
import { createTheme, ThemeProvider } from "@mui/material/styles";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createBrowserRouter, Navigate, RouterProvider } from "react-router";
import { ApiError } from "../api/client.ts";
import { FirstRunPage } from "../pages/first_run.tsx";
import { NotFoundPage } from "../pages/not_found.tsx";
import { SignInPage } from "../pages/sign_in.tsx";
import { HOME, PAGES } from "./pages.tsx";
import { AdminOnly, SessionGate } from "./session.tsx";
import { Shell } from "./shell.tsx";
import { ToastProvider } from "./toasts.tsx";

const theme = createTheme({
  colorSchemes: {
    // Warning and success dark enough for small text on white (WCAG AA 4.5:1).
    light: {
      palette: {
        primary: { main: "#0b5cad" },
        secondary: { main: "#00796b" },
        warning: { main: "#b35c00" },
        info: { main: "#01579b" },
        success: { main: "#2e7d32" },
      },
    },
    dark: { palette: { primary: { main: "#7cc4ff" }, secondary: { main: "#5ee0b5" } } },
  },
  cssVariables: { colorSchemeSelector: "class" },
  typography: {
    fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif',
  },
  components: {
    MuiButton: { defaultProps: { disableElevation: true } },
    // Subtitles are headings only where a page says so (component="h2"): as default h6
    // they would break the heading order screen readers navigate by.
    MuiTypography: {
      defaultProps: { variantMapping: { subtitle1: "p", subtitle2: "p" } },
    },
    // Help under a disabled (read-only) field is still read: keep it legible (WCAG AA).
    MuiFormHelperText: {
      styleOverrides: {
        root: ({ theme }) => ({
          "&.Mui-disabled": { color: (theme.vars ?? theme).palette.text.secondary },
        }),
      },
    },
  },
});

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      // 4xx answers do not get better by asking again.
      retry: (count, err) =>
        !(err instanceof ApiError && err.status >= 400 && err.status < 500) && count < 2,
    },
  },
});

const router = createBrowserRouter([
  { path: "/setup", element: <FirstRunPage /> },
  { path: "/sign-in", element: <SignInPage /> },
  {
    path: "/",
    element: (
      <SessionGate>
        <Shell />
      </SessionGate>
    ),
    children: [
      { index: true, element: <Navigate to={HOME} replace /> },
      ...PAGES.map((p) => ({
        path: p.path,
        element: p.adminOnly ? <AdminOnly page={p.component} title={p.title} /> : <p.component />,
      })),
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);

const globalStyles = (
  <GlobalStyles
    styles={{
      ".skip-link": { position: "absolute", left: -10000, top: 8, zIndex: 3000 },
      ".skip-link:focus": { left: 8, background: "#fff", color: "#000", padding: 8 },
      "pre, code": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" },
    }}
  />
);

/** The console. */
export function App() {
  return (
    <ThemeProvider theme={theme} defaultMode="system">
      <CssBaseline />
      {globalStyles}
      <QueryClientProvider client={queryClient}>
        <ToastProvider>
          <RouterProvider router={router} />
        </ToastProvider>
      </QueryClientProvider>
    </ThemeProvider>
  );
}
