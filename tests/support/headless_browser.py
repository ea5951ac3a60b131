"""Headless Chromium (the Debian package) for real-browser tests, without CDP: `--dump-dom`
prints the DOM once the page's scripts have run within a virtual-time budget, `--screenshot`
writes a PNG. A fresh profile per call, no network but the page's own server."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--virtual-time-budget=20000",
)
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
TIMEOUT = 180.0
"""Seconds a Chromium run may take on a loaded 2-core machine before the test fails."""


async def _run(url: str, *flags: str) -> bytes:
    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            *flags,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    if process.returncode != 0:
        raise RuntimeError(f"chromium exited {process.returncode}: {err.decode()[-2000:]}")
    return out


async def dump_dom(url: str, window: tuple[int, int] = (1400, 3000)) -> str:
    """The page's DOM after its scripts ran."""
    out = await _run(url, f"--window-size={window[0]},{window[1]}", "--dump-dom")
    return out.decode()


async def screenshot(url: str, path: Path, window: tuple[int, int] = (1400, 3000)) -> Path:
    await _run(url, f"--window-size={window[0]},{window[1]}", f"--screenshot={path}")
    return path


@dataclass
class Page(HTMLParser):
    """What the tests look for in a dumped DOM: elements by id (their attributes), the text of
    every `data-metric` element, and the `data-member` rows."""

    ids: dict[str, dict[str, str]] = field(default_factory=dict)
    metrics: dict[str, list[str]] = field(default_factory=dict)
    svg_in: set[str] = field(default_factory=set)
    _open: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    _text: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    @classmethod
    def of(cls, html: str) -> Page:
        page = cls()
        page.feed(html)
        return page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if "id" in attributes:
            self.ids[attributes["id"]] = attributes
        if tag == "svg":
            for _, element_id, _ in self._open:
                if element_id is not None:
                    self.svg_in.add(element_id)
        if tag in VOID:
            return
        self._open.append((tag, attributes.get("id"), attributes.get("data-metric")))
        self._text[len(self._open)] = []

    def handle_endtag(self, tag: str) -> None:
        if all(open_tag != tag for open_tag, _, _ in self._open):
            return  # a stray end tag
        while self._open:
            open_tag, _, metric = self._open.pop()
            text = "".join(self._text.pop(len(self._open) + 1, []))
            if self._open:
                self._text.setdefault(len(self._open), []).append(text)
            if metric is not None:
                self.metrics.setdefault(metric, []).append(text.strip())
            if open_tag == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.setdefault(len(self._open), []).append(data)
