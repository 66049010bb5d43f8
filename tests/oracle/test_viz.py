"""The pictures, end to end through build/slm: `slm attention`, `slm plot`,
`slm mask -o` and `slm softmax -o`, as PNG (decoded here with the standard
library, tests/oracle/png_read.py) and SVG (parsed as XML, and rendered by
librsvg's rsvg-convert to catch files a real renderer refuses).

What is checked is the content: image sizes; every masked cell blank (the
background) and every other cell exactly the viridis colour of the weight
that `--json` reports; the weights themselves against transformers'
GPT2LMHeadModel(output_attentions=True); the labels on both axes are the
prompt's tokens; the loss curves are the log's numbers on a linear scale."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from harness import assert_close, run  # noqa: E402
from png_read import pixel, read_png  # noqa: E402

SLM = os.environ.get("SLM_BIN", "build/slm")
TMP = tempfile.mkdtemp(prefix="slm-viz-")
SVG = "{http://www.w3.org/2000/svg}"
TEXT = ("In the beginning God created the heaven and the earth. And the earth was "
        "without form, and void; and darkness was upon the face of the deep.\n") * 40
PROMPT = "God said, let"
WHITE = (255, 255, 255)


def slm(*args, check=True):
    p = subprocess.run([SLM, *args], capture_output=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"slm {' '.join(args)} exited {p.returncode}: {p.stderr.decode()}")
    return p


def out(name):
    return os.path.join(TMP, name)


def model():
    """A 2-layer, 2-head byte model trained for 20 steps, whose attention
    projections are then scaled up 4× so that the heads attend far from
    uniformly (a stronger test of colours and weights)."""
    d = out("model")
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return d
    with open(out("data.txt"), "w") as f:
        f.write(TEXT)
    slm("train", "--data", out("data.txt"), "--out", d, "--layers", "2", "--heads", "2",
        "--dim", "32", "--context", "32", "--batch", "4", "--steps", "20", "--eval-every", "5",
        "--lr", "3e-3", "--threads", "2", "--seed", "3")
    st = load_file(os.path.join(d, "model.safetensors"))
    for k in st:
        if k.endswith("attn.c_attn.weight"):
            st[k] = st[k] * 4.0
    save_file(st, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    return d


def viridis(t):
    """matplotlib's viridis at t = 0, 0.1, ..., 1, linearly interpolated and
    rounded (the scale slm documents in src/cli/colormap.h)."""
    stops = ["440154", "482475", "414487", "355f8d", "2a788e", "21918c", "22a884", "44bf70",
             "7ad151", "bddf26", "fde725"]
    rgb = [tuple(int(s[i:i + 2], 16) for i in (0, 2, 4)) for s in stops]
    t = min(max(t, 0.0), 1.0)
    k = min(int(t * 10), 9)
    f = t * 10 - k
    return tuple(int(np.floor(a + f * (b - a) + 0.5)) for a, b in zip(rgb[k], rgb[k + 1]))


def hex_rgb(s):
    return tuple(int(s[i:i + 2], 16) for i in (1, 3, 5))


def svg_root(path):
    return ET.parse(path).getroot()


def groups(root, cls):
    return [g for g in root.iter(SVG + "g") if g.get("class") == cls]


def rsvg(svg_path):
    """Renders the SVG with rsvg-convert; returns the decoded PNG."""
    png = os.path.join(TMP, os.path.basename(svg_path) + ".rsvg.png")
    p = subprocess.run(["rsvg-convert", "-o", png, svg_path], capture_output=True, timeout=60)
    assert p.returncode == 0, f"rsvg-convert {svg_path}: {p.stderr.decode()}"
    return read_png(png)


def close(got, want, tol, what):
    assert all(abs(a - b) <= tol for a, b in zip(got, want)), f"{what}: {got} != {want}"


def attention(name, *args):
    """Runs slm attention with -o NAME.svg and NAME.png and --json."""
    m = model()
    p = slm("attention", "-m", m, "-p", PROMPT, *args, "-o", out(name + ".svg"), "--json")
    slm("attention", "-m", m, "-p", PROMPT, *args, "-o", out(name + ".png"))
    return json.loads(p.stdout), svg_root(out(name + ".svg")), read_png(out(name + ".png"))


def check_cells(data, root, img, what):
    """Every cell of every panel: blank where masked, else viridis(weight), in
    the SVG's rects and in the PNG's pixels (a 2-pixel inset from the cell's
    corner: cells with numbers carry them in their middle)."""
    panels = groups(root, "matrix")
    W = np.array(data["weights"], dtype=np.float64)
    L, H = len(data["layers"]), len(data["heads"])
    T = len(data["tokens"])
    assert len(panels) == L * H, f"{what}: {len(panels)} panels for {L}×{H}"
    assert (img[0], img[1]) == (int(root.get("width")), int(root.get("height"))), what
    for g in panels:
        li = data["layers"].index(int(g.get("data-layer")))
        hi = data["heads"].index(int(g.get("data-head")))
        x0, y0, cs = (int(g.get(k)) for k in ("data-x", "data-y", "data-cell"))
        assert int(g.get("data-t")) == T
        cells = [r for r in g.iter(SVG + "rect") if r.get("fill") not in (None, "none")]
        assert len(cells) == T * (T + 1) // 2, f"{what}: {len(cells)} filled cells"
        for r in cells:
            j, i = (int(float(r.get(k))) - o for k, o in (("x", x0), ("y", y0)))
            assert j % cs == 0 and i % cs == 0 and float(r.get("width")) == cs
            i, j = i // cs, j // cs
            assert j <= i, f"{what}: a filled cell above the diagonal ({i},{j})"
            assert hex_rgb(r.get("fill")) == viridis(W[li, hi, i, j]), f"{what}: fill ({i},{j})"
        for i in range(T):
            for j in range(T):
                got = pixel(img, x0 + j * cs + 2, y0 + i * cs + 2)
                if j > i:
                    assert W[li, hi, i, j] == 0.0
                    assert got == WHITE, f"{what}: masked ({i},{j}) is {got}, not blank"
                else:
                    close(got, viridis(W[li, hi, i, j]), 1, f"{what}: pixel ({i},{j})")


def test_one_head_png_and_svg_cells_are_the_weights():
    data, root, img = attention("head", "--layer", "1", "--head", "1")
    assert data["layers"] == [1] and data["heads"] == [1]
    W = np.array(data["weights"])[0, 0]
    assert np.allclose(W.sum(axis=1), 1.0, atol=1e-5) and W.max() > 0.5 > W[W > 0].min()
    check_cells(data, root, img, "layer 1 head 1")
    # the colour bar: 150 one-pixel rows from weight 1 (top) to 0, on the same scale
    bar = [r for r in groups(root, "legend")[0].iter(SVG + "rect")
           if r.get("fill") not in (None, "none")]
    assert len(bar) == 150
    for k, r in enumerate(bar):
        assert hex_rgb(r.get("fill")) == viridis(1 - (k + 0.5) / 150), f"colour bar row {k}"
        close(pixel(img, int(float(r.get("x"))) + 8, int(float(r.get("y")))),
              viridis(1 - (k + 0.5) / 150), 1, f"colour bar pixel {k}")


def test_labels_are_the_prompts_tokens():
    data, root, _ = attention("labels", "--head", "0")
    want = [c if c != " " else "␣" for c in PROMPT]
    assert data["tokens"] == list(PROMPT.encode()) and data["labels"] == want
    g = groups(root, "matrix")[0]
    texts = [t for t in g.iter(SVG + "text")]
    cols = [t.text for t in texts if "rotate" in (t.get("transform") or "")]
    rows = [t.text for t in texts if t.get("text-anchor") == "end"]
    assert cols == want and rows == want, (cols, rows)
    words = " ".join(t.text or "" for t in root.iter(SVG + "text"))
    assert "layer 0, head 0" in words and "2 layers, 2 heads" in words, words


def test_all_heads_grid_and_every_layer_overview():
    data, root, img = attention("grid", "--layer", "1")
    assert data["layers"] == [1] and data["heads"] == [0, 1]
    check_cells(data, root, img, "layer 1 grid")
    data, root, img = attention("all", "--all")
    assert data["layers"] == [0, 1] and data["heads"] == [0, 1]
    check_cells(data, root, img, "--all")


def test_json_weights_equal_transformers_output_attentions():
    from transformers import GPT2LMHeadModel
    data, _, _ = attention("hf", "--all")
    hf = GPT2LMHeadModel.from_pretrained(model()).eval()
    with torch.no_grad():
        att = hf(torch.tensor([data["tokens"]]), output_attentions=True).attentions
    want = np.stack([a[0].numpy() for a in att])
    assert_close(np.array(data["weights"]), want, 1e-4, 2e-6, "--json weights vs transformers")


def test_svgs_render_in_rsvg_like_the_pngs():
    """rsvg-convert draws each SVG at the PNG's size, and the cells it paints
    have the same colours as Cairo's."""
    data, root, img = attention("rsvg", "--layer", "0", "--head", "1")
    r = rsvg(out("rsvg.svg"))
    assert (r[0], r[1]) == (img[0], img[1])
    g = groups(root, "matrix")[0]
    x0, y0, cs = (int(g.get(k)) for k in ("data-x", "data-y", "data-cell"))
    T = len(data["tokens"])
    for i in range(T):
        for j in range(T):
            close(pixel(r, x0 + j * cs + 2, y0 + i * cs + 2),
                  pixel(img, x0 + j * cs + 2, y0 + i * cs + 2), 1, f"rsvg cell ({i},{j})")
    for name, args in (("mask.svg", ["mask", "6"]),
                       ("softmax.svg", ["softmax", "--causal", "--row", "2", "1", "1", "1", "8"]),
                       ("plot.svg", ["plot", model()])):
        slm(*args, "-o", out(name))
        rsvg(out(name))


