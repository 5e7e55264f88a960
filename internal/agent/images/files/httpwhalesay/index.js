// httpwhalesay: `node index.js "<message>"` serves, on port 80 ($PORT), a
// page of a whale saying the message.
const http = require('http');

const message = process.argv.slice(2).join(' ') || 'Hey, whale here.';

function whale(text) {
  const line = '-'.repeat(text.length + 2);
  return [
    ` ${line}`,
    `< ${text} >`,
    ` ${line}`,
    '    \\',
    '     \\',
    '      \\',
    '                    ##        .',
    '              ## ## ##       ==',
    '           ## ## ## ##      ===',
    '       /""""""""""""""""___/ ===',
    '  ~~~ {~~ ~~~~ ~~~ ~~~~ ~~ ~ /  ===- ~~~',
    '       \\______ o          __/',
    '        \\    \\        __/',
    '          \\____\\______/',
  ].join('\n');
}

function escape(s) {
  return s.replace(/[&<>]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'}[c]));
}

const port = Number(process.env.PORT || 80);
http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8'});
  res.end(`<!DOCTYPE html>\n<html><head><title>httpwhalesay</title></head>\n<body><pre>\n${escape(whale(message))}\n</pre></body></html>\n`);
}).listen(port, () => console.log(`whalesay listening on ${port}: ${message}`));
process.on('SIGTERM', () => process.exit(0));
