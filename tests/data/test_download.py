"""``python -m explorer download`` against a real local HTTP server (127.0.0.1, port 0): never the real network."""

import errno
import hashlib
import http.server
import socket
import threading

import pytest

from explorer.cli.main import main
from explorer.data import download as dl

UUID = "52c2fd53-d233-4444-8bfd-7c454240d314"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.cut`` {name: n} sends only n bytes once; ``server.wrong`` corrupts a file;
    ``server.no_range`` ignores Range; every request is logged in ``server.log`` as (method, path, Range)."""

    def log_message(self, *args):  # quiet
        pass

    def _serve(self, body: bool):
        srv = self.server
        name = self.path.split("?")[0].rsplit("/", 1)[-1]
        srv.log.append((self.command, self.path, self.headers.get("Range")))
        if name not in srv.files:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = srv.files[name]
        if name in srv.wrong:
            data = bytes(b ^ 0xFF for b in data)
        start = 0
        rng = self.headers.get("Range")
        if rng and not srv.no_range:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if not body:
            return
        payload = data[start:]
        if name in srv.cut:
            payload = payload[:srv.cut.pop(name)]
        if srv.stall:  # send a first chunk, then nothing until the client gives up
            self.wfile.write(payload[:1000])
            self.wfile.flush()
            srv.release.wait(10)
            return
        self.wfile.write(payload)

    def do_GET(self):  # noqa: N802
        self._serve(True)

    def do_HEAD(self):  # noqa: N802
        self._serve(False)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files = {"file_brain_1.h5": bytes(range(256)) * 1000, UUID: b"ismrmrd" * 5000}  # mridata serves <base><uuid>
    srv.cut, srv.wrong, srv.no_range, srv.log = {}, set(), False, []
    srv.stall, srv.release = False, threading.Event()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def signed(server, name="file_brain_1.h5"):
    return f"{server.base}/fastmri/{name}?AWSAccessKeyId=X&Signature=abc%2F&Expires=1"


def test_full_download_with_size_and_checksum(capsys, tmp_path, server):
    data = server.files["file_brain_1.h5"]
    sums = tmp_path / "sums.txt"
    sums.write_text(f"{hashlib.sha256(data).hexdigest()}  file_brain_1.h5\n")
    out = tmp_path / "a" / "b"
    code, stdout, err = run(capsys, "download", "--out", str(out), "--url", signed(server), "--checksums", str(sums))
    assert code == 0, err
    assert (out / "file_brain_1.h5").read_bytes() == data and not (out / "file_brain_1.h5.part").exists()
    assert "downloaded" in stdout
    assert "file_brain_1.h5" in err  # the progress bar (tqdm) on stderr


def test_interrupted_transfer_resumes_with_range(capsys, tmp_path, server):
    data = server.files["file_brain_1.h5"]
    server.cut["file_brain_1.h5"] = 100_000
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--url", signed(server), "--quiet")
    assert code == 2 and "resume" in one_error_line(err)
    assert not (tmp_path / "file_brain_1.h5").exists()
    assert (tmp_path / "file_brain_1.h5.part").stat().st_size == 100_000
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--url", signed(server), "--quiet")
    assert code == 0, err
    assert (tmp_path / "file_brain_1.h5").read_bytes() == data
    assert server.log[-1][2] == "bytes=100000-"
    assert not (tmp_path / "file_brain_1.h5.part").exists()


def test_a_stalled_transfer_is_one_line_within_the_timeout(capsys, tmp_path, server):
    import time

    server.stall = True
    start = time.perf_counter()
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--url", signed(server), "--quiet", "--timeout", "1")
    line = one_error_line(err)
    assert code == 2 and "stopped sending for 1 s at 1000 bytes" in line and "resume" in line, line
    assert time.perf_counter() - start < 8
    assert not (tmp_path / "file_brain_1.h5").exists() and (tmp_path / "file_brain_1.h5.part").stat().st_size == 1000


def test_server_ignoring_range_restarts(capsys, tmp_path, server):
    (tmp_path / "file_brain_1.h5.part").write_bytes(b"garbage" * 10)
    server.no_range = True
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--url", signed(server), "--quiet")
    assert code == 0, err
    assert (tmp_path / "file_brain_1.h5").read_bytes() == server.files["file_brain_1.h5"]


def test_wrong_checksum_removes_part(capsys, tmp_path, server):
    server.wrong.add("file_brain_1.h5")
    sums = tmp_path / "sums.txt"
    sums.write_text(f"{hashlib.md5(server.files['file_brain_1.h5']).hexdigest()}  file_brain_1.h5\n")
    out = tmp_path / "out"
    code, _, err = run(capsys, "download", "--out", str(out), "--url", signed(server), "--checksums", str(sums),
                       "--quiet")
    assert code == 2 and "checksum mismatch" in one_error_line(err)
    assert not (out / "file_brain_1.h5").exists() and not (out / "file_brain_1.h5.part").exists()


def test_http_404_names_the_file(capsys, tmp_path, server):
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--url", signed(server, "missing.h5"), "--quiet")
    line = one_error_line(err)
    assert code == 2 and "missing.h5" in line and "404" in line
    assert not (tmp_path / "missing.h5").exists()


def test_connection_refused_is_one_line(capsys, tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--url", f"http://127.0.0.1:{port}/x.h5",
                       "--timeout", "5", "--quiet")
    line = one_error_line(err)
    assert code == 2 and "x.h5" in line and "cannot reach" in line


def test_disk_full_names_the_path(capsys, tmp_path, server, monkeypatch):
    def full(fh, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dl, "_write_chunk", full)
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--url", signed(server), "--quiet")
    line = one_error_line(err)
    assert code == 2 and "no space left" in line and str(tmp_path / "file_brain_1.h5.part") in line
    assert not (tmp_path / "file_brain_1.h5").exists()


def test_dry_run_writes_nothing(capsys, tmp_path, server):
    out = tmp_path / "never"
    code, stdout, err = run(capsys, "download", "--out", str(out), "--url", signed(server), "--mridata", UUID,
                            "--mridata-base", server.base + "/download/", "--dry-run")
    assert code == 0, err
    assert not out.exists()
    assert f"{len(server.files['file_brain_1.h5'])} bytes" in stdout and str(out / f"{UUID}.h5") in stdout
    assert all(method == "HEAD" for method, _, _ in server.log)


def test_complete_file_is_skipped(capsys, tmp_path, server):
    (tmp_path / "file_brain_1.h5").write_bytes(b"already here")
    code, stdout, err = run(capsys, "download", "--out", str(tmp_path), "--url", signed(server), "--quiet")
    assert code == 0, err
    assert "skipped" in stdout and server.log == []
    assert (tmp_path / "file_brain_1.h5").read_bytes() == b"already here"


def test_mridata_uuid_uses_the_url_pattern(capsys, tmp_path, server, monkeypatch):
    monkeypatch.setenv(dl.MRIDATA_BASE_ENV, server.base + "/download")
    code, _, err = run(capsys, "download", "--out", str(tmp_path), "--mridata", UUID.upper(), "--quiet")
    assert code == 0, err
    assert (tmp_path / f"{UUID}.h5").read_bytes() == server.files[UUID]
    assert server.log == [("GET", f"/download/{UUID}", None)]


def test_mridata_all_is_the_20_stanford_knees():
    items = dl.mridata_items(["all"], "http://mirror/dl")
    assert len(items) == 20 == len(set(dl.STANFORD_3D_FSE_KNEES))
    assert items[0] == dl.Item(f"http://mirror/dl/{UUID}", f"{UUID}.h5")
    assert dl.mridata_base() == dl.MRIDATA_BASE == "http://mridata.org/download/"


def test_bad_inputs_are_one_line(capsys, tmp_path):
    for argv in (["--mridata", "not-a-uuid"], ["--url", "ftp://x/y.h5"], []):
        code, _, err = run(capsys, "download", "--out", str(tmp_path), *argv)
        assert code == 2 and one_error_line(err)