def test_mask_picture():
    for ext in ("svg", "png"):
        p = slm("mask", "5", "-o", out("mask5." + ext))
        assert p.stdout == b"", "with -o, mask prints nothing"
    root, img = svg_root(out("mask5.svg")), read_png(out("mask5.png"))
    assert (img[0], img[1]) == (int(root.get("width")), int(root.get("height")))
    g = groups(root, "matrix")[0]
    x0, y0, cs = (int(g.get(k)) for k in ("data-x", "data-y", "data-cell"))
    visible = None
    for i in range(5):
        for j in range(5):
            got = pixel(img, x0 + j * cs + 2, y0 + i * cs + 2)
            if j > i:
                assert got == WHITE, f"mask ({i},{j}) = {got}"
            else:
                visible = visible or got
                assert got == visible and got != WHITE, f"mask ({i},{j}) = {got}"
    texts = [t.text for t in g.iter(SVG + "text")]
    assert texts.count("−∞") == 10 and texts.count("0") >= 15, texts


def test_softmax_picture_is_the_seeds_example():
    slm("softmax", "--causal", "--row", "2", "1", "1", "1", "8", "-o", out("sm.svg"))
    p = slm("softmax", "--causal", "--row", "2", "-o", out("sm.png"), "1", "1", "1", "8")
    assert p.stdout == b""
    root, img = svg_root(out("sm.svg")), read_png(out("sm.png"))
    bars = groups(root, "bar")
    assert [float(b.get("data-weight")) for b in bars] == [0.333333] * 3 + [0.0]
    # each unmasked bar is a rect of height weight · 180 px in viridis(weight)
    for b in bars[:3]:
        rect = [r for r in b.iter(SVG + "rect") if r.get("fill") not in (None, "none")][0]
        assert float(rect.get("height")) == 60.0 and hex_rgb(rect.get("fill")) == viridis(1 / 3)
        x, y = float(rect.get("x")), float(rect.get("y"))
        close(pixel(img, int(x) + 5, int(y) + 5), viridis(1 / 3), 1, "bar pixel")
    assert not [r for r in bars[3].iter(SVG + "rect") if r.get("fill") not in (None, "none")]
    words = [t.text for t in bars[3].iter(SVG + "text")]
    assert "−∞" in words and "masked" in words and "8" in words, words


