// node-express-info (and -multi): a page of facts about the pod it runs in, on every
// port in $PORTS (default 80). Only "/" is served; any other path gets
// Express's "Cannot GET" 404, as the chapter's /status/ probe finds.
const http = require('http');
const os = require('os');

function addresses() {
  const out = [];
  for (const [name, list] of Object.entries(os.networkInterfaces())) {
    for (const a of list) {
      if (!a.internal) out.push(`${name}: ${a.address}`);
    }
  }
  return out;
}

function page(port) {
  const rows = [
    ['Hostname', os.hostname()],
    ['Addresses', addresses().join(', ')],
    ['Port', String(port)],
    ['Uptime (s)', String(Math.round(os.uptime()))],
    ['Node.js', process.version],
  ];
  const body = rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('\n');
  return `<!DOCTYPE html>\n<html><head><title>Pod Information</title></head>\n` +
    `<body><h1>Pod Information</h1>\n<table>\n${body}\n</table></body></html>\n`;
}

function notFound(req, res) {
  res.writeHead(404, {'Content-Type': 'text/html; charset=utf-8', 'X-Powered-By': 'Express'});
  res.end(`<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n` +
    `<body>\n<pre>Cannot ${req.method} ${req.url}</pre>\n</body>\n</html>\n`);
}

const ports = (process.env.PORTS || process.env.PORT || '80').split(',');
for (const p of ports) {
  const port = Number(p);
  http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/') {
      res.writeHead(200, {'Content-Type': 'text/html; charset=utf-8', 'X-Powered-By': 'Express'});
      res.end(page(port));
      return;
    }
    notFound(req, res);
  }).listen(port, () => console.log(`node-express-info listening on ${port}`));
}
process.on('SIGTERM', () => process.exit(0));
