import assert from "node:assert/strict";
import { EventStream, parseLine, parseLog } from "./events.ts";

Deno.test("finds the prefix after garbage on the same line", () => {
  assert.deepEqual(parseLine('\x1b[2J GRUB loading...@sv {"ev":"boot","proto":"pvh"}'), {
    ev: "boot",
    proto: "pvh",
  });
});

Deno.test("lines without the prefix are not events", () => {
  assert.equal(parseLine("SeaBIOS (version 1.16)"), undefined);
  assert.equal(parseLine(""), undefined);
});

Deno.test("broken, non-object and nameless JSON is malformed, not thrown", () => {
  assert.equal(parseLine('@sv {"ev":"boot","proto"'), "malformed");
  assert.equal(parseLine("@sv [1,2]"), "malformed");
  assert.equal(parseLine('@sv {"proto":"pvh"}'), "malformed");
  assert.equal(parseLine('@sv {"ev":7}'), "malformed");
  assert.equal(parseLine("@sv \u0000\u00ff\ufffd"), "malformed");
});

Deno.test("events split across chunks, CRLF endings and a final partial line", () => {
  const s = new EventStream();
  assert.deepEqual(s.push('noise\r\n@sv {"ev":"a"'), []);
  assert.deepEqual(s.push(',"n":1}\r\n@sv {"ev":"b"}\n@sv {"ev":"c"'), [
    { ev: "a", n: 1 },
    { ev: "b" },
  ]);
  assert.deepEqual(s.end(), [], "a cut-off last line is not an event");
  assert.deepEqual(s.events.map((e) => e.ev), ["a", "b"]);
  assert.deepEqual(s.malformed, ['@sv {"ev":"c"']);
});

Deno.test("a whole last line without newline still counts", () => {
  assert.deepEqual(parseLog('@sv {"ev":"exit","status":"pass"}').events, [
    { ev: "exit", status: "pass" },
  ]);
});

Deno.test("a UTF-8 character split between chunks is decoded whole", () => {
  const bytes = new TextEncoder().encode('@sv {"ev":"x","s":"é"}\n');
  const cut = bytes.indexOf(0xc3) + 1;
  const s = new EventStream();
  s.push(bytes.subarray(0, cut));
  s.push(bytes.subarray(cut));
  assert.deepEqual(s.events, [{ ev: "x", s: "é" }]);
});

Deno.test("random garbage never throws", () => {
  const s = new EventStream();
  let seed = 1;
  for (let i = 0; i < 200; i++) {
    const chunk = new Uint8Array(64).map(() => (seed = (seed * 1103515245 + 12345) >>> 0) & 0xff);
    s.push(chunk);
    s.push("@sv {");
  }
  s.end();
  assert.equal(s.events.length, 0);
});
