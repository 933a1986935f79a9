"""Streamed, verified, resumable downloads with the standard library (``urllib``).

A download goes to a ``.part`` file; its size is checked against what the catalogue declares
while it streams (it stops at the first byte too many) and its SHA-256 (or the publisher's
checksum, where MedSeg has no SHA-256 yet) once it is complete.  Nothing is unpacked before that.
An interrupted download keeps its ``.part`` file and the next attempt asks the server for the rest
(HTTP ``Range`` with ``If-Range``, RFC 9110 section 14); a server that ignores the range sends the
whole file again and the download restarts.  Proxies come from the standard environment variables
(``https_proxy``, ``http_proxy``, ``no_proxy``) through ``urllib``'s default ``ProxyHandler``.
Every failure is one :class:`DownloadError` line.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..errors import CancelledError, InputError

CHUNK = 1 << 20
TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 16 << 30          # cap for a download whose size the catalogue does not know
USER_AGENT = "MedSeg-model-installer/1 (+urllib)"


class DownloadError(InputError):
    """A download that failed or was refused; the message is one line for the user."""


@dataclass
class Expected:
    """What a download must be: its size and SHA-256 when known, the publisher's checksums."""

    size: int | None = None
    sha256: str | None = None
    published: dict = field(default_factory=dict)
    max_bytes: int = DEFAULT_MAX_BYTES


@dataclass
class Result:
    """A complete, verified download."""

    path: Path
    size: int
    sha256: str
    checked: str          # what it was checked against, in words
    resumed_from: int = 0


def mib(n: int | None) -> str:
    return "?" if n is None else f"{n / (1 << 20):.1f} MB"


def _proxy_note(url: str) -> str:
    scheme = urlparse(url).scheme
    proxy = urllib.request.getproxies().get(scheme)
    host = urlparse(url).hostname or ""
    if proxy and not urllib.request.proxy_bypass(host):
        return f" (through the proxy {proxy} from ${scheme}_proxy)"
    return ""


def network_message(exc: BaseException, url: str, timeout: float = TIMEOUT) -> str:
    """One line saying why ``url`` could not be fetched."""
    u = urlparse(url)
    host = u.hostname or url
    where = f"{host}:{u.port}" if u.port else host
    via = _proxy_note(url)
    if isinstance(exc, urllib.error.HTTPError):
        return f"{url}: the server answered HTTP {exc.code} {exc.reason}{via}"
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, socket.gaierror):
        return (f"no network: cannot resolve {host}{via} - check the connection, or set https_proxy/http_proxy "
                f"if this network needs a proxy; or download the file elsewhere and use 'medseg models import'")
    if isinstance(reason, ConnectionRefusedError):
        return f"cannot connect to {where}{via}: connection refused (is the server down?)"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{where} did not answer within {timeout:.0f} s{via}"
    if isinstance(reason, ssl.SSLError):
        return f"secure connection to {where} failed{via}: {getattr(reason, 'reason', None) or reason}"
    if isinstance(reason, OSError):
        return f"cannot reach {where}{via}: {reason.strerror or reason}"
    return f"cannot fetch {url}{via}: {reason}"


