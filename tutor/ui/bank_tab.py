"""The 题库 tab: browse and search the knowledge base, read an entry in full, practise it.

Design. Filters (大类 section, 主题 topic, 标签 tag, 难度 level) narrow the corpus; a search text ranks
what is left with the hybrid retriever (the same ranking the chat uses), or, without text, entries
keep their corpus order (file, then position). Results are a radio list of questions; choosing one
renders the whole entry (answer with LaTeX and code, key points, follow-ups, sources). "练这道题"
hands the entry id to the interview tab, which starts a one-question practice and is selected.

Trade-off: the retriever returns the top k of the whole corpus, so a search combined with narrow
filters asks it for many hits (k = corpus size) and filters afterwards; at a few hundred entries
this costs a few milliseconds and keeps one ranking everywhere. A search lists only entries scoring
at least `MIN_SCORE_RATIO` of the best hit: fused scores fall off slowly, and a list of every entry
sharing one word with the query buries the few that answer it.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from tutor.corpus import Entry
from tutor.ui.render import LATEX, entry_label, entry_markdown
from tutor.ui.services import Services

ALL = "全部"
LEVELS = [ALL, "1", "2", "3"]
ENTRY_HINT = "从左侧列表选择一道题查看全文。"
MIN_SCORE_RATIO = 0.35  # a search lists entries scoring at least this share of the best one
MAX_HITS = 30


@dataclass
class BankTab:
    results: gr.Radio
    selected: gr.Textbox  # the id of the entry shown (hidden); events take it, not the radio
    entry_view: gr.Markdown
    practice: gr.Button


def filter_entries(svc: Services, query: str, section: str, topic: str, tag: str,
                   level: str) -> tuple[list[Entry], bool]:
    """Entries passing the filters, ranked by `query` when given; and whether the query matched."""
    def keep(e: Entry) -> bool:
        return ((section in ("", ALL, None) or e.section == section)
                and (topic in ("", ALL, None) or e.topic == topic)
                and (tag in ("", ALL, None) or tag in e.tags)
                and (level in ("", ALL, None) or str(e.level) == str(level)))

    query = (query or "").strip()
    if not query:
        return [e for e in svc.corpus.entries if keep(e)], True
    result = svc.retriever.search(query[:500], k=len(svc.corpus.entries))
    top = result.hits[0].score if result.hits else 0.0
    hits = [h.entry for h in result.hits if keep(h.entry) and h.score >= MIN_SCORE_RATIO * top]
    return (hits[:MAX_HITS], True) if result.relevant else (hits[:10], False)


def build_bank_tab(svc: Services) -> BankTab:
    everything = [(entry_label(e), e.id) for e in svc.corpus.entries]
    with gr.Tab("题库", id="bank"):
        with gr.Row():
            query = gr.Textbox(label="搜索", placeholder="关键词或问题，例如 RoPE、DPO 的损失函数", scale=3,
                               elem_id="bank-query")
            section = gr.Dropdown([ALL] + svc.sections, value=ALL, label="大类", scale=2, elem_id="bank-section")
            topic = gr.Dropdown([ALL] + svc.topics, value=ALL, label="主题", scale=2, elem_id="bank-topic")
            tag = gr.Dropdown([ALL] + svc.tags, value=ALL, label="标签", scale=2, elem_id="bank-tag")
            level = gr.Radio(LEVELS, value=ALL, label="难度", scale=2, elem_id="bank-level")
        with gr.Row():
            search = gr.Button("搜索", variant="primary", size="sm", elem_id="bank-search")
            reset = gr.Button("重置筛选", size="sm", elem_id="bank-reset")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                count = gr.Markdown(f"共 {len(everything)} 道题", elem_id="bank-count")
                results = gr.Radio(everything, label="题目", elem_id="bank-results", elem_classes=["entry-list"])
            with gr.Column(scale=3):
                selected = gr.Textbox(visible=False, elem_id="bank-selected")
                practice = gr.Button("练这道题", variant="primary", elem_id="bank-practice", interactive=False)
                entry_view = gr.Markdown(ENTRY_HINT, latex_delimiters=LATEX, elem_id="bank-entry",
                                         elem_classes=["entry-panel"], buttons=["copy"])

    def run_search(q, sec, top, tg, lvl):
        found, relevant = filter_entries(svc, q, sec, top, tg, lvl)
        note = f"共 {len(found)} 道题" + ("（按与搜索词的相关度排序）" if (q or "").strip() else "")
        if found and not relevant:
            note = "知识库中没有与搜索词直接相关的条目，以下是最接近的结果。"
        if not found:
            note = "没有符合条件的题目：请放宽筛选条件或换个关键词。"
        return gr.update(choices=[(entry_label(e), e.id) for e in found], value=None), note

    def section_changed(sec, q, top, tg, lvl):
        topics = svc.topics_of(None if sec == ALL else sec)
        top = top if top in topics else ALL
        radio, note = run_search(q, sec, top, tg, lvl)
        return gr.update(choices=[ALL] + topics, value=top), radio, note

    def reset_filters():
        return "", ALL, gr.update(choices=[ALL] + svc.topics, value=ALL), ALL, ALL, \
            gr.update(choices=everything, value=None), f"共 {len(everything)} 道题"

    def show_entry(entry_id):
        entry = svc.entry(entry_id)
        return entry_markdown(entry, svc.corpus) if entry else ENTRY_HINT, gr.update(interactive=entry is not None)

    filters = [query, section, topic, tag, level]
    query.submit(run_search, filters, [results, count], api_name="bank_search_submit")
    search.click(run_search, filters, [results, count], api_name="bank_search")
    section.input(section_changed, [section, query, topic, tag, level], [topic, results, count],
                  api_name="bank_filter_section")
    topic.input(run_search, filters, [results, count], api_name="bank_filter_topic")
    tag.input(run_search, filters, [results, count], api_name="bank_filter_tag")
    level.input(run_search, filters, [results, count], api_name="bank_filter_level")
    reset.click(reset_filters, None, filters + [results, count], api_name="bank_reset")
    # The radio only selects; the entry is shown from the hidden id, so the API (and "在题库中打开")
    # can open any entry, whatever this session's filtered list holds (a radio accepts only its choices).
    results.input(lambda entry_id: entry_id or "", [results], [selected], api_name="bank_select")
    selected.change(show_entry, [selected], [entry_view, practice], api_name="bank_entry")
    return BankTab(results, selected, entry_view, practice)
