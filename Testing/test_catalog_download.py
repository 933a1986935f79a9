"""Model downloads and unpacking, against a loopback HTTP server the tests start: tampered files, size
mismatches, unsafe zips, zip bombs, interrupted and cancelled downloads, no network, proxies, and the
background install the Slicer panel uses.  Each refusal must leave nothing installed."""
import hashlib
import os
import socket
import time

import pytest

from catalog_helpers import (assert_nothing_installed, card_model_zip, entry, error_line, home,  # noqa: F401
                             use_catalog, zip_bytes)
from loopback_http import LoopbackServer, closed_port
from MedSegCore import catalog
from MedSegCore.catalog import archive, download
from MedSegCore.cli import main
from MedSegCore.errors import CancelledError, InputError


def test_tampered_download_refused_and_nothing_installed(tmp_path, monkeypatch, capsys, home):
    data = card_model_zip(tmp_path)
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0x01
    with LoopbackServer({"/thresh.zip": bytes(tampered)}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("thresh", srv.url("/thresh.zip"), data))
        assert main(["models", "install", "thresh"]) == 2
    line = error_line(capsys)
    assert "SHA256" in line and "tampered" in line and hashlib.sha256(data).hexdigest() in line
    assert_nothing_installed(home)
    assert list((home / "downloads").iterdir()) == [], "a file that failed verification is deleted"


