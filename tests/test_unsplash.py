"""`gencrop unsplash prepare` on the shared hash files, `download` against a local HTTP server."""

import http.server
import io
import json
import threading
import urllib.parse

import pytest
from PIL import Image

from gencrop.cli import main
from gencrop.data.unsplash import download, prepare, sha256_id


def _tsv(path, rows, columns=("photo_id", "photo_url", "photo_image_url", "photo_description")):
    lines = ["\t".join(columns)]
    for r in rows:
        lines.append("\t".join(str(r.get(c, "")) for c in columns))
    path.write_text("\n".join(lines) + "\n")


def test_prepare_maps_each_entry_by_its_own_hash(shared_data, tmp_path):
    """Real split files (plus a few entries whose ids we know) and a synthetic photos.tsv."""
    src = shared_data / "unsplash"
    hashes = tmp_path / "hashes"
    known = ["abc-1", "-starts_with_dash", "x_y_z"]
    for cat in ("horse", "car"):
        (hashes / cat).mkdir(parents=True)
        for split in ("train", "val", "test"):
            entries = json.loads((src / cat / f"{split}_sha256.json").read_text())[:50]
            if cat == "horse" and split == "test":
                # interleave known and unknown entries: each must get its own id
                for k, pid in enumerate(known):
                    entries.insert(2 * k + 1, {"hash_id": sha256_id(pid), "subject_xywh": [0.1, 0.1, 0.5, 0.5]})
            (hashes / cat / f"{split}_sha256.json").write_text(json.dumps(entries))
        ids = json.loads((src / cat / "ids_sha256.json").read_text())[:100] + [sha256_id(p) for p in known]
        (hashes / cat / "ids_sha256.json").write_text(json.dumps(ids))
        (hashes / cat / "testeval_sha256.json.gz").write_bytes((src / cat / "testeval_sha256.json.gz").read_bytes())
    (hashes / "combo").mkdir()
    (hashes / "combo" / "val_sha256.json").write_text("[]")
    ds = tmp_path / "unsplash-full"
    ds.mkdir()
    _tsv(
        ds / "photos.tsv000",
        [
            {"photo_id": known[0], "photo_image_url": "http://x/a"},
            {"photo_id": known[1], "photo_description": 'a "quoted" text'},
        ],
    )
    _tsv(ds / "photos.tsv001", [{"photo_id": known[2]}, {"photo_id": "unrelated"}])

    out = tmp_path / "data"
    report = prepare(hashes, ds, out, ("horse", "car", "combo", "dog"))
    test = json.loads((out / "horse" / "test.json").read_text())
    assert [e["id"] for e in test] == known
    for e in test:
        assert sha256_id(e["id"]) == e["hash_id"] and e["subject_xywh"] == [0.1, 0.1, 0.5, 0.5]
    assert report["horse"]["test"] == {"total": 53, "found": 3, "missing": 50}
    assert report["horse"]["train"] == {"total": 50, "found": 0, "missing": 50}
    assert report["car"]["test"]["found"] == 0
    assert json.loads((out / "horse" / "images.json").read_text()) == known
    assert report["horse"]["images"]["missing"] == 100
    assert (out / "horse" / "testeval_sha256.json.gz").is_file()
    assert report["combo"]["test"] == {"absent": True} and "error" in report["dog"]


def test_prepare_command_on_all_shared_categories(shared_data, tmp_path, capsys):
    ds = tmp_path / "u"
    ds.mkdir()
    _tsv(ds / "photos.tsv000", [{"photo_id": "nobody"}])
    code = main(["unsplash", "prepare", str(shared_data / "unsplash"), str(ds), "-o", str(tmp_path / "data")])
    out = capsys.readouterr().out
    assert code == 0
    for cat in ("portrait", "cat", "dog", "bird", "horse", "car", "combo"):
        assert out.count(f"{cat}:") == 1
    assert "portrait: images 0/0, train -, val 0/" in out  # portrait's ids/train files are not shared
    assert main(["unsplash", "prepare", str(shared_data / "unsplash"), str(tmp_path / "none")]) == 2


class _Server:
    """Serves synthetic photos at /p/<name>; counts requests; some fail the first time."""

    def __init__(self, photos, flaky=()):
        self.photos, self.flaky, self.hits = photos, set(flaky), {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                name = url.path.rsplit("/", 1)[-1]
                server.hits[name] = server.hits.get(name, 0) + 1
                if name in server.flaky and server.hits[name] == 1:
                    self.send_error(503)
                    return
                if name not in server.photos:
                    self.send_error(404)
                    return
                body = server.photos[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _encoded(size, mode="RGB", fmt="JPEG"):
    buf = io.BytesIO()
    Image.new(mode, size, (200, 100, 50, 255)[: len(mode)] if mode != "L" else 128).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.timeout(60)
def test_download_resizes_rejects_retries_and_resumes(tmp_path, capsys):
    photos = {
        "land": _encoded((2400, 1600)),
        "port": _encoded((900, 1500)),
        "small": _encoded((640, 480)),
        "alpha": _encoded((300, 300), "RGBA", "PNG"),
        "gray": _encoded((1200, 2000), "L"),
        "junk": b"<html>not a photo</html>",
    }
    with _Server(photos, flaky={"small"}) as srv:
        ds = tmp_path / "dataset"
        ds.mkdir()
        rows = [
            {"photo_id": pid, "photo_image_url": f"{srv.url}/p/{name}"}
            for pid, name in [
                ("L1", "land"),
                ("P2", "port"),
                ("-s3", "small"),
                ("A4", "alpha"),
                ("G5", "gray"),
                ("J6", "junk"),
                ("M7", "missing"),
                ("X8", "land"),
            ]
        ]
        _tsv(ds / "photos.tsv000", rows)
        data = tmp_path / "data"
        (data / "horse").mkdir(parents=True)
        (data / "horse" / "images.json").write_text(json.dumps(["L1", "P2", "-s3", "A4", "G5", "J6", "M7", "NOPE"]))
        img_dir = tmp_path / "images"
        img_dir.mkdir()
        (img_dir / "imgG5.jpg").write_bytes(_encoded((10, 10)))  # already downloaded: kept

        code = main(
            [
                "unsplash",
                "download",
                str(ds),
                str(img_dir),
                "--data",
                str(data),
                "--workers",
                "4",
                "--retries",
                "2",
                "--timeout",
                "5",
                "-q",
            ]
        )
        out = capsys.readouterr()
        assert code == 1  # some failed, and it says so
        assert "3 downloaded, 1 already there, 4 failed" in out.out
        assert "RGBA" in out.err and "HTTP 404" in out.err and "not in the dataset" in out.err
        sizes = {p.name: Image.open(p).size for p in img_dir.iterdir()}
        assert sizes == {
            "imgL1.jpg": (1536, 1024),
            "imgP2.jpg": (900, 1500),
            "img-s3.jpg": (640, 480),
            "imgG5.jpg": (10, 10),
        }
        assert Image.open(img_dir / "imgL1.jpg").mode == "RGB"
        assert srv.hits["small"] == 2  # 503 retried once
        assert "X8" not in str(sizes)  # not in the splits

        before = dict(srv.hits)
        summary = download(ds, img_dir, ids={"L1", "P2", "-s3"}, workers=2, progress=False)
        assert (summary.done, summary.skipped, summary.failed) == (0, 3, {})
        assert srv.hits == before  # resuming fetches nothing
        assert not [p for p in img_dir.iterdir() if p.name.startswith(".")]  # no temporary files left
