/**
 * The notes table (`example_notes`, created by migrations/001_notes.sql): the only SQL of
 * this plugin, so every statement names only a table the plugin owns.
 *
 * @module
 */
import type { Clock } from "borealis/core/clock.ts";
import type { Sql } from "borealis/core/db.ts";
import type { Note, NotesService } from "./api.ts";

interface NoteRow {
  id: string | number;
  text: string;
  created_at: Date;
}

const toNote = (r: NoteRow): Note => ({
  id: Number(r.id),
  text: r.text,
  created_at: r.created_at.toISOString(),
});

/** Notes in the database. */
export class NoteStore implements NotesService {
  constructor(private readonly sql: Sql, private readonly clock: Clock) {}

  /** The newest notes first. */
  async list(limit: number): Promise<Note[]> {
    const rows = await this.sql<NoteRow[]>`
      select id, text, created_at from example_notes order by id desc limit ${limit}`;
    return rows.map(toNote);
  }

  /** Stores a note unless the board holds `max` already (then null), in one statement. */
  async add(text: string, max: number): Promise<Note | null> {
    const [row] = await this.sql<NoteRow[]>`
      insert into example_notes (text, created_at)
      select ${text}, ${new Date(this.clock.now())}
      where (select count(*) from example_notes) < ${max}
      returning id, text, created_at`;
    return row ? toNote(row) : null;
  }

  /** Deletes a note; false when there was none. */
  async delete(id: number): Promise<boolean> {
    const result = await this.sql`delete from example_notes where id = ${id}`;
    return result.count > 0;
  }

  async count(): Promise<number> {
    const [row] = await this.sql<{ n: number }[]>`select count(*)::int as n from example_notes`;
    return row!.n;
  }

  /** Deletes notes older than `days`; returns how many. */
  async prune(days: number): Promise<number> {
    const cutoff = new Date(this.clock.now() - days * 86_400_000);
    const { count } = await this.sql`delete from example_notes where created_at < ${cutoff}`;
    return count;
  }
}
