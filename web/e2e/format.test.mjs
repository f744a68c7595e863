// The app's formatting of SIS data and contact files (web/static/format.js), in Node.
import { test } from "node:test";
import assert from "node:assert/strict";

import { countLabel, daysName, phonesFromFile, termName, timeRange } from "../static/format.js";

test("termName", () => {
  for (const [term, want] of [["1262", "Spring 2026"], ["1268", "Fall 2026"], ["1266", "Summer 2026"], ["1271", "January 2027"],
    ["0998", "Fall 1999"], ["SAMPLE", "Sample term"], ["1263", "1263"], ["", ""]]) {
    assert.equal(termName(term), want, term);
  }
});

test("timeRange", () => {
  for (const [a, b, want] of [["1100", "1150", "11:00–11:50 am"], ["1100", "1350", "11:00 am–1:50 pm"], ["1230", "1345", "12:30–1:45 pm"],
    ["0000", "0050", "12:00–12:50 am"], ["900", "950", ""], [null, "1150", ""]]) {
    assert.equal(timeRange(a, b), want, `${a}-${b}`);
  }
});

test("daysName", () => {
  assert.equal(daysName("MoWeFr"), "Mon, Wed, Fri");
  assert.equal(daysName("TuTh"), "Tue, Thu");
  assert.equal(daysName("TBA"), "TBA");
  assert.equal(daysName(null), "");
});

test("phonesFromFile", () => {
  const vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\nTEL;TYPE=CELL:+1 (434) 555-0100\r\nitem1.TEL:434-555-0101\r\nEND:VCARD\r\n" +
    "BEGIN:VCARD\r\nFN:Again\r\nTEL:+1 434 555 0100\r\nEND:VCARD\r\n";
  assert.deepEqual(phonesFromFile(vcf), ["+14345550100", "4345550101"]);
  const csv = "Name,Phone,Email\nAda,+1 434-555-0102,ada@example.com\nBob,\"(434) 555-0103\",\nCarol,2026,\n";
  assert.deepEqual(phonesFromFile(csv), ["+14345550102", "4345550103"]);
  assert.deepEqual(phonesFromFile("nothing here"), []);
});

test("countLabel", () => {
  for (const [n, more, want] of [[0, false, "0"], [7, false, "7"], [99, false, "99"], [99, true, "99+"], [100, false, "99+"]]) {
    assert.equal(countLabel(n, more), want, `${n} ${more}`);
  }
});
