"""Load: N browser sessions at once on a fresh `streamlit run app.py`, each with its own input.

    python tools/load_test.py [--sessions 8] [--rounds 2] [--port PORT] [--filler-words 0] [--no-warm-up]
                              [--linger 0] [--timeout 120] [--details]

One Chromium, one browser context (its own cookies and storage) per session, all driven at once from one
asyncio loop. A warm-up visit first loads the text and image models. Then, every round, each session:

1. opens the Text attention page (/text-attention) and, once every session has it open, types its own
   sentence, whose one distinctive word (a "marker": "volcano", "penguin", ...) no other session uses, and
   submits it (Ctrl+Enter); timed from the submit to the heatmap whose token labels include its marker;
2. once every session is done, opens the Image page on its own bundled sample scene
   (/image?image_source=sample&image_sample=scene_0K.png, a different scene per session); timed from opening
   the URL to the overlay drawn beside the caption naming its scene, whose ground truth must be that scene's.

After each visit the session reads its page (text, URL, the text box) and fails when it finds another
session's marker or scene, misses its own, shows a Streamlit exception or raises a JavaScript error.
Meanwhile the server's resident memory (VmRSS) is sampled every 0.1 s and compared with its bound: what the
server held after the warm-up (code and models) plus the results cache's budget (EXPLAIN_CACHE_MB, default
1024; set it in the environment to try another). Each page opened is a Streamlit session of its own (a page
load opens a new websocket), so every round brings 2 x N new sessions.

Prints a JSON summary: the median and 95th percentile (linear interpolation) of the time to a heatmap for
text, image and both; the same for the server's own runs (from the tab's request for a run to the server's
"script finished", read from the websocket frames), so that the browsers' share can be told apart when they
run on the server's machine; the CPU seconds the server and the browsers used; peak and final memory; the
machine's load average; and every failure. Exits with 1 when any visit failed. Needs Debian's chromium and
playwright (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: python tools/load_test.py
    sys.path.insert(0, str(ROOT))

from tools.browser import (  # noqa: E402
    CHROMIUM_ARGS, app_server, chromium_path, cpu_seconds, load_average, resident_mb, tree_cpu_seconds,
)
from ui.cache import DEFAULT_RESULTS_MB, budget_mb  # noqa: E402 - plain Python, no Streamlit

SAMPLES_DIR = ROOT / "models" / "bundled" / "samples"
# Words the bundled MiniLM tokenizer keeps whole (one token each; tests/test_load.py checks it) and that no
# page shows by itself, so a heatmap label equal to one of them can only come from a session's own sentence.
MARKERS = (
    "volcano", "penguin", "lantern", "harbour", "meadow", "tornado", "cactus", "glacier", "dolphin", "trumpet",
    "pyramid", "compass", "lobster", "avalanche", "canyon", "falcon", "orchid", "zebra", "cathedral", "jaguar",
    "lighthouse", "parrot", "kettle", "violin", "tractor", "saddle", "blizzard", "sparrow", "vulture", "carnival",
    "oyster", "squirrel", "turtle", "rhino", "mango", "peacock", "banjo", "walnut", "beetle", "cobra", "dragon",
    "anchor", "cello", "comet", "camel", "otter", "badger", "hornet", "raven", "goblin", "wizard", "pirate",
)
FILLER = "the cat sat on the mat and the dog lay on the rug while it rained outside".split()
BROWSER_ARGS = CHROMIUM_ARGS + (  # every session's tab runs at full speed, none throttled as a background tab
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)
EXCEPTION = '[data-testid="stException"]'
# The run finished: the status widget ("Running...") and the skeletons are gone.
SETTLED = """() => !document.querySelector('[data-testid="stStatusWidget"]')
                   && !document.querySelector('[data-testid="stSkeleton"]')"""
# The text heatmap is drawn (its image is there) and one of its column labels shows the marker: "#1 volcano", or
# "0–1 [CLS]…volcano" when a long text's axis shows token ranges (viz.heatmaps.reduce_matrix; at most two
# tokens a cell for MiniLM's 512, so the first word, token 1, always shows). See marker_shown.
TEXT_HEATMAP = """(marker) => [...document.querySelectorAll('.js-plotly-plot')].some(plot =>
    (plot._fullData || []).some(trace => trace.type === 'heatmap'
        && Array.from(trace.x || []).some(label => String(label).split(/[ \u2026]/).slice(1).includes(marker)))
    && plot.querySelector('g.hm image'))"""
# The overlay (a plotly image trace) is drawn and the caption beside it names the scene (the page's text is read
# only once the overlay is there: reading it while the page loads would slow the browser down).
IMAGE_OVERLAY = """(name) => [...document.querySelectorAll('.js-plotly-plot')].some(plot =>
        (plot._fullData || []).some(trace => trace.type === 'image'))
    && document.body.textContent.includes(name + ', as the model sees it')"""
# The heatmap trace of the figure that has one (`kind` "image": the overlay's invisible per-patch heatmap).
READ_MAP = """(kind) => { for (const plot of document.querySelectorAll('.js-plotly-plot')) {
        const traces = plot._fullData || [];
        if (kind === 'image' && !traces.some(t => t.type === 'image')) continue;
        const heatmap = traces.find(t => t.type === 'heatmap');
        if (heatmap) return {labels: Array.from(heatmap.x || [], String),
                             z: Array.from(heatmap.z, row => Array.from(row))};
    } return null; }"""


@dataclass(frozen=True)
class Plan:
    """What one session types and opens in one round."""
    session: int
    round: int
    marker: str  # the one word of its sentence no other session uses
    sentence: str
    scene: str  # file name of its bundled sample scene
    scene_labels: tuple[str, ...]  # that scene's ground truth (samples.json)


class ServerRuns:
    """When a tab asked the server for a script run and when the server said the run finished, read from the
    tab's websocket frames (Streamlit's BackMsg rerun_script and ForwardMsg script_finished) as they reach this
    script: the server's own share of a visit's time, apart from the browser's drawing."""

    def __init__(self, page) -> None:  # noqa: ANN001 - playwright.async_api.Page
        self.requested: list[float] = []  # time.perf_counter() of every rerun_script sent
        self.finished: list[float] = []  # ... of every script_finished received
        page.on("websocket", self._watch)

    def _watch(self, socket) -> None:  # noqa: ANN001 - playwright.async_api.WebSocket
        socket.on("framesent", self._sent)
        socket.on("framereceived", self._received)

    def _sent(self, payload: str | bytes) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        if isinstance(payload, bytes) and BackMsg.FromString(payload).WhichOneof("type") == "rerun_script":
            self.requested.append(time.perf_counter())

    def _received(self, payload: str | bytes) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        # script_finished is a few bytes; deltas with figures are large and need not be parsed.
        if isinstance(payload, bytes) and len(payload) < 512 and \
                ForwardMsg.FromString(payload).WhichOneof("type") == "script_finished":
            self.finished.append(time.perf_counter())

    async def seconds_after(self, start: float, wait: float = 10.0) -> float | None:
        """From the first run asked for at or after `start` to the first end of a run after it; None when
        either was not seen within `wait` seconds (frame events can reach this script after the page showed
        the run's end)."""
        deadline = time.perf_counter() + wait
        while True:
            asked = next((t for t in self.requested if t >= start), None)
            done = next((t for t in self.finished if asked is not None and t >= asked), None)
            if done is not None:
                return done - asked
            if time.perf_counter() > deadline:
                return None
            await asyncio.sleep(0.05)


