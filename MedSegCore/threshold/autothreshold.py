"""Automatic thresholds equal to SimpleITK's ``<Method>ThresholdImageFilter.GetThreshold()``.

The histogram is built as ITK builds it (data min..max plus a 1/100-bin margin, float32 bin widths,
fixed [-0.5, 255.5] / [-128.5, 127.5] for 8-bit images, SimpleITK's DEFAULT_BINS), each calculator
is replayed in ITK's loop order with its tie rules, and the bin value it returns (bin maximum for
Otsu, bin centre otherwise) is cast to the pixel type (truncated for integers, float32-rounded).

Foreground side: for every method ITK gives its *inside* value to voxels ``<= t`` and its outside
value to ``> t`` (INSIDE_IS_AT_OR_BELOW); the bright class is ``[bright_lower_bound(t, dtype), max]``.

Where ITK fails we return a usable value. Huang and Li round class means to whole intensity units
(ImageJ's 0..255 grey levels), so when the range is only a few units wide (floats in [0, 1]) ITK's
Huang throws and its Li reads past its histogram (returning garbage: 0, inf, 1e+180): we rerun
Huang on bin numbers and replace Li by a bounded Li iteration on bin ranks. ITK >= 5.0 shifts
negative intensities for Li by the histogram minimum, which we replay. Kittler-Illingworth throws
on degenerate classes ("sigma2 <= 0", e.g. a flat background bin) and may cycle: we return the
current iterate. Triangle reads past the end when the peak is the last bin: we use the last bin.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError
from .histogram import Histogram, histogram  # noqa: F401  (part of this module's API)
from .histogram import histogram as _build_histogram

METHODS = {"otsu": "Otsu", "huang": "Huang", "isodata": "IsoData",
           "kittler_illingworth": "Kittler-Illingworth", "max_entropy": "Maximum entropy",
           "moments": "Moments", "renyi": "Renyi entropy", "shanbhag": "Shanbhag",
           "triangle": "Triangle", "yen": "Yen", "li": "Li"}
DEFAULT_BINS = {name: 256 for name in METHODS} | {"otsu": 128, "huang": 128}   # SimpleITK's
INSIDE_IS_AT_OR_BELOW = {name: True for name in METHODS}   # ITK inside value <=> value <= t
_EPS, _TINY, _BIG = np.finfo(np.float64).eps, np.finfo(np.float64).tiny, np.finfo(np.float64).max


def bright_lower_bound(threshold: float, dtype) -> float:
    """Smallest ``dtype`` value strictly above ``threshold``: the bright class is [this, max]."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return float(math.floor(threshold) + 1)
    return float(np.nextafter(dtype.type(threshold), dtype.type(np.inf)))


# ------------------------------------------------------------ ITK arithmetic, replayed exactly
def _seq(x):
    """Left-to-right sum as a C loop adds it (np.sum's pairwise order rounds differently)."""
    return float(np.cumsum(x)[-1]) if len(x) else 0.0


def _rows(mat):
    """Left-to-right sum of each row; zeros standing for skipped terms change nothing."""
    return np.cumsum(mat, axis=1)[:, -1]


def _tri(n, lower=True):
    i = np.arange(n)
    return i[None, :] <= i[:, None] if lower else i[None, :] > i[:, None]


def _almost_equal(x1, x2, max_ulps):
    """itk::Math::FloatAlmostEqual for doubles: within 0.1 eps, or same sign and max_ulps apart."""
    i1, i2 = np.array([x1, x2], np.float64).view(np.int64)
    return abs(x1 - x2) <= 0.1 * _EPS or ((i1 < 0) == (i2 < 0) and abs(int(i1) - int(i2)) <= max_ulps)


def _index(mins, upper, v):
    """itk::Statistics::Histogram::GetIndex, bins clipped at the ends; None when outside."""
    if v != v:
        return len(mins) // 2                              # ITK's binary search puts NaN mid-way
    if v < mins[0] or (v >= upper and not _almost_equal(v, upper, 4)):
        return None
    return min(int(np.searchsorted(mins, v, "right")) - 1, len(mins) - 1)


