// Parse an ICS file with ical.js (Thunderbird's parser) and print each event as JSON.
// Usage: node icaljs_dump.mjs NODE_PREFIX FILE
// Every VTIMEZONE of the file is registered first, as Thunderbird does, so TZIDs resolve
// through the feed's own definitions rather than any built-in table.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import fs from "node:fs";

const [, , prefix, file] = process.argv;
const require = createRequire(prefix + "/");
const ICAL = (await import(pathToFileURL(require.resolve("ical.js")).href)).default;

const calendar = new ICAL.Component(ICAL.parse(fs.readFileSync(file, "utf8")));
for (const vtimezone of calendar.getAllSubcomponents("vtimezone")) {
  ICAL.TimezoneService.register(vtimezone);
}
const events = calendar.getAllSubcomponents("vevent").map((vevent) => {
  const event = new ICAL.Event(vevent);
  return {
    uid: event.uid,
    start: event.startDate.toUnixTime(),
    end: event.endDate.toUnixTime(),
    start_zone: event.startDate.zone ? event.startDate.zone.tzid : null,
    summary: event.summary,
    location: event.location,
    description: event.description,
    status: vevent.getFirstPropertyValue("status"),
    sequence: event.sequence,
  };
});
const props = {};
for (const name of ["prodid", "version", "method", "x-wr-calname", "name", "x-wr-timezone"]) {
  props[name] = calendar.getFirstPropertyValue(name);
}
console.log(JSON.stringify({ props, events }));