@dataclass
class Visit:
    """One page visit of one session: its time to a heatmap and everything that went wrong."""
    session: int
    round: int
    page: str  # "text" or "image"
    input: str  # the marker typed, or the scene opened
    seconds: float | None = None  # submit (text) or URL opened (image) -> heatmap drawn; None when it never was
    server_seconds: float | None = None  # the server's run for it: asked for -> finished (see ServerRuns)
    open_seconds: float | None = None  # text only: page opened -> its first heatmap (the default sentence)
    own_seen: bool = False  # the heatmap (text) or caption and ground truth (image) are this session's input
    foreign_seen: list[str] = field(default_factory=list)  # other sessions' markers or scenes found on the page
    errors: list[str] = field(default_factory=list)  # timeouts, Streamlit exceptions, JavaScript errors
    labels: list[str] = field(default_factory=list)  # the heatmap's column labels
    map: list[list[float]] | None = None  # the heatmap's values, (T, T) for text, (rows, cols) patches for image

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.foreign_seen or not self.own_seen)


def sample_scenes() -> dict[str, tuple[str, ...]]:
    """File name -> ground-truth labels of the bundled sample scenes (models/bundled/samples/samples.json)."""
    samples = json.loads((SAMPLES_DIR / "samples.json").read_text())["samples"]
    return {item["file"]: tuple(item["labels"]) for item in samples if (SAMPLES_DIR / item["file"]).is_file()}


