"""Per-document cost of each step, measured in one run on the same template and data.

Prints ms per document for plain docxtpl (the baseline: a fresh DocxTemplate per render,
default jinja2 environment) and for the engine's Renderer (shared autoescaping StrictUndefined
environment, context sanitising, cached template bytes, strict XML check of the output), their
ratio, and ms per document for the PDF step: LibreOffice one document per invocation (what a
single ``fire`` pays), LibreOffice batched, and the pypdf metadata finish. Medians of repeated
runs, because this 2-core machine is noisy; compare ratios, not absolute numbers, across runs.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docxtpl import DocxTemplate  # noqa: E402

from engine import Engine, load_config  # noqa: E402
from engine.convert import SofficeConverter, soffice_version  # noqa: E402
from engine.pdf import finish  # noqa: E402
from engine.warm import WarmConverter, find_office_python  # noqa: E402
from engine.render import FILTERS  # noqa: E402


def plain_render(template: bytes, context: dict) -> bytes:
    """The baseline: plain docxtpl, a fresh template and a default jinja2 environment (with
    the engine's filters, which the templates use)."""
    import jinja2

    env = jinja2.Environment()
    env.filters.update(FILTERS)
    doc = DocxTemplate(io.BytesIO(template))
    doc.render(context, jinja_env=env)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--renders", type=int, default=30, help="renders per renderer")
    parser.add_argument("--conversions", type=int, default=4, help="single-document conversions")
    parser.add_argument("--batch", type=int, default=8, help="documents in the batched conversion")
    args = parser.parse_args()

    config = load_config(ROOT / "config.toml")
    data = json.loads((ROOT / "examples" / "quote.json").read_text(encoding="utf-8"),
                      parse_float=Decimal)
    with SofficeConverter() as converter:
        engine = Engine(config, converter=converter)
        context = engine.context_for("quote", data, "quote", "zhang", number="BJ-2026-000001")
        template = engine.renderer.load(config.template_path("quote.docx"))

        def plain() -> bytes:
            return plain_render(template.data, context)

        def ours() -> bytes:
            return engine.renderer.render(template, context, {"title": "商谈报价单"})

        plain(), ours()  # warm imports and caches
        plain_ms, ours_ms = [], []
        for _ in range(args.renders):  # interleaved so both see the same machine load
            plain_ms += timed(plain, 1)
            ours_ms += timed(ours, 1)
        docx = ours()

        converter.convert(docx)  # first start of the private profile is not what we measure
        single_ms = timed(lambda: converter.convert(docx), args.conversions)
        start = time.perf_counter()
        pdfs = converter.convert_many([docx] * args.batch)
        batch_ms = (time.perf_counter() - start) * 1000 / args.batch
        finish_ms = timed(lambda: finish(pdfs[0], {"DealerDocsNumber": "BJ-2026-000001"}), 20)

        warm_ms = warm_batch_ms = None
        if find_office_python():
            import tempfile

            with tempfile.TemporaryDirectory() as state:
                pool = WarmConverter(Path(state), instances=2, timeout=120)
                try:
                    pool.start()
                    pool.convert(docx)  # each instance's first document loads the filters
                    pool.convert_many([docx, docx])
                    warm_ms = timed(lambda: pool.convert(docx), args.conversions * 2)
                    start = time.perf_counter()
                    pool.convert_many([docx] * args.batch)
                    warm_batch_ms = (time.perf_counter() - start) * 1000 / args.batch
                finally:
                    pool.stop()

    med = statistics.median
    print(f"dealerdocs benchmark — docxtpl {version('docxtpl')}, pypdf {version('pypdf')}, "
          f"{soffice_version()}")
    print(f"template quote.docx, data examples/quote.json; medians of {args.renders} renders, "
          f"{args.conversions} conversions, a batch of {args.batch}")
    rows = [
        ("render: plain docxtpl (baseline)", med(plain_ms), None),
        ("render: engine Renderer", med(ours_ms), med(ours_ms) / med(plain_ms)),
        ("pdf: LibreOffice, 1 document per run", med(single_ms), med(single_ms) / med(plain_ms)),
        (f"pdf: LibreOffice, {args.batch} documents per run", batch_ms, batch_ms / med(plain_ms)),
        ("pdf: pypdf metadata finish", med(finish_ms), med(finish_ms) / med(plain_ms)),
    ]
    if warm_ms:
        rows[3:3] = [
            ("pdf: warm LibreOffice (our worker), 1 doc", med(warm_ms), med(warm_ms) / med(plain_ms)),
            (f"pdf: warm pool of 2, {args.batch} documents", warm_batch_ms,
             warm_batch_ms / med(plain_ms)),
        ]
    print(f"{'step':<44}{'ms/doc':>10}{'× baseline':>14}")
    for name, ms, ratio in rows:
        print(f"{name:<44}{ms:>10.1f}{'' if ratio is None else f'{ratio:>13.2f}×':>14}")
    print(f"engine render / plain docxtpl = {med(ours_ms) / med(plain_ms):.2f}")
    if warm_ms:
        print(f"cold / warm LibreOffice per document = {med(single_ms) / med(warm_ms):.1f}")


if __name__ == "__main__":
    main()
