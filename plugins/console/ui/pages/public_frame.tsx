/**
 * The centred card of the pages before sign-in (first start, sign-in).
 *
 * @module
 */
import Box from "@mui/material/Box";
import Paper from "@mui/material/Paper";
import Typography from "@mui/material/Typography";
import { type ReactNode, useEffect } from "react";

/** A card with the product name and a heading. */
export function PublicFrame({ title, children }: { title: string; children: ReactNode }) {
  useEffect(() => {
    document.title = `${title} · Borealis`;
  }, [title]);
  return (
    <Box
      component="main"
      sx={{
        minHeight: "100vh",
        display: "flex",
        alignItems: "center",
        justifyContent: "center",
        bgcolor: "background.default",
        p: 2,
      }}
    >
      <Paper elevation={3} sx={{ width: 440, maxWidth: "100%", px: 4, py: 3 }}>
        <Typography variant="overline" color="primary" component="p" sx={{ letterSpacing: 2 }}>
          Borealis
        </Typography>
        <Typography variant="h5" component="h1" sx={{ mb: 1.5 }}>{title}</Typography>
        {children}
      </Paper>
    </Box>
  );
}