def make_plans(sessions: int, rounds: int, filler_words: int = 0) -> list[list[Plan]]:
    """plans[round][session]: a marker no other (session, round) uses, and a scene no other session opens in
    the same round while there are enough scenes (8 bundled), each session's scene moving on by one per round.

    Raises:
        ValueError: more sessions x rounds than markers, or no sample scenes.
    """
    if sessions < 1 or rounds < 1:
        raise ValueError("Use at least one session and one round.")
    if sessions * rounds > len(MARKERS):
        raise ValueError(f"sessions x rounds is at most {len(MARKERS)} (one marker word each): use fewer.")
    scenes = sample_scenes()
    names = sorted(scenes)
    if not names:
        raise ValueError(f"No bundled sample scenes in {SAMPLES_DIR}: train shapes-vit (see the README).")
    plans = []
    for round_index in range(rounds):
        row = []
        for session in range(sessions):
            marker = MARKERS[round_index * sessions + session]
            filler = " ".join(FILLER[(j * 7 + session) % len(FILLER)] for j in range(filler_words))
            # The marker comes first (token 1), where a long text's heatmap still labels it (TEXT_HEATMAP).
            sentence = f"{marker.capitalize()} waited near the old bridge until the rain stopped yesterday." + (
                f" {filler}" if filler else "")
            scene = names[(session + round_index) % len(names)]
            row.append(Plan(session, round_index, marker, sentence, scene, scenes[scene]))
        plans.append(row)
    return plans


def foreign_inputs(texts: Iterable[str], foreign: Iterable[str]) -> list[str]:
    """The words of `foreign` that occur in any of `texts` as whole words in any case (so "cobra" is found in
    "Cobra" but not in "cobras", nor "scene_01.png" in "scene_011.png"), in the order of `foreign`."""
    joined = "\n".join(texts)
    return [word for word in foreign
            if re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", joined, flags=re.IGNORECASE)]


def marker_shown(labels: Sequence[str], marker: str) -> bool:
    """Whether a heatmap's column labels show `marker` as a token: "#3 volcano" (index, token) or, on a long
    text's reduced axis, "0–1 [CLS]…volcano" (range, first token…last token)."""
    return any(marker in re.split(r"[ \u2026]", label)[1:] for label in labels)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("No values to take a percentile of.")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timing(values: Sequence[float]) -> dict[str, float | int]:
    """Count, median, 95th percentile and maximum of some seconds (all None when there are none)."""
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    return {"n": len(values), "median": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "max": round(max(values), 3)}


async def settle(page) -> None:  # noqa: ANN001 - playwright.async_api.Page
    """Wait until the page's script run finished (as tests/test_browser.settle)."""
    await page.wait_for_timeout(200)
    await page.wait_for_function(SETTLED, polling=100)
    await page.wait_for_timeout(200)


async def read_page(page) -> list[str]:  # noqa: ANN001
    """Everything a session can see of its input: the page's text, its URL and the text boxes' contents."""
    body = await page.locator("body").inner_text()
    boxes = await page.evaluate("() => [...document.querySelectorAll('textarea, input')].map(e => e.value || '')")
    return [body, urllib.parse.unquote_plus(page.url), *boxes]


async def page_exceptions(page) -> list[str]:  # noqa: ANN001
    shown = page.locator(EXCEPTION)
    return [f"Streamlit exception: {(await shown.nth(i).inner_text())[:300]}" for i in range(await shown.count())]


async def together(barrier: asyncio.Barrier, timeout: float) -> bool:
    """Wait until every session reaches this point; False (and the barrier broken for good, so nobody waits
    again) when one did not within `timeout` seconds."""
    try:
        await asyncio.wait_for(barrier.wait(), timeout)
        return True
    except (asyncio.TimeoutError, asyncio.BrokenBarrierError):
        await barrier.abort()
        return False


async def attempt(visit: Visit, step) -> bool:  # noqa: ANN001 - a coroutine
    """Run one step of a visit; an exception becomes one of the visit's errors."""
    try:
        await step
        return True
    except Exception as error:  # noqa: BLE001 - a load test reports every failure and goes on
        visit.errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}")
        return False


