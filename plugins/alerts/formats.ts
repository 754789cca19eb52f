/**
 * How each channel kind shows a message: the versioned generic JSON body, a Slack
 * message (text + Block Kit), a Discord embed, a Microsoft Teams Adaptive Card (the
 * workflow / incoming-webhook envelope) and an email (subject, text, HTML). Pure
 * functions of the message, so every shape is tested without a network. Text that came
 * from devices (host names, rule summaries) is escaped for each format, and chat
 * mentions are disabled, so a host named "@everyone" pings nobody.
 *
 * @module
 */
import type { AlertMessage, EventItem } from "./api.ts";

/** Version of the generic webhook body. */
export const BODY_VERSION = 1;

/** Items a digest lists in chat messages and emails (the count covers the rest). */
export const DIGEST_LIST_LIMIT = 25;

const VERB: Record<string, string> = {
  "incident.opened": "Opened",
  "incident.escalated": "Escalated",
  "incident.acknowledged": "Acknowledged",
  "incident.resolved": "Resolved",
};

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** One line naming an event: "[ERROR] Opened: CPU: host-1". */
export function headline(item: EventItem): string {
  return `[${item.incident.severity.toUpperCase()}] ${
    VERB[item.type] ?? item.type
  }: ${item.incident.title}`;
}

/** What happened, in one sentence. */
function detail(item: EventItem): string {
  const i = item.incident;
  switch (item.type) {
    case "incident.opened":
      return i.message;
    case "incident.escalated":
      return item.reason === "severity"
        ? `Severity raised from ${item.previous_severity ?? "?"} to ${i.severity}. ${i.message}`
        : `Triggered again (${i.trigger_count} times). ${i.message}`;
    case "incident.acknowledged":
      return `Acknowledged by ${i.acknowledged_by ?? "an operator"}.`;
    case "incident.resolved":
      return `Resolved (${i.resolution_reason ?? item.reason ?? "resolved"}).`;
  }
}

const facts = (item: EventItem): Array<[string, string]> => {
  const i = item.incident;
  return [
    ["Severity", i.severity],
    ["Device", i.hostname],
    ["Watchdog", i.watchdog_name],
    ["Site", i.site_id === null ? "none" : String(i.site_id)],
    ["Triggers", String(i.trigger_count)],
    ["Opened", i.opened_at],
  ];
};

function digestTitle(m: Extract<AlertMessage, { type: "digest" }>): string {
  const why = m.reason === "quiet_hours" ? "during quiet hours" : "in this digest";
  return `${m.items.length} incident event${m.items.length === 1 ? "" : "s"} ${why}`;
}

// ---------------------------------------------------------------- generic webhook

/** The generic webhook body (see docs/alerts.md, "Payload"). */
export function genericBody(m: AlertMessage): Record<string, unknown> {
  const base = { version: BODY_VERSION, delivery_id: m.deliveryId, sent_at: m.sentAt };
  switch (m.type) {
    case "incident":
      return { ...base, ...m.item };
    case "digest":
      return { ...base, type: "digest", reason: m.reason, count: m.items.length, items: m.items };
    case "test":
      return { ...base, type: "test", channel: m.channel };
  }
}

/** The value of `X-Borealis-Event`. */
export function eventName(m: AlertMessage): string {
  return m.type === "incident" ? m.item.type : m.type;
}

// ---------------------------------------------------------------- Slack

/** Escapes Slack mrkdwn control characters. */
export const slackEscape = (s: string): string =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

const slackLink = (url: string, text: string) => `<${url}|${slackEscape(clip(text, 200))}>`;

/** A Slack incoming-webhook message. */
export function slackBody(m: AlertMessage): Record<string, unknown> {
  if (m.type === "test") {
    const text = `Borealis test message for channel "${m.channel.name}"`;
    return { text: slackEscape(text) };
  }
  if (m.type === "digest") {
    const lines = m.items.slice(0, DIGEST_LIST_LIMIT).map((it) =>
      `• ${slackLink(it.incident.url, headline(it))}`
    );
    if (m.items.length > DIGEST_LIST_LIMIT) {
      lines.push(`…and ${m.items.length - DIGEST_LIST_LIMIT} more`);
    }
    const title = digestTitle(m);
    return {
      text: slackEscape(title),
      blocks: [
        { type: "section", text: { type: "mrkdwn", text: `*${slackEscape(title)}*` } },
        { type: "section", text: { type: "mrkdwn", text: clip(lines.join("\n"), 2900) } },
      ],
    };
  }
  const it = m.item;
  return {
    text: slackEscape(clip(headline(it), 300)),
    blocks: [
      {
        type: "section",
        text: {
          type: "mrkdwn",
          text: `*${slackLink(it.incident.url, headline(it))}*\n${
            slackEscape(clip(detail(it), 2500))
          }`,
        },
      },
      {
        type: "context",
        elements: [{
          type: "mrkdwn",
          text: slackEscape(facts(it).map(([k, v]) => `${k}: ${v}`).join(" · ")),
        }],
      },
    ],
  };
}

// ---------------------------------------------------------------- Discord

const COLORS: Record<string, number> = { info: 0x3498db, warning: 0xf1c40f, error: 0xe74c3c };
const RESOLVED_COLOR = 0x2ecc71;

