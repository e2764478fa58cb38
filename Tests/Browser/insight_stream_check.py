#!/usr/bin/env python3
"""A product page in headless Chromium (Debian's chromium + chromium-driver, through Selenium)
that receives in-context insights the way docs/insights.md tells producers to: the product's own
server holds the BTE keys and proxies the stream, the events and the feedback; the page opens an
EventSource on it, reports a page view once the stream is open, and answers the delivery it
receives with an `impression`. Prints what the page saw as JSON on stdout."""
import argparse
import json
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Deal page</title></head>
<body><div id="card"></div>
<script>
const result = {opened: 0, deliveries: [], collect: null, feedback: null, errors: []};
window.__result = result;
const events = new EventSource("/insights/stream");
events.onopen = () => {
  result.opened += 1;
  if (result.opened > 1) return;
  fetch("/events", {method: "POST", headers: {"Content-Type": "application/json"},
                    body: JSON.stringify({events: [PAGE_VIEW]})})
    .then((r) => r.json()).then((j) => { result.collect = j; })
    .catch((e) => result.errors.push(String(e)));
};
events.addEventListener("insight", async (e) => {
  const delivery = JSON.parse(e.data);
  result.deliveries.push({event_id: e.lastEventId, delivery: delivery});
  document.getElementById("card").textContent = delivery.message;
  try {
    // The insight and its delivery are stored from two topics: the insight may land a moment later.
    for (let attempt = 0; attempt < 40; attempt++) {
      const r = await fetch(`/insights/${delivery.insight_id}/feedback`, {method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({verdict: "impression", delivery_id: delivery.id, user_id: delivery.user_id})});
      const body = await r.json();
      if (r.status !== 404) { result.feedback = {status: r.status, body: body}; break; }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } catch (err) { result.errors.push(String(err)); }
  events.close();
});
</script></body></html>
"""


def make_handler(args, page):
    class Product(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def reply(self, status, content_type, body):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/":
                self.reply(200, "text/html; charset=utf-8", page.encode())
            elif self.path == "/insights/stream":
                self.stream()
            else:
                self.reply(404, "text/plain", b"not found")

        def stream(self):
            headers = {"Authorization": "Bearer " + args.read_key}
            if self.headers.get("Last-Event-ID"):
                headers["Last-Event-ID"] = self.headers["Last-Event-ID"]
            request = urllib.request.Request(f"{args.api}/v1/users/{args.user}/insights/stream", headers=headers)
            upstream = urllib.request.urlopen(request, timeout=120)
            self.send_response(upstream.status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                while True:
                    chunk = upstream.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                upstream.close()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/events":
                target, key = "/v1/events", args.write_key
            elif self.path.startswith("/insights/") and self.path.endswith("/feedback"):
                target, key = "/v1" + self.path, args.admin_key
            else:
                self.reply(404, "text/plain", b"not found")
                return
            request = urllib.request.Request(
                args.api + target, data=body, method="POST",
                headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, text = answer.status, answer.read()
            except urllib.error.HTTPError as error:
                status, text = error.code, error.read()
            self.reply(status, "application/json", text)

    return Product


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--read-key", required=True)
    parser.add_argument("--write-key", required=True)
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--page-view", required=True, help="the page.viewed record, JSON")
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--driver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    page = PAGE.replace("PAGE_VIEW", json.dumps(json.loads(args.page_view)))
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args, page))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(args.driver), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/")
        try:
            WebDriverWait(driver, args.timeout, poll_frequency=0.2).until(
                lambda d: d.execute_script("return window.__result.feedback !== null"))
        except Exception:  # the Swift test reports what the page had by then
            pass
        result = driver.execute_script("return window.__result")
        result["card"] = driver.execute_script("return document.getElementById('card').textContent")
        result["console"] = [{"level": e.get("level"), "message": e.get("message")}
                             for e in driver.get_log("browser")]
        print(json.dumps(result, sort_keys=True))
        return 0
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