def _open(url: str, headers: dict, timeout: float):
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:                                  # a new opener reads the proxy variables now (urlopen caches its own)
        return urllib.request.build_opener().open(req, timeout=timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        if isinstance(e, urllib.error.HTTPError) and e.code == 416:
            return e                      # range not satisfiable: handled by the caller
        raise DownloadError(network_message(e, url, timeout)) from None


def read_url(url: str, max_bytes: int, what: str = "file", timeout: float = TIMEOUT) -> bytes:
    """The body of a small resource (a catalogue), refused past ``max_bytes``."""
    resp = _open(url, {}, timeout)
    try:
        data = resp.read(max_bytes + 1)
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(f"{what} at {url}: {network_message(e, url, timeout)}") from None
    finally:
        resp.close()
    if len(data) > max_bytes:
        raise DownloadError(f"{what} at {url} is larger than {max_bytes >> 20} MiB; refused")
    return data


def _hashers(expected: Expected) -> dict:
    algos = {"sha256"} | {a for a in expected.published if a in ("sha1", "md5", "sha256")}
    return {a: hashlib.new(a) for a in sorted(algos)}


def _state_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def discard(part: Path) -> None:
    """Delete a partial download and its resume state."""
    for p in (part, _state_path(part)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _resume_offset(url: str, part: Path, expected: Expected) -> tuple:
    """(bytes already there, validator for If-Range) of a previous attempt at the same URL."""
    try:
        state = json.loads(_state_path(part).read_text(encoding="utf-8"))
        size = part.stat().st_size
    except (OSError, ValueError):
        discard(part)
        return 0, None
    if state.get("url") != url or (expected.size is not None and size > expected.size):
        discard(part)
        return 0, None
    return size, state.get("etag") or state.get("last_modified")


def _content_range(value: str | None) -> tuple:
    found = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", value or "")
    if not found:
        return None, None
    return int(found.group(1)), None if found.group(3) == "*" else int(found.group(3))


def _verify(path: Path, size: int, hashers: dict, expected: Expected, url: str) -> Result:
    digests = {a: h.hexdigest() for a, h in hashers.items()}
    if expected.sha256:
        want = {"sha256": expected.sha256.lower()}
    else:
        want = {a: v.lower() for a, v in expected.published.items()}
    for a, value in want.items():
        if digests.get(a) != value:
            discard(path)
            raise DownloadError(f"{url}: the downloaded file's {a.upper()} is {digests.get(a)}, the catalogue "
                                f"requires {value}: the file is damaged or was tampered with; refused, nothing "
                                f"installed")
    checked = ("size and SHA-256 from the catalogue" if expected.sha256 and expected.size is not None else
               "SHA-256 from the catalogue" if expected.sha256 else
               f"the publisher's {'/'.join(a.upper() for a in want)} (MedSeg has no SHA-256 for it yet)")
    return Result(path, size, digests["sha256"], checked)


def download(url: str, part: Path, expected: Expected, progress=None, cancel=None,
             timeout: float = TIMEOUT) -> Result:
    """Fetch ``url`` into ``part`` (resuming an earlier attempt) and verify it against ``expected``.

    ``progress(done, total)`` is called as bytes arrive (total None when unknown); ``cancel()``
    returning True stops the download with CancelledError, keeping ``part`` for a later resume.
    """
    part = Path(part)
    part.parent.mkdir(parents=True, exist_ok=True)
    offset, validator = _resume_offset(url, part, expected)
    hashers = _hashers(expected)
    limit = expected.size if expected.size is not None else expected.max_bytes
    if offset and expected.size is not None and offset == expected.size:
        _feed(part, hashers)
        return _verify(part, offset, hashers, expected, url)
    headers = {"Range": f"bytes={offset}-", **({"If-Range": validator} if validator else {})} if offset else {}
    resp = _open(url, headers, timeout)
    try:
        status = getattr(resp, "status", None) or getattr(resp, "code", None) or 200
        if status == 416:                 # we asked past the end: start again
            discard(part)
            return download(url, part, expected, progress, cancel, timeout)
        total = None
        if status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                resp.close()
                discard(part)
                return download(url, part, expected, progress, cancel, timeout)
        else:
            offset = 0
            length = resp.headers.get("Content-Length") if resp.headers else None
            total = int(length) if length and length.isdigit() else None
        if expected.size is not None and total is not None and total != expected.size:
            discard(part)
            raise DownloadError(f"{url}: the server offers {total} bytes but the catalogue declares "
                                f"{expected.size}: not the file the catalogue describes; refused, nothing installed")
        total = total if total is not None else expected.size
        _state_path(part).write_text(json.dumps({"url": url, "etag": resp.headers.get("ETag"),
                                                 "last_modified": resp.headers.get("Last-Modified")}),
                                     encoding="utf-8")
        if offset:
            _feed(part, hashers)
        done = _stream(resp, part, offset, limit, hashers, url, total, progress, cancel, timeout)
    finally:
        resp.close()
    if total is not None and done < total:
        raise DownloadError(f"{url}: the connection closed after {mib(done)} of {mib(total)}; run the same "
                            f"command again to resume")
    result = _verify(part, done, hashers, expected, url)
    result.resumed_from = offset
    return result


def _feed(part: Path, hashers: dict) -> None:
    with open(part, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            for h in hashers.values():
                h.update(block)


def _stream(resp, part, offset, limit, hashers, url, total, progress, cancel, timeout) -> int:
    done = offset
    read = getattr(resp, "read1", resp.read)
    with open(part, "ab" if offset else "wb") as out:
        while True:
            if cancel is not None and cancel():
                raise CancelledError(f"download cancelled after {mib(done)}; installing again resumes it")
            try:
                # what has arrived, up to CHUNK: progress and Cancel as bytes arrive, not per full MiB
                block = read(CHUNK)
            except (OSError, http.client.HTTPException) as e:
                out.close()
                why = "timed out" if isinstance(e, (TimeoutError, socket.timeout)) else type(e).__name__
                raise DownloadError(f"{url}: the download broke off after {mib(done)} of {mib(total)} ({why}); "
                                    f"run the same command again to resume") from None
            if not block:
                return done
            done += len(block)
            if done > limit:
                out.close()
                discard(part)
                declared = "the catalogue declares" if total is not None else "are allowed"
                raise DownloadError(f"{url}: the server sends more than the {limit} bytes {declared}; "
                                    f"refused, nothing installed")
            out.write(block)
            for h in hashers.values():
                h.update(block)
            if progress is not None:
                progress(done, total)