async def text_visit(page, runs: ServerRuns, base: str, plan: Plan, foreign: list[str],  # noqa: ANN001
                     barrier: asyncio.Barrier, timeout: float) -> Visit:
    """Open the text page, wait for every session, type the sentence and time its heatmap."""
    visit = Visit(plan.session, plan.round, "text", plan.marker)

    async def open_page() -> None:
        started = time.perf_counter()
        await page.goto(f"{base}/text-attention")
        await page.wait_for_selector(".js-plotly-plot", state="attached")
        visit.open_seconds = time.perf_counter() - started
        await settle(page)

    async def submit() -> None:
        area = page.locator('[data-testid="stTextArea"] textarea').first
        await area.fill(plan.sentence)
        started = time.perf_counter()
        await area.press("Control+Enter")
        await page.wait_for_function(TEXT_HEATMAP, arg=plan.marker, polling=50)
        visit.seconds = time.perf_counter() - started
        await settle(page)
        visit.server_seconds = await runs.seconds_after(started, wait=timeout)
        shown = await page.evaluate(READ_MAP, "text")
        visit.labels, visit.map = shown["labels"], shown["z"]
        visit.own_seen = marker_shown(visit.labels, plan.marker)
        visit.foreign_seen = foreign_inputs(await read_page(page) + visit.labels, foreign)
        visit.errors += await page_exceptions(page)

    opened = await attempt(visit, open_page())
    await together(barrier, timeout)
    if opened:
        await attempt(visit, submit())
    return visit


async def image_visit(page, runs: ServerRuns, base: str, plan: Plan, foreign: list[str],  # noqa: ANN001
                      timeout: float) -> Visit:
    """Open the image page on the session's scene by its URL and time the overlay."""
    visit = Visit(plan.session, plan.round, "image", plan.scene)

    async def open_page() -> None:
        query = urllib.parse.urlencode({"image_source": "sample", "image_sample": plan.scene})
        started = time.perf_counter()
        await page.goto(f"{base}/image?{query}")
        await page.wait_for_function(IMAGE_OVERLAY, arg=plan.scene, polling=50)
        visit.seconds = time.perf_counter() - started
        await settle(page)
        visit.server_seconds = await runs.seconds_after(started, wait=timeout)
        texts = await read_page(page)
        truth = f"Ground truth: {', '.join(plan.scene_labels)}"
        visit.own_seen = f"{plan.scene}, as the model sees it" in texts[0] and truth in texts[0]
        shown = await page.evaluate(READ_MAP, "image")
        if shown is not None:
            visit.labels, visit.map = shown["labels"], shown["z"]
        visit.foreign_seen = foreign_inputs(texts, foreign)
        visit.errors += await page_exceptions(page)

    await attempt(visit, open_page())
    return visit


async def run_session(browser, base: str, rounds: list[Plan], everyone: list[list[Plan]],  # noqa: ANN001
                      barrier: asyncio.Barrier, timeout: float) -> list[Visit]:
    """One user: a browser context of its own, text then image page every round, in step with the others."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    visits: list[Visit] = []
    page_errors: list[str] = []
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout * 1000)
        page.on("pageerror", lambda error: page_errors.append(f"JavaScript error: {error}"))
        runs = ServerRuns(page)
        others = [plan for row in everyone for plan in row if plan.session != rounds[0].session]
        for plan in rounds:
            markers = [other.marker for other in others]
            scenes = sorted({other.scene for other in others if other.round == plan.round} - {plan.scene})
            visits.append(await text_visit(page, runs, base, plan, markers + scenes, barrier, timeout))
            await together(barrier, timeout)
            visits.append(await image_visit(page, runs, base, plan, markers + scenes, timeout))
            await together(barrier, timeout)
            visits[-2].errors += page_errors[:]  # JavaScript errors go to the round's visits
            page_errors.clear()
    except Exception:
        await barrier.abort()  # nobody waits for a session that is gone
        raise
    finally:
        await context.close()
    return visits


async def sample_server(pid: int, every: float, memory: list[float], loads: list[float],
                        stop: asyncio.Event) -> None:
    """Append the server's resident memory (MB) and the 1-minute load average every `every` seconds."""
    while not stop.is_set():
        memory.append(resident_mb(pid))
        loads.append(load_average()[0])
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