def test_published_sha1_checked_when_catalogue_has_no_sha256(tmp_path, monkeypatch, capsys, home):
    data = card_model_zip(tmp_path)
    bad = bytearray(data)
    bad[len(data) // 3] ^= 0x01
    with LoopbackServer({"/t.zip": data, "/bad.zip": bytes(bad)}) as srv:
        sha1 = hashlib.sha1(data).hexdigest()
        use_catalog(tmp_path, monkeypatch,
                    entry("bad", srv.url("/bad.zip"), data, sha256=None, size_bytes=None,
                          published_checksums={"sha1": sha1}),
                    entry("good", srv.url("/t.zip"), data, sha256=None, size_bytes=None,
                          published_checksums={"sha1": sha1}))
        assert main(["models", "install", "bad"]) == 2
        assert "SHA1" in error_line(capsys)
        assert_nothing_installed(home)
        outcome = catalog.install("good")
    assert "publisher's SHA1" in outcome.message
    assert outcome.model.record["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("declared, lie", [(+1, None), (-1, None), (0, "short")])
def test_size_mismatch_refused(tmp_path, monkeypatch, capsys, home, declared, lie):
    data = card_model_zip(tmp_path)
    with LoopbackServer({"/t.zip": data}) as srv:
        if lie:                         # no Content-Length, and more bytes than declared
            srv.files["/t.zip"] = data + b"extra"
            srv.declared_length["/t.zip"] = None
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/t.zip"), data, size_bytes=len(data) + declared))
        assert main(["models", "install", "t"]) == 2
    line = error_line(capsys)
    assert ("bytes but the catalogue declares" in line) if declared else ("sends more than the" in line)
    assert_nothing_installed(home)


@pytest.mark.parametrize("files, links, message", [
    ({"m/card.json": b"{}", "m/model.pt": b"w", "../evil.txt": b"x"}, (), "points outside the archive"),
    ({"m/card.json": b"{}", "m/../../evil.txt": b"x"}, (), "points outside the archive"),
    ({"/etc/evil.txt": b"x"}, (), "absolute path"),
    ({"m\\..\\evil.txt": b"x"}, (), "backslash"),
    ({"m/card.json": b"{}"}, [("m/model.pt", "/etc/passwd")], "symbolic link"),
])
def test_unsafe_zip_entries_refused(tmp_path, monkeypatch, capsys, home, files, links, message):
    data = zip_bytes(files, links)
    with LoopbackServer({"/evil.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("evil", srv.url("/evil.zip"), data))
        assert main(["models", "install", "evil"]) == 2
    assert message in error_line(capsys)
    assert_nothing_installed(home)
    assert not (home / "evil.txt").exists() and not (home.parent / "evil.txt").exists()
    assert list((home / "downloads").iterdir()) == []


def test_zip_bomb_refused_before_writing(tmp_path, home):
    bomb = tmp_path / "bomb.zip"
    bomb.write_bytes(zip_bytes({"m/card.json": b"{}", "m/model.pt": b"\0" * (100 << 20)}))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(archive.ArchiveError, match="more than the"):
        archive.extract_zip(bomb, tmp_path / "out", max_unpacked=10 << 20)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="zip bomb"):
        catalog.import_model(bomb, name="bomb")          # default limit: 10x the archive + 64 MiB
    assert_nothing_installed(home)


def test_interrupted_download_resumes_with_a_range_request(tmp_path, monkeypatch, capsys, home):
    data = card_model_zip(tmp_path)
    with LoopbackServer({"/t.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/t.zip"), data))
        half = len(data) // 2
        srv.cut["/t.zip"] = half
        assert main(["models", "install", "t"]) == 2
        assert "run the same command again to resume" in error_line(capsys)
        assert_nothing_installed(home)
        assert main(["models", "install", "t"]) == 0
    assert [(r[1], r[2]) for r in srv.requests] == [(None, half), (f"bytes={half}-", len(data) - half)]
    model = catalog.find_installed("t")
    assert model.record["sha256"] == hashlib.sha256(data).hexdigest()


def test_resume_through_a_redirect(tmp_path, monkeypatch, home):
    data = card_model_zip(tmp_path)
    with LoopbackServer({"/storage/t.zip": data}) as srv:
        srv.redirect["/api/t.zip"] = "/storage/t.zip"
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/api/t.zip"), data))
        srv.cut["/storage/t.zip"] = 500
        with pytest.raises(download.DownloadError, match="resume"):
            catalog.install("t")
        catalog.install("t")
    assert [r[:3] for r in srv.requests] == [("/api/t.zip", None, 0), ("/storage/t.zip", None, 500),
                                             ("/api/t.zip", "bytes=500-", 0),
                                             ("/storage/t.zip", "bytes=500-", len(data) - 500)]


def test_resume_restarts_when_the_server_ignores_ranges(tmp_path, monkeypatch, home):
    data = card_model_zip(tmp_path)
    with LoopbackServer({"/t.zip": data}, ranges=False) as srv:
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/t.zip"), data))
        srv.cut["/t.zip"] = 100
        with pytest.raises(download.DownloadError):
            catalog.install("t")
        catalog.install("t")
    assert srv.requests[-1][2] == len(data)
    assert catalog.find_installed("t").record["sha256"] == hashlib.sha256(data).hexdigest()


def test_cancel_leaves_nothing_and_keeps_the_part_for_resume(tmp_path, monkeypatch, home):
    data = os.urandom(3 << 20)
    data = zip_bytes({"m/card.json": b"{}", "m/model.pt": data})
    with LoopbackServer({"/t.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/t.zip"), data))
        with pytest.raises(CancelledError):
            catalog.install("t", cancel=lambda: (home / "downloads").is_dir() and any(
                p.stat().st_size > 0 for p in (home / "downloads").glob("*.part")))
    assert_nothing_installed(home)
    assert [p.stat().st_size > 0 for p in (home / "downloads").glob("*.part")] == [True]


def test_server_down_is_one_line(tmp_path, monkeypatch, capsys, home):
    use_catalog(tmp_path, monkeypatch, entry("t", f"http://127.0.0.1:{closed_port()}/t.zip", b"x"))
    assert main(["models", "install", "t"]) == 2
    line = error_line(capsys)
    assert line.startswith("medseg models: error: cannot connect to 127.0.0.1:") and "connection refused" in line
    assert_nothing_installed(home)


def test_no_network_is_one_line(tmp_path, monkeypatch, capsys, home):
    def offline(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", offline)       # as on a machine without network: DNS fails
    use_catalog(tmp_path, monkeypatch, entry("t", "https://models.example.org/t.zip", b"x"))
    assert main(["models", "install", "t"]) == 2
    line = error_line(capsys)
    assert "no network: cannot resolve models.example.org" in line and "medseg models import" in line


def test_proxy_from_environment_is_used(tmp_path, monkeypatch, home):
    data = card_model_zip(tmp_path)
    with LoopbackServer({"/t.zip": data}) as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        use_catalog(tmp_path, monkeypatch, entry("t", "http://models.example.org/t.zip", data))
        catalog.install("t")
    assert proxy.requests[0][3] == "models.example.org", "the request went to the proxy with the full URL"
    assert catalog.find_installed("t") is not None


def test_dead_staging_folder_is_cleaned_and_trash_restored(tmp_path, home):
    models = home / "models"
    (models / ".staging-999999999-abc" / "model").mkdir(parents=True)
    (models / ".trash-999999999-old" / "model").mkdir(parents=True)
    (models / ".trash-999999999-old" / "install.json").write_text('{"name": "old", "version": "1"}')
    assert [m.name for m in catalog.installed()] == ["old"]
    assert sorted(p.name for p in models.iterdir()) == ["old"]


def test_background_install_reports_progress_and_cancel_leaves_nothing(tmp_path, monkeypatch, home):
    from MedSegCore.catalog.worker import InstallProcess

    data = zip_bytes({"m/card.json": b"{}", "m/model.pt": os.urandom(2 << 20)})
    with LoopbackServer({"/t.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/t.zip"), data))
        srv.slow["/t.zip"] = 0.05                     # 2 MiB in about 1.6 s
        run = InstallProcess()
        run.start("t")
        deadline = time.monotonic() + 60
        while run.progress == 0.0 and not run.finished and time.monotonic() < deadline:
            run.poll()
            time.sleep(0.02)
        assert 0 < run.progress < 1 and "Downloading t:" in run.text
        run.cancel()
        assert run.error == "cancelled"
        assert_nothing_installed(home)                # the staging folder of the killed child is tidied
        srv.slow.clear()
        run = InstallProcess()
        run.start("t")
        run.wait(timeout=120)
    assert run.error is None and "installed t 1.0" in run.text
    assert srv.requests[-1][1] is not None and srv.requests[-1][1].startswith("bytes="), "the second run resumed"
    assert catalog.find_installed("t").record["sha256"] == hashlib.sha256(data).hexdigest()


def test_second_install_of_the_same_model_waits_its_turn(tmp_path, monkeypatch, home):
    data = card_model_zip(tmp_path)
    (home / "downloads").mkdir(parents=True)
    lock = home / "downloads" / "t.lock"
    with LoopbackServer({"/t.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/t.zip"), data))
        lock.write_text(str(os.getppid()))                 # a live process holds the install
        with pytest.raises(InputError, match=f"being installed by another MedSeg process \\(pid {os.getppid()}\\)"):
            catalog.install("t")
        assert srv.requests == []
        lock.write_text("999999999")                       # left by a process that is gone: taken over
        catalog.install("t")
    assert catalog.find_installed("t") is not None and not lock.exists()


