// A stand-in for bitnami/apache: Apache's default "It works!" page on every
// port in $PORTS (default 80), for any path.
const http = require('http');

const ports = (process.env.PORTS || '80').split(',');
for (const p of ports) {
  http.createServer((req, res) => {
    res.writeHead(200, {'Content-Type': 'text/html', 'Server': 'Apache'});
    res.end('<html><body><h1>It works!</h1></body></html>\n');
  }).listen(Number(p), () => console.log(`apache listening on ${p}`));
}
process.on('SIGTERM', () => process.exit(0));
