"""report.html renders in a real browser: headless Chromium screenshots the synthetic report.

Needs Debian's `chromium` package (`/usr/bin/chromium`, or `$CHROMIUM`); `make test` installs it.
The screenshot is kept as `report.png` next to the report in pytest's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.unit.test_reports import build_reports

WIDTH, HEIGHT = 1280, 1000
TIMEOUT = 90


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("chromium is not installed (Debian package `chromium`, /usr/bin/chromium): "
                "run `make test`, which installs it, or `apt-get install -y chromium`", pytrace=False)


def screenshot(html: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    return _chromium([f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", html.as_uri()], profile)


def rendered_dom(html: Path, profile: Path) -> str:
    """The page as the browser built it (`--dump-dom`)."""
    done = _chromium(["--dump-dom", html.as_uri()], profile)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"chromium did not finish within {TIMEOUT}s:\n{err[-2000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # leftover helper processes of this browser only
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows of unfiltered pixel bytes) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    assert header is not None, "PNG without IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a, b, c = (line[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 8) -> bool:
    return all(abs(p - c) <= tolerance for p, c in zip(pixel, colour))


def test_report_screenshot(tmp_path: Path) -> None:
    _, report = build_reports(tmp_path / "run")
    png = tmp_path / "report.png"
    done = screenshot(report, png, tmp_path / "chromium-profile")
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-2000:]}"
    data = png.read_bytes()
    assert len(data) > 10_000, f"screenshot is only {len(data)} bytes"

    width, height, bpp, rows = decode_png(data)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {row[x:x + 3] for row in rows[::4] for x in range(0, len(row), 4 * bpp)}
    assert len(colours) > 20, f"the screenshot is nearly a single colour ({len(colours)} colours)"
    pixels = [tuple(row[x:x + 3]) for row in rows[:700] for x in range(0, len(row), bpp)]
    # The timeline's labelled fault bars (#e8912d at 85% on white), the workload bar (#4c6ef5 at 75%)
    # and the VIOLATION badge (#d6336c) must all be on screen.
    for name, colour in (("fault bar", (235, 162, 77)), ("workload bar", (121, 146, 248)),
                         ("VIOLATION badge", (214, 51, 108))):
        assert sum(near(p, colour) for p in pixels) > 200, f"no {name} in the screenshot {png}"
    # Why it failed is above the fold: the reason box (#fff0f5) in the first 300 rows.
    top = [tuple(row[x:x + 3]) for row in rows[:300] for x in range(0, len(row), bpp)]
    assert sum(near(p, (255, 240, 245), 2) for p in top) > 2000, f"no reason box at the top of {png}"


def test_report_header_says_why_it_failed(tmp_path: Path) -> None:
    _, report = build_reports(tmp_path / "run")
    dom = rendered_dom(report, tmp_path / "chromium-profile")
    header = dom[dom.index("<header>"):dom.index("</header>")]
    assert 'id="overall">VIOLATION<' in header
    assert "Why it failed: the invariants that broke" in header
    assert "no-loss</code>: 3 of 12000 source records are missing &lt;&amp;&gt;" in header