def _normalized(f):
    """Normalised histogram, P1, P2 and the first/last bins where P1 resp. P2 are non-zero."""
    norm = f / float(f.sum())
    p1 = np.cumsum(norm)
    nz = np.flatnonzero(np.abs(p1) >= _EPS)
    first = int(nz[0]) if nz.size else 0
    nz = np.flatnonzero(np.abs(1.0 - p1[first:]) >= _EPS)
    return norm, p1, 1.0 - p1, first, (first + int(nz[-1]) if nz.size else len(f) - 1)


# ------------------------------------------------------------ calculators: (f, mins, mids, upper)
def _class_means(f, m):
    """Otsu class mean R[a, b] and count F[a, b] of bins a..b, updated bin by bin as ITK does."""
    n, d = len(f), np.arange(len(f))
    R, F = np.zeros((n, n)), np.zeros((n, n), np.int64)
    R[d, d], F[d, d] = np.where(f > 0, m, 0.0), f
    with np.errstate(all="ignore"):
        for k in range(1, n):
            a = d[:n - k]
            fo, fn = F[a, a + k - 1], F[a, a + k - 1] + f[a + k]
            R[a, a + k] = np.where(fn > 0, (R[a, a + k - 1] * fo + m[a + k] * f[a + k]) / fn, 0.0)
            F[a, a + k] = fn
    return R, F


def _otsu_scores(T, f, m, R, F, start=False):
    """ITK's between-class score of each row of threshold bins T (``start``: its first row)."""
    tot, n = int(f.sum()), len(f)
    gt = _seq(m * f) / tot * tot
    A = np.concatenate([np.zeros((len(T), 1), np.intp), T[:, :-1] + 1], axis=1) * n + T
    Fc, Rc = F.ravel()[A], R.ravel()[A]
    fl, ml, V = tot - Fc.sum(axis=1), np.full(len(T), gt), np.zeros(len(T))
    for j in range(T.shape[1]):
        ml = ml - Rc[:, j] * Fc[:, j]
        V = V + Fc[:, j] * (Rc[:, j] * Rc[:, j])
    if start:
        ml[0] = gt - _seq(Rc[0] * Fc[0])                   # the start sums its classes first
    with np.errstate(all="ignore"):
        ml = np.where(fl > 0, ml / fl, 0.0)
    return (V + fl * (ml * ml)) / tot


def _otsu_scan(V, best, cur):
    """ITK keeps a new maximum only when it beats the current one by more than 1 ulp."""
    run = np.maximum.accumulate(np.concatenate([[cur], V]))
    for i in np.flatnonzero(V > run[:-1]):                 # only new running maxima can win
        if not _almost_equal(cur, V[i], 1):
            best, cur = i, V[i]
    return best, cur


