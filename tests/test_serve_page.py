"""The page of `gencrop serve` in a real headless Chromium: upload, choose 1:1, redraw the subject, download.

Uses Debian's ``chromium`` and ``chromedriver`` (installed by ``.ci/run``); skips when they are absent.
A screenshot is kept in ``$GENCROP_TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("fastapi")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from gencrop.serve import ServeSettings, create_app  # noqa: E402

from serve_support import LiveServer, bundled_cropper, warmed_cropper  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def artifacts_dir() -> Path:
    d = Path(os.environ.get("GENCROP_TEST_ARTIFACTS", REPO / "test-artifacts"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def browser(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,1200",
        "--disable-extensions",
        "--no-first-run",
    ):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition, timeout=60.0, what="the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def downloaded(folder: Path, name_end: str) -> Path:
    def done():
        files = [p for p in folder.iterdir() if p.name.endswith(name_end)]
        return files[0] if files and not any(p.suffix == ".crdownload" for p in folder.iterdir()) else None

    return wait_for(done, 30, f"a download ending in {name_end}")


def box_of(card, attribute: str) -> list[float]:
    return [float(v) for v in card.get_attribute(f"data-{attribute}").split(",")]


def test_page_upload_square_redraw_download(browser, example_photo):
    pytest.importorskip("gencrop.shapes")
    pytest.importorskip("gencrop.subject")
    cropper = warmed_cropper()
    with LiveServer(create_app(cropper, ServeSettings(timeout=180))) as server:
        browser.get(server.url + "/")
        browser.find_element(By.ID, "files").send_keys(str(example_photo))
        card = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "article.card"), what="the photo card")[0]
        requests = lambda: int(card.get_attribute("data-requests") or 0)  # noqa: E731
        wait_for(
            lambda: requests() >= 1 or "error" in card.find_element(By.CLASS_NAME, "status").get_attribute("class"),
            120,
            "the first crop",
        )
        assert requests() == 1, card.find_element(By.CLASS_NAME, "status").text
        width, height = Image.open(example_photo).size
        found = box_of(card, "subject")
        free_crop = box_of(card, "crop")
        assert free_crop == pytest.approx(list(cropper.crop(example_photo).box.xywh), abs=1)

        # choose 1:1 instead of the free shape
        browser.find_element(By.CSS_SELECTOR, "input[name=shape][value='1:1']").click()
        browser.find_element(By.CSS_SELECTOR, "input[name=shape][value='free']").click()
        # two re-crops were asked for (1:1 and free, then 1:1 alone); the page shows only the newest
        # answer, so the first is counted only when it came back before the second click
        wait_for(
            lambda: (
                requests() >= 2
                and card.get_attribute("data-shape") == "1x1"
                and "busy" not in card.get_attribute("class").split()
            ),
            60,
            "the 1:1 crop",
        )
        x, y, w, h = box_of(card, "crop")
        assert w == pytest.approx(h, abs=1) and 0 <= x and 0 <= y and x + w <= width and y + h <= height
        # ticking a shape does not turn the found subject into a given one: the same subject, found again,
        # and the square crop `gencrop crop --aspect 1:1` gives for this photo
        assert box_of(card, "subject") == pytest.approx(found, abs=0.01)
        assert "subject found" in card.find_element(By.CLASS_NAME, "status").text
        assert [x, y, w, h] == pytest.approx(list(cropper.crop(example_photo, aspect="1:1").box.xywh), abs=1)
        before = requests()

        # redraw the subject: drag a box over the top right of the photo
        canvas = card.find_element(By.CSS_SELECTOR, "canvas.view")
        rect = canvas.rect
        k = rect["width"] / width
        drawn = (300, 40, 180, 200)  # photo pixels

        def offset(px, py):  # selenium offsets are from the element's centre, in CSS pixels
            return round(px * k - rect["width"] / 2), round(py * k - rect["height"] / 2)

        (
            ActionChains(browser)
            .move_to_element_with_offset(canvas, *offset(drawn[0], drawn[1]))
            .click_and_hold()
            .move_to_element_with_offset(canvas, *offset(drawn[0] + drawn[2] / 2, drawn[1] + drawn[3] / 2))
            .move_to_element_with_offset(canvas, *offset(drawn[0] + drawn[2], drawn[1] + drawn[3]))
            .release()
            .perform()
        )
        wait_for(lambda: requests() > before, 60, "the crop of the redrawn subject")
        subject = box_of(card, "subject")
        assert subject == pytest.approx(list(drawn), abs=3 / k + 1)
        assert card.find_element(By.CLASS_NAME, "status").text.find("your subject") >= 0
        x, y, w, h = box_of(card, "crop")
        assert w == pytest.approx(h, abs=1)
        sx, sy, sw, sh = subject
        assert x <= sx + 1 and y <= sy + 1 and x + w >= sx + sw - 1 and y + h >= sy + sh - 1  # subject kept

        browser.save_screenshot(str(artifacts_dir() / "serve_page.png"))

        # download the crop the page shows, then everything as a zip
        card.find_element(By.CSS_SELECTOR, ".crop.active button.download").click()
        crop_file = downloaded(browser.downloads, "_1x1.jpg")
        out = Image.open(crop_file)
        output = tuple(int(v) for v in card.get_attribute("data-output").split("x"))
        assert out.format == "JPEG" and out.size == output and output == (round(w), round(h))
        browser.find_element(By.ID, "download-all").click()
        archive = zipfile.ZipFile(downloaded(browser.downloads, ".zip"))
        assert archive.testzip() is None and archive.namelist() == ["astronaut_1x1.jpg"]
        assert Image.open(io.BytesIO(archive.read("astronaut_1x1.jpg"))).size == out.size

        # a phone-width screen: nothing wider than the screen
        browser.set_window_size(390, 844)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        browser.save_screenshot(str(artifacts_dir() / "serve_page_phone.png"))


def test_api_docs_render(browser):
    """/docs shows the API (the bundled Swagger UI reads the OpenAPI version served), with no network."""
    with LiveServer(create_app(bundled_cropper(), ServeSettings())) as server:
        browser.get(server.url + "/docs")
        operations = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"), 60, "/docs")
        paths = {op.text.strip() for op in operations}
        assert {"/v1/crop", "/v1/health", "/v1/ready", "/v1/model"} <= paths, paths
        page = browser.find_element(By.TAG_NAME, "body").text
        assert "Unable to render" not in page and "version field" not in page
        # the upload is a file field: Swagger UI offers a file chooser for it after "Try it out"
        browser.find_element(By.CSS_SELECTOR, "#operations-default-crop_v1_crop_post .opblock-summary").click()
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".try-out__btn"), 30, "Try it out")[0].click()
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "input[type=file]"), 30, "the photo's file chooser")
        browser.save_screenshot(str(artifacts_dir() / "serve_docs.png"))
