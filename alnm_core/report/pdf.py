"""The HTML report printed to PDF by headless Chromium (journals and ethics boards want a PDF),
as an inert document: no script runs, nothing but the report's own bytes is loaded.

A report quotes text from a cohort, a DICOM header or another site's model bundle; whatever
escaping the report does, printing must not be a way to run script or to read local files.
Chromium is driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``: no
port another local user could reach):

* the report is served to a fresh tab as ``https://alnm-report.invalid/report.html`` from
  memory, with a Content-Security-Policy header that allows only inline styles and ``data:``
  images and fonts; every other request the page makes (``file://``, remote, a redirect, a
  frame) is failed by the printer before it leaves the browser, and a page not loaded from
  ``file://`` cannot reach local files anyway (an ``<iframe src="file:///etc/passwd">`` in a
  manifest field printed the password file before);
* JavaScript is off (``--blink-settings=scriptEnabled=false`` and
  ``Emulation.setScriptExecutionDisabled``), so an ``alert()`` cannot hang the printer (it did,
  180 s), and a dialog that opens anyway is dismissed;
* Chromium's sandbox is used where it can run. It cannot as root (Chromium refuses to start)
  or where the kernel allows no user namespaces (some containers); only then is the browser
  started with ``--no-sandbox``, and the caller is told so. Printing as an ordinary user keeps
  the sandbox.

Paper: A4 unless ``paper="letter"``; the size is passed to Chromium, so a stylesheet's
``@page { size }`` does not override it. The PDF's title is the HTML ``<title>``.

Example::

    alnm report reports/demo --pdf                 # writes reports/demo/report.pdf (A4)
    alnm report reports/demo --pdf --paper letter
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

from ..storage import atomic_write_bytes

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: paper sizes in inches (width, height)
PAPERS = {"a4": (210 / 25.4, 297 / 25.4), "letter": (8.5, 11.0)}
#: where the report seems to come from: a name that never resolves (RFC 2606)
REPORT_URL = "https://alnm-report.invalid/report.html"
#: what the printed page may load: its own inline styles, and images and fonts inside it
CSP = ("default-src 'none'; style-src 'unsafe-inline' data:; img-src data:; font-src data:; "
       "script-src 'none'; object-src 'none'; frame-src 'none'; child-src 'none'; "
       "worker-src 'none'; form-action 'none'; base-uri 'none'; sandbox")
_MARGIN_IN = 0.4  # Chromium's own default margin (1 cm)


class PdfError(RuntimeError):
    """No browser, or the browser could not print the report; the message says which."""


class PdfWarning(UserWarning):
    """Printed, but not as safely as it could be (Chromium's sandbox could not run)."""


def find_browser(browser: str | None = None) -> str:
    """The Chromium executable to use; raises :class:`PdfError` naming what was looked for."""
    for name in ([browser] if browser else BROWSERS):
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    raise PdfError(f"no Chromium found (looked for {', '.join([browser] if browser else BROWSERS)}); "
                   "install one (Debian: apt-get install chromium) or pass --browser PATH")


def html_to_pdf(html: str | Path, pdf: str | Path, *, browser: str | None = None,
                paper: str = "a4", timeout_s: float = 180, sandbox: bool | None = None,
                progress: Callable[[str], None] | None = None) -> Path:
    """Print ``html`` to ``pdf``, inert (no script, no loads), with backgrounds and without the
    browser's header and footer; returns ``pdf``.

    Args:
        html: the report.
        pdf: where the PDF goes (written whole, then renamed).
        browser: a Chromium or Chrome executable (default: the first of :data:`BROWSERS`).
        paper: ``a4`` or ``letter``.
        timeout_s: the whole print, start to finish.
        sandbox: ``None`` (default): with Chromium's sandbox, without it only where it cannot
            run (as root; no user namespaces), saying so; ``True``: never without it (an error
            instead); ``False``: without it.
        progress: receives the note when the sandbox could not be used (default: a
            :class:`PdfWarning`).

    Raises:
        PdfError: no browser, the browser failed or took longer than ``timeout_s``, or
            ``sandbox=True`` where it cannot run.
        StorageError: the PDF cannot be written.
    """
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    if not html.is_file():
        raise PdfError(f"{html} does not exist: run the study first")
    if paper not in PAPERS:
        raise PdfError(f"paper {paper!r}: choose one of {sorted(PAPERS)}")
    exe = find_browser(browser)
    body = html.read_bytes()
    deadline = time.monotonic() + timeout_s
    note = None
    if sandbox is None and os.geteuid() == 0:
        sandbox, note = False, "running as root, where Chromium refuses its sandbox"
    try:
        data = _print(exe, body, paper, deadline, sandbox=sandbox is not False)
    except _SandboxUnavailable as exc:
        if sandbox:
            raise PdfError(f"{exe}: its sandbox cannot run here ({exc}); print as an ordinary user "
                           "on a system with user namespaces, or allow printing without it") from None
        note = f"Chromium's sandbox cannot start here ({exc})"
        data = _print(exe, body, paper, deadline, sandbox=False)
    if note:
        msg = (f"PDF printed without Chromium's sandbox: {note}. JavaScript was off and the page "
               "could load nothing but the report; print as an ordinary user to keep the sandbox")
        if progress:
            progress(msg)
        else:
            warnings.warn(msg, PdfWarning, stacklevel=2)
    if not data.startswith(b"%PDF-"):
        raise PdfError(f"{exe} returned no PDF for {html}")
    atomic_write_bytes(pdf, data, what="the PDF report")
    return pdf


class _SandboxUnavailable(Exception):
    """Chromium exited at start because its sandbox cannot run."""


_SANDBOX_SIGNS = ("--no-sandbox", "No usable sandbox", "sandbox_host_linux", "Failed to move to new namespace",
                  "setuid sandbox", "zygote_host_impl")


def _flags(profile: str, sandbox: bool) -> list[str]:
    return ["--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}",
            "--blink-settings=scriptEnabled=false", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-features=Translate,MediaRouter,OptimizationHints", "--mute-audio",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
            "--run-all-compositor-stages-before-draw"] + ([] if sandbox else ["--no-sandbox"])


def _print(exe: str, body: bytes, paper: str, deadline: float, *, sandbox: bool) -> bytes:
    with tempfile.TemporaryDirectory(prefix="alnm-pdf-") as tmp:
        log = open(Path(tmp) / "chromium.log", "w+b")
        cdp = _Browser.start([exe, *_flags(str(Path(tmp) / "profile"), sandbox)], log)
        try:
            try:
                cdp.call("Browser.getVersion", deadline=min(deadline, time.monotonic() + 60))
            except PdfError:
                tail = cdp.log_tail()
                if sandbox and any(s in tail for s in _SANDBOX_SIGNS):
                    raise _SandboxUnavailable(tail.strip().splitlines()[-1][-200:]) from None
                raise
            return _render(cdp, body, paper, deadline)
        finally:
            cdp.close()
            log.close()


def _render(cdp: "_Browser", body: bytes, paper: str, deadline: float) -> bytes:
    target = cdp.call("Target.createTarget", {"url": "about:blank"}, deadline=deadline)["targetId"]
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                       deadline=deadline)["sessionId"]
    state = {"served": False, "loaded": False, "refused": []}

    def on_event(msg: dict) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if msg.get("sessionId") != session:
            return
        if method == "Fetch.requestPaused":
            url = params.get("request", {}).get("url", "")
            if url == REPORT_URL and not state["served"] and params.get("resourceType") == "Document":
                state["served"] = True
                cdp.send("Fetch.fulfillRequest", {
                    "requestId": params["requestId"], "responseCode": 200,
                    "responseHeaders": [{"name": "Content-Type", "value": "text/html; charset=utf-8"},
                                        {"name": "Content-Security-Policy", "value": CSP},
                                        {"name": "Cache-Control", "value": "no-store"}],
                    "body": base64.b64encode(body).decode("ascii")}, session=session)
            else:  # a navigation away is cancelled (no error page replaces the report)
                state["refused"].append(url[:200])
                reason = "Aborted" if params.get("resourceType") == "Document" else "BlockedByClient"
                cdp.send("Fetch.failRequest", {"requestId": params["requestId"], "errorReason": reason},
                         session=session)
        elif method == "Page.javascriptDialogOpening":  # scripts are off; never wait on a dialog
            cdp.send("Page.handleJavaScriptDialog", {"accept": False}, session=session)
        elif method == "Page.loadEventFired":
            state["loaded"] = True

    cdp.on_event = on_event
    for method, params in (("Page.enable", {}),
                           ("Emulation.setScriptExecutionDisabled", {"value": True}),
                           ("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})):
        cdp.call(method, params, session=session, deadline=deadline)
    cdp.call("Page.navigate", {"url": REPORT_URL}, session=session, deadline=deadline)
    cdp.wait(lambda: state["loaded"], deadline, what="load the report")
    width, height = PAPERS[paper]
    result = cdp.call("Page.printToPDF", {
        "printBackground": True, "preferCSSPageSize": False, "paperWidth": width, "paperHeight": height,
        "marginTop": _MARGIN_IN, "marginBottom": _MARGIN_IN, "marginLeft": _MARGIN_IN,
        "marginRight": _MARGIN_IN, "displayHeaderFooter": False, "generateDocumentOutline": True,
    }, session=session, deadline=deadline)
    return base64.b64decode(result["data"])


class _Browser:
    """A headless Chromium and its DevTools pipe (fd 3: commands in, fd 4: answers out)."""

    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int, log):
        self.proc, self._w, self._r, self._log = proc, to_browser, from_browser, log
        self._buf = b""
        self._id = 0
        self.on_event: Callable[[dict], None] = lambda msg: None

    @classmethod
    def start(cls, cmd: list[str], log) -> "_Browser":
        import fcntl

        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        # above 4, so that placing them on 3 and 4 in the child cannot overwrite one another
        src_r, src_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, out_w))
        for fd in (cmd_r, out_w):
            os.close(fd)

        def child() -> None:
            os.dup2(src_r, 3)
            os.dup2(src_w, 4)

        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    preexec_fn=child, close_fds=False, start_new_session=True)
        except OSError as exc:
            for fd in (src_r, src_w, cmd_w, out_r):
                os.close(fd)
            raise PdfError(f"{cmd[0]} cannot be started ({exc})") from exc
        os.close(src_r)
        os.close(src_w)
        return cls(proc, cmd_w, out_r, log)

    def log_tail(self) -> str:
        self._log.flush()
        self._log.seek(0)
        lines = [ln for ln in self._log.read().decode("utf-8", "replace").splitlines()
                 if ln.strip() and "dbus" not in ln.lower()]
        return "\n".join(lines[-5:])

    def send(self, method: str, params: dict | None = None, *, session: str | None = None) -> int:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._w, data):]
        except OSError as exc:
            raise PdfError(f"the browser closed its DevTools pipe ({exc}): {self.log_tail()}") from None
        return self._id

    def _next(self, deadline: float, what: str) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PdfError(f"the browser did not {what} in time")
            ready, _, _ = select.select([self._r], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise PdfError(f"the browser exited (exit {self.proc.poll()}): {self.log_tail()}")
                self._buf += chunk
            elif self.proc.poll() is not None:
                raise PdfError(f"the browser exited (exit {self.proc.returncode}): {self.log_tail()}")
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             deadline: float) -> dict:
        """Send a command and wait for its answer, handling events meanwhile."""
        mid = self.send(method, params, session=session)
        while True:
            msg = self._next(deadline, f"answer {method}")
            if msg.get("id") == mid:
                if "error" in msg:
                    raise PdfError(f"{method} failed: {msg['error'].get('message', msg['error'])}")
                return msg.get("result", {})
            if "method" in msg:
                self.on_event(msg)

    def wait(self, done: Callable[[], bool], deadline: float, *, what: str) -> None:
        while not done():
            msg = self._next(deadline, what)
            if "method" in msg:
                self.on_event(msg)

    def close(self) -> None:
        """Ask the browser to quit; end its process group if it does not within 5 s."""
        try:
            if self.proc.poll() is None:
                self.send("Browser.close")
                self.proc.wait(timeout=5)
        except (PdfError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    self.proc.kill()
                self.proc.wait(timeout=10)
            for fd in (self._w, self._r):
                try:
                    os.close(fd)
                except OSError:
                    pass
