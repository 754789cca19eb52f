/**
 * docs/alerts.md's signature-verification examples work as printed: the TypeScript
 * function and the OpenSSL line are taken from the guide and checked against a real
 * message the engine signed and sent, and against a tampered copy.
 */
import assert from "node:assert/strict";
import { startAlerts } from "../plugins/alerts/testing/harness.ts";

const guide = await Deno.readTextFile(new URL("../docs/alerts.md", import.meta.url));

/** The fenced block right after `<!-- example: name -->`. */
function example(name: string): string {
  const m = new RegExp(
    `<!-- example: ${name.replace(".", "\\.")} -->\\s*\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``,
  )
    .exec(guide);
  if (!m) throw new Error(`docs/alerts.md has no example ${name}`);
  return m[1]!;
}

const hasOpenssl = new Deno.Command("openssl", { args: ["version"], stdout: "null" })
  .outputSync().success;

Deno.test("alerts docs: the signature examples verify a real message and refuse a tampered one", async () => {
  const h = await startAlerts();
  const dir = await Deno.makeTempDir({ prefix: "alerts-docs-" });
  try {
    const created = await h.channel({
      kind: "webhook",
      name: "docs",
      url: `${h.receiver.url}/hook`,
    });
    const secret = created.signing_secret!;
    const test = await h.op(`/api/alerts/channels/${created.channel.id}/test`, { method: "POST" });
    assert.equal((await test.json()).ok, true);
    const msg = h.receiver.received[0]!;
    const timestamp = msg.headers.get("x-borealis-timestamp")!;
    const signature = msg.headers.get("x-borealis-signature")!;

    // The TypeScript example, imported as printed.
    await Deno.writeTextFile(`${dir}/verify.ts`, example("verify.ts"));
    const { verifyBorealis } = await import(`file://${dir}/verify.ts`);
    const now = Number(timestamp) + 10;
    assert.equal(verifyBorealis(secret, timestamp, signature, msg.body, now), true);
    assert.equal(verifyBorealis(secret, timestamp, signature, msg.body + " ", now), false);
    assert.equal(verifyBorealis("whsec_other", timestamp, signature, msg.body, now), false);
    assert.equal(verifyBorealis(secret, timestamp, signature, msg.body, now + 3600), false);

    // The OpenSSL example, run by bash as printed.
    if (hasOpenssl) {
      const run = async (body: string) => {
        await Deno.writeTextFile(`${dir}/body.json`, body);
        const out = await new Deno.Command("bash", {
          args: ["-c", example("verify.sh")],
          cwd: dir,
          env: { TIMESTAMP: timestamp, SIGNATURE: signature, BOREALIS_SIGNING_SECRET: secret },
          stdout: "piped",
        }).output();
        return new TextDecoder().decode(out.stdout).trim();
      };
      assert.equal(await run(msg.body), "signature ok");
      assert.equal(await run(msg.body.replace('"test"', '"tset"')), "signature MISMATCH");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await h.close();
  }
});
