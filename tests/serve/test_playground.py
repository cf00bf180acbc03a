"""The playground page (GET /) in a real headless Chromium, driven by Playwright, against a real
`gpt2 serve`: the model name, streaming token by token, Stop (the server frees the slot), the
probability tooltips, a complete generation, the API key; and that the page loads nothing from
anywhere but the server. A screenshot, playground.png, goes to $GPT2_TEST_ARTIFACTS (else the
test's tmp_path).

Needs a Chromium and the playwright package (Playwright's own browser download is not used):
    apt-get install -y --no-install-recommends chromium
    pip install playwright
GPT2_CHROMIUM names the browser executable when it is not on PATH as chromium or chromium-browser.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

INSTALL = ("to run it: apt-get install -y --no-install-recommends chromium && pip install playwright "
           "(or set GPT2_CHROMIUM to a Chromium executable)")
TIMEOUT_MS = 10_000  # any single wait in the page
PERCENT = re.compile(r"^\d+(\.\d+)?(e[-+]?\d+)?%$")


def _chromium() -> str:
    path = os.environ.get("GPT2_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip(f"no Chromium found for the playground test; {INSTALL}")
    return path


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"the playwright package is not installed; {INSTALL}")
    executable = _chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, timeout=30_000)
        yield browser
        browser.close()


@contextmanager
def _page(browser, evidence: Path) -> Iterator:
    """A fresh 1280x800 page that records every URL it requests (page.requested) and every
    uncaught script error (page.errors); if the checks in the block fail, a screenshot of the
    page as it was goes to `evidence`."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.requested = []
        page.on("request", lambda request: page.requested.append(request.url))
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        try:
            yield page
        except BaseException:
            try:
                page.screenshot(path=str(evidence))
            except Exception:  # noqa: BLE001 - the original failure is what matters
                pass
            raise
    finally:
        context.close()