def _multi_otsu_idx(f, m, n):
    """ITK's exhaustive search over ``n`` thresholds in its (lexicographic) order, restricted to
    the configurations that a dynamic-programming bound leaves within 1e-9 of the optimum. Past
    12 million such configurations (a few intensity values spread over many bins, where ITK's
    choice among equal partitions is decided by rounding) the first optimal one is returned."""
    N, b = len(f), np.arange(len(f))
    R, F = _class_means(f, m)
    W = np.where(_tri(N).T, F * R * R, -np.inf)            # class score of bins a..b, a <= b
    S = [None, np.append(W[:, N - 1], -np.inf)]            # S[k][a]: best k classes over a..N-1
    for k in range(2, n + 2):
        S.append(np.append((W + S[k - 1][1:][None, :]).max(axis=1), -np.inf))
    target = S[n + 1][0] * (1 - 1e-9)
    start = np.arange(n)[None, :]
    best, cur = start[0], _otsu_scores(start, f, m, R, F, True)[0]
    P, val, a = np.zeros((1, 0), np.intp), np.zeros(1), np.zeros(1, np.intp)
    for j in range(n):                                     # branch and bound, level by level
        if (N - 1 - a).sum() > 12_000_000:                 # flat histograms tie nearly everywhere:
            t, a, val = [], 0, 0.0                         # take the first near-optimal row instead
            for j2 in range(n):
                ok = (b >= a) & (b <= N - 1 - n + j2) & (val + W[a] + S[n - j2][np.minimum(b + 1, N)] >= target)
                t.append(int(np.flatnonzero(ok)[0]))
                a, val = t[-1] + 1, val + W[a, t[-1]]
            return np.array(t)
        parts = []
        for s in range(0, len(a), 2048):
            aa, vv = a[s:s + 2048, None], val[s:s + 2048, None]
            score = vv + W[aa, b[None, :]] + S[n - j][np.minimum(b + 1, N)][None, :]
            r, c = np.nonzero((b >= aa) & (b <= N - 1 - n + j) & (score >= target))
            rows = np.column_stack([P[s + r], c])          # still in lexicographic order
            if j < n - 1:
                parts.append((rows, val[s + r] + W[a[s + r], c]))
                continue
            rows = rows[np.any(rows != start, axis=1)]
            i, cur = _otsu_scan(_otsu_scores(rows, f, m, R, F), -1, cur)
            best = rows[i] if i >= 0 else best
        if j < n - 1:
            P, val = np.concatenate([p for p, _ in parts]), np.concatenate([v for _, v in parts])
            a = P[:, -1] + 1
    return best


def _otsu(f, mins, m, upper):
    T = np.arange(len(f) - 1)[:, None]
    return mins[_otsu_scan(_otsu_scores(T, f, m, *_class_means(f, m), True), 0, -np.inf)[0] + 1]


def _huang(f, mins, m, upper, retry=True):
    first, last = int(np.flatnonzero(f)[0]), int(np.flatnonzero(f)[-1])
    S = np.cumsum(f.astype(np.float64))
    W = np.cumsum(np.concatenate([[0.0], m[1:] * f[1:]]))   # ITK leaves W[0] = 0
    mu = 1.0 / (1.0 + np.arange(1, last - first + 1) / float(max(last - first, 1)))
    with np.errstate(all="ignore"):
        smu = np.concatenate([[0.0], -mu * np.log(mu) - (1.0 - mu) * np.log(1.0 - mu)])
    rnd = lambda x: float(int(np.rint(2.0 * x + 0.5)) >> 1)   # itk::Math::Round
    best, best_e, cols = 0, _BIG, np.arange(first, last + 1)
    for t in range(first, last):
        i1 = _index(mins, upper, rnd(W[t] / S[t]))
        i2 = _index(mins, upper, rnd((W[last] - W[t]) / (S[last] - S[t])))
        if i1 is not None and i2 is None and retry:        # ITK throws: redo on bin numbers
            n = len(f)
            return m[int(_huang(f, np.arange(n) - 0.5, np.arange(n, dtype=float), n - 0.5, False))]
        if i1 is None or i2 is None:
            continue
        diff = np.minimum(np.abs(cols - np.where(cols <= t, i1, i2)), len(smu) - 1)
        e = _seq(smu[diff] * f[first:last + 1])
        if best_e > e:
            best, best_e = t, e
    return m[best]


def _isodata(f, mins, m, upper):
    ff = f.astype(np.float64)
    v = m * ff
    low, totl = np.cumsum(v), np.cumsum(ff)
    above = _tri(len(f), lower=False)
    high, toth = _rows(np.where(above, v[None, :], 0.0)), _rows(np.where(above, ff[None, :], 0.0))
    for p in np.flatnonzero(f):
        if totl[p] > _EPS and toth[p] > _EPS and m[p] >= (low[p] / totl[p] + high[p] / toth[p]) * 0.5:
            return m[p]
    return _seq(ff * m) / f.sum()                          # ITK falls back to the mean