def test_ffn_picture_cells_are_the_activations():
    m = model()
    p = slm("ffn", "-m", m, "-p", PROMPT, "--layer", "1", "--units", "40", "-o", out("ffn.svg"),
            "--json")
    slm("ffn", "-m", m, "-p", PROMPT, "--layer", "1", "--units", "40", "-o", out("ffn.png"))
    data = json.loads(p.stdout)
    A = np.array(data["activations"], dtype=np.float64)
    assert A.shape == (len(PROMPT), 128) and data["layer"] == 1
    root, img = svg_root(out("ffn.svg")), read_png(out("ffn.png"))
    assert (img[0], img[1]) == (int(root.get("width")), int(root.get("height")))
    g = groups(root, "matrix")[0]
    x0, y0, cs = (int(g.get(k)) for k in ("data-x", "data-y", "data-cell"))
    lo, hi = float(g.get("data-lo")), float(g.get("data-hi"))
    shown = A[:, :40]
    assert int(g.get("data-cols")) == 40 and np.isclose(lo, shown.min()) and np.isclose(hi, shown.max())
    texts = list(g.iter(SVG + "text"))
    assert [t.text for t in texts if t.get("text-anchor") == "end"] == \
        [c if c != " " else "␣" for c in PROMPT]
    assert [t.text for t in texts if "rotate" in (t.get("transform") or "")] == \
        [str(u) for u in range(40)]
    for i in range(len(PROMPT)):
        for u in range(40):
            want = viridis((np.float32(A[i, u]) - lo) / (hi - lo))
            close(pixel(img, x0 + u * cs + 2, y0 + i * cs + 2), want, 1, f"ffn pixel ({i},{u})")


