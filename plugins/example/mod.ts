/**
 * The example plugin from docs/plugins.md: a tiny note board showing every part of the
 * plugin contract — a migration, a settings section, zod-validated routes that appear
 * in the OpenAPI document, a typed event, a service other plugins can use, a
 * background task, and a shutdown hook. Load it with `BOREALIS_PLUGINS=all,example`.
 *
 * @module
 */
import { bigIdParam, intParam } from "../../core/fields.ts";
import { createRoute, z } from "@hono/zod-openapi";
import { intEnv, setting } from "../../core/config.ts";
import { HttpError, notFound } from "../../core/errors.ts";
import { eventKey } from "../../core/events.ts";
import { definePlugin, serviceKey } from "../../core/plugin.ts";

/** Published after a note is stored. */
export const noteCreated = eventKey<{ id: number; text: string }>("example.note_created");

/** What this plugin offers other plugins. */
export interface NotesService {
  count(): Promise<number>;
}

/** Service key: `ctx.use(notesService)` in a plugin that requires "example". */
export const notesService = serviceKey<NotesService>("example.notes");

const Note = z.object({
  id: z.number().int(),
  text: z.string(),
  created_at: z.string().datetime(),
}).openapi("ExampleNote");

const ErrorBody = z.object({
  error: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
})
  .openapi("Error");

const listNotes = createRoute({
  method: "get",
  path: "/api/example/notes",
  summary: "List notes, newest first",
  request: { query: z.object({ limit: intParam({ min: 1, max: 100 }).default(20) }) },
  responses: {
    200: {
      description: "Notes",
      content: { "application/json": { schema: z.object({ items: z.array(Note) }) } },
    },
    400: { description: "Bad query", content: { "application/json": { schema: ErrorBody } } },
  },
});

const createNote = createRoute({
  method: "post",
  path: "/api/example/notes",
  summary: "Add a note",
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({ text: z.string().trim().min(1).max(500) }).strict(),
        },
      },
    },
  },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: Note } } },
    400: { description: "Bad body", content: { "application/json": { schema: ErrorBody } } },
    409: { description: "Board full", content: { "application/json": { schema: ErrorBody } } },
  },
});

const deleteNote = createRoute({
  method: "delete",
  path: "/api/example/notes/{id}",
  summary: "Delete a note",
  request: { params: z.object({ id: bigIdParam() }) },
  responses: {
    204: { description: "Deleted" },
    404: { description: "No such note", content: { "application/json": { schema: ErrorBody } } },
  },
});

interface NoteRow {
  id: string | number;
  text: string;
  created_at: Date;
}

const toNote = (r: NoteRow) => ({
  id: Number(r.id),
  text: r.text,
  created_at: r.created_at.toISOString(),
});

export default definePlugin({
  name: "example",
  description: "Example note board used by the plugin author's guide",
  migrations: new URL("./migrations/", import.meta.url),
  settings: {
    maxNotes: setting(
      "BOREALIS_EXAMPLE_MAX_NOTES",
      intEnv(1000, 1, 1_000_000),
      "an integer from 1 to 1000000",
      "How many notes the board holds.",
      "1000",
    ),
    retentionDays: setting(
      "BOREALIS_EXAMPLE_RETENTION_DAYS",
      intEnv(30, 1, 3650),
      "days, an integer from 1 to 3650",
      "Notes older than this are pruned hourly.",
      "30",
    ),
  },
  setup(ctx) {
    const { sql, clock } = ctx;

    ctx.http.openapi(listNotes, async (c) => {
      const { limit } = c.req.valid("query");
      const rows = await sql<NoteRow[]>`
        select id, text, created_at from example_notes order by id desc limit ${limit}`;
      return c.json({ items: rows.map(toNote) }, 200);
    });

    ctx.http.openapi(createNote, async (c) => {
      const { text } = c.req.valid("json");
      const [row] = await sql<NoteRow[]>`
        insert into example_notes (text, created_at)
        select ${text}, ${new Date(clock.now())}
        where (select count(*) from example_notes) < ${ctx.settings.maxNotes}
        returning id, text, created_at`;
      if (!row) {
        throw new HttpError(
          409,
          "board_full",
          `the board holds at most ${ctx.settings.maxNotes} notes`,
        );
      }
      const note = toNote(row);
      await ctx.events.publish(noteCreated, { id: note.id, text: note.text });
      return c.json(note, 201);
    });

    ctx.http.openapi(deleteNote, async (c) => {
      const { id } = c.req.valid("param");
      const result = await sql`delete from example_notes where id = ${id}`;
      if (result.count === 0) throw notFound(`no note ${id}`);
      return c.body(null, 204);
    });

    ctx.provide(notesService, {
      async count() {
        const [row] = await sql<{ n: number }[]>`select count(*)::int as n from example_notes`;
        return row!.n;
      },
    });

    ctx.tasks.every("prune", 3_600_000, async () => {
      const cutoff = new Date(clock.now() - ctx.settings.retentionDays * 86_400_000);
      const { count } = await sql`delete from example_notes where created_at < ${cutoff}`;
      if (count) ctx.log.info(`pruned ${count} old note(s)`);
    }, { clusterSingleton: true });

    ctx.onStop(() => ctx.log.info("example plugin stopped"));
  },
});
