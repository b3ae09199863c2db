"""The notebook reports in a real browser: headless Chromium driven by selenium.

Every report of the hostile corpus (tests/hostile_notebooks.py) is opened as an instructor
would open it, from disk. Nothing may run: no alert, the title unchanged, no marker element, no
console message but the policy's own refusals. Nothing may load: Chrome's performance log may
hold no network request for a URL other than file: and data:. Host names resolve to nothing in
this browser, so an attack that gets through fails loudly here and reaches no one.

Needs Debian's chromium and chromium-driver (`apt-get install chromium chromium-driver`); without
them the tests skip, except where the environment variable CI is set, where they fail.
"""
import json
import os
import pathlib
import shutil
import time
from dataclasses import dataclass, field

import nbformat
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, UnexpectedAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

import grade
import hostile_notebooks
from conftest import ROOT
from grader import html_report
from test_report_html import REPORT_TITLE, problems, report, unsafe_cells

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         # Every host name fails to resolve: a request is still logged, and reaches no one.
         "--host-resolver-rules=MAP * ~NOTFOUND"]
# A handler or a meta refresh fires just after the load event that driver.get waits for.
SETTLE_S = 0.1
LOCAL_SCHEMES = ("file:", "data:")
MAX_ALERTS = 20


@dataclass
class Visit:
    """What one page did in the browser."""
    alerts: list = field(default_factory=list)
    title: str = ""
    marker: bool = False
    url: str = ""
    console: list = field(default_factory=list)  # messages other than the policy's refusals
    refusals: list = field(default_factory=list)  # Content-Security-Policy refusals
    requests: list = field(default_factory=list)  # URLs other than file: and data:

    def ran(self, title=REPORT_TITLE):
        """Signs that a script ran, one line each."""
        signs = [f"alert {text!r}" for text in self.alerts]
        if self.title != title:
            signs.append(f"title changed to {self.title!r}")
        if self.marker:
            signs.append("a marker element was added")
        signs += [f"console: {message}" for message in self.console]
        return signs


