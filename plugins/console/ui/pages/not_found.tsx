/**
 * An unknown console address.
 *
 * @module
 */
import Button from "@mui/material/Button";
import { Link as RouterLink } from "react-router";
import { PageHeader } from "../components/page.tsx";
import { EmptyState } from "../components/states.tsx";

/** 404 inside the shell. */
export function NotFoundPage() {
  return (
    <>
      <PageHeader title="Page not found" />
      <EmptyState
        title="There is no page at this address"
        action={
          <Button variant="contained" component={RouterLink} to="/devices">Go to devices</Button>
        }
      />
    </>
  );
}
