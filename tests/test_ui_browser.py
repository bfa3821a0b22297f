"""The app in a real browser: the system Chromium driven by Playwright against `python app.py`.

Covers what only a browser shows: the page loads with the mode visible, a question gets a streamed
answer with citations that open the cited entry, LaTeX is typeset (KaTeX), a two-question mock
interview is run by typing and by uploading an espeak-ng recording, the question bank starts a
practice, two browser contexts at once stay isolated. A screenshot of every tab is saved under
`test-artifacts/` (gitignored) for a human to look at (Chinese glyphs, layout).

Chromium is the system one (`/usr/bin/chromium`, never `playwright install`); headless Chromium has
no microphone, so spoken answers are uploaded as files, as ENVIRONMENT.md advises.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from playwright.sync_api import sync_playwright  # in the [test] extra; a missing package fails, never skips

from tests.openai_server import Reply
from tests.ui_app import ARTIFACTS, ROOT, TRANSCRIPTIONS, write_sample_eval_report
from tutor.corpus import load_corpus

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CORPUS = load_corpus(ROOT / "corpus", strict=False)
BY_QUESTION = {e.question: e for e in CORPUS.entries}
TIMEOUT = 30_000


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, offline_app):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    pg.goto(offline_app.url)
    pg.get_by_text("当前模式").wait_for()
    yield pg
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(400)  # let KaTeX and the last stream chunk settle
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)


def ask(page, question: str) -> None:
    page.locator("#chat-input textarea").fill(question)
    page.locator("#chat-send").click()


def wait_answer(page, n: int = 1) -> None:
    page.locator("#chat-box").get_by_text("来源", exact=True).nth(n - 1).wait_for()


def entry_of(page) -> object:
    heading = page.locator("#iv-question h3").inner_text()
    question = re.sub(r"^(第 \d+/\d+ 题|追问)：", "", heading).strip()
    entry = BY_QUESTION.get(question)
    assert entry is not None, heading
    return entry


def start_two_questions(page) -> None:
    """On the 模拟面试 tab: 2 questions, no follow-ups, start, wait for the first question."""
    for slider, value in (("#iv-n", "2"), ("#iv-follow-ups", "0")):
        box = page.locator(f"{slider} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#iv-start").click()
    page.locator("#iv-question h3").filter(has_text="第 1/2 题").wait_for()


def good_answer(entry) -> str:
    """The reference answer: a well-covered answer whatever the grader's tuning (keyword lists are penalised)."""
    return entry.answer[:2000]


def test_chat_streams_a_cited_answer_that_opens_the_entry(page):
    assert page.locator("#mode-line").get_by_text("离线模式").count() == 1
    ask(page, "为什么注意力要除以根号 d？")
    wait_answer(page)
    bot = page.locator("#chat-box [data-testid='bot']").last
    assert "[1]" in bot.inner_text() and "attention-scaling" in bot.inner_text()
    assert bot.locator(".katex").count() > 0  # $...$ typeset, not shown raw
    assert page.locator("#chat-box button[aria-label='Copy message']").count() >= 2  # copy controls
    assert page.locator("#chat-box button[aria-label='Copy conversation']").count() == 1

    labels = page.locator("#chat-citations label")
    assert labels.count() >= 2 and labels.first.inner_text().startswith("[1]")
    second = labels.nth(1).inner_text()
    labels.nth(1).click()
    title = second.split("] ", 1)[1]
    page.locator("#chat-entry h2").filter(has_text=title[:12]).wait_for()
    assert page.locator("#chat-entry").get_by_text("要点", exact=True).count() == 1
    shot(page, "chat")

    page.locator("#chat-open-bank").click()
    page.locator("#bank-entry h2").filter(has_text=title[:12]).wait_for()
    page.get_by_role("tab", name="问答").click()
    page.locator("#chat-clear").click()
    page.wait_for_function("document.querySelectorAll(\"#chat-box [data-testid='bot']\").length === 0")
    assert page.locator("#chat-citations label").count() == 0

    # The chatbot's own trash icon clears the conversation memory too, not only the display.
    ask(page, "KV Cache 是什么？")
    wait_answer(page)
    page.locator("#chat-box button[aria-label='清空对话']").click()  # Gradio's own labels follow the zh-CN locale
    page.wait_for_function("document.querySelectorAll(\"#chat-box [data-testid='bot']\").length === 0")
    # the display empties at once in the browser; the server-side clear is done when the citations go
    page.wait_for_function("document.querySelectorAll('#chat-citations label').length === 0")
    ask(page, "那它的显存怎么算？")
    page.locator("#chat-box [data-testid='bot']").last.get_by_text("离线模式", exact=False).first.wait_for()
    assert "结合上一轮" not in page.locator("#chat-box").inner_text()