/** A Discord webhook message (one embed; mentions disabled). */
export function discordBody(m: AlertMessage): Record<string, unknown> {
  const none = { allowed_mentions: { parse: [] } };
  if (m.type === "test") {
    return {
      ...none,
      content: clip(`Borealis test message for channel "${m.channel.name}"`, 2000),
    };
  }
  if (m.type === "digest") {
    const lines = m.items.slice(0, DIGEST_LIST_LIMIT).map((it) =>
      `• [${clip(headline(it), 150).replaceAll("]", ")")}](${it.incident.url})`
    );
    if (m.items.length > DIGEST_LIST_LIMIT) {
      lines.push(`…and ${m.items.length - DIGEST_LIST_LIMIT} more`);
    }
    return {
      ...none,
      embeds: [{
        title: clip(digestTitle(m), 256),
        description: clip(lines.join("\n"), 4000),
        timestamp: m.sentAt,
      }],
    };
  }
  const it = m.item;
  return {
    ...none,
    embeds: [{
      title: clip(headline(it), 256),
      url: it.incident.url,
      description: clip(detail(it), 4000),
      color: it.type === "incident.resolved" ? RESOLVED_COLOR : COLORS[it.incident.severity],
      fields: facts(it).map(([name, value]) => ({ name, value: clip(value, 1000), inline: true })),
      timestamp: it.occurred_at,
    }],
  };
}

// ---------------------------------------------------------------- Microsoft Teams

const CARD_COLOR: Record<string, string> = {
  info: "Accent",
  warning: "Warning",
  error: "Attention",
};

/** A Teams message: an Adaptive Card in the envelope workflow webhooks accept. */
export function teamsBody(m: AlertMessage): Record<string, unknown> {
  const card = (body: unknown[], actions: unknown[] = []) => ({
    type: "message",
    attachments: [{
      contentType: "application/vnd.microsoft.card.adaptive",
      contentUrl: null,
      content: {
        $schema: "http://adaptivecards.io/schemas/adaptive-card.json",
        type: "AdaptiveCard",
        version: "1.4",
        body,
        ...(actions.length ? { actions } : {}),
      },
    }],
  });
  const text = (t: string, extra: Record<string, unknown> = {}) => ({
    type: "TextBlock",
    text: t,
    wrap: true,
    ...extra,
  });
  if (m.type === "test") {
    return card([text(`Borealis test message for channel "${m.channel.name}"`, {
      weight: "Bolder",
    })]);
  }
  if (m.type === "digest") {
    const lines = m.items.slice(0, DIGEST_LIST_LIMIT).map((it) =>
      text(`[${clip(headline(it), 150).replaceAll("]", ")")}](${it.incident.url})`, {
        spacing: "Small",
      })
    );
    if (m.items.length > DIGEST_LIST_LIMIT) {
      lines.push(text(`…and ${m.items.length - DIGEST_LIST_LIMIT} more`));
    }
    return card([text(digestTitle(m), { weight: "Bolder", size: "Medium" }), ...lines]);
  }
  const it = m.item;
  return card(
    [
      text(clip(headline(it), 300), {
        weight: "Bolder",
        size: "Medium",
        color: it.type === "incident.resolved" ? "Good" : CARD_COLOR[it.incident.severity],
      }),
      text(clip(detail(it), 3000)),
      { type: "FactSet", facts: facts(it).map(([title, value]) => ({ title, value })) },
    ],
    [{ type: "Action.OpenUrl", title: "Open in console", url: it.incident.url }],
  );
}

// ---------------------------------------------------------------- email

/** Escapes text for HTML. */
export const htmlEscape = (s: string): string =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");

/** An email: subject, plain text and HTML. */
export function emailContent(m: AlertMessage): { subject: string; text: string; html: string } {
  // Header injection: a subject never carries a line break.
  const subject = (s: string) => clip(`[Borealis] ${s}`.replace(/[\r\n]+/g, " "), 200);
  if (m.type === "test") {
    const t = `This is a test message for the alert channel "${m.channel.name}".`;
    return {
      subject: subject(`Test message: ${m.channel.name}`),
      text: t,
      html: `<p>${htmlEscape(t)}</p>`,
    };
  }
  if (m.type === "digest") {
    const shown = m.items.slice(0, 200);
    const more = m.items.length - shown.length;
    const title = digestTitle(m);
    return {
      subject: subject(title),
      text: [
        title,
        "",
        ...shown.map((it) => `- ${headline(it)}\n  ${it.incident.url}`),
        ...(more ? [`…and ${more} more`] : []),
      ].join("\n"),
      html: `<p><strong>${htmlEscape(title)}</strong></p><ul>${
        shown.map((it) =>
          `<li><a href="${htmlEscape(it.incident.url)}">${htmlEscape(headline(it))}</a></li>`
        ).join("")
      }</ul>${more ? `<p>…and ${more} more</p>` : ""}`,
    };
  }
  const it = m.item;
  const rows = facts(it);
  return {
    subject: subject(headline(it)),
    text: [
      headline(it),
      "",
      detail(it),
      "",
      ...rows.map(([k, v]) => `${k}: ${v}`),
      "",
      `Open in the console: ${it.incident.url}`,
    ].join("\n"),
    html: `<p><strong>${htmlEscape(headline(it))}</strong></p><p>${htmlEscape(detail(it))}</p>` +
      `<table>${
        rows.map(([k, v]) =>
          `<tr><th align="left">${htmlEscape(k)}</th><td>${htmlEscape(v)}</td></tr>`
        )
          .join("")
      }</table>` +
      `<p><a href="${htmlEscape(it.incident.url)}">Open in the console</a></p>`,
  };
}