def log_of(d):
    return [json.loads(line) for line in open(os.path.join(d, "log.jsonl"))]


def polyline(root, run, kind):
    g = [g for g in groups(root, "series") if g.get("data-run") == str(run)
         and g.get("data-kind") == kind][0]
    pts = g.find(SVG + "polyline").get("points").split()
    return np.array([[float(v) for v in p.split(",")] for p in pts])


def linear(xy, data, what):
    """The points are an affine image of data (x = a·u + b, y = c·v + d)."""
    for axis in (0, 1):
        A = np.stack([data[:, axis], np.ones(len(data))], axis=1)
        coef, *_ = np.linalg.lstsq(A, xy[:, axis], rcond=None)
        assert np.abs(A @ coef - xy[:, axis]).max() < 0.02, f"{what}: axis {axis} not linear"
        return_sign = coef[0]
        assert (return_sign > 0) if axis == 0 else (return_sign < 0), f"{what}: axis direction"


def test_plot_draws_the_log():
    m = model()
    log = log_of(m)
    slm("plot", m, "-o", out("plot.svg"))
    slm("plot", m, "-o", out("plot.png"))
    root, img = svg_root(out("plot.svg")), read_png(out("plot.png"))
    assert (img[0], img[1]) == (int(root.get("width")), int(root.get("height")))
    train = polyline(root, 0, "train")
    val = polyline(root, 0, "val")
    lr = polyline(root, 0, "lr")
    steps = np.array([r["step"] for r in log], dtype=float)
    vals = [(r["step"], r["val_loss"]) for r in log if "val_loss" in r]
    assert len(train) == len(log) == 20 and len(val) == len(vals) == 4 and len(lr) == 20
    linear(train, np.stack([steps, [r["loss"] for r in log]], 1), "train loss")
    linear(val, np.array(vals, dtype=float), "validation loss")
    linear(lr, np.stack([steps, [r["lr"] for r in log]], 1), "learning rate")
    words = " ".join(t.text or "" for t in root.iter(SVG + "text"))
    assert "2 layers × 2 heads, width 32, context 32" in words, words
    assert "tokens" in words and "step" in words and "learning rate" in words
    # 4 sequences × 32 tokens per step: the top axis reaches 20 · 128 = 2560
    assert re.search(r"\b2k\b", words), words
    blue = sum(1 for y in range(img[1]) for x in range(0, img[0], 2)
               if pixel(img, x, y) == (0x1f, 0x77, 0xb4))
    assert blue > 100, f"only {blue} pixels of the run's colour"


def test_plot_overlays_runs():
    m = model()
    m2 = out("model2")
    shutil.rmtree(m2, ignore_errors=True)
    slm("train", "--data", out("data.txt"), "--out", m2, "--layers", "1", "--heads", "2",
        "--dim", "16", "--context", "16", "--batch", "4", "--steps", "12", "--eval-every", "4",
        "--threads", "2")
    slm("plot", m, m2, "-o", out("two.svg"))
    root = svg_root(out("two.svg"))
    assert len(polyline(root, 0, "train")) == 20 and len(polyline(root, 1, "train")) == 12
    strokes = {polyline_color for polyline_color in
               (g.find(SVG + "polyline").get("stroke") for g in groups(root, "series")
                if g.get("data-kind") == "train")}
    assert len(strokes) == 2, strokes
    legend = " ".join(t.text or "" for g in groups(root, "legend") for t in g.iter(SVG + "text"))
    assert m[-20:] in legend and m2[-20:] in legend and "validation loss" in legend, legend