def test_two_question_interview_typed_and_spoken(page, tmp_path, offline_app):
    wav = tmp_path / "answer.wav"
    subprocess.run(["espeak-ng", "-v", "cmn-latn-pinyin", "-w", str(wav), "除以根号 d 是为了防止 softmax 饱和。"],
                   check=True, capture_output=True)
    page.get_by_role("tab", name="模拟面试").click()
    page.locator("#iv-voice input[type=checkbox]").check()
    topics = page.locator("#iv-topics input")
    topics.click()
    topics.fill("注意力")
    topics.press("Enter")
    page.keyboard.press("Escape")
    start_two_questions(page)

    # Question 1: typed.
    entry = entry_of(page)
    page.locator("#iv-answer textarea").fill(good_answer(entry))
    page.locator("#iv-submit").click()
    page.locator("#iv-question h3").filter(has_text="第 2/2 题").wait_for()
    grade = page.locator("#iv-grade")
    grade.locator("h3").filter(has_text="得分").wait_for()  # markdown renders a moment after the question
    assert re.search(r"得分 [\d.]+ / 10", grade.inner_text())
    assert grade.locator("table").count() == 1 and "已覆盖" in grade.inner_text()
    assert "第 2/2 题" in grade.inner_text()  # what comes next is on the card

    # Question 2: an espeak-ng recording uploaded to the audio answer, transcribed by the loopback
    # OpenAI-protocol server (which checks it got 16 kHz mono), edited in the box, then submitted.
    entry2 = entry_of(page)
    said = "我的理解是" + entry2.key_points[0]
    offline_app.server.push(TRANSCRIPTIONS, Reply(payload=said))
    audio = page.locator("#iv-audio")
    audio.locator("[data-testid='source-select'] button").first.click()  # upload (the mic needs a device)
    audio.locator("input[type=file]").set_input_files(str(wav))
    page.locator("#iv-status").get_by_text("已转写").wait_for()
    box = page.locator("#iv-answer textarea")
    assert box.input_value() == said and box.is_editable()
    box.press("End")
    box.type("。另外，" + entry2.key_points[1])  # the candidate corrects/extends the transcript
    spoken = page.locator("#iv-question-audio audio[src]")  # (a blob: URL of the wav Gradio fetched)
    assert spoken.count() >= 1  # 语音播报: the question, read by espeak-ng, in an audio element
    shot(page, "interview")
    page.locator("#iv-submit").click()
    page.locator("#iv-report h1").filter(has_text="模拟面试报告").wait_for()
    assert "面试已结束" in page.locator("#iv-question").inner_text()
    assert page.locator("#iv-report table").count() >= 1
    link = page.locator("#iv-report-file a").first
    assert "interview-report-" in link.get_attribute("href")
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "report.md"
    download.value.save_as(saved)
    assert saved.read_text(encoding="utf-8").startswith("# 模拟面试报告")
    assert page.locator("#iv-transcript [data-testid='user']").count() == 2  # both answers are in the record
    assert entry.question in page.locator("#iv-transcript").inner_text()
    shot(page, "interview-report")


