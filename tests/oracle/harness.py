"""Minimal harness for the Python oracle tests: prints "ok NAME" or
"FAIL NAME: why" per case (tests/run.sh counts them) and exits non-zero on a
failure."""
import sys
import traceback


def run(cases):
    failed = 0
    for fn in cases:
        try:
            fn()
            print(f"ok {fn.__name__}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            failed += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            msg = str(e).replace("\n", " ")[:400]
            print(f"FAIL {fn.__name__}: {type(e).__name__} at line {where.lineno}: {msg}",
                  flush=True)
    sys.exit(1 if failed else 0)


def assert_close(got, want, rtol, atol, what):
    """Raises with the worst element if |got-want| > atol + rtol*|want|."""
    import numpy as np
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape} != {want.shape}")
    same_inf = (got == want)
    err = np.abs(got - want)
    bad = ~(same_inf | (err <= atol + rtol * np.abs(want)))
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, err, -1)), got.shape)
        raise AssertionError(f"{what}: {bad.sum()} of {got.size} differ; worst at {i}: "
                             f"got {got[i]!r} want {want[i]!r}")
