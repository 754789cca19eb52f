/**
 * A real SMTP server for the alerts tests and benchmark, run as its own process
 * (`deno run -A smtp_server.ts --port 0 --cert server.pem --key server.key --user u
 * --pass p [--tls]`): the smtp-server package with STARTTLS (or implicit TLS with
 * `--tls`), authentication required and refused before TLS. Prints
 * `{"listening":<port>}` and then one JSON line per received mail
 * (`{from, to, user, secure, data}`) on stdout.
 *
 * @module
 */
// @ts-types="@types/smtp-server"
import { SMTPServer } from "smtp-server";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    cert: { type: "string" },
    key: { type: "string" },
    user: { type: "string", default: "alerts" },
    pass: { type: "string", default: "secret" },
    tls: { type: "boolean", default: false },
  },
});

const out = (o: unknown) => console.log(JSON.stringify(o));

const server = new SMTPServer({
  secure: values.tls,
  key: Deno.readTextFileSync(values.key!),
  cert: Deno.readTextFileSync(values.cert!),
  authMethods: ["PLAIN", "LOGIN"],
  // Credentials only over TLS (the default, said out loud).
  allowInsecureAuth: false,
  logger: false,
  onAuth(auth, session, callback) {
    if (!session.secure) return callback(new Error("TLS first"));
    if (auth.username === values.user && auth.password === values.pass) {
      return callback(null, { user: auth.username });
    }
    callback(new Error("Invalid username or password"));
  },
  onData(stream, session, callback) {
    const chunks: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.on("end", () => {
      out({
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
        to: session.envelope.rcptTo.map((r) => r.address),
        user: session.user ?? null,
        secure: session.secure,
        data: new TextDecoder().decode(Buffer.concat(chunks)),
      });
      callback();
    });
  },
});
// A client that refuses our certificate ends its TLS session with an alert: not fatal here.
server.on("error", (err: Error) => out({ error: err.message }));
server.listen(Number(values.port), "127.0.0.1", () => {
  const addr = server.server.address() as { port: number };
  out({ listening: addr.port });
});
Deno.addSignalListener("SIGTERM", () => server.close(() => Deno.exit(0)));