def in_ci():
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        message = (f"{' and '.join(missing)} not found: the browser test needs Chromium and its "
                   "driver; on Debian or Ubuntu: apt-get install chromium chromium-driver")
        if in_ci():
            pytest.fail(message + " (CI is set, so a missing browser is a failure)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.set_capability("unhandledPromptBehavior", "ignore")  # leave alerts for us to see
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get("about:blank")
        yield driver
    finally:
        driver.quit()


def visit(driver, path):
    """Open `path` from disk and report what the page did."""
    for log in ("browser", "performance"):  # what came before is not this page's
        driver.get_log(log)
    try:
        driver.get(pathlib.Path(path).as_uri())
    except UnexpectedAlertPresentException:
        pass
    time.sleep(SETTLE_S)
    seen = Visit()
    for _ in range(MAX_ALERTS):  # each accepted alert lets the next script go on
        try:
            alert = driver.switch_to.alert
        except NoAlertPresentException:
            break
        seen.alerts.append(alert.text)
        alert.accept()
    seen.title, seen.url = driver.title, driver.current_url
    seen.marker = bool(driver.find_elements(By.ID, hostile_notebooks.MARKER_ID))
    for entry in driver.get_log("browser"):
        message = entry["message"]
        refusal = entry.get("source") == "security" and "Content Security Policy" in message
        (seen.refusals if refusal else seen.console).append(message)
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            params = message["params"]
            url = params["request"]["url"] if "request" in params else params.get("url", "")
            if not url.startswith(LOCAL_SCHEMES):
                seen.requests.append(url)
    return seen


def assert_inert(seen, what, title=REPORT_TITLE):
    assert seen.ran(title) == [], f"{what}: a script ran"
    assert seen.requests == [], f"{what}: the page tried to load {seen.requests}"
    assert seen.url.startswith("file:"), f"{what}: the page navigated to {seen.url}"


@pytest.fixture(scope="module")
def report_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    paths = {}
    for entry in hostile_notebooks.entries() + [
            hostile_notebooks.Entry("benign", "none", hostile_notebooks.benign())]:
        paths[entry.name] = folder / f"{entry.name}.html"
        paths[entry.name].write_text(report(entry.notebook), encoding="utf-8")
    return paths


def test_no_report_of_the_corpus_runs_or_loads_anything(browser, report_files):
    failures = {}
    for name, path in report_files.items():
        seen = visit(browser, path)
        bad = seen.ran() + [f"request {url}" for url in seen.requests]
        if not seen.url.startswith("file:"):
            bad.append(f"navigated to {seen.url}")
        if bad:
            failures[name] = bad
    assert failures == {}


def test_the_benign_report_renders(browser, report_files):
    assert_inert(visit(browser, report_files["benign"]), "benign")
    heading = browser.find_element(By.ID, "Results")
    assert heading.text.startswith("Results") and heading.tag_name == "h1"
    assert browser.find_element(By.CSS_SELECTOR, ".grader-banner").is_displayed()
    image = browser.find_element(By.CSS_SELECTOR, "img")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 40, \
        "the figure decoded"
    keyword = browser.find_element(By.CSS_SELECTOR, ".highlight .kn")
    assert keyword.value_of_css_property("color") != \
        browser.find_element(By.CSS_SELECTOR, ".highlight .n").value_of_css_property("color"), \
        "the policy lets the stylesheet colour the code"


UNSAFE_CASES = [("image_metadata_width_height", "script"), ("javascript_output", "script"),
                ("html_output", "script"), ("event_handlers", "script"),
                ("markdown_remote_image", "load"), ("style_import", "load"),
                ("meta_refresh", "load")]


@pytest.mark.parametrize("name, effect", UNSAFE_CASES, ids=[n for n, _ in UNSAFE_CASES])
def test_the_detectors_catch_nbconvert_without_the_walls(browser, tmp_path, name, effect):
    from nbconvert import HTMLExporter

    entry = {e.name: e for e in hostile_notebooks.entries()}[name]
    page, _ = HTMLExporter().from_notebook_node(entry.notebook)
    (tmp_path / "unsafe.html").write_text(page, encoding="utf-8")
    seen = visit(browser, tmp_path / "unsafe.html")
    if effect == "script":  # every detector fires
        title = hostile_notebooks.TITLE
        assert seen.alerts[:1] == [title] and seen.title == title and seen.marker, seen
        assert any(title in message for message in seen.console), seen
    else:
        assert any(url.startswith(hostile_notebooks.REMOTE) for url in seen.requests), seen


def test_the_policy_alone_stops_scripts_and_refusals_are_still_seen(browser, tmp_path):
    """The second wall: nbconvert's unsanitised cells in a page with the policy. No script
    runs; the blocked loads still show as requests, so the detector cannot be fooled by them."""
    entry = {e.name: e for e in hostile_notebooks.entries()}["html_output"]
    marker = "<p>placeholder</p>"
    page = html_report.page(REPORT_TITLE, marker).replace(marker, unsafe_cells(entry.notebook))
    assert problems(page), "the page really holds the attack"
    (tmp_path / "policy-only.html").write_text(page, encoding="utf-8")
    seen = visit(browser, tmp_path / "policy-only.html")
    assert seen.ran() == [], "the policy let a script run"
    assert seen.refusals, "the policy refused nothing"
    assert any(url.startswith(hostile_notebooks.REMOTE) for url in seen.requests)


@pytest.mark.notebook
def test_graded_hostile_notebook_report_runs_and_loads_nothing(request, tmp_path):
    """End to end: a notebook of hostile cells really executed by grade.py --execute (the
    checks on the HTML run without a browser too)."""
    folder = tmp_path / "mallory"
    folder.mkdir()
    shutil.copyfile(os.path.join(ROOT, "two_layer_net.py"), folder / "two_layer_net.py")
    cells = [nbformat.v4.new_markdown_cell(source) if kind == "markdown" else
             nbformat.v4.new_code_cell(source)
             for kind, source in hostile_notebooks.executable_cells()]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / "two_layer_net.ipynb")
    out = tmp_path / "out"
    assert grade.main([str(folder), "--out", str(out), "--execute",
                       "--notebook-timeout", "60"]) == 0
    path = out / "mallory" / "report.html"
    page = path.read_text(encoding="utf-8")
    assert problems(page) == []
    assert "ValueError" in page and "data:image/png;base64," + hostile_notebooks.FIGURE in page, \
        "the notebook ran: its error and its figure are in the report"
    assert "data:image/svg+xml;base64," in page, "its SVG is shown as an image"
    assert_inert(visit(request.getfixturevalue("browser"), path), "the graded notebook's report")


def test_answers_and_index_pages_run_nothing_and_show_math(browser, tmp_path):
    """answers.html with hostile answers (scripts, forged boxes, LaTeX whose text is HTML) and
    the index page, opened in Chromium: inert, each answer in its own box, the math laid out."""
    from grader import answers

    latex = {e.name: e for e in hostile_notebooks.entries()}["markdown_latex"].notebook
    hostile = "\n\n".join(c.source for c in latex.cells)
    forged = ("## q2 (5 points)\n\n#### bob\n\n"
              f"<script>{hostile_notebooks.PAYLOAD}</script>[x](javascript:alert(1))")
    page = answers.answers_html({
        "amy": {"answers": {"q1": hostile, "q2": forged}, "guessed": {}},
        "bob": {"answers": {"q1": r"The gradient $\nabla_{W_2} L = \frac{1}{N}$"}, "guessed": {}}})
    (tmp_path / "answers.html").write_text(page, encoding="utf-8")
    assert_inert(visit(browser, tmp_path / "answers.html"), "answers.html", "Written answers")
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".answer-label")]
    assert labels == [f"{n} · {q}" for q in answers.WRITTEN_POINTS for n in ("amy", "bob")]
    fraction = browser.find_elements(By.CSS_SELECTOR, "math mfrac")
    assert fraction and fraction[-1].size["height"] > 0, "the MathML is laid out"
    assert browser.find_elements(By.CSS_SELECTOR, "h2")[1].text == "q2 (5 points)"

    from grader import report
    from grader.rubric import RUBRIC, Verdict
    rows = {"<img src=x onerror=alert(1)>": report.make_result(
        {t: Verdict(True, "") for t in RUBRIC}, "", 0.0, {"flags": ["<script>x()</script>"]})}
    (tmp_path / "out").mkdir()
    answers.write_index(str(tmp_path / "out"), rows)
    assert_inert(visit(browser, tmp_path / "out" / "index.html"), "index.html", "Grades")