def test_generate_show_probs_is_the_output_softmax():
    """--show-probs K: per new token, the K most likely next tokens under
    softmax(logits) with their probabilities, against transformers' logits
    for the same context; greedy picks the first; then the text."""
    from transformers import GPT2LMHeadModel
    m = model()
    p = slm("generate", "-m", m, "-p", PROMPT, "-n", "6", "--temperature", "0",
            "--show-probs", "3")
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 7 and lines[-1].startswith("text: "), lines
    hf = GPT2LMHeadModel.from_pretrained(m).eval()
    ids = list(PROMPT.encode())
    for n, line in enumerate(lines[:-1], 1):
        head, rest = line.split(":", 1)
        assert int(head) == n
        parts = rest.strip().split("  ")
        cands = [(c.rsplit(" ", 1)[0], float(c.rsplit(" ", 1)[1])) for c in parts[:-1]]
        picked = parts[-1].removeprefix("→ ").rsplit(" ", 1)[0]
        with torch.no_grad():
            logits = hf(torch.tensor([ids])).logits[0, -1].double()
        probs = torch.softmax(logits, -1).numpy()
        order = np.argsort(-probs)[:3]
        label = lambda t: "␣" if t == 32 else "↵" if t == 10 else chr(t)  # noqa: E731
        assert [c for c, _ in cands] == [label(t) for t in order], (line, order)
        assert_close([q for _, q in cands], probs[order], 0, 6e-5, f"line {n}")
        assert picked == cands[0][0], line
        ids.append(int(order[0]))
    assert lines[-1] == "text: " + bytes(ids[len(PROMPT):]).decode(), lines[-1]


def test_every_picture_under_asan():
    """With the AddressSanitizer + UBSan build (SLM_ASAN_BIN, as make test
    sets it): every drawing command, PNG and SVG, with leak checking on."""
    asan = os.environ.get("SLM_ASAN_BIN")
    if not asan:
        print("# SLM_ASAN_BIN not set: the sanitizer pass of this test runs in make test")
        return
    m = model()
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:exitcode=86",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87")
    for ext in ("png", "svg"):
        for args in (["attention", "-m", m, "-p", PROMPT, "--all", "--json"],
                     ["attention", "-m", m, "-p", PROMPT, "--head", "1"], ["plot", m, m],
                     ["ffn", "-m", m, "-p", PROMPT, "--json"],
                     ["mask", "7"], ["softmax", "--causal", "--row", "1", "3", "1", "2"]):
            p = subprocess.run([asan, *args, "-o", out("asan." + ext)], capture_output=True,
                               env=env, timeout=300)
            assert p.returncode == 0 and b"Sanitizer" not in p.stderr, \
                f"asan slm {' '.join(args)}: {p.returncode} {p.stderr[-1500:]!r}"
    p = subprocess.run([asan, "generate", "-m", m, "-p", PROMPT, "-n", "4", "--show-probs", "3"],
                       capture_output=True, env=env, timeout=300)
    assert p.returncode == 0 and b"Sanitizer" not in p.stderr, p.stderr[-1500:]


def test_tour_links_and_committed_pictures():
    """docs/tour.md: every linked file exists (all.png only after make tour)
    and every committed SVG renders in rsvg-convert."""
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    tour = open(os.path.join(root, "docs", "tour.md")).read()
    links = re.findall(r"\]\(([^)#\s]+)\)", tour)
    assert len(links) > 25, links
    for link in links:
        if link.endswith("all.png") or link.startswith("http"):
            continue
        assert os.path.exists(os.path.join(root, "docs", link)), f"tour.md links {link}"
    svgs = [l for l in links if l.endswith(".svg")]
    assert len(set(svgs)) == 7, svgs
    for svg in set(svgs):
        rsvg(os.path.join(root, "docs", svg))
    readme = open(os.path.join(root, "README.md")).read()
    assert "(docs/tour.md)" in readme


if __name__ == "__main__":
    try:
        run([test_one_head_png_and_svg_cells_are_the_weights,
             test_labels_are_the_prompts_tokens,
             test_all_heads_grid_and_every_layer_overview,
             test_json_weights_equal_transformers_output_attentions,
             test_svgs_render_in_rsvg_like_the_pngs,
             test_mask_picture,
             test_softmax_picture_is_the_seeds_example,
             test_plot_draws_the_log,
             test_plot_overlays_runs,
             test_generate_show_probs_is_the_output_softmax,
             test_tour_links_and_committed_pictures,
             test_ffn_picture_cells_are_the_activations,
             test_every_picture_under_asan])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
