"""`tutor progress`: a profile's statistics, 今日待复习, export/import as JSON, deletion.

    tutor progress show [--profile P] [--json] [--plots DIR]
    tutor progress due [--profile P] [--limit N] [--json]
    tutor progress export [--profile P] --out FILE.json        # --out - writes to stdout
    tutor progress import FILE.json [--profile P]              # default: the profile named in the file
    tutor progress delete --profile P [--yes]
    tutor progress profiles

Design: a thin shell over `tutor.progress` (which store, which profile) and the store protocol.
`--profile` defaults to TUTOR_PROFILE, then "default". Deletion is irreversible, so without `--yes`
it asks for the profile name on a terminal and refuses (exit 2) when there is no terminal to ask;
it also removes the profile's saved interview files (`<data_dir>/interviews/<id>.json|.md`), since
those hold the same answers. Import is atomic and idempotent (attempt uids), so importing a file
twice, or into a profile that already has some of it, adds only what is new.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    show = sub.add_parser("show", help="学习进度：各主题掌握度、得分变化、最常漏掉的要点")
    show.add_argument("--json", action="store_true", help="输出 JSON")
    show.add_argument("--plots", type=Path, metavar="DIR", help="把进度图（PNG）写到这个目录")
    due = sub.add_parser("due", help="今日待复习的题目")
    due.add_argument("--limit", type=int, default=None, help="最多列出几条")
    due.add_argument("--json", action="store_true", help="输出 JSON")
    export = sub.add_parser("export", help="把一个用户档案的进度导出为 JSON")
    export.add_argument("--out", required=True, help="输出文件（- 表示标准输出）")
    imp = sub.add_parser("import", help="从 JSON 导入进度（已有的记录不会重复）")
    imp.add_argument("file", type=Path, help="tutor progress export 生成的 JSON 文件")
    delete = sub.add_parser("delete", help="删除一个用户档案的全部进度（不可恢复）")
    delete.add_argument("--yes", action="store_true", help="不再确认，直接删除")
    sub.add_parser("profiles", help="列出所有用户档案")
    for p in (show, due, export, imp, delete):
        p.add_argument("--profile", default=None, help="用户档案名（默认 TUTOR_PROFILE，或 default）")


def run(args: argparse.Namespace) -> int:
    from tutor.progress import current_profile, open_store
    from tutor.progress_store import ProgressStoreError
    from tutor.settings import get_settings

    if not args.action:
        print("用法：tutor progress {show,due,export,import,delete,profiles} ...（tutor progress -h 查看说明）",
              file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        profile = current_profile(settings, getattr(args, "profile", None))
        store = open_store(settings)
        return ACTIONS[args.action](args, settings, store, profile)
    except (ValueError, ProgressStoreError) as exc:
        print(str(exc), file=sys.stderr)
        return 2


def _corpus(settings):
    from tutor.corpus import load_corpus

    return load_corpus(settings.corpus_dir, strict=False)


def _show(args, settings, store, profile) -> int:
    from tutor.progress_stats import render_stats

    stats = store.stats(profile, _corpus(settings))
    if args.json:
        print(json.dumps(stats.model_dump(mode="json"), ensure_ascii=False, indent=1))
    else:
        print(render_stats(stats))
    if args.plots:
        from tutor.progress_plots import cjk_font, write_progress_pngs

        paths = write_progress_pngs(stats, args.plots)
        print("进度图：" + "、".join(str(p) for p in paths), file=sys.stderr)
        if cjk_font() is None:
            print("提示：没有找到中文字体，图中的中文会显示为方框（Debian/Ubuntu：apt install fonts-wqy-zenhei）。",
                  file=sys.stderr)
    return 0


def _due(args, settings, store, profile) -> int:
    from tutor.progress_stats import render_due
    from tutor.progress_store import now_utc
    from tutor.review import retrievability

    now = now_utc()
    cards = store.due(profile, now, args.limit)
    corpus = _corpus(settings)
    if args.json:
        items = [{"entry_id": c.entry_id, "question": corpus.get(c.entry_id).question if corpus.get(c.entry_id) else None,
                  "due": c.due.isoformat(), "last_score": c.last_score, "reps": c.reps,
                  "retrievability": round(retrievability(c, now), 3)} for c in cards]
        print(json.dumps({"profile": profile, "due": items}, ensure_ascii=False, indent=1))
        return 0
    print(render_due(profile, cards, corpus, now))
    if cards:
        print("\n开始复习：tutor interview（会先问到期和薄弱的题）")
    return 0


def _export(args, settings, store, profile) -> int:
    data = store.export(profile)
    text = data.model_dump_json(indent=1)
    if args.out == "-":
        print(text)
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"已导出 {profile}：{len(data.attempts)} 次作答、{len(data.cards)} 张复习卡片、{len(data.sessions)} 场面试 → {out}")
    return 0


def _import(args, settings, store, profile) -> int:
    from pydantic import ValidationError

    from tutor.progress_store import ProfileExport

    try:
        raw = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"读取导入文件失败：{args.file}（{exc}）", file=sys.stderr)
        return 2
    try:
        data = ProfileExport.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        print(f"{args.file} 不是 tutor progress export 导出的进度文件（{where}：{first['msg']}）", file=sys.stderr)
        return 2
    target = args.profile if args.profile else data.profile
    result = store.import_profile(data, target)
    print(f"已导入到 {result.profile}：新增 {result.attempts_added} 次作答（{result.attempts_skipped} 次已存在，跳过），"
          f"{result.sessions} 场面试，共 {result.cards} 张复习卡片。")
    return 0


def _delete(args, settings, store, profile) -> int:
    if args.profile is None:
        print("删除需要明确指定 --profile（不可恢复）。", file=sys.stderr)
        return 2
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"将删除 {profile} 的全部进度且不可恢复：确认请加 --yes。", file=sys.stderr)
            return 2
        typed = input(f"将删除用户档案 {profile} 的全部作答、复习卡片和面试记录，且不可恢复。输入档案名确认：")
        if typed.strip() != profile:
            print("输入不一致，已取消。")
            return 1
    from tutor.progress import delete_profile

    result = delete_profile(store, profile, settings.data_dir)
    if not result.existed:
        print(f"没有名为 {profile} 的用户档案，未删除任何内容。")
        return 0
    print(f"已删除 {profile}：{result.attempts} 次作答、{result.cards} 张复习卡片、{len(result.sessions)} 场面试"
          f"（及 {result.files} 个面试文件）。")
    return 0


def _profiles(args, settings, store, profile) -> int:
    rows = store.profiles()
    if not rows:
        print("还没有用户档案。")
        return 0
    for p in rows:
        mark = " *" if p.name == profile else ""
        print(f"{p.name}{mark}\t作答 {p.attempts} 次 · {p.entries} 道题 · {p.sessions} 场面试")
    return 0


ACTIONS = {"show": _show, "due": _due, "export": _export, "import": _import, "delete": _delete, "profiles": _profiles}