def test_unfinished_interview_resumes_after_a_page_reload(page, offline_app):
    page.get_by_role("tab", name="模拟面试").click()
    start_two_questions(page)
    first = entry_of(page)
    mine = "我先说核心：" + first.key_points[0]
    page.locator("#iv-answer textarea").fill(mine)
    page.locator("#iv-submit").click()
    page.locator("#iv-question h3").filter(has_text="第 2/2 题").wait_for()
    second = page.locator("#iv-question h3").inner_text()

    page.reload()  # the browser session's state is gone; the saved interview is not
    page.get_by_text("当前模式").wait_for()
    page.get_by_role("tab", name="模拟面试").click()
    assert "还没有开始面试" in page.locator("#iv-question").inner_text()
    pick = page.locator("#iv-resume-pick input")
    page.wait_for_function("() => document.querySelector('#iv-resume-pick input').value.includes('已完成 1/2 题')")
    assert first.question[:10] not in pick.input_value()  # it names the open question, not the answered one
    page.locator("#iv-resume").click()
    page.locator("#iv-question h3").filter(has_text=second).wait_for()
    transcript = page.locator("#iv-transcript")
    transcript.get_by_text("我们继续上次的面试").wait_for()
    assert mine in transcript.inner_text() and first.question in transcript.inner_text()
    shot(page, "interview-resumed")


def test_bank_search_entry_and_practice(page):
    page.get_by_role("tab", name="题库").click()
    page.locator("#bank-query textarea, #bank-query input").first.fill("旋转位置编码 RoPE")
    page.locator("#bank-search").click()
    page.locator("#bank-count").get_by_text("相关度").wait_for()
    first = page.locator("#bank-results label").first
    first.click()
    title = first.inner_text().split("] ", 1)[1]
    page.locator("#bank-entry h2").filter(has_text=title[:12]).wait_for()
    entry_text = page.locator("#bank-entry").inner_text()
    for section in ("答案", "要点", "追问", "来源"):
        assert section in entry_text
    assert page.locator("#bank-entry .katex").count() > 0
    shot(page, "bank")
    page.locator("#bank-practice").click()
    page.locator("#iv-question h3").filter(has_text="第 1/1 题").wait_for()
    assert title[:12] in page.locator("#iv-question").inner_text()


def test_progress_and_eval_tabs(page, offline_app):
    from gradio_client import Client

    c = Client(offline_app.url, verbose=False)  # an answered question, so there is progress to plot
    c.predict("kv-cache", 0, False, api_name="/bank_practice")
    c.predict("KV Cache 缓存每层已经算过的 K 和 V，解码时不用重复计算。", False, api_name="/interview_answer")
    page.get_by_role("tab", name="进度").click()
    page.locator("#progress-view").get_by_text("当前档案").wait_for()
    for name in ("mastery", "timeline", "missed"):
        page.locator(f"#progress-{name} img").wait_for()  # matplotlib figures, rendered as images
    assert "今日待复习" in page.locator("#progress-view").inner_text()
    shot(page, "progress")
    write_sample_eval_report(offline_app.data_dir)  # laid out as `python -m eval` writes it
    page.get_by_role("tab", name="评测").click()
    page.locator("#eval-report h1").filter(has_text="评测报告").wait_for()
    page.locator("#eval-plots img").first.wait_for()
    assert page.locator("#eval-report table").count() == 1
    shot(page, "eval")


def test_two_browser_contexts_at_once_stay_isolated(browser, offline_app):
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(2)]
    try:
        pages = [c.new_page() for c in contexts]
        for pg in pages:
            pg.set_default_timeout(TIMEOUT)
            pg.goto(offline_app.url)
            pg.get_by_text("当前模式").wait_for()
        questions = ["KV Cache 是什么？", "LoRA 的原理是什么？"]
        for pg, q in zip(pages, questions):  # both in flight at once
            ask(pg, q)
        for pg in pages:
            wait_answer(pg)
        for pg, mine, other in ((pages[0], *questions), (pages[1], *reversed(questions))):
            users = pg.locator("#chat-box [data-testid='user']").all_inner_texts()
            assert [u.strip() for u in users] == [mine]
            assert other not in pg.locator("#chat-box").inner_text()

        a, b = pages
        a.get_by_role("tab", name="模拟面试").click()
        a.locator("#iv-start").click()
        a.locator("#iv-question h3").filter(has_text="第 1/").wait_for()
        b.get_by_role("tab", name="模拟面试").click()
        assert "还没有开始面试" in b.locator("#iv-question").inner_text()
    finally:
        for c in contexts:
            c.close()
