// The peer of `make bench` (benchmarks/bench_peer.py): Carbone (npm `carbone`, installed into
// benchmarks/.cache/carbone) driven by one JSON line per command on stdin, one JSON line of
// milliseconds back on stdout, so that the Python bench interleaves it with our own runs.
//   {"op": "start", "factories": 2}                       → {"ms": …}   its LibreOffice pool
//   {"op": "render", "template": "c.docx", "data": {…}}   → {"ms": …, "bytes": …}
//   {"op": "batch", "template": …, "data": …, "n": 20}    → {"ms": …}   n renders in flight
//   {"op": "convert", "docx": "/path/a.docx"}             → {"ms": …}   a .docx → PDF only
//   {"op": "stop"}                                        → {"ms": …}
// The template folder is the first argument; a render's PDF goes to the second (checked by the
// bench: the same text as ours).
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const carbone = require('carbone');
const converter = require('carbone/lib/converter');

const [templates, outPdf] = process.argv.slice(2);
carbone.set({ templatePath: templates });

function reply(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function now() { return Number(process.hrtime.bigint()) / 1e6; }

function render(cmd) {
  return new Promise((resolve, reject) => {
    carbone.render(cmd.template, cmd.data, { convertTo: 'pdf' }, (err, pdf) => {
      if (err) { reject(err); } else { resolve(pdf); }
    });
  });
}

const ops = {
  start: (cmd) => new Promise((resolve) => {
    const t = now();
    converter.init({ factories: cmd.factories, startFactory: true }, () => resolve({ ms: now() - t }));
  }),
  stop: () => new Promise((resolve) => {
    const t = now();
    converter.exit(() => resolve({ ms: now() - t }));
  }),
  render: async (cmd) => {
    const t = now();
    const pdf = await render(cmd);
    const ms = now() - t;
    fs.writeFileSync(outPdf, pdf);
    return { ms, bytes: pdf.length };
  },
  batch: async (cmd) => {
    const t = now();
    const all = [];
    for (let i = 0; i < cmd.n; i++) { all.push(render(cmd)); }
    await Promise.all(all);
    return { ms: now() - t };
  },
  convert: (cmd) => new Promise((resolve, reject) => {
    const data = fs.readFileSync(cmd.docx);
    const t = now();
    carbone.convert(data, { convertTo: 'pdf', extension: path.extname(cmd.docx).slice(1) },
      (err) => { if (err) { reject(err); } else { resolve({ ms: now() - t }); } });
  }),
};

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    const cmd = JSON.parse(line);
    try {
      reply(await ops[cmd.op](cmd));
    } catch (err) {
      reply({ error: String(err) });
    }
  });
});
lines.on('close', () => { queue.then(() => converter.exit(() => process.exit(0))); });