async def load_models(browser, base: str, scene: str, timeout: float) -> None:  # noqa: ANN001
    """Open the text and image pages once, in a context of their own, so that the server loads both models.

    The image page explains the class "circle", a capture no session asks for: no session's first image is
    served from the cache by the warm-up.
    """
    context = await browser.new_context()
    try:
        page = await context.new_page()
        page.set_default_timeout(timeout * 1000)
        await page.goto(f"{base}/text-attention")
        await page.wait_for_selector(".js-plotly-plot", state="attached")
        await page.goto(f"{base}/image?" + urllib.parse.urlencode(
            {"image_source": "sample", "image_sample": scene, "im_class": "circle"}))
        await page.wait_for_selector(".js-plotly-plot image", state="attached")
        await settle(page)
    finally:
        await context.close()


async def drive(base: str, pid: int, plans: list[list[Plan]], timeout: float, warm_up: bool = True,
                linger: float = 0.0) -> dict[str, Any]:
    """Warm up (unless not `warm_up`), run every session at once while sampling the server, go on sampling its
    memory for `linger` seconds after the last session closed, and return the raw results."""
    from playwright.async_api import async_playwright

    sessions = len(plans[0])
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=list(BROWSER_ARGS))
        try:
            warm_up_seconds = after_warm_up = None
            if warm_up:
                started = time.perf_counter()
                await load_models(browser, base, plans[0][0].scene, timeout)
                warm_up_seconds = time.perf_counter() - started
                await asyncio.sleep(1.0)
                after_warm_up = resident_mb(pid)

            memory: list[float] = []
            loads: list[float] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_server(pid, 0.1, memory, loads, stop))
            barrier = asyncio.Barrier(sessions)
            cpu_before, client_before = cpu_seconds(pid), tree_cpu_seconds(os.getpid(), exclude=[pid])
            started = time.perf_counter()
            results = await asyncio.gather(
                *(run_session(browser, base, [row[s] for row in plans], plans, barrier, timeout)
                  for s in range(sessions)),
                return_exceptions=True,
            )
            wall = time.perf_counter() - started
            cpu = cpu_seconds(pid) - cpu_before
            client_cpu = tree_cpu_seconds(os.getpid(), exclude=[pid]) - client_before
            await asyncio.sleep(1.0)  # the last runs' memory settles
            final = resident_mb(pid)
            await asyncio.sleep(linger)
            stop.set()
            await sampler
            lingered = resident_mb(pid)
        finally:
            await browser.close()
    return dict(results=results, warm_up=warm_up_seconds, after_warm_up=after_warm_up, memory=memory, loads=loads,
                final=final, lingered=lingered, wall=wall, cpu=cpu, client_cpu=client_cpu, synchronised=not barrier.broken)