def test_install_from_a_file_url_mirror(tmp_path, monkeypatch, home):
    data = card_model_zip(tmp_path)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "t.zip").write_bytes(data)
    use_catalog(tmp_path, monkeypatch, entry("t", (tmp_path / "mirror" / "t.zip").as_uri(), data))
    assert "installed t 1.0" in catalog.install("t").message


def test_http_error_and_unknown_names_are_one_line(tmp_path, monkeypatch, capsys, home):
    with LoopbackServer({}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/gone.zip"), b"x"))
        assert main(["models", "install", "t"]) == 2
        assert error_line(capsys).endswith(f"{srv.url('/gone.zip')}: the server answered HTTP 404 Not Found")
        assert main(["models", "install", "nosuch"]) == 2
        assert "'nosuch' is not in the model catalogue" in error_line(capsys)
        (tmp_path / "empty.zip").write_bytes(zip_bytes({}))
        assert main(["models", "import", str(tmp_path / "empty.zip"), "--name", "default"]) == 2
        assert "'default' names the bundled model" in error_line(capsys)
        assert main(["models", "import", str(tmp_path / "empty.zip"), "--name", "empty"]) == 2
        assert "holds no model" in error_line(capsys)
    assert_nothing_installed(home)


def test_full_disk_is_one_line(tmp_path, monkeypatch, capsys, home):
    import builtins

    data = card_model_zip(tmp_path)
    real_open = builtins.open

    def full(path, mode="r", *args, **kwargs):
        if str(path).endswith(".part") and "b" in mode and ("w" in mode or "a" in mode):
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    with LoopbackServer({"/t.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("t", srv.url("/t.zip"), data))
        monkeypatch.setattr(builtins, "open", full)
        rc = main(["models", "install", "t"])
        monkeypatch.setattr(builtins, "open", real_open)
    assert rc == 2
    assert "installing t: No space left on device" in error_line(capsys)
    assert_nothing_installed(home)
