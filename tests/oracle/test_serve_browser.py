"""The web page of slm serve in headless Chromium (Debian `chromium`), driven
over the DevTools protocol (a small WebSocket client below, loopback only):
load the page, type a prompt, press Generate, wait for the streamed tokens
(checked against the API's own greedy answer), click a generated token,
wait for its attention to be drawn, and save a screenshot to
BUILD/serve_page.png that must not be blank (many colours, the attention
heat map's orange present).

    build/venv/bin/python tests/oracle/test_serve_browser.py
"""
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from harness import run  # noqa: E402
from png_read import read_png  # noqa: E402
from serve_util import Server, make_model  # noqa: E402

TMP = tempfile.mkdtemp(prefix="slm-serve-browser-")
BUILD = os.environ.get("SLM_BUILD", "build")
SHOT = os.path.join(BUILD, "serve_page.png")
LIMIT_S = 90


class WebSocket:
    """RFC 6455, text frames only: enough for the DevTools protocol."""

    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=LIMIT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("websocket handshake")
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n")[0], head

    def send(self, text):
        data = text.encode()
        n = len(data)
        hdr = bytearray([0x81])
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(bytes(hdr) + mask + masked)

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            op = b0 & 0x0F
            if op == 8:
                raise EOFError("websocket closed by peer")
            if op in (9, 10):  # ping / pong: not used by DevTools
                continue
            msg += payload
            if b0 & 0x80:
                return msg.decode()

    def close(self):
        self.sock.close()


class DevTools:
    def __init__(self, ws):
        self.ws, self.id = ws, 0

    def call(self, method, **params):
        self.id += 1
        self.ws.send(json.dumps({"id": self.id, "method": method, "params": params}))
        while True:  # events are not enabled; skip any that come
            m = json.loads(self.ws.recv())
            if m.get("id") == self.id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr, what, timeout=LIMIT_S):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(expr):
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    def click(self, selector):
        """A real mouse click at the centre of the element."""
        r = self.eval(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      "e.scrollIntoView({block: 'center'});"
                      "const r = e.getBoundingClientRect();"
                      "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=r[0], y=r[1], button="left",
                      clickCount=1)


def start_chromium(profile):
    args = ["chromium", "--headless=new", "--disable-gpu", "--remote-debugging-port=0",
            f"--user-data-dir={profile}", "--window-size=1200,800", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-sync",
            "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--no-proxy-server", "--hide-scrollbars",
            "about:blank"]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root otherwise
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.time() + LIMIT_S
    while time.time() < deadline:
        if os.path.exists(port_file):
            lines = open(port_file).read().split()
            if len(lines) >= 2:
                return proc, int(lines[0])
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        time.sleep(0.1)
    raise AssertionError("chromium did not open its DevTools port")


def page_target(port):
    import http.client
    deadline = time.time() + LIMIT_S
    while time.time() < deadline:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", "/json/list")
            pages = [t for t in json.loads(c.getresponse().read()) if t["type"] == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
        finally:
            c.close()
        time.sleep(0.1)
    raise AssertionError("no page target in chromium")


def page_streams_and_shows_attention():
    model = make_model(TMP, "tiny", steps=30)
    with Server(model, "--parallel", "2") as srv:
        prompt, n = "the earth", 24
        s, _, want = srv.post("/v1/completions", {"prompt": prompt, "max_tokens": n,
                                                  "temperature": 0, "return_tokens": True})
        assert s == 200, want
        profile = os.path.join(TMP, "profile")
        proc, port = start_chromium(profile)
        ws = None
        try:
            ws = WebSocket(page_target(port))
            cdp = DevTools(ws)
            cdp.call("Page.navigate", url=f"http://127.0.0.1:{srv.port}/")
            cdp.wait("document.body && document.body.dataset.ready === '1'", "the page to load")
            cdp.eval(f"document.getElementById('prompt').value = {json.dumps(prompt)};"
                     f"document.getElementById('max').value = {n};"
                     "document.getElementById('temp').value = 0; true")
            cdp.click("#go")
            cdp.wait("document.body.dataset.state === 'done'", "the streamed text")
            got = cdp.eval("[...document.querySelectorAll('.tok.g')].map(s => +s.title.split(' ')[1])")
            assert got == [t["id"] for t in want["tokens"]], (got, want["tokens"])
            n_prompt = cdp.eval("document.querySelectorAll('.tok.p').length")
            assert n_prompt == len(prompt), n_prompt
            cdp.click(".tok.g:nth-child(15)")  # the 6th generated token (9 prompt tokens)
            cdp.wait("document.body.dataset.attn === 'ready'", "the attention map")
            sel = cdp.eval("+document.querySelector('.tok.sel').dataset.i")
            assert sel == 14, sel
            size = cdp.eval("[document.getElementById('heads').width, "
                            "document.getElementById('heads').height]")
            assert size[0] > 100 and size[1] >= 2 * 2 * 20, size  # 2 layers × 2 heads drawn
            shaded = cdp.eval("[...document.querySelectorAll('.tok')].filter("
                              "s => s.style.background.includes('230, 90, 20')).length")
            assert shaded == 15, shaded  # the clicked token's context, itself included
            shot = base64.b64decode(cdp.call("Page.captureScreenshot", format="png")["data"])
        finally:
            if ws:
                ws.close()
            proc.kill()
            proc.wait(timeout=30)
        os.makedirs(BUILD, exist_ok=True)
        with open(SHOT, "wb") as f:
            f.write(shot)
        w, h, bpp, rows = read_png(SHOT)
        px = b"".join(rows)
        assert w >= 800 and h >= 600, (w, h)
        colours, orange, dark = set(), 0, 0
        for i in range(0, len(px), bpp * 7):  # every 7th pixel is plenty
            r, g, b = px[i], px[i + 1], px[i + 2]
            colours.add((r, g, b))
            orange += r > g > b and r - b > 40  # the heat map's orange, any opacity
            dark += r + g + b < 200
        assert len(colours) > 50, f"{SHOT}: only {len(colours)} colours: blank?"
        assert orange > 20, f"{SHOT}: no attention colours ({orange} orange pixels)"
        assert dark > 100, f"{SHOT}: no text ({dark} dark pixels)"
        print(f"# screenshot {SHOT}: {w}x{h}, {len(colours)} colours, {orange} orange samples",
              flush=True)


def main():
    try:
        if not shutil.which("chromium"):
            print("FAIL page_streams_and_shows_attention: chromium is not installed "
                  "(tools/install-deps.sh installs it)")
            sys.exit(1)
        run([page_streams_and_shows_attention])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
