// Twilio's segment calculator (npm sms-segments-calculator) as an oracle for the Python tests:
// reads a JSON array of texts on stdin, writes one {encoding, characters, segments} per text.
"use strict";
const { SegmentedMessage } = require("sms-segments-calculator");

const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  const texts = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const results = texts.map((text) => {
    const message = new SegmentedMessage(text);
    return { encoding: message.encodingName, characters: message.numberOfCharacters, segments: message.segmentsCount };
  });
  process.stdout.write(JSON.stringify(results));
});