@pytest.fixture
def artifacts(tmp_path) -> Path:
    directory = Path(os.environ.get("GPT2_TEST_ARTIFACTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _only_from(page, url: str) -> None:
    """Every request the page made went to the server (no CDN, fonts or scripts from elsewhere),
    and its script never failed."""
    assert not page.errors, page.errors
    assert page.requested, "the page made no request at all"
    outside = [u for u in page.requested if not u.startswith(url + "/")]
    assert not outside, f"the page requested URLs outside {url}: {outside}"


def _running(url: str) -> float:
    """Sequences the server is decoding now (its gpt2_batch_size gauge)."""
    text = httpx.get(url + "/metrics", timeout=5).text
    return float(re.search(r"^gpt2_batch_size (\S+)$", text, re.M).group(1))


def _wait_idle(url: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while _running(url) != 0:
        assert time.monotonic() < deadline, "the server still decodes the stopped request"
        time.sleep(0.05)


def _tooltip_rows(page) -> list[tuple[str, str, bool]]:
    """(token as shown, percent, chosen?) for each row of the visible tooltip."""
    rows = page.locator("#tooltip tr")
    return [(rows.nth(i).locator("td.tok").inner_text(), rows.nth(i).locator("td.pct").inner_text(),
             "chosen" in (rows.nth(i).get_attribute("class") or "")) for i in range(rows.count())]


def test_playground(browser, start_server, artifacts):
    # Both servers load at once: the file's wall time is mostly their start-up.
    plain = start_server("--model", "demo", wait=False)
    keyed = start_server("--model", "demo", "--api-key", "secret", wait=False)
    plain.wait_ready()
    keyed.wait_ready()
    with _page(browser, artifacts / "playground-failed.png") as page:
        _stream_stop_and_done(page, plain.url, artifacts)
    with _page(browser, artifacts / "playground-api-key-failed.png") as page:
        _api_key(page, keyed.url)


def _stream_stop_and_done(page, url: str, artifacts: Path) -> None:
    """Streaming, Stop, the tooltips and a complete generation on a server without a key."""
    from playwright.sync_api import expect

    page.goto(url + "/")
    expect(page).to_have_title("gpt2 playground")
    expect(page.locator("#model")).to_have_text("demo")  # GET /v1/models at load
    expect(page.locator("#status")).to_have_text("ready")
    expect(page.locator("#stop")).to_be_disabled()
    for control, default in [("#temperature", "1"), ("#top-k", "40"), ("#top-p", "1"), ("#max-tokens", "64")]:
        expect(page.locator(control)).to_have_value(default)

    # Greedy, so that what streams is known (the demo model never ends "ROMEO:" early), and
    # long: 240 tokens take far longer than it takes to press Stop.
    prompt = "ROMEO:"
    page.fill("#prompt", prompt)
    page.fill("#temperature", "0")
    page.fill("#max-tokens", "240")
    page.click("#generate")
    tokens = page.locator("#output .token")
    # Checked every frame in the page, so that Stop comes long before the 240th token.
    page.wait_for_function("document.querySelectorAll('#output .token').length >= 3", polling="raf")
    expect(page.locator("#status")).to_have_text("generating…")
    expect(page.locator("#stop")).to_be_enabled()
    page.click("#stop")
    expect(page.locator("#status")).to_have_text("stopped")
    expect(page.locator("#stop")).to_be_disabled()
    expect(page.locator("#generate")).to_be_enabled()
    streamed = tokens.count()
    assert 3 <= streamed < 240

    # The server noticed the disconnect, freed the slot, and still answers.
    _wait_idle(url)
    assert httpx.get(url + "/health", timeout=5).status_code == 200
    answer = httpx.post(url + "/v1/completions", timeout=30,
                        json={"model": "demo", "prompt": prompt, "max_tokens": 16, "temperature": 0})
    assert answer.status_code == 200, answer.text
    greedy = answer.json()["choices"][0]["text"]

    # The page shows exactly the prompt and the streamed text, whitespace included.
    output = page.locator("#output")
    shown = output.evaluate("e => e.textContent")
    assert shown.startswith(prompt)
    partial = shown[len(prompt):]
    assert partial.startswith(greedy) or greedy.startswith(partial), (partial, greedy)
    assert output.evaluate("e => getComputedStyle(e).whiteSpace") == "pre-wrap"
    probs = [float(p) for p in tokens.evaluate_all("spans => spans.map(s => s.dataset.prob)")]
    assert all(0 < p <= 1 for p in probs)

    # Hovering a token shows its alternatives, most likely first, the chosen one marked; the
    # first token greedy picks after "ROMEO:" is a line break, shown as ↵.
    assert greedy.startswith("\n")
    tokens.first.hover()
    tooltip = page.locator("#tooltip")
    expect(tooltip).to_be_visible()
    rows = _tooltip_rows(page)
    assert len(rows) >= 5, rows
    assert all(PERCENT.match(pct) for _, pct, _ in rows), rows
    percents = [float(pct.rstrip("%")) for _, pct, _ in rows]
    assert percents == sorted(percents, reverse=True) and sum(percents) <= 100.5
    chosen = [(tok, pct) for tok, pct, is_chosen in rows if is_chosen]
    assert chosen == [("↵", rows[0][1])], rows  # greedy chose the most likely token
    assert math.isclose(float(chosen[0][1].rstrip("%")), probs[0] * 100, rel_tol=0.01)
    page.mouse.move(5, 795)
    expect(tooltip).to_be_hidden()

    # A complete, sampled generation: the status reports why it ended and how many tokens.
    page.fill("#prompt", "ROMEO:\nWhat light")
    page.fill("#temperature", "0.8")
    page.fill("#max-tokens", "48")
    page.click("#generate")
    expect(page.locator("#status")).to_have_text(re.compile(r"^done \((length|stop), \d+ tokens?, [\d.]+ tok/s\)$"),
                                                 timeout=20_000)
    # N is the server's count (usage); a stop token is counted there but not shown
    reason, count = re.search(r"\((\w+), (\d+) token", page.locator("#status").inner_text()).groups()
    count, shown = int(count), tokens.count()
    if reason == "length":
        assert count == shown == 48
    else:
        assert 1 <= shown < count <= 48
    assert output.evaluate("e => e.textContent").startswith("ROMEO:\nWhat light")
    tokens.nth(min(shown - 1, 5)).click()  # click (focus) shows the tooltip too
    expect(tooltip).to_be_visible()
    assert _tooltip_rows(page)
    page.screenshot(path=str(artifacts / "playground.png"))
    _only_from(page, url)


def _api_key(page, url: str) -> None:
    """A server with --api-key: the page shows the 401's message, and works once the key is typed."""
    from playwright.sync_api import expect

    page.goto(url + "/")
    expect(page.locator("#model")).to_contain_text("API key")  # /v1/models answered 401
    page.fill("#max-tokens", "4")
    page.click("#generate")
    expect(page.locator("#status")).to_have_text(re.compile(r"^error: a valid API key is needed"))
    expect(page.locator("#output .token")).to_have_count(0)

    page.fill("#api-key", "secret")
    expect(page.locator("#model")).to_have_text("demo")
    page.click("#generate")
    expect(page.locator("#status")).to_have_text(re.compile(r"^done \((length|stop), "), timeout=20_000)
    assert page.locator("#output .token").count() >= 1
    _only_from(page, url)
