"""Helpers of the web client tests (test_web_clients.py): the npm packages of test/web/ and the
code generated from protos/helloworld.proto, the greeter backend process, the server of the
browser page, and runners of the Node clients and of the browser.

The page server can also run on its own, to load the page by hand:

    /usr/bin/python3 web_support.py [--port N]    # then open
    http://127.0.0.1:N/page.html?target=http://GRELAY_HOST:PORT
"""

import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.parse

import support

WEB_DIR = os.path.join(support.REPO, "test", "web")
NPM_DEPS = os.path.join(support.REPO, "scripts", "npm_deps.sh")
# Packages the page imports, with every ES module entry point their "exports" name.
PAGE_PACKAGES = ("@bufbuild/protobuf", "@connectrpc/connect", "@connectrpc/connect-web")
PAGE_FILES = ("page.mjs", "scenarios.mjs")
NODE_SECONDS = 120


def node():
  path = shutil.which("node")
  if not path:
    raise RuntimeError("node is needed for the web client tests (Debian's or the machine's)")
  return path


def install_and_generate():
  """npm ci in test/web/ when its node_modules is missing or stale (scripts/npm_deps.sh), then
  helloworld_pb.js from protos/helloworld.proto into test/web/gen/ (npm run generate: Debian's
  protoc with protoc-gen-es). Raises with the output on failure."""
  for command in ([NPM_DEPS, "test/web"], ["npm", "run", "--silent", "generate"]):
    cwd = support.REPO if command[0] == NPM_DEPS else WEB_DIR
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
      raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(command), result.returncode,
                                                     result.stdout, result.stderr))


def import_map():
  """The import map of the page: each of PAGE_PACKAGES' exported entry points, ES module build."""
  imports = {}
  for package in PAGE_PACKAGES:
    root = "/node_modules/%s/" % package
    with open(os.path.join(WEB_DIR, "node_modules", package, "package.json")) as f:
      exports = json.load(f)["exports"]
    for subpath, conditions in exports.items():
      target = conditions["import"]
      if isinstance(target, dict):
        target = target["default"]
      imports[package + subpath[1:]] = root + target[2:]
  return {"imports": imports}


class PageHandler(http.server.SimpleHTTPRequestHandler):
  """page.html with its import map, page.mjs, scenarios.mjs, gen/ and the ES module builds of
  PAGE_PACKAGES; nothing else of test/web/."""

  extensions_map = {".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html",
                    ".json": "application/json"}

  def __init__(self, *args, **kwargs):
    super().__init__(*args, directory=WEB_DIR, **kwargs)

  def do_GET(self):
    path = urllib.parse.urlsplit(self.path).path
    if path == "/page.html":
      with open(os.path.join(WEB_DIR, "page.html")) as f:
        body = f.read().replace("IMPORT_MAP", json.dumps(import_map(), indent=1)).encode()
      self.send_response(200)
      self.send_header("Content-Type", "text/html; charset=utf-8")
      self.send_header("Content-Length", str(len(body)))
      self.end_headers()
      self.wfile.write(body)
      return
    allowed = path.lstrip("/") in PAGE_FILES or path.startswith("/gen/") or any(
        path.startswith("/node_modules/%s/dist/esm/" % p) for p in PAGE_PACKAGES)
    if not allowed or ".." in path:
      self.send_error(404)
      return
    super().do_GET()

  def end_headers(self):
    # Each run may change the generated code; the browser's profile is fresh anyway.
    self.send_header("Cache-Control", "no-store")
    super().end_headers()

  def log_message(self, *args):
    pass


class PageServer:
  """Serves the page on 127.0.0.1 from a thread; its origin differs from grelay's by port."""

  def __init__(self, port=0):
    self.server_ = http.server.ThreadingHTTPServer(("127.0.0.1", port), PageHandler)
    self.port = self.server_.server_address[1]
    self.origin = "http://127.0.0.1:%d" % self.port
    self.thread_ = threading.Thread(target=self.server_.serve_forever, daemon=True)
    self.thread_.start()

  def url(self, target, host="127.0.0.1", **params):
    """The page's URL, loaded from |host|, calling grelay at |target|."""
    query = urllib.parse.urlencode(dict(target=target, **params))
    return "http://%s:%d/page.html?%s" % (host, self.port, query)

  def stop(self):
    self.server_.shutdown()
    self.server_.server_close()


class GreeterProcess:
  """greeter_backend.py in its own process."""

  def __init__(self, workdir, name="greeter"):
    os.makedirs(workdir, exist_ok=True)
    self.events_path = os.path.join(workdir, name + ".events")
    open(self.events_path, "w").close()
    self.proc = subprocess.Popen(
        [support.PYTHON, os.path.join(support.HERE, "greeter_backend.py"), "--port", "0",
         "--events", self.events_path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=open(os.path.join(workdir, name + ".stderr"), "ab"))
    line = self.proc.stdout.readline()
    if not line.strip().isdigit():
      support.end_process(self.proc)
      raise RuntimeError("greeter backend did not start: %r" % line)
    self.address = "127.0.0.1:%d" % int(line)

  def events(self):
    with open(self.events_path) as f:
      return [tuple(line.split(" ")) for line in f.read().splitlines() if line]

  def stop(self):
    support.end_process(self.proc)


def _run_json(command, what):
  result = subprocess.run(command, cwd=WEB_DIR, capture_output=True, text=True,
                          timeout=NODE_SECONDS)
  lines = result.stdout.strip().splitlines()
  if result.returncode != 0 or not lines:
    raise RuntimeError("%s failed (exit %d):\n%s%s" % (what, result.returncode, result.stdout,
                                                        result.stderr))
  return json.loads(lines[-1])


def run_node_clients(base_url):
  """client.mjs: {TRANSPORT: {SCENARIO: result}} for every transport and scenario."""
  return _run_json([node(), "--no-warnings", "client.mjs", base_url], "node client.mjs")


def run_browser(pages):
  """browser.mjs: {LABEL: window.results} for each of |pages| ({LABEL: URL}), in one Chromium."""
  return _run_json([node(), "--no-warnings", "browser.mjs"] +
                   ["%s=%s" % item for item in pages.items()], "node browser.mjs")


def main():
  parser = argparse.ArgumentParser(description="serves test/web/page.html")
  parser.add_argument("--port", type=int, default=0)
  args = parser.parse_args()
  server = PageServer(args.port)
  print("page at http://127.0.0.1:%d/page.html?target=GRELAY_URL" % server.port, flush=True)
  try:
    threading.Event().wait()
  except KeyboardInterrupt:
    server.stop()
  return 0


if __name__ == "__main__":
  sys.exit(main())