def run(sessions: int = 8, rounds: int = 2, port: int | None = None, filler_words: int = 0,
        timeout: float = 120.0, warm_up: bool = True, linger: float = 0.0) -> dict[str, Any]:
    """Start a fresh server, run the load and return the summary (see the module docstring); "visits" holds
    every Visit, with its heatmap. Without `warm_up` the sessions load the models themselves (their first
    times include it) and the memory bound is not computed. With `linger`, the memory is read once more that
    many seconds after the last session closed (Streamlit keeps a closed tab's session for
    server.disconnectedSessionTTL, 120 s by default, in case it reconnects)."""
    plans = make_plans(sessions, rounds, filler_words)
    if chromium_path() is None:
        raise RuntimeError("Chromium not found: install Debian's chromium package (apt-get install chromium).")
    budget = budget_mb("EXPLAIN_CACHE_MB", DEFAULT_RESULTS_MB)  # as the server reads it
    load_before = load_average()
    with app_server(port=port) as server:
        at_start = resident_mb(server.pid)
        raw = asyncio.run(drive(server.base, server.pid, plans, timeout, warm_up, linger))
    load_after = load_average()

    visits: list[Visit] = []
    failures: list[str] = []
    for session, result in enumerate(raw["results"]):
        if isinstance(result, BaseException):
            failures.append(f"session {session}: {type(result).__name__}: {result}")
        else:
            visits += result
    for visit in visits:
        where = f"session {visit.session} round {visit.round} {visit.page} ({visit.input})"
        failures += [f"{where}: {error}" for error in visit.errors]
        if visit.foreign_seen:
            failures.append(f"{where}: saw another session's input: {', '.join(visit.foreign_seen)}")
        if not visit.own_seen and not visit.errors:
            failures.append(f"{where}: its own input is not on the page")
    text = [v.seconds for v in visits if v.page == "text" and v.seconds is not None]
    image = [v.seconds for v in visits if v.page == "image" and v.seconds is not None]
    bound = None if raw["after_warm_up"] is None else raw["after_warm_up"] + budget
    peak = max(raw["memory"], default=raw["final"])
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="minutes"),
        "sessions": sessions,
        "rounds": rounds,
        "sentence_words": len(plans[0][0].sentence.split()),
        "visits": visits,
        "sessions_without_failure": sum(
            1 for s in range(sessions)
            if not any(v.failed for v in visits if v.session == s) and not isinstance(raw["results"][s], BaseException)),
        "failures": failures,
        "synchronised": raw["synchronised"],
        "seconds_to_heatmap": {"text": timing(text), "image": timing(image), "all": timing(text + image)},
        "server_run_seconds": {page: timing([v.server_seconds for v in visits
                                             if v.server_seconds is not None and page in ("all", v.page)])
                               for page in ("text", "image", "all")},
        "text_page_open_seconds": timing([v.open_seconds for v in visits if v.open_seconds is not None]),
        "warm_up_seconds": None if raw["warm_up"] is None else round(raw["warm_up"], 2),
        "wall_seconds": round(raw["wall"], 2),
        "server_cpu_seconds": round(raw["cpu"], 2),
        "client_cpu_seconds": round(raw["client_cpu"], 2),  # this script, Playwright's driver and Chromium
        "memory_mb": {
            "at_start": round(at_start), "after_warm_up": _rounded(raw["after_warm_up"]), "peak": round(peak),
            "final": round(raw["final"]),
            "linger_seconds": linger, "after_linger": round(raw["lingered"]) if linger else None,
            "results_cache_budget": budget, "bound": _rounded(bound),
            "within_bound": None if bound is None else peak <= bound,
        },
        "machine": {
            "cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": load_after,
            "load_average_1min_during": {"min": min(raw["loads"], default=None), "max": max(raw["loads"], default=None)},
        },
    }


def _rounded(value: float | None) -> int | None:
    return None if value is None else round(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8, help="browser sessions at once (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="text + image visits per session (default 2)")
    parser.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    parser.add_argument("--filler-words", type=int, default=0,
                        help="words added to every sentence, for longer texts (default 0: 11 words)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds any one wait may take (default 120)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="let the sessions load the models themselves (no memory bound is computed)")
    parser.add_argument("--linger", type=float, default=0.0,
                        help="seconds to go on sampling memory after the sessions closed (default 0)")
    parser.add_argument("--details", action="store_true", help="also print every visit (without its heatmap)")
    args = parser.parse_args(argv)
    try:
        summary = run(args.sessions, args.rounds, args.port, args.filler_words, args.timeout,
                      warm_up=not args.no_warm_up, linger=args.linger)
    except ValueError as error:
        parser.error(str(error))
    visits = summary.pop("visits")
    if args.details:
        summary["visits"] = [{k: v for k, v in asdict(visit).items() if k != "map"} for visit in visits]
    print(json.dumps(summary, indent=2))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
