"""The page in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by
Selenium opens ``/``, uploads an image, waits for the verdict, and checks the score shown equals
the API's, and that every resource the page loaded came from the server itself (no CDN, no web
font). The screenshot goes to ``$PIADE_SCREENSHOTS`` (a folder) when set.

Skipped when Chromium or its driver is missing, unless ``PIADE_REQUIRE_BROWSER=1`` (CI sets it
after installing them), where a missing browser fails the test instead.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.serve.conftest import TOKEN, encode, picture, start_server

pytestmark = [pytest.mark.loopback, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("PIADE_REQUIRE_BROWSER") == "1":
        raise RuntimeError("PIADE_REQUIRE_BROWSER=1 but chromium or chromedriver is missing")
    pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)",
                allow_module_level=True)  # fmt: skip
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # with the driver's path: Selenium Manager never runs
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900",
                 "--disable-features=Translate,OptimizationHints", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def upload_and_wait(driver: object, url: str, image: Path) -> object:
    driver.get(url)  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.find_element(By.ID, "threshold").text.strip())
    picker = driver.find_element(By.ID, "files")  # type: ignore[attr-defined]
    driver.execute_script("arguments[0].hidden = false", picker)  # type: ignore[attr-defined]
    picker.send_keys(str(image))
    return wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".card.done, .card.failed"))


def resources_loaded(driver: object) -> list[str]:
    return driver.execute_script(  # type: ignore[attr-defined,no-any-return]
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )


def test_the_page_scores_an_image_like_the_api(
    browser: object, served_model: Path, tmp_path: Path
) -> None:
    image = tmp_path / "part 1.png"
    image.write_bytes(encode(picture(7, height=90, width=120)))
    with start_server(served_model, tmp_path) as url:
        card = upload_and_wait(browser, f"{url}/", image)
        assert "done" in card.get_attribute("class"), card.text  # type: ignore[attr-defined]
        api = httpx.post(f"{url}/v1/predict", files={"file": (image.name, image.read_bytes())})
        expected = api.json()
        shown = card.find_element(By.CSS_SELECTOR, ".score").text  # type: ignore[attr-defined]
        assert float(shown) == pytest.approx(expected["score"], rel=1e-5)
        assert float(card.get_attribute("data-score")) == pytest.approx(expected["score"], rel=1e-9)  # type: ignore[attr-defined]
        verdict = card.find_element(By.CSS_SELECTOR, ".verdict").text  # type: ignore[attr-defined]
        assert verdict == ("Anomalous" if expected["anomalous"] else "Normal")
        overlay = card.find_element(By.CSS_SELECTOR, "img.overlay")  # type: ignore[attr-defined]
        assert browser.execute_script("return arguments[0].naturalWidth", overlay) == 120  # type: ignore[attr-defined]
        threshold = browser.find_element(By.ID, "threshold").text  # type: ignore[attr-defined]
        assert "anomalous when its score is above" in threshold
        assert all(name.startswith((url, "data:", "blob:")) for name in resources_loaded(browser))
        _screenshot(browser, tmp_path, "serve-page.png")


def test_the_docs_render_offline(browser: object, served_model: Path, tmp_path: Path) -> None:
    with start_server(served_model, tmp_path) as url:
        browser.get(f"{url}/docs")  # type: ignore[attr-defined]
        title = WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title")
        )
        assert title.text.startswith("piade")
        assert "/v1/predict/batch" in browser.page_source  # type: ignore[attr-defined]
        _screenshot(browser, tmp_path, "serve-docs.png")


def test_with_a_token_the_page_works_once_it_is_given(
    browser: object, served_model: Path, tmp_path: Path
) -> None:
    """A browser sends the token the user typed in its Basic prompt; here it is in the address."""
    (tmp_path / "token").write_text(TOKEN)
    image = tmp_path / "part.png"
    image.write_bytes(encode(picture(8)))
    with start_server(served_model, tmp_path, "--token-file", str(tmp_path / "token")) as url:
        assert httpx.get(f"{url}/").status_code == 401
        card = upload_and_wait(
            browser, url.replace("http://", f"http://piade:{TOKEN}@") + "/", image
        )
        assert "done" in card.get_attribute("class"), card.text  # type: ignore[attr-defined]
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        score = httpx.post(f"{url}/v1/predict", content=image.read_bytes(), headers=bearer)
        assert float(card.get_attribute("data-score")) == pytest.approx(score.json()["score"])  # type: ignore[attr-defined]


def _screenshot(driver: object, tmp_path: Path, name: str) -> None:
    png = base64.b64decode(driver.get_screenshot_as_base64())  # type: ignore[attr-defined]
    (tmp_path / name).write_bytes(png)
    folder = os.environ.get("PIADE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(png)