def _kittler(f, mins, m, upper):
    ff = f.astype(np.float64)
    A, B, C, n = np.cumsum(ff), np.cumsum(m * ff), np.cumsum(m * m * ff), len(f) - 1
    t = _index(mins, upper, _seq(m * ff) / A[n])
    t, prev = (len(f) // 2 if t is None else t), -2
    with np.errstate(all="ignore"):
        for _ in range(4 * len(f)):                        # ITK may cycle for ever
            if t == prev or A[t] < _EPS or abs(A[n] - A[t]) < _EPS:
                break
            mu, nu = B[t] / A[t], (B[n] - B[t]) / (A[n] - A[t])
            p, q = A[t] / A[n], (A[n] - A[t]) / A[n]
            s2, t2 = C[t] / A[t] - mu * mu, (C[n] - C[t]) / (A[n] - A[t]) - nu * nu
            if s2 < _EPS or abs(t2) < _EPS or abs(p) < _EPS:
                break                                      # ITK throws here
            w0, w1 = 1.0 / s2 - 1.0 / t2, mu / s2 - nu / t2
            w2 = (mu * mu) / s2 - (nu * nu) / t2 + np.log10((s2 * (q * q)) / (t2 * p * p))
            sq = w1 * w1 - w0 * w2
            if not sq >= _EPS:
                break
            if abs(w0) >= _EPS:
                prev, temp = t, (w1 + np.sqrt(sq)) / w0
                if temp != temp:
                    break
            else:
                temp = -w2 / w1
            nt = _index(mins, upper, temp)
            if nt is None:
                break                                      # ITK throws here
            t = nt
    return m[t]


def _li(f, mins, m, upper):
    v = m * f
    bin_min = min(mins[0], 0.0)                            # ITK's shift for negative values
    new, seen = _seq(v) / int(f.sum()), set()
    for _ in range(10000):
        old = new
        seen.add(old)
        idx = _index(mins, upper, float(int(old + 0.5)))
        if idx is None:
            break                                          # ITK reads past its histogram here
        nb, no = int(f[:idx + 1].sum()), int(f[idx + 1:].sum())
        mb = (_seq(v[:idx + 1]) / nb if nb else 0.0) - bin_min
        mo = (_seq(v[idx + 1:]) / no if no else 0.0) - bin_min
        with np.errstate(all="ignore"):
            temp = np.float64(mb - mo) / (np.log(np.float64(mb)) - np.log(np.float64(mo)))
        if not abs(temp) < 2.0 ** 31:
            break                                          # NaN: ITK's int cast is undefined
        new = float(int(temp - 0.5) if temp < -_EPS else int(temp + 0.5)) + bin_min
        if abs(new - old) <= 0.5:
            return m[idx]
        if new in seen:
            break                                          # ITK would loop for ever
    ff, x = f.astype(np.float64), np.arange(1.0, len(f) + 1)
    t = float((x * ff).sum() / ff.sum())                   # fallback: Li on bin ranks 1..N
    for _ in range(1000):
        back = x <= t
        nb, no = ff[back].sum(), ff[~back].sum()
        if nb == 0 or no == 0:
            break
        mb, mo = (x * ff)[back].sum() / nb, (x * ff)[~back].sum() / no
        t, last = (mb - mo) / (math.log(mb) - math.log(mo)), t
        if abs(t - last) < 0.5:
            break
    return m[int(np.clip(math.floor(t) - 1, 0, len(m) - 1))]


def _entropies(f):
    """Per candidate threshold: Shannon, Renyi(0.5) and Renyi(2) entropy sums as ITK loops them."""
    norm, p1, p2, first, last = _normalized(f)
    its = np.arange(first, last + 1)
    lo, hi, on = _tri(len(f))[its], _tri(len(f), False)[its], (f != 0)[None, :]
    with np.errstate(all="ignore"):
        xb, xo = norm[None, :] / p1[its, None], norm[None, :] / p2[its, None]
        sh = _rows(np.where(lo & on, -(xb * np.log(xb)), 0.0)) + _rows(np.where(hi & on, -(xo * np.log(xo)), 0.0))
        sb, so = _rows(np.where(lo, np.sqrt(xb), 0.0)), _rows(np.where(hi, np.sqrt(xo), 0.0))
        qb, qo = _rows(np.where(lo, xb * xb, 0.0)), _rows(np.where(hi, xo * xo, 0.0))
        r05 = np.where(sb * so > 0, 2.0 * np.log(sb * so), 0.0)
        r2 = np.where(qb * qo > 0, -1.0 * np.log(qb * qo), 0.0)
    return its, p1, p2, sh, r05, r2


def _max_entropy(f, mins, m, upper):
    its, _, _, sh, _, _ = _entropies(f)
    best, top = 0, _TINY
    for it, e in zip(its, sh):
        if top < e - 1e-5:                                 # the tolerance makes order matter
            best, top = it, e
    return m[best]


def _renyi(f, mins, m, upper):
    its, p1, p2, sh, r05, r2 = _entropies(f)
    first_max = lambda e, start: int(its[np.argmax(e)]) if e.max() > start else 0   # `if (e > best)`
    t1, t2, t3 = sorted([first_max(r05, _TINY), first_max(sh, _TINY), first_max(r2, 0.0)])
    c12, c23 = abs(t1 - t2) <= 5, abs(t2 - t3) <= 5
    b1, b2, b3 = ((1., 2., 1.) if c23 else (0., 1., 3.)) if c12 else ((3., 1., 0.) if c23 else (1., 2., 1.))
    omega = p1[t3] - p1[t1]
    real = t1 * (p1[t1] + 0.25 * omega * b1) + t2 * 0.25 * omega * b2 + t3 * (p2[t3] + 0.25 * omega * b3)
    return m[int(real)]


def _shanbhag(f, mins, m, upper):
    norm, p1, p2, first, last = _normalized(f)
    its, ih = np.arange(first, last + 1), np.arange(len(f))[None, :]
    p1prev = np.concatenate([[0.0], p1[:-1]])
    with np.errstate(all="ignore"):
        tb, to = 0.5 / p1[its], 0.5 / p2[its]
        lb = np.where((ih >= 1) & (ih <= its[:, None]), -(norm * np.log(1.0 - tb[:, None] * p1prev)), 0.0)
        lo = np.where(ih > its[:, None], -(norm * np.log(1.0 - to[:, None] * p2)), 0.0)
        tot = np.abs(_rows(lb) * tb - _rows(lo) * to)
    return m[int(its[np.argmin(np.where(np.isnan(tot), np.inf, tot))])]


def _quantile(f, mins, upper, p):
    """itk::Statistics::Histogram::Quantile, walking from the low end (p < 0.5) or the high end."""
    tot, n, cum, low = float(f.sum()), len(f), 0.0, p < 0.5
    i, k, pn = (0 if low else n - 1), 0, (0.0 if low else 1.0)
    while True:
        fn = float(f[i])
        cum += fn
        prev, pn = pn, (cum / tot if low else 1.0 - cum / tot)
        i, k = i + (1 if low else -1), k + 1
        if not (k < n and (pn < p if low else pn > p)):
            break
    b = i - 1 if low else i + 1
    lo, hi = mins[b], (mins[b + 1] if b + 1 < n else upper)
    return lo + ((p - prev) / (fn / tot)) * (hi - lo) if low else hi - ((prev - p) / (fn / tot)) * (hi - lo)


def _triangle(f, mins, m, upper):
    n, top = len(f), int(np.argmax(f))
    mx, f32 = float(f[top]), np.float32
    one, nn = (_index(mins, upper, _quantile(f, mins, upper, q)) for q in (0.01, 0.99))
    one, nn = (n if one is None else one), (n if nn is None else nn)
    if abs(f32(top) - f32(one)) > abs(f32(top) - f32(nn)):   # the longer tail is below the peak
        k, start = np.arange(one, top), one
        line = (mx / (top - one) * (k - one)).astype(f32)
    else:
        k, start = np.arange(top, nn), top
        line = ((-mx / max(nn - top, 1)) * (k - top) + mx).astype(f32)
    t = start + (int(np.argmax(line - f[k].astype(f32))) if len(k) else 0)
    return m[min(t + 1, n - 1)]


def _yen(f, mins, m, upper):
    norm = f / float(f.sum())
    p1, sq = np.cumsum(norm), norm * norm
    p1sq, p2sq = np.cumsum(sq), np.append(np.cumsum(sq[1:][::-1])[::-1], 0.0)
    with np.errstate(all="ignore"):
        a, b = p1sq * p2sq, p1 * (1.0 - p1)
        crit = -1.0 * np.where(a > 0, np.log(a), 0.0) + 2 * np.where(b > 0, np.log(b), 0.0)
    return m[int(np.argmax(crit))]


def _moments(f, mins, m, upper):
    h = f / float(f.sum())
    m1, m2, m3 = (np.float64(_seq(x)) for x in (m * h, m * m * h, m * m * m * h))
    with np.errstate(all="ignore"):
        cd = 1.0 * m2 - m1 * m1
        c0, c1 = (-m2 * m2 + m1 * m3) / cd, (1.0 * -m3 + m2 * m1) / cd
        z0, z1 = 0.5 * (-c1 - np.sqrt(c1 * c1 - 4.0 * c0)), 0.5 * (-c1 + np.sqrt(c1 * c1 - 4.0 * c0))
        p0 = (z1 - m1) / (z1 - z0)
    above = np.flatnonzero(np.cumsum(h) > p0)
    return m[int(above[0]) if above.size else 0]


_CALC = {"otsu": _otsu, "huang": _huang, "isodata": _isodata, "kittler_illingworth": _kittler,
         "max_entropy": _max_entropy, "moments": _moments, "renyi": _renyi, "shanbhag": _shanbhag,
         "triangle": _triangle, "yen": _yen, "li": _li}


def compute_threshold(array, method: str, mask=None, histogram=None) -> float:
    """Threshold of ``method`` (a METHODS key) equal to the SimpleITK filter's GetThreshold().

    Voxels ``<= t`` form ITK's inside (dark) class. Pass ``histogram`` (from :func:`histogram`)
    to share one pass between methods; ``array`` and ``mask`` are then ignored."""
    key = str(method).lower()
    if key not in METHODS:
        raise ParameterError(f"unknown threshold method {method!r}; valid: {', '.join(METHODS)}")
    nbins = DEFAULT_BINS[key]
    h = _build_histogram(array, nbins, mask) if histogram is None else histogram
    value = float(_CALC[key](*h.bins(nbins)))
    return float(int(value)) if h.dtype.kind in "iu" else float(h.dtype.type(value))


def multi_otsu(array, classes: int, mask=None, bins: int = 128) -> list:
    """``classes - 1`` increasing thresholds (2 <= classes <= 5), equal to SimpleITK's
    OtsuMultipleThresholdsImageFilter with ``bins`` bins (bin maxima, valley emphasis off)."""
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or not 2 <= classes <= 5:
        raise ParameterError(f"classes must be an integer from 2 to 5, got {classes!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not classes <= bins <= 1024:
        raise ParameterError(f"bins must be an integer from {classes} to 1024, got {bins!r}")
    f, mins, mids, upper = histogram(array, int(bins), mask, _sample=True).bins(int(bins), sample=True)
    maxs = np.append(mins[1:], upper)
    return [float(maxs[t]) for t in _multi_otsu_idx(f, mids, classes - 1)]
