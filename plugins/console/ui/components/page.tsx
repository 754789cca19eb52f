/**
 * The frame of a page: its title (also the document title and the heading screen readers
 * land on), an optional subtitle and the page's actions on the right.
 *
 * @module
 */
import Box from "@mui/material/Box";
import Stack from "@mui/material/Stack";
import Typography from "@mui/material/Typography";
import { type ReactNode, useEffect } from "react";

/** The header of a page. */
export function PageHeader(
  { title, subtitle, actions, children }: {
    title: string;
    subtitle?: ReactNode;
    actions?: ReactNode;
    children?: ReactNode;
  },
) {
  useEffect(() => {
    document.title = `${title} · Borealis`;
  }, [title]);
  return (
    <Box sx={{ px: 3, pt: 2, pb: 1.5 }}>
      <Stack direction="row" spacing={2} sx={{ alignItems: "center", minHeight: 40 }}>
        <Box sx={{ flexGrow: 1, minWidth: 0 }}>
          <Typography variant="h5" component="h1" noWrap>{title}</Typography>
          {subtitle && (
            <Typography variant="body2" color="text.secondary" component="div" noWrap>
              {subtitle}
            </Typography>
          )}
        </Box>
        {actions && (
          <Stack direction="row" spacing={1} sx={{ alignItems: "center", flexShrink: 0 }}>
            {actions}
          </Stack>
        )}
      </Stack>
      {children}
    </Box>
  );
}
