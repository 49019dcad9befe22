"""`fetch` against a real HTTP server on 127.0.0.1 (never the internet): resume, checksum."""

from __future__ import annotations

import hashlib
import http.server
import threading
from typing import ClassVar

import pytest

from burstlab.errors import InputError, UsageError
from burstlab.traces import ingest
from burstlab.traces.fetch import fetch


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one in-memory file, honouring `Range: bytes=N-` like a blob store does."""

    body: ClassVar[bytes] = b""
    ranges: ClassVar[list[str]] = []

    def do_GET(self):
        if not self.path.endswith(".csv"):
            self.send_error(404)
            return
        data = type(self).body
        wanted = self.headers.get("Range")
        type(self).ranges.append(wanted or "")
        if wanted:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(samples):
    body = (samples / "azure" / "AzureLLMInferenceTrace_code.csv").read_bytes()
    handler = type("Handler", (_RangeHandler,), {"body": body, "ranges": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/AzureLLMInferenceTrace_code.csv", handler
    httpd.shutdown()
    httpd.server_close()


def test_fetch_checks_the_published_sha256_then_ingests(server, data_dir):
    url, handler = server
    done = fetch("azure-llm-2023-code", mirror=url, quiet=True)
    assert done.verified and done.bytes_total == 320_117 == done.bytes_downloaded
    assert done.path == data_dir / "downloads" / "AzureLLMInferenceTrace_code.csv"
    assert ingest("azure-llm-2023-code").rows_kept == 8_819  # reads the download
    again = fetch("azure-llm-2023-code", mirror=url, quiet=True)
    assert again.bytes_downloaded == 0 and len(handler.ranges) == 1


def test_fetch_resumes_a_partial_download(server, data_dir):
    url, handler = server
    part = data_dir / "downloads" / "AzureLLMInferenceTrace_code.csv.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(handler.body[:100_000])
    done = fetch("azure-llm-2023-code", mirror=url, quiet=True)
    assert handler.ranges == ["bytes=100000-"]
    assert (done.resumed_from, done.bytes_downloaded) == (100_000, 220_117)
    assert done.verified and not part.exists()
    assert done.sha256 == hashlib.sha256(handler.body).hexdigest()


def test_fetch_checksum_mismatch_leaves_nothing(server, data_dir):
    url, _ = server
    with pytest.raises(InputError, match="sha256 mismatch") as err:
        fetch("azure-llm-2023-code", mirror=url, sha256="0" * 64, quiet=True)
    assert "expected " + "0" * 64 in str(err.value)
    assert list((data_dir / "downloads").iterdir()) == []


def test_fetch_http_error_and_family(server, data_dir):
    url, _ = server
    with pytest.raises(UsageError, match="is a family"):
        fetch("burstgpt", quiet=True)
    with pytest.raises(InputError, match="HTTP 404"):
        fetch("azure-llm-2023-code", mirror=url.removesuffix(".csv"), quiet=True)
    assert list((data_dir / "downloads").glob("*.csv")) == []
