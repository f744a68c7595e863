// How the app writes classes, times and message text for people. Pure functions, no protocol:
// what the server sends comes in, text and DOM nodes go out, and message text only ever becomes
// text nodes and links (never markup).

const SEASONS = { 1: "January", 2: "Spring", 6: "Summer", 8: "Fall" };

// termName names an SIS term (strm): a century digit (1 for 2000), two of the year and the
// season (1 January, 2 Spring, 6 Summer, 8 Fall): 1262 is "Spring 2026". The sample catalogue's
// term SAMPLE is "Sample term"; anything else shows as it is.
export function termName(term) {
  if (term === "SAMPLE") return "Sample term";
  const m = /^([0-9])([0-9]{2})([0-9])$/.exec(term || "");
  if (!m || !SEASONS[m[3]]) return term || "";
  return `${SEASONS[m[3]]} ${1900 + Number(m[1]) * 100 + Number(m[2])}`;
}

// clock12 writes an HHMM time as "11:00" and its half of the day.
function clock12(hhmm) {
  const h = Number(hhmm.slice(0, 2));
  const m = hhmm.slice(2);
  return { text: `${((h + 11) % 12) + 1}:${m}`, half: h < 12 ? "am" : "pm" };
}

// timeRange writes "1100" and "1150" as "11:00–11:50 am", and "1100", "1350" as
// "11:00 am–1:50 pm"; "" when either is missing or not HHMM.
export function timeRange(start, end) {
  if (!/^[0-9]{4}$/.test(start || "") || !/^[0-9]{4}$/.test(end || "")) return "";
  const a = clock12(start);
  const b = clock12(end);
  return a.half === b.half ? `${a.text}–${b.text} ${b.half}` : `${a.text} ${a.half}–${b.text} ${b.half}`;
}

const DAYS = { Mo: "Mon", Tu: "Tue", We: "Wed", Th: "Thu", Fr: "Fri", Sa: "Sat", Su: "Sun" };

// daysName writes the SIS's "MoWeFr" as "Mon, Wed, Fri"; other text shows as it is.
export function daysName(days) {
  if (!days) return "";
  const parts = days.match(/Mo|Tu|We|Th|Fr|Sa|Su/g);
  if (!parts || parts.join("") !== days) return days;
  return parts.map((d) => DAYS[d]).join(", ");
}

// courseName is "CS 2150", with the section when there is one: "CS 2150 (001)".
export function courseName(c) {
  return `${c.subject} ${c.catalog_number}` + (c.class_section ? ` (${c.class_section})` : "");
}

// schedule is a class's meeting as one line: "Mon, Wed, Fri · 9:00–9:50 am · Sample Hall 100".
export function schedule(c) {
  return [daysName(c.days), timeRange(c.start_time, c.end_time), c.location].filter(Boolean).join(" · ");
}

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;

// linkify turns message text into text nodes and links: only http and https addresses become
// links, each opening in a new tab without telling the site where it came from. Punctuation
// that ends a sentence stays out of the link.
export function linkify(text) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let href = m[0];
    const trail = /[.,;:!?)\]'’]+$/.exec(href);
    if (trail) href = href.slice(0, -trail[0].length);
    let url;
    try {
      url = new URL(href);
    } catch (_) {
      continue;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") continue;
    if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement("a");
    a.href = url.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = href;
    out.push(a);
    last = m.index + href.length;
  }
  if (last < text.length) out.push(document.createTextNode(text.slice(last)));
  return out;
}

// dayLabel names the day of a time for a separator: "Today", "Yesterday", or "Tuesday, March 3".
export function dayLabel(t, now = new Date()) {
  const d = new Date(t);
  const start = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((start(now) - start(d)) / 86400000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric", year: d.getFullYear() === now.getFullYear() ? undefined : "numeric" });
}

// dayKey is the local calendar day of a time, for grouping.
export function dayKey(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

// clock is the time of day of a message: "9:41 AM".
export function clock(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
}

// plural writes "1 reply", "3 replies".
export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

/** countLabel shows a count the server caps at 99 ("99+" past it, more telling there are more). */
export function countLabel(n, more = false) {
  return more || n > 99 ? "99+" : String(n);
}

// phonesFromFile reads the phone numbers of a vCard (.vcf) or CSV file's text: every TEL line of
// a vCard, or every CSV field that looks like a phone number. Numbers keep their digits and a
// leading "+"; duplicates go.
export function phonesFromFile(text) {
  const found = [];
  if (/BEGIN:VCARD/i.test(text)) {
    for (const line of text.split(/\r?\n/)) {
      const m = /^(?:item\d+\.)?TEL[^:]*:(.+)$/i.exec(line.trim());
      if (m) found.push(m[1]);
    }
  } else {
    for (const field of text.split(/[,;\t\r\n]+/)) {
      const f = field.trim().replace(/^"|"$/g, "");
      if (/^\+?[0-9 ().-]{7,20}$/.test(f) && (f.match(/[0-9]/g) || []).length >= 7) found.push(f);
    }
  }
  const clean = found.map((p) => p.trim().replace(/(?!^\+)[^0-9]/g, "")).filter((p) => /^\+?[0-9]{7,15}$/.test(p));
  return [...new Set(clean)];
}
